"""The simulator's speed-ups change no result (docs/SIMULATOR.md "Performance"): the radio
model's fast back end (hosttools.radio_kernels, every node at once, as radio.Medium runs it)
against the model's own link-by-link formulas (hosttools.radio.Radio, as the lab's air runs
them). (The sharing of decodings: test_sim_sharing.py.)"""

import numpy as np

from hosttools import radio as radio_mod
from hosttools import radio_kernels as kernels


def _mean_rssi(r, sender, x, y, X, Y, near):
    """Radio.mean_rssi from (x, y) to every node (-inf where not near): the reference."""
    want = np.full(len(X), -np.inf)
    for b in np.flatnonzero(near):
        d = float(np.hypot(X[b] - x, Y[b] - y))
        want[b] = r.mean_rssi(sender, b, d, (x, y), (X[b], Y[b]))
    return want


def test_rx_means_kernel_equals_the_link_budget():
    r = radio_mod.Radio({}, seed=7)
    g = np.random.default_rng(3)
    n = 600
    X = g.uniform(-50, 950, n)
    Y = g.uniform(-50, 950, n)
    x, y, sender = float(X[5]), float(Y[5]), 5
    r.cover(-500, -500, 1500, 1500)
    reach2 = r.max_range_m() ** 2
    out = np.empty(n)
    i0, j0, vals = r._lattice
    pairs = kernels.pair_rows(vals)
    assert kernels.rx_means(
        X, Y, x, y, sender, reach2, r.tx_power - r.pl0, r.ten_n / 2.0, pairs, i0, j0,
        0.5 / r.lattice_step, r.shadow_sigma, out, kernels.spatial_order(X, Y),
    )  # fmt: skip
    d2 = (X - x) ** 2 + (Y - y) ** 2
    near = d2 <= reach2
    near[sender] = False
    want = _mean_rssi(r, sender, x, y, X, Y, near)
    assert np.isneginf(out[~near]).all()
    np.testing.assert_allclose(out[near], want[near], rtol=0, atol=1e-9)
    # the spatial order is a permutation and changes no value
    order = kernels.spatial_order(X, Y)
    assert sorted(order.tolist()) == list(range(n))
    assert order.tolist() != list(range(n))
    plain = np.empty(n)
    assert kernels.rx_means(
        X, Y, x, y, sender, reach2, r.tx_power - r.pl0, r.ten_n / 2.0, pairs, i0, j0,
        0.5 / r.lattice_step, r.shadow_sigma, plain, np.arange(n),
    )  # fmt: skip
    assert np.array_equal(plain, out)
    # off the lattice: the kernel says so instead of reading outside it
    r2 = radio_mod.Radio({}, seed=7)
    r2.cover(0, 0, 10, 10)
    i0, j0, vals = r2._lattice
    pairs = kernels.pair_rows(vals)
    assert not kernels.rx_means(
        X, Y, x, y, sender, reach2, 0.0, 1.0, pairs, i0, j0, 0.5 / r2.lattice_step, 4.0, out,
        np.arange(n),
    )  # fmt: skip


def test_medium_levels_grow_the_lattice_and_equal_the_link_budget():
    """radio.Medium.levels from a radio without a lattice yet: grown to every midpoint within
    reach (also when a sender moves off it), the kernel's values then equal Radio.mean_rssi."""
    r = radio_mod.Radio({}, seed=5)
    g = np.random.default_rng(8)
    n = 200
    X = g.uniform(0, 600, n)
    Y = g.uniform(0, 600, n)
    on, ch, seen = np.ones(n, dtype=bool), np.ones(n, dtype=np.int16), np.zeros(n, dtype=bool)
    m = radio_mod.Medium(r, on, ch, seen, np.random.default_rng(1))
    grown = []
    for sender, x, y in ((3, float(X[3]), float(Y[3])), (4, 750.0, 650.0)):
        X[sender], Y[sender] = x, y
        got = m.levels(sender, x, y, X, Y, 0)
        grown.append(r._lattice[2].shape)
        near = (X - x) ** 2 + (Y - y) ** 2 <= m.reach2
        near[sender] = False
        assert near.sum() > 20
        np.testing.assert_allclose(
            got[near], _mean_rssi(r, sender, x, y, X, Y, near)[near], rtol=0, atol=1e-9
        )
        assert np.isneginf(got[~near]).all()
    assert grown[1] != grown[0]  # the second sender's links were off the first lattice


def _slots(n, rows):
    """Slot arrays (kernels.receptions) holding rows of (rx, start, end, channel, sender)."""
    RX = np.full((len(rows) + 2, n), -np.inf)
    START = np.full(len(rows) + 2, -(1 << 62), dtype=np.int64)
    END = START.copy()
    CHAN = np.full(len(rows) + 2, -1, dtype=np.int16)
    SENDER = np.full(len(rows) + 2, -1, dtype=np.int64)
    for k, (rx, start, end, ch, sender) in enumerate(rows):
        RX[k], START[k], END[k], CHAN[k], SENDER[k] = rx, start, end, ch, sender
    return RX, START, END, CHAN, SENDER


def _receptions(r, slots, slot, on, ch, to, seen, sniff, t_us, payload, U, u=0):
    k, w0, w1 = radio_mod._fading_weights(t_us, r.coh_us)
    base = r._base_fade
    n = slots[0].shape[1]
    out_idx, out_rssi = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    got, lost, collided, u2 = kernels.receptions(
        *slots, slot, r.audible_floor(), on, ch, to, seen, sniff,
        np.uint64((base + radio_mod._mix64(k)) & radio_mod._M64),
        np.uint64((base + radio_mod._mix64(k + 1)) & radio_mod._M64),
        w0, w1, r.fading, r.g0, r.sensitivity, r.hearing_floor,
        8 * (payload + radio_mod.ESPNOW_OVERHEAD_BYTES), U, u, r.capture_db, out_idx, out_rssi,
    )  # fmt: skip
    return out_idx[:got].tolist(), out_rssi[:got].tolist(), lost, collided, u2


def test_receptions_kernel_equals_the_radio_model():
    """Candidates, fading, packet error rate (Radio.fading_db, Radio.p_loss), one uniform
    per candidate in index order, then capture and half duplex against the overlapping
    transmissions only (same channel, overlapping in time)."""
    r = radio_mod.Radio({}, seed=11)
    g = np.random.default_rng(4)
    n = 300
    sender, t_us, payload = 17, 123456789, 60
    rx = g.uniform(-105, -55, n)
    rx[sender] = -np.inf
    on = g.random(n) < 0.9
    ch = np.where(g.random(n) < 0.9, 1, 6).astype(np.int16)
    seen = np.zeros(n, dtype=bool)
    loud = g.uniform(-100, -50, n)  # an overlapping transmission by node 3
    loud[3] = -np.inf
    on[3], ch[3], rx[3] = True, 1, -60.0  # node 3 hears this frame well, but was sending
    slots = _slots(
        n,
        [
            (rx, 1000, 3000, 1, sender),
            (loud, 2500, 4000, 1, 3),  # overlaps
            (np.full(n, -40.0), 0, 1000, 1, 4),  # ended as this one began: does not overlap
            (np.full(n, -40.0), 1500, 2500, 6, 5),  # another channel
        ],
    )
    U = g.random(2 * n)
    got = _receptions(r, slots, 0, on, ch, -2, seen, True, t_us, payload, U)
    idx, rssi, lost, collided, u = got
    cand = np.flatnonzero((rx >= r.audible_floor()) & on & (ch == 1))
    level = rx[cand] + np.array([r.fading_db(sender, int(j), t_us) for j in cand])
    ok = U[: len(cand)] >= np.array([r.p_loss(v, payload) for v in level])
    heard, mean = cand[ok], np.rint(level[ok])
    hit = (heard == 3) | (loud[heard] > mean - r.capture_db)
    assert u == len(cand) and lost == len(cand) - ok.sum() and collided == hit.sum() > 1
    assert 3 in heard.tolist() and 3 not in idx
    assert idx == heard[~hit].tolist() and rssi == mean[~hit].astype(int).tolist()
    assert len(idx) > 50
    # unicast: the addressee, and a sniffer on the first attempt only (two of the loudest
    # receivers above, and draws that lose nothing: both get it); the uniforms go on
    target, sniffer = [idx[k] for k in np.argsort(rssi)[-2:]]
    seen[sniffer] = True
    keep = np.full(2 * n, 0.9999)
    idx2, _, _, _, u2 = _receptions(r, slots, 0, on, ch, target, seen, True, t_us, payload, keep, 5)
    assert u2 == 7 and sorted(idx2) == sorted([target, sniffer])
    idx3, _, _, _, _ = _receptions(r, slots, 0, on, ch, target, seen, False, t_us, payload, keep)
    assert idx3 == [target]
    # an addressee on another channel (-1): only the sniffers are candidates
    idx4, _, _, _, u4 = _receptions(r, slots, 0, on, ch, -1, seen, True, t_us, payload, keep)
    assert u4 == 1 and idx4 == [sniffer]


def test_ctrl_c_during_a_kernels_first_compile_waits_for_it(tmp_path):
    """numba's compiler cut by Ctrl-C left llvmlite's objects half handed over: `roam sim run`
    interrupted on a cold cache said "roam: error: aborted", then died of a double free at
    exit. A kernel's first call (its compile, or its load from the cache) holds Ctrl-C: one
    that arrives meanwhile is delivered when the kernel is compiled (and cached)."""
    import os
    import subprocess
    import sys

    code = (
        "import os, signal, threading\n"
        "import numpy as np\n"
        "from hosttools import radio_kernels as k\n"
        "a = np.zeros(4)\n"
        "threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
        "try:\n"
        "    k.positions(1.0, a, a, a, a, a, a.copy(), a.copy())\n"
        "    print('returned')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    cache = tmp_path / "numba"  # cold: the first call compiles, for seconds
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.stdout.strip() == "interrupted", done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    # delivered once the compile was done: the kernel went into the cache whole
    assert any(p.name.startswith("radio_kernels.positions") for p in cache.rglob("*.nbi"))

"""The simulator's speed-ups change no result (docs/SIMULATOR.md "Performance"): the compiled
radio arithmetic (hosttools.sim.kernels) against the numpy expressions of hosttools.radio, and
a run with the decode/verify sharing of the core (CPython only) against one without it."""

import copy
import tomllib

import numpy as np

from hosttools import radio as radio_mod
from hosttools.sim import kernels, run, scenario
from mobility import advert, auth, ipv4


def test_rx_means_kernel_equals_the_numpy_link_budget():
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
    want = np.full(n, -np.inf)
    want[near] = r.mean_rssi_many(x, y, X[near], Y[near], d2[near])
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
    """Candidates, fading, packet error rate (hosttools.radio's numpy expressions), one uniform
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
    level = rx[cand] + r.fading_db_many(sender, cand, t_us)
    ok = U[: len(cand)] >= r.p_loss_many(level, payload)
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


def _short(name, duration_s):
    with open(scenario.builtin_path(name), "rb") as f:
        data = tomllib.load(f)
    data["duration_s"] = duration_s
    return scenario.from_dict(copy.deepcopy(data), name + ".toml", scenario.BUILTIN_DIR)


def _summary(sc, memo):
    for m in (ipv4, advert, auth):
        m.set_memo(memo)
    try:
        s, _w = run.run(sc, 1, "/nonexistent", write=False)
    finally:
        for m in (ipv4, advert, auth):
            m.set_memo(True)
    return run.run_figures(s)


def test_shared_decoding_changes_no_result():
    for name, dur in (("walk", 40), ("attacker", 30)):
        sc = _short(name, dur)
        assert _summary(sc, False) == _summary(sc, True), name


def test_shared_decoded_messages_are_read_only():
    key = b"k" * 16
    adv = advert.Advertisement(src=b"\x0a\x00\x00\x01", seq=5, nonce=9)
    pkt = advert.encode_advertisement(adv, key)
    h1 = ipv4.decode(bytearray(pkt))
    h2 = ipv4.decode(bytearray(pkt))
    assert h1 is h2  # the second receiver shares the first one's decoding
    m = advert.decode_icmp(h1)
    assert advert.decode_icmp(h2) is m and isinstance(m, advert.Advertisement)
    for obj, field in ((h1, "ttl"), (m, "seq")):
        try:
            setattr(obj, field, 0)
        except AttributeError:
            pass
        else:
            raise AssertionError("a shared %s could be changed" % type(obj).__name__)
    keys = auth.Keys({auth.SPI_CELL: key})
    other = auth.Keys({auth.SPI_CELL: b"x" * 16})
    assert m.verify(keys) and m.verify(keys)
    assert not m.verify(other)  # the verdict is per key, not per message

"""The simulator's speed-ups change no result (docs/SIMULATOR.md "Performance"): the compiled
radio arithmetic (hosttools.sim.kernels) against the numpy expressions of hosttools.radio, and
a run with the decode/verify sharing of the core (CPython only) against one without it."""

import copy
import tomllib

import numpy as np

from hosttools import radio as radio_mod
from hosttools.sim import kernels, run, scenario
from hosttools.sim.roles import FIRMWARE_DIR  # noqa: F401  (puts the core on sys.path)
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


def test_levels_kernel_equals_fading_and_packet_error_rate():
    r = radio_mod.Radio({}, seed=11)
    g = np.random.default_rng(4)
    n = 300
    rx = g.uniform(-110, -60, n)
    idx = np.flatnonzero(rx >= r.audible_floor())
    t_us = 123456789
    k, w0, w1 = radio_mod._fading_weights(t_us, r.coh_us)
    base = r._base_fade
    level, p = kernels.levels(
        rx, idx, 17,
        np.uint64((base + radio_mod._mix64(k)) & radio_mod._M64),
        np.uint64((base + radio_mod._mix64(k + 1)) & radio_mod._M64),
        w0, w1, r.fading, r.g0, r.sensitivity, r.hearing_floor, 8 * (60 + 43),
    )  # fmt: skip
    want_level = rx[idx] + r.fading_db_many(17, idx, t_us)
    np.testing.assert_allclose(level, want_level, rtol=0, atol=1e-9)
    np.testing.assert_allclose(p, r.p_loss_many(want_level, 60), rtol=0, atol=1e-12)
    assert abs(r.fading_db(17, int(idx[0]), t_us) - (level[0] - rx[idx[0]])) < 1e-9


def test_candidates_kernel_broadcast_and_unicast():
    rx = np.array([-80.0, -120.0, -70.0, -95.0, -60.0])
    on = np.array([True, True, True, False, True])
    ch = np.array([1, 1, 6, 1, 1], dtype=np.int16)
    seen = np.array([False, False, False, False, True])
    assert kernels.candidates(rx, -101.0, on, ch, 1, -2, seen).tolist() == [0, 4]
    assert kernels.candidates(rx, -101.0, on, ch, 1, 0, seen).tolist() == [0, 4]
    assert kernels.candidates(rx, -101.0, on, ch, 1, -1, seen).tolist() == [4]


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

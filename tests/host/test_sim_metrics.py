"""The metrics on small hand-made sequences (docs/METRICS.md)."""

from hosttools.sim import metrics


def test_percentile():
    assert metrics.percentile([], 50) is None
    assert metrics.percentile([5], 95) == 5.0
    assert metrics.percentile([1, 2, 3, 4], 50) == 2.5
    assert metrics.percentile(list(range(101)), 95) == 95.0


def test_delivery():
    sent = {(0, 0): 1, (0, 1): 2, (0, 2): 3, (1, 0): 4}
    deliv = {(0, 0): 5, (0, 2): 6, (9, 9): 7}  # a datagram never sent does not count
    assert metrics.delivery(sent, deliv) == (4, 2, 0.5)


def test_serving_changes():
    tl = [
        (10, "m1", "A"),
        (20, "m1", "B"),
        (30, "m1", None),
        (40, "m1", "B"),
        (50, "m1", "C"),
        (15, "m2", "A"),
    ]
    tl.sort()
    assert metrics.serving_changes(tl) == [(20, "m1"), (50, "m1")]


def test_interruption_and_loss_around_a_handoff():
    # flow 0 to m1 every 100 ms; hand-off at 1.05 s; datagrams 10, 11 lost; 12 at 1.23 s
    flows = {0: ("c", "m1", 100000)}
    deliv = {0: [(i * 100000 + 3000, i) for i in range(10)] + [(1230000, 12), (1303000, 13)]}
    intr, lost = metrics.interruptions([(1050000, "m1")], flows, deliv, 2000000)
    # last before: 0.903 s (seq 9); first after: 1.23 s; minus the 100 ms interval
    assert intr == [1230000 - 903000 - 100000]
    assert lost == 2
    # a smooth hand-off costs nothing
    smooth = {0: [(i * 100000, i) for i in range(20)]}
    intr, lost = metrics.interruptions([(1050000, "m1")], flows, smooth, 2000000)
    assert intr == [0] and lost == 0
    # a flow that never recovers is interrupted until the end of the run
    cut = {0: [(i * 100000, i) for i in range(10)]}
    intr, lost = metrics.interruptions([(1050000, "m1")], flows, cut, 3000000)
    assert intr == [3000000 - 900000 - 100000]
    # hand-offs of other nodes do not count
    assert metrics.interruptions([(1050000, "m2")], flows, deliv, 2000000) == ([], 0)


def test_convergence():
    c = metrics.Convergence()
    A, H = b"\x0a\x00\x00\x01", b"\x0a\x40\x00\x09"
    c.change(1000, A, H, True, [2, 3, 4])
    c.received(1500, 2, A, [H], [])
    c.received(1600, 3, b"other", [H], [])  # from another origin: does not count
    c.received(1700, 3, A, [], [H])  # a withdrawal is not the binding
    c.received(1800, 3, A, [H], [])
    assert c.done == []
    c.received(2500, 4, A, [H], [])
    assert c.done == [1500] and not c.pending
    c.change(3000, A, H, False, [2])
    c.received(3100, 2, A, [], [H])
    assert c.done == [1500, 100]


def test_publication_decoding_and_origin_count():
    pub = bytes([0x52, 0x80]) + b"\x0a\x00\x00\x01" + b"\x00\x02\x00\x05" + bytes([2, 1])
    pub += b"\x0a\x40\x00\x09\x00\x3c" + b"\x0a\x40\x00\x0a\x00\x00" + b"\x0a\x40\x00\x0b"
    pub += bytes(22)
    o, ep, seq, homes, wd = metrics.decode_publication_homes(pub)
    assert (o, ep, seq) == (b"\x0a\x00\x00\x01", 2, 5)
    assert homes == [b"\x0a\x40\x00\x09"]  # a zero lifetime is not a binding
    assert wd == [b"\x0a\x40\x00\x0b"]
    assert metrics.decode_publication_homes(b"\x00" * 40) is None


def test_recovery():
    sent = {(0, i): i * 100000 for i in range(100)}
    deliv = {k: t for k, t in sent.items() if not 30 <= k[1] < 52}
    assert metrics.recovery_ms(sent, deliv, 3.0) == 2200.0
    assert metrics.recovery_ms(sent, {}, 3.0) is None


def test_datagrams_of_the_last_second_count_neither_way():
    col = metrics.Collector()
    col.sent = {(0, i): i * 100000 for i in range(100)}  # one every 100 ms, 10 s
    col.deliv = {k: t + 5000 for k, t in col.sent.items() if k[1] < 95}
    s = col.summary([], 10000000, {"control_frames": 0, "control_bytes": 0}, 0.0)
    # sent before 9 s: 90, all delivered; 10 in flight (5 of which did arrive)
    assert (s["sent"], s["delivered"], s["in_flight"]) == (90, 90, 10)
    assert s["delivery_ratio"] == 1.0


def test_crash_recovery_loss_and_datagrams_to_the_dead_agent():
    # agent A crashed at 1 s serving m1 (flows 0: c -> m1, 1: m1 -> c every 100 ms) and m2
    # (nothing flows to it: not measured); m1 bound again at 1.6 s; flow 0 delivers again from
    # the datagram sent at 1.7 s (at 1.703 s), flow 1 from the one sent at 1.8 s
    c = metrics.Crash(1000000, "A", ["m1", "m2"])
    c.rebound["m1"] = 1600000
    c.stale = [(1650000, "m1", "r1"), (1750000, "m1", "r1")]  # the second after m1's recovery
    flows = {0: ("c", "m1"), 1: ("m1", "c")}
    sent, deliv = {}, {}
    for f in (0, 1):
        for i in range(30):
            sent[(f, i)] = i * 100000
    for i in range(30):
        if i < 10 or i >= 17:
            deliv[(0, i)] = i * 100000 + 3000
        if i < 10 or i >= 18:
            deliv[(1, i)] = i * 100000 + 5000
    rec, lost, never, stale, late, log = metrics.crash_figures([c], flows, sent, deliv, 3000000)
    assert rec == [703000] and never == 0
    assert lost == 7 + 8  # flow 0: 10..16; flow 1: 10..17
    assert (stale, late) == (2, 1)
    assert log[0]["recovery_ms"] == {"m1": 703.0} and log[0]["back_s"] is None
    # never delivered again: counted up to the end of the run, and in `never`
    deliv = {k: t for k, t in deliv.items() if t < 1000000}
    rec, _lost, never, _s, _l, _log = metrics.crash_figures([c], flows, sent, deliv, 3000000)
    assert rec == [2000000] and never == 1

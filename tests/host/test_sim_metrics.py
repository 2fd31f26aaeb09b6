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


def _every_100ms(seqs):
    return [(q * 100000 + 3000, q) for q in seqs]


def test_a_fading_link_before_the_handoff_is_its_burst():
    # flow 0 to m1 every 100 ms; the old link fails now and then (3, 6, 8 lost) before the
    # hand-off at 1.25 s, whose own gap (12 to 13) lost nothing: the burst is 3-8 (RFC 3611,
    # fewer than Gmin = 16 deliveries between losses), enclosed by the deliveries of 2 and 9
    flows = {0: ("c", "m1", 100000)}
    deliv = {0: _every_100ms(q for q in range(40) if q not in (3, 6, 8))}
    intr, lost = metrics.interruptions([(1250000, "m1")], flows, deliv, 5000000)
    assert intr == [903000 - 203000 - 100000] and lost == 3
    # one more loss after the hand-off (15) belongs to it too: enclosed by 2 and 16
    deliv = {0: _every_100ms(q for q in range(40) if q not in (3, 6, 8, 15))}
    intr, lost = metrics.interruptions([(1250000, "m1")], flows, deliv, 5000000)
    assert intr == [1603000 - 203000 - 100000] and lost == 4


def test_a_loss_gmin_deliveries_away_is_not_the_handoffs():
    flows = {0: ("c", "m1", 100000)}
    gmin = metrics.BURST_GMIN
    # seq 30 is lost; the hand-off falls after seq 30 + gmin (gmin deliveries between): clean
    deliv = {0: _every_100ms(q for q in range(80) if q != 30)}
    h = (30 + gmin) * 100000 + 50000
    assert metrics.interruptions([(h, "m1")], flows, deliv, 9000000) == ([0], 0)
    # one delivery fewer between them, and the loss is the hand-off's
    h -= 100000
    intr, lost = metrics.interruptions([(h, "m1")], flows, deliv, 9000000)
    assert intr == [3103000 - 2903000 - 100000] and lost == 1


def test_a_burst_goes_to_the_first_handoff_that_finds_it():
    # hand-offs at 1.05 s (datagrams 10, 11 lost in its gap) and back at 2.05 s (a ping-pong,
    # smooth): the second is within Gmin of the burst but is charged its own gap only
    flows = {0: ("c", "m1", 100000)}
    deliv = {0: _every_100ms(q for q in range(40) if q not in (10, 11))}
    intr, lost = metrics.interruptions([(2050000, "m1"), (1050000, "m1")], flows, deliv, 5000000)
    assert intr == [1203000 - 903000 - 100000, 0] and lost == 2


def test_a_datagram_never_sent_is_no_loss():
    # the sender was off for 5-7 (sequence numbers go on, nothing is sent): given what was
    # sent, the hand-off's gap holds no loss; without it, 5-7 would count as lost
    flows = {0: ("m1", "c", 100000)}
    deliv = {0: _every_100ms(q for q in range(30) if q not in (5, 6, 7))}
    sent = {(0, q): q * 100000 for q in range(30) if q not in (5, 6, 7)}
    intr, lost = metrics.interruptions([(550000, "m1")], flows, deliv, 5000000, sent)
    assert intr == [803000 - 403000 - 100000] and lost == 0
    assert metrics.interruptions([(550000, "m1")], flows, deliv, 5000000)[1] == 3


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


def test_a_late_copy_of_a_publication_changes_no_convergence():
    # member 2 takes agent A's binding of H, then B's (which replaces it: A's ended binding
    # has converged at member 2); a late copy of A's publication is dropped by its core, and the
    # metric too: A's next withdrawal of H has nothing to wait for at member 2
    from types import SimpleNamespace

    from mobility import ipv4

    A, B, H = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", b"\x0a\x40\x00\x09"

    def pub(origin, seq):
        payload = bytes([0x52, 0x80]) + origin + b"\x00\x02" + bytes([0, seq, 1, 0])
        payload += H + b"\x00\x3c" + bytes(22)
        return ipv4.udp(origin, b"\x0a\x00\x00\x03", 4344, 4344, payload)

    col = metrics.Collector()
    member = SimpleNamespace(idx=2)
    col.on_rx(1000, member, pub(A, 5))
    col.on_rx(2000, member, pub(B, 7))
    assert col.conv.holder[(2, H)] == B
    col.on_rx(3000, member, pub(A, 5))  # the late copy
    assert col.conv.holder[(2, H)] == B
    col.conv.change(4000, A, H, False, [2])
    assert col.conv.nothing_to_do == 1 and not col.conv.pending


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


class _Flow:
    def __init__(self, index, src, dst, interval_ms=100):
        self.index, self.src, self.dst, self.interval_ms = index, src, dst, interval_ms


class _Node:
    def __init__(self, id):
        self.id = id


STATS = {"control_frames": 0, "control_bytes": 0}


def test_the_in_flight_tail_counts_neither_way_and_leaves_recovery_defined():
    col = metrics.Collector()
    col.sent = {(0, i): i * 100000 for i in range(100)}  # one every 100 ms for 10 s
    # each delivered 5 ms after it was sent, except 30..34 (lost: an outage) and the last two
    col.deliv = {k: t + 5000 for k, t in col.sent.items() if not 30 <= k[1] < 35}
    del col.deliv[(0, 98)], col.deliv[(0, 99)]
    s = col.summary([_Flow(0, "c", "m")], 9903000, STATS, 0.0, recovery=[("cut", 3.0)])
    # seq 99, sent 3 ms before the end (the flow's datagrams take 5 ms), was on its way: in
    # flight; seq 98, sent 103 ms before the end, could have arrived: lost
    assert s["in_flight"] == s["lost_by_cause"]["in_flight_at_end"] == 1
    assert (s["sent"], s["delivered"], s["undelivered"]) == (99, 93, 7)
    assert s["delivery_ratio"] == 93 / 99
    assert sum(s["lost_by_cause"].values()) == s["undelivered"]
    # seq 98 was lost: recovery never comes
    assert s["recovery_ms"] == {"cut": None}
    col.deliv[(0, 98)] = 9805000
    s = col.summary([_Flow(0, "c", "m")], 9903000, STATS, 0.0, recovery=[("cut", 3.0)])
    # only the in-flight tail is undelivered after 3.5 s: recovered at 3.5 s
    assert s["recovery_ms"] == {"cut": 500.0}
    assert s["in_flight"] == 1 and s["undelivered"] == 6


def test_flight_bound_is_the_flows_longest_delivery_capped():
    sent = {(0, 0): 0, (0, 1): 100, (1, 0): 0}
    deliv = {(0, 0): 20, (0, 1): 130}
    assert metrics.flight_bounds([0, 1], sent, deliv) == {0: 30, 1: metrics.IN_FLIGHT_US}
    slow = {(0, 0): 5000000}
    assert metrics.flight_bounds([0], sent, slow) == {0: metrics.IN_FLIGHT_US}
    assert metrics.in_flight_at_end(sent, deliv, {0: 30, 1: 50}, 120) == set()
    assert metrics.in_flight_at_end({(1, 0): 80}, {}, {1: 50}, 120) == {(1, 0)}


# one small field for the causes: correspondent c (gateway r) sends to mobile m, bound to
# agent a1 or a2; every flow takes at most 20 ms
ADDRS = {"c": "10.0.0.1", "r": "10.0.0.2", "a1": "10.0.0.3", "a2": "10.0.0.4", "m": "10.0.0.9"}
FLOWS = {0: ("c", "m"), 1: ("m", "c")}
BOUNDS = {0: 20000, 1: 20000}


def causes(lost, events, gaps=(), end_us=None):
    return metrics.attribute_losses(lost, FLOWS, BOUNDS, events, ADDRS, gaps, {"c": "r"}, end_us)


def bound(t, agent):
    return (t, "m", "bound", {"agent": ADDRS[agent], "lifetime": 60})


def power(t, node, on):
    return (t, node, "sim_power", {"on": on})


def test_cause_in_flight_at_end_comes_first():
    ev = [power(5000000, "m", False)]
    got = causes({(0, 1): 9990000, (0, 2): 9970000}, ev, end_us=10000000)
    # sent 10 ms before the end: in flight although m went off; 30 ms before: m was off
    assert got == {(0, 1): "in_flight_at_end", (0, 2): "node_off"}


def test_cause_node_off_ends_and_the_agent_an_end_is_bound_to():
    ev = [bound(1000000, "a1"), power(4000000, "a1", False), power(6000000, "a1", True)]
    lost = {(0, 1): 2000000, (0, 2): 3990000, (0, 3): 5000000, (0, 4): 7000000}
    got = causes(lost, ev)
    # a1 was off during the flight of 2 (sent 10 ms before) and when 3 was sent; 1 and 4 not
    assert got == {(0, 1): "other", (0, 2): "node_off", (0, 3): "node_off", (0, 4): "other"}
    # the gateway of a host counts too, and so does the source itself
    ev = [power(1000000, "r", False), power(1500000, "r", True), power(2000000, "c", False)]
    got = causes({(0, 1): 1200000, (0, 2): 1600000, (0, 3): 2500000}, ev)
    assert got == {(0, 1): "node_off", (0, 2): "other", (0, 3): "node_off"}
    # an agent the node no longer uses does not: it went to host-to-host contact first
    ev = [bound(0, "a1"), (900000, "m", "mode", {"mode": "direct"}), power(1000000, "a1", False)]
    assert causes({(0, 1): 1200000}, ev) == {(0, 1): "other"}


def test_cause_partition_only_across_the_parts():
    part = (2000000, None, "sim_partition", {"groups": [["a1", "c", "r"], ["a2"]]})
    heal = (4000000, None, "sim_partition", {"groups": []})
    ev = [bound(1000000, "a2"), part, bound(2200000, "a1"), bound(3000000, "a2"), heal]
    lost = {(0, 1): 2500000, (0, 2): 3500000, (0, 3): 4500000, (0, 4): 1990000}
    got = causes(lost, ev, gaps={(0, 2), (0, 3)})
    # 1: m with a1, on c's side; 2: m with a2, across (not the hand-off's although in its
    # gap); 3: after the heal; 4: m with a2, sent 10 ms before the partition, on its way when
    # it came
    assert got == {(0, 1): "other", (0, 2): "partition", (0, 3): "handoff", (0, 4): "partition"}


def test_cause_no_route_matches_one_drop_to_one_datagram():
    drop = {"reason": "no_route", "src": ADDRS["c"], "dst": ADDRS["m"]}
    ev = [
        (1005000, "a1", "drop", drop),
        (1105000, "a1", "drop", {"reason": "no_route", "src": ADDRS["m"], "dst": ADDRS["c"]}),
        (1205000, "m", "drop", {"reason": "no_route", "dst": ADDRS["c"]}),  # no source given
        (1305000, "a1", "drop", dict(drop, reason="ttl")),  # another reason
    ]
    lost = {(0, 1): 1000000, (0, 2): 1100000, (1, 1): 1200000, (0, 3): 1300000}
    got = causes(lost, ev, gaps=set(lost))
    # (0, 2) has no drop of its own (the one at 1.105 s is of the other direction), (0, 3)'s
    # drop was for its TTL; a no-route drop wins over the hand-off gap it lies in
    assert got == {(0, 1): "no_route", (0, 2): "handoff", (1, 1): "no_route", (0, 3): "handoff"}
    # a drop long after the datagram was sent (beyond its flight bound) is not its drop
    assert causes({(0, 1): 1000000}, [(1100000, "a1", "drop", drop)]) == {(0, 1): "other"}


def test_cause_radio_after_handoff():
    ev = [(1010000, "a1", "sim_radio_loss", {"why": "retries", "flow": 0, "seq": 1})]
    ev.append((1110000, "a1", "sim_radio_loss", {"why": "txq", "flow": 0, "seq": 2}))
    got = causes({(0, 1): 1000000, (0, 2): 1100000, (0, 3): 1200000}, ev, gaps={(0, 2)})
    assert got == {(0, 1): "radio", (0, 2): "handoff", (0, 3): "other"}


def test_causes_in_the_summary():
    col = metrics.Collector()
    col.by_addr = {bytes(int(x) for x in a.split(".")): _Node(n) for n, a in ADDRS.items()}
    col.sent = {(0, i): i * 100000 for i in range(100)}
    col.deliv = {k: t + 5000 for k, t in col.sent.items() if k[1] not in (20, 21, 40, 41, 60)}
    # a hand-off of m at 2.05 s (20 and 21 lost in it); a1 off from 4.0 to 4.2 s (40, 41);
    # a no-route drop of 60
    col.timeline = [(500000, "m", "a2"), (2050000, "m", "a1")]
    col.cause_events = [
        bound(0, "a2"),
        (2050000, "m", "handoff", {"old": ADDRS["a2"], "new": ADDRS["a1"]}),
        power(4000000, "a1", False),
        power(4200000, "a1", True),
        (6001000, "a1", "drop", {"reason": "no_route", "src": ADDRS["c"], "dst": ADDRS["m"]}),
    ]
    s = col.summary([_Flow(0, "c", "m")], 10000000, STATS, 0.0)
    assert s["lost_by_cause"] == {
        "handoff": 2,
        "no_route": 1,
        "partition": 0,
        "node_off": 2,
        "radio": 0,
        "in_flight_at_end": 0,
        "other": 0,
    }
    assert s["lost_in_handoff"] == 2 and s["undelivered"] == 5 and s["handoffs"] == 1
    assert col.causes[(0, 60)] == "no_route" and col.causes[(0, 40)] == "node_off"


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

"""Reliable flooding (docs/REGION.md "Reliable flooding"): publications are acknowledged per
neighbour, retransmitted with back-off until they are, and given up on a neighbour that answers
nothing; acknowledgements are batched and signed, a forged one clears nothing; duplicates are
still dropped.

The members are routers joined by backbone links (tests/core/backbone.py); a link that is cut
loses what is sent over it, which is how a publication is lost here.
"""

import unittest

from backbone import (
    REGION_KEY,
    Backbone,
    Rand,
    copy_packet,
    line,
    link_mac,
    node_config,
    region_config,
    ring,
)

from mobility import actions, ipv4, publication
from mobility.router import Router

LIFE_MS = 120000
HOLD_OFF_MS = 2000
REPUBLISH_MS = 60000  # far beyond each test's horizon: only retransmission repairs a loss


def home(i):
    return ipv4.aton("10.9.0.%d" % (i + 1))


class Recording(Backbone):
    """The test backbone, recording every send attempt (also over a cut link) with its time."""

    def __init__(self, now=0):
        Backbone.__init__(self, now)
        self.attempts = []  # (t, src name, dst name or None, frame)

    def _send(self, name, iface, mac, data):
        self.attempts.append((self.now, name, self._by_mac.get(bytes(mac)), bytes(data)))
        Backbone._send(self, name, iface, mac, data)

    def pubs_to(self, src, dst):
        """[(t, origin, seq)] of the publication frames ``src`` tried to send to ``dst``."""
        out = []
        for t, s, d, f in self.attempts:
            if s == src and d == dst and f[publication.PAYLOAD_AT] != publication.MSG_ACK:
                p = publication.PAYLOAD_AT
                out.append((t, bytes(f[p + 2 : p + 6]), publication.seq_at(f, p)))
        return out


def build(members, edges, **options):
    bb = Recording(0)
    opts = {"hold_off_ms": HOLD_OFF_MS, "republish_ms": REPUBLISH_MS}
    for k in options:
        opts[k] = options[k]
    for i in range(len(members)):
        m = members[i]
        cfg = node_config(i + 1, m, region=region_config(members, edges, m, None, **opts))
        bb.add(m, Router(cfg, Rand(i + 1), 0))
    for a, b in edges:
        bb.connect(a, b)
    bb.run(5000)  # the first snapshots (empty) went out and were acknowledged a hold-off ago
    return bb


def origin_of(bb, name, h):
    return bb.roles[name].region.published_addr(bb.now, h)


def a_waits_for_b():
    """Two members, the link between them cut: a published home(1), lost on the way, and waits
    for b's acknowledgement. (bb, a, b, a's region)."""
    members, edges = line(2)
    bb = build(members, edges)
    a, b = members
    bb.cut(a, b)
    ra = bb.roles[a].region
    ra.local_up(bb.now, home(1), LIFE_MS)
    bb.run(10)
    return bb, a, b, ra


class ReliableFlooding(unittest.TestCase):
    def test_a_lost_publication_is_retransmitted_and_converges(self):
        members, edges = line(3)
        bb = build(members, edges)
        a, b, c = members
        bb.cut(a, b)
        bb.roles[a].region.local_up(bb.now, home(1), LIFE_MS)
        bb.run(10)  # published at once (leading edge), lost on the cut link
        self.assertEqual(len(bb.pubs_to(a, b)), 2)  # (the first snapshot, then this one)
        self.assertIsNone(origin_of(bb, b, home(1)))
        bb.connect(a, b)
        bb.run(1000)
        for m in (b, c):
            self.assertEqual(origin_of(bb, m, home(1)), ipv4.aton(a), m)
        self.assertGreater(bb.roles[a].region.reliable.retransmitted, 0)
        # acknowledged: nothing is retransmitted any more
        n = len(bb.pubs_to(a, b))
        bb.run(20000)
        self.assertEqual(len(bb.pubs_to(a, b)), n)

    def test_an_acknowledgement_stops_retransmission_and_acks_are_batched(self):
        members, edges = line(3)
        bb = build(members, edges)
        a, b, c = members
        # 40 bindings: a snapshot of two parts, both acknowledged by one frame
        r = bb.roles[a].region
        for i in range(40):
            r.publisher.up(bb.now, home(i), LIFE_MS)
        r.publisher.resync(bb.now)
        acks0 = len(bb.acks())
        bb.run(20000)
        for m in (b, c):
            for i in range(40):
                self.assertEqual(origin_of(bb, m, home(i)), ipv4.aton(a), (m, i))
        sent = {}
        for src, dst, pub in bb.publications():
            k = (src, dst, pub.origin, pub.epoch, pub.seq)
            sent[k] = sent.get(k, 0) + 1
        for k in sent:
            self.assertEqual(sent[k], 1, "sent twice: %r" % (k,))
        self.assertEqual(sum(bb.roles[m].region.reliable.retransmitted for m in members), 0)
        b_to_a = [p for s, d, p in bb.acks()[acks0:] if s == b and d == a]
        self.assertEqual(len(b_to_a), 1)
        self.assertEqual(publication.ack_count(b_to_a[0]), 2)  # both parts in one frame

    def test_a_forged_acknowledgement_does_not_stop_retransmission(self):
        bb, a, b, ra = a_waits_for_b()
        pay = bb.pubs_to(a, b)[-1]
        entry = pay[1] + bytes((0, ra.publisher.epoch & 0xFF)) + bytes((0, pay[2]))
        rej, acked = ra.rejected, ra.reliable.acked
        for key in (b"not the region key 0123456789ab", REGION_KEY):
            ack = publication.encode_ack(ipv4.aton(b), entry, 1, key)
            if key == REGION_KEY:
                ack = ack[:-1] + bytes((ack[-1] ^ 1,))  # a genuine-looking tag, one bit off
            pkt = publication.packet(ipv4.aton(b), ipv4.aton(a), ack)
            bb.roles[a].on_frame(bb.now, actions.IF_BACKBONE, link_mac(b), 0, pkt)
        self.assertEqual(ra.rejected, rej + 2)
        self.assertEqual(ra.reliable.acked, acked)
        bb.connect(a, b)
        bb.run(1000)
        self.assertEqual(origin_of(bb, b, home(1)), ipv4.aton(a))
        self.assertGreater(ra.reliable.retransmitted, 0)
        self.assertGreater(ra.reliable.acked, acked)  # the genuine acknowledgement

    def test_duplicates_are_still_dropped(self):
        members, edges = ring(5)
        bb = build(members, edges)
        d0 = sum(bb.roles[m].region.duplicates for m in members)
        f0 = sum(bb.roles[m].region.forwarded for m in members)
        for i in range(len(members)):
            bb.roles[members[i]].region.local_up(bb.now, home(i), LIFE_MS)
        bb.run(5000)
        # each publication accepted once by every other member; the copies met and dropped
        forwarded = sum(bb.roles[m].region.forwarded for m in members) - f0
        self.assertEqual(forwarded, len(members) * (len(members) - 1))
        self.assertGreater(sum(bb.roles[m].region.duplicates for m in members), d0)
        # a duplicate is acknowledged, or is an implied acknowledgement: nothing retransmitted
        self.assertEqual(sum(bb.roles[m].region.reliable.retransmitted for m in members), 0)
        for m in members:
            for i in range(len(members)):
                if members[i] != m:
                    self.assertEqual(origin_of(bb, m, home(i)), ipv4.aton(members[i]))

    def test_copies_that_cross_are_implied_acknowledgements(self):
        # a full mesh of 4: the origin's three neighbours each take its publication first from
        # the origin (acknowledged: three entries) and flood it to the two others; those copies
        # cross and each is an implied acknowledgement (RFC 2328 section 13, step 7a): no
        # entry for them, nothing retransmitted
        members = ["10.0.0.%d" % (i + 1) for i in range(4)]
        edges = [(members[i], members[j]) for i in range(4) for j in range(i + 1, 4)]
        bb = build(members, edges)
        acks0 = len(bb.acks())
        implied0 = sum(bb.roles[m].region.reliable.implied for m in members)
        bb.roles[members[0]].region.local_up(bb.now, home(1), LIFE_MS)
        bb.run(5000)
        for m in members[1:]:
            self.assertEqual(origin_of(bb, m, home(1)), ipv4.aton(members[0]), m)
        entries = [(s, d) for s, d, p in bb.acks()[acks0:] for _ in range(publication.ack_count(p))]
        self.assertEqual(sorted(entries), sorted((m, members[0]) for m in members[1:]))
        implied = sum(bb.roles[m].region.reliable.implied for m in members) - implied0
        self.assertEqual(implied, 6)  # both ways on each of the three links between neighbours
        self.assertEqual(sum(bb.roles[m].region.reliable.retransmitted for m in members), 0)

    def test_a_look_alike_copy_is_no_implied_acknowledgement(self):
        # a copy "from b" that is not byte for byte what a sent b (its tag one bit off) does not
        # clear a's wait for b: a retransmits until b's own word comes
        bb, a, b, ra = a_waits_for_b()
        sent = [f for t, s, d, f in bb.attempts if s == a and d == b][-1]
        nb = ra.backbone.peer(ipv4.aton(b), 0)
        self.assertTrue(ra.reliable._owed[nb])
        pay = bytearray(sent[publication.PAYLOAD_AT : -publication.HOP_LEN])
        pay[-1] ^= 1
        pkt = copy_packet(b, a, bytes(pay))
        bb.roles[a].on_frame(bb.now, actions.IF_BACKBONE, link_mac(b), 0, pkt)
        self.assertTrue(ra.reliable._owed[nb])
        self.assertEqual(ra.reliable.implied, 0)
        bb.connect(a, b)
        bb.run(1000)
        self.assertEqual(origin_of(bb, b, home(1)), ipv4.aton(a))
        self.assertGreater(ra.reliable.retransmitted, 0)
        self.assertFalse(ra.reliable._owed[nb])

    def test_a_member_that_is_off_is_retried_with_back_off_and_bounded(self):
        members, edges = line(2)
        bb = build(members, edges)
        a, b = members
        bb.cut(a, b)  # b is off
        ra = bb.roles[a].region
        seq = ra.publisher.seq
        ra.local_up(bb.now, home(1), LIFE_MS)
        bb.run(50000)
        times = [t for t, _o, s in bb.pubs_to(a, b) if s == seq]
        gaps = [times[i + 1] - times[i] for i in range(len(times) - 1)]
        # the send and 6 rounds, each a back-off later (250 ms doubled up to 8 s), then given up
        self.assertEqual(gaps, [250, 500, 1000, 2000, 4000, 8000])
        self.assertEqual(ra.reliable.given_up, 1)
        self.assertEqual(bb.event_count("region_gave_up", a), 1)
        # given up: a new publication is sent once, not waited for; the pool stays bounded
        for i in range(2, 30):
            ra.local_up(bb.now, home(i), LIFE_MS)
            bb.run(HOLD_OFF_MS + 10)
        bb.run(60000)
        self.assertEqual(ra.reliable.retransmitted, 6)
        self.assertEqual(ra.reliable._owed[ra.backbone.peer(ipv4.aton(b), 0)], 0)
        # heard again (b back, publishing): waited for again
        bb.connect(a, b)
        bb.roles[b].region.local_up(bb.now, home(40), LIFE_MS)
        bb.run(100)
        ra.local_up(bb.now, home(41), LIFE_MS)
        bb.run(1000)
        self.assertEqual(origin_of(bb, b, home(41)), ipv4.aton(a))

    def test_the_pool_is_bounded(self):
        # a neighbour that never acknowledges: at most the pool's slots wait for it, the
        # oldest given up first; each publication of one origin supersedes the one before
        members, edges = line(3)
        bb = build(members, edges)
        a, b, c = members
        bb.cut(b, c)
        rb = bb.roles[b].region
        for i in range(12):
            bb.roles[a].region.local_up(bb.now, home(i), LIFE_MS)
            bb.run(HOLD_OFF_MS + 10)
        owed = rb.reliable._owed[rb.backbone.peer(ipv4.aton(c), 0)]
        n = 0
        while owed:
            n += owed & 1
            owed >>= 1
        self.assertEqual(n, 1)  # only a's newest: the older ones were superseded
        self.assertGreater(rb.reliable.superseded, 0)


if __name__ == "__main__":
    unittest.main()

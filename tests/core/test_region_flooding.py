"""Region publication by flooding over line, ring, grid and two joined regions.

The members are routers (region members without a cell); each test plays the agents' part by
calling ``region.local_up`` / ``local_down`` as an agent does when a local binding is made or
ends. test_region_agents.py runs the same protocol through real agents and mobile nodes.
"""

import unittest

from backbone import Backbone, Rand, grid, line, link_mac, node_config, region_config, ring

from mobility import actions, ipv4, publication
from mobility.router import Router

LIFE_MS = 120000


def home(i):
    return ipv4.aton("10.9.%d.%d" % (i // 200, i % 200 + 1))


def build(members, edges, now=0, hosts=None, **options):
    bb = Backbone(now)
    for i in range(len(members)):
        m = members[i]
        cfg = node_config(i + 1, m, region=region_config(members, edges, m, hosts, **options))
        bb.add(m, Router(cfg, Rand(i + 1), now))
    for a, b in edges:
        bb.connect(a, b)
    return bb


def learned(bb, name, now):
    """{home: origin address} as member ``name`` sees the region's bindings."""
    return bb.roles[name].region.bindings(now)


class FloodingTopologies(unittest.TestCase):
    def flood(self, members, edges):
        bb = build(members, edges)
        expected = {}
        # every member is an agent with two local bindings of its own
        for i in range(len(members)):
            r = bb.roles[members[i]].region
            for j in (2 * i, 2 * i + 1):
                r.local_up(bb.now, home(j), LIFE_MS)
                expected[home(j)] = ipv4.aton(members[i])
        bb.run(5000)
        for m in members:
            own = ipv4.aton(m)
            want = {}
            for h in expected:
                if expected[h] != own:
                    want[h] = expected[h]
            self.assertEqual(learned(bb, m, bb.now), want, "member %s" % m)
        # each member transmits a given publication at most once per neighbour link, and
        # never back to the neighbour it came from
        sent = {}
        for src, dst, pub in bb.publications():
            k = (src, dst, pub.origin, pub.epoch, pub.seq)
            sent[k] = sent.get(k, 0) + 1
        for k in sent:
            self.assertEqual(sent[k], 1, "sent twice: %r" % (k,))
        # ... and never back to the neighbour its first copy came from
        first_from = {}
        for src, dst, pub in bb.publications():
            first_from.setdefault((dst, pub.origin, pub.epoch, pub.seq), src)
        for src, dst, pub in bb.publications():
            self.assertNotEqual(first_from.get((src, pub.origin, pub.epoch, pub.seq)), dst)
        n_pubs = len(set([(p.origin, p.epoch, p.seq) for _, _, p in bb.publications()]))
        self.assertEqual(n_pubs, len(members))  # one snapshot per origin (bindings batched)
        return bb, n_pubs

    def test_line(self):
        bb, n = self.flood(*line(5))
        # on a tree nothing comes twice: every copy is new to its receiver
        self.assertEqual(sum(bb.roles[m].region.duplicates for m in bb.names), 0)
        self.assertEqual(len(bb.publications()), n * (5 - 1))  # each crosses each link once

    def test_ring(self):
        bb, n = self.flood(*ring(6))
        # a ring has one cycle: the two copies of each publication meet and are dropped
        self.assertGreater(sum(bb.roles[m].region.duplicates for m in bb.names), 0)

    def test_grid(self):
        members, edges = grid(3, 3)
        bb, n = self.flood(members, edges)
        total = sum(bb.roles[m].region.forwarded for m in bb.names)
        # each publication is accepted exactly once by every other member
        self.assertEqual(total, n * (len(members) - 1))
        self.assertGreater(sum(bb.roles[m].region.duplicates for m in bb.names), 0)

    def test_next_hop_is_learned_along_a_line(self):
        members, edges = line(4)
        bb = build(members, edges)
        bb.roles[members[3]].region.local_up(bb.now, home(1), LIFE_MS)
        bb.run(3000)
        r = bb.roles[members[0]].region
        oi = r.published(bb.now, home(1))
        net = r.backbone
        self.assertEqual(net.address(oi), ipv4.aton(members[3]))
        self.assertEqual(net.addr[net.hop[oi]], ipv4.aton(members[1]))


def pub_frames(bb, a, b, start=0):
    """The publication frames (not acknowledgements) member a sent to member b."""
    return [
        f
        for s_, d, f in bb.frames[start:]
        if s_ == a and d == b and f[publication.PAYLOAD_AT] != publication.MSG_ACK
    ]


def broken_tag(frame):
    """The same publication with the last byte of its tag flipped (UDP checksum redone)."""
    h = ipv4.decode(frame)
    _sp, _dp, payload = ipv4.decode_udp(h)
    p = bytearray(payload)
    p[-1] ^= 1
    return bytearray(publication.packet(h.src, h.dst, bytes(p)))


class DuplicatesBeforeVerification(unittest.TestCase):
    def test_a_copy_of_a_taken_publication_costs_no_hmac(self):
        # most copies of a flood are duplicates: recognised by (origin, epoch, seq) before the
        # tag is checked (a duplicate with a broken tag is a duplicate, not a rejection), while
        # a new publication with a broken tag is still rejected and changes nothing
        members, edges = line(3)
        bb = build(members, edges)
        bb.roles[members[0]].region.local_up(bb.now, home(0), LIFE_MS)
        bb.run(3000)
        mid = bb.roles[members[1]]
        frames = pub_frames(bb, members[0], members[1])
        self.assertTrue(frames)
        bad = broken_tag(frames[-1])
        dup0, rej0 = mid.region.duplicates, mid.region.rejected
        mac0 = link_mac(members[0])
        mid.on_frame(bb.now, actions.IF_BACKBONE, mac0, 0, bad)
        self.assertEqual((mid.region.duplicates, mid.region.rejected), (dup0 + 1, rej0))
        # a new one (the next sequence number) with a broken tag: rejected, not taken
        bb.roles[members[0]].region.local_up(bb.now + 5000, home(1), LIFE_MS)
        sent = len(bb.frames)
        bb.roles[members[0]].on_timer(bb.now + 5000)
        bb.collect()
        new = pub_frames(bb, members[0], members[1], sent)
        self.assertTrue(new)
        bad = broken_tag(new[0])
        before = learned(bb, members[1], bb.now)
        mid.on_frame(bb.now + 5000, actions.IF_BACKBONE, mac0, 0, bad)
        self.assertEqual(mid.region.rejected, rej0 + 1)
        self.assertEqual(learned(bb, members[1], bb.now), before)

    def test_a_copy_is_recognised_before_decoding(self):
        # Region.stale_copy reads origin, epoch and sequence from the raw packet: a copy of a
        # taken publication is dropped without checksums or decoding (damaged or not: dropped
        # either way); anything else is left to the full path
        members, edges = line(3)
        bb = build(members, edges)
        bb.roles[members[0]].region.local_up(bb.now, home(0), LIFE_MS)
        bb.run(3000)
        mid = bb.roles[members[1]]
        reg = mid.region
        frame = pub_frames(bb, members[0], members[1])[-1]
        dup0 = reg.duplicates
        via = (actions.IF_BACKBONE, link_mac(members[0]))
        self.assertTrue(reg.stale_copy(bb.now, frame, *via))
        damaged = bytearray(frame)
        damaged[26] ^= 0xFF  # the UDP checksum
        mid.on_frame(bb.now, actions.IF_BACKBONE, link_mac(members[0]), 0, damaged)
        self.assertEqual(reg.duplicates, dup0 + 2)
        for off in (0, 9, 15, 19, 23, 28, 31):
            # not IPv4 of 20 bytes, not UDP, not from a neighbour, not for this member, not
            # port 4344, not a publication, another origin: the full path decides
            other = bytearray(frame)
            other[off] ^= 0x01
            self.assertFalse(reg.stale_copy(bb.now, other, *via), off)
        self.assertFalse(reg.stale_copy(bb.now, frame[:30], *via))
        self.assertEqual(reg.duplicates, dup0 + 2)
        # the next publication of that origin is new: not a copy, and taken by the full path
        bb.roles[members[0]].region.local_up(bb.now + 5000, home(1), LIFE_MS)
        sent = len(bb.frames)
        bb.roles[members[0]].on_timer(bb.now + 5000)
        bb.collect()
        new = pub_frames(bb, members[0], members[1], sent)
        self.assertTrue(new)
        self.assertFalse(reg.stale_copy(bb.now + 5000, new[0], *via))
        mid.on_frame(bb.now + 5000, actions.IF_BACKBONE, link_mac(members[0]), 0, new[0])
        self.assertIn(home(1), learned(bb, members[1], bb.now + 5000))
        self.assertTrue(reg.stale_copy(bb.now + 5000, new[0], *via))


class TwoRegions(unittest.TestCase):
    def test_regions_joined_by_one_link_stay_apart(self):
        a_members, a_edges = ring(3, "10.1.0.")
        b_members, b_edges = line(3, "10.2.0.")
        bb = Backbone()
        # region A believes 10.2.0.1 is one of its members (a misconfigured border); region B
        # does not: B's member ignores A's publications and logs it, and nothing leaks into B
        a_cfg_members = a_members + ["10.2.0.1"]
        a_cfg_edges = a_edges + [("10.1.0.3", "10.2.0.1")]
        for i in range(3):
            m = a_members[i]
            cfg = node_config(i + 1, m, region=region_config(a_cfg_members, a_cfg_edges, m))
            bb.add(m, Router(cfg, Rand(i + 1), 0))
        for i in range(3):
            m = b_members[i]
            cfg = node_config(10 + i, m, region=region_config(b_members, b_edges, m))
            bb.add(m, Router(cfg, Rand(10 + i), 0))
        for a, b in a_edges + b_edges + [("10.1.0.3", "10.2.0.1")]:
            bb.connect(a, b)
        bb.roles["10.1.0.1"].region.local_up(0, home(1), LIFE_MS)
        bb.roles["10.2.0.3"].region.local_up(0, home(2), LIFE_MS)
        bb.run(5000)
        for m in a_members[1:]:
            self.assertEqual(learned(bb, m, bb.now), {home(1): ipv4.aton("10.1.0.1")})
        for m in b_members[:2]:
            self.assertEqual(learned(bb, m, bb.now), {home(2): ipv4.aton("10.2.0.3")})
        self.assertGreater(bb.event_count("region_ignored", "10.2.0.1"), 0)
        # nothing of A's was forwarded inside B
        for src, _dst, pub in bb.publications():
            if src.startswith("10.2."):
                self.assertTrue(pub.origin.startswith(b"\x0a\x02"), pub)


class Batching(unittest.TestCase):
    def test_burst_of_moves_gives_few_publications(self):
        members, edges = ring(4)
        bb = build(members, edges, hold_off_ms=2000)
        bb.run(3000)  # the boot snapshots
        before = sum(bb.roles[m].region.publisher.originated for m in members)
        n_moves = 60
        # 20 mobile nodes each make 3 moves around the ring within 3 seconds
        at = {}
        for j in range(20):
            at[j] = j % 4
            bb.roles[members[at[j]]].region.local_up(bb.now, home(j), LIFE_MS)
        bb.run(3000)
        before = sum(bb.roles[m].region.publisher.originated for m in members)
        for step in range(n_moves):
            j = step % 20
            old = members[at[j]]
            at[j] = (at[j] + 1) % 4
            new = members[at[j]]
            bb.roles[new].region.local_up(bb.now, home(j), LIFE_MS)
            bb.roles[old].region.local_down(bb.now, home(j))
            bb.run(50)
        bb.run(5000)
        sent = sum(bb.roles[m].region.publisher.originated for m in members) - before
        changes = 2 * n_moves  # without batching: one publication per local change
        ratio = changes / sent
        print(
            "batching with back-off: %d local changes in 3 s -> %d publications (ratio %.1f)"
            % (changes, sent, ratio)
        )
        # each agent: the leading-edge publication, then one per gap of the back-off (the
        # shortest gap, just above dup_hold_ms, doubled each time up to the hold-off) until
        # the burst is over, and the one that carries its last changes
        gap = bb.roles[members[0]].region.publisher.min_gap
        t, per_member = 0, 1
        while t < n_moves * 50:
            t += gap
            gap = min(2 * gap, 2000)
            per_member += 1
        self.assertLessEqual(sent, len(members) * per_member)
        self.assertGreaterEqual(ratio, 6)
        # and the region agrees on where every node is now
        for m in members:
            got = learned(bb, m, bb.now)
            for j in range(20):
                if members[at[j]] != m:
                    self.assertEqual(got.get(home(j)), ipv4.aton(members[at[j]]))
                else:
                    self.assertNotIn(home(j), got)


if __name__ == "__main__":
    unittest.main()

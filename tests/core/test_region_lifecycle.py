"""Region publication over time: withdrawal, origin restart, snapshot repair, partitions, serial
wrap-around, forged and replayed publications, and tunnelling across a multi-hop backbone."""

import unittest

from backbone import (
    REGION_KEY,
    Rand,
    copy_packet,
    line,
    link_mac,
    node_config,
    region_config,
    ring,
)
from test_region_flooding import LIFE_MS, build, home, learned

from mobility import actions, auth, ipv4, publication, tunnel
from mobility.router import Router


def restart(bb, members, edges, name, epoch, i):
    cfg = node_config(i + 1, name, region=region_config(members, edges, name), epoch=epoch)
    role = Router(cfg, Rand(100 + epoch), bb.now)
    bb.replace(name, role)
    return role


class Withdrawal(unittest.TestCase):
    def test_withdrawal_reaches_every_member(self):
        members, edges = ring(5)
        bb = build(members, edges)
        a = bb.roles[members[0]].region
        a.local_up(0, home(1), LIFE_MS)
        a.local_up(0, home(2), LIFE_MS)
        bb.run(3000)
        a.local_down(bb.now, home(1))
        bb.run(3000)
        for m in members[1:]:
            self.assertEqual(learned(bb, m, bb.now), {home(2): ipv4.aton(members[0])})

    def test_old_agents_withdrawal_leaves_the_new_binding(self):
        members, edges = line(3)
        bb = build(members, edges)
        a, c = bb.roles[members[0]].region, bb.roles[members[2]].region
        a.local_up(0, home(1), LIFE_MS)
        bb.run(3000)
        # the node moves a -> c: c's binding arrives first, a's withdrawal second
        c.local_up(bb.now, home(1), LIFE_MS)
        bb.run(2500)
        a.local_down(bb.now, home(1))
        bb.run(3000)
        self.assertEqual(learned(bb, members[1], bb.now), {home(1): ipv4.aton(members[2])})

    def test_a_node_back_where_its_binding_still_runs_is_published_again(self):
        """The node left a (losing it, no deregistration: a keeps its binding), bound at c,
        then came back to a: a's registration there is a refresh of a binding it still holds,
        but the others hold the node at c, so a publishes it (held as a refresh, it waited for
        a's next snapshot while c, which no longer has the node, got its traffic)."""
        members, edges = line(3)
        bb = build(members, edges)
        a, c = bb.roles[members[0]].region, bb.roles[members[2]].region
        a.local_up(0, home(1), LIFE_MS)
        bb.run(3000)
        c.local_up(bb.now, home(1), LIFE_MS)
        bb.run(3000)
        self.assertEqual(learned(bb, members[1], bb.now), {home(1): ipv4.aton(members[2])})
        # the node registers at a again, its deregistration to c names a: c keeps a pointer to
        # a and its withdrawal rides on its next snapshot (20 s away), the others still hold c
        c.local_moved(bb.now, home(1), ipv4.aton(members[0]))
        a.local_up(bb.now, home(1), LIFE_MS)  # at a: a refresh of the binding a still has
        bb.run(2500)
        self.assertEqual(learned(bb, members[1], bb.now), {home(1): ipv4.aton(members[0])})

    def test_published_binding_expires_without_refresh(self):
        members, edges = line(2)
        bb = build(members, edges, republish_ms=600000)
        bb.roles[members[0]].region.local_up(0, home(1), 10000)
        bb.run(3000)
        self.assertEqual(len(learned(bb, members[1], bb.now)), 1)
        bb.cut(members[0], members[1])  # no withdrawal can arrive
        bb.run(12000)
        self.assertEqual(learned(bb, members[1], bb.now), {})
        self.assertEqual(len(bb.roles[members[1]].region.table), 0)  # swept, memory freed

    def test_snapshot_removes_what_a_lost_withdrawal_left(self):
        members, edges = line(2)
        bb = build(members, edges, republish_ms=10000)
        a = bb.roles[members[0]].region
        for j in range(40):  # 40 bindings: a snapshot of two parts
            a.local_up(0, home(j), LIFE_MS)
        bb.run(3000)
        self.assertEqual(len(learned(bb, members[1], bb.now)), 40)
        bb.cut(members[0], members[1])
        a.local_down(bb.now, home(7))
        bb.run(3000)  # the withdrawal is lost
        self.assertEqual(len(learned(bb, members[1], bb.now)), 40)
        bb.connect(members[0], members[1])
        bb.run(10000)  # the next snapshot (two parts) repairs it, keeping the 39 others
        got = learned(bb, members[1], bb.now)
        self.assertEqual(len(got), 39)
        self.assertNotIn(home(7), got)
        parts = [p for _, _, p in bb.publications() if p.full and len(p.bindings) > 0]
        self.assertTrue(any(p.part == 1 and p.last for p in parts))


class Restart(unittest.TestCase):
    def test_restarted_origin_replaces_its_set(self):
        members, edges = ring(4)
        bb = build(members, edges)
        a = bb.roles[members[0]].region
        for j in (1, 2, 3):
            a.local_up(0, home(j), LIFE_MS)
        bb.roles[members[2]].region.local_up(0, home(9), LIFE_MS)
        bb.run(3000)
        a.local_down(bb.now, home(3))  # withdrawn before the restart
        bb.run(3000)
        # a restarts (new epoch, sequence reset); of its nodes only home(2) binds again
        role = restart(bb, members, edges, members[0], 1, 0)
        role.region.local_up(bb.now, home(2), LIFE_MS)
        bb.run(3000)
        for m in members[1:]:
            got = learned(bb, m, bb.now)
            self.assertEqual(got.get(home(2)), ipv4.aton(members[0]), m)
            self.assertNotIn(home(1), got)  # lost with a's restart
            self.assertNotIn(home(3), got)  # withdrawn: never resurrected
            if m != members[2]:
                self.assertEqual(got.get(home(9)), ipv4.aton(members[2]))  # still valid, kept
        self.assertGreater(bb.event_count("origin_restart"), 0)

    def test_a_restarted_member_learns_the_others_within_a_hold_off(self):
        # c restarts after a published: c's memory is empty, and a's next snapshot is a whole
        # period away; the others answer c's first publication with their own snapshot (in
        # the OTA bench, a router that came back after an agent sent the agent's node to the
        # home agent for 20 s)
        members, edges = line(3)
        bb = build(members, edges, republish_ms=600000)
        bb.roles[members[0]].region.local_up(0, home(1), 900000)
        bb.run(3000)
        self.assertEqual(learned(bb, members[2], bb.now), {home(1): ipv4.aton(members[0])})
        restart(bb, members, edges, members[2], 1, 2)
        self.assertEqual(learned(bb, members[2], bb.now), {})
        bb.run(3000)
        self.assertEqual(learned(bb, members[2], bb.now), {home(1): ipv4.aton(members[0])})
        # and a member that boots late (nothing heard from it before) the same way
        members, edges = line(4)
        bb = build(members, edges, republish_ms=600000)
        bb.cut(members[2], members[3])  # off until it boots
        bb.roles[members[0]].region.local_up(0, home(2), 900000)
        bb.run(3000)
        restart(bb, members, edges, members[3], 0, 3)
        bb.connect(members[2], members[3])
        bb.run(3000)
        self.assertEqual(learned(bb, members[3], bb.now), {home(2): ipv4.aton(members[0])})

    def test_epoch_and_sequence_wrap_around(self):
        members, edges = line(2)
        bb = build(members, edges)
        a = bb.roles[members[0]].region
        a.publisher.epoch = 0xFFFF
        a.publisher.seq = 0xFFFE
        a.local_up(0, home(1), LIFE_MS)
        bb.run(3000)
        for j in range(2, 6):  # sequence numbers run through 0xFFFF -> 0 -> 1 ...
            a.local_up(bb.now, home(j), LIFE_MS)
            bb.run(2500)
        self.assertEqual(len(learned(bb, members[1], bb.now)), 5)
        self.assertLess(a.publisher.seq, 10)
        role = restart(bb, members, edges, members[0], 0, 0)  # epoch 0xFFFF -> 0 is newer
        role.region.local_up(bb.now, home(8), LIFE_MS)
        bb.run(3000)
        self.assertEqual(learned(bb, members[1], bb.now), {home(8): ipv4.aton(members[0])})


class ClockWrap(unittest.TestCase):
    def test_bindings_and_timers_across_the_ticks_wrap(self):
        members, edges = line(3)
        start = (1 << 30) - 5000  # every clock wraps five seconds in
        bb = build(members, edges, now=start, republish_ms=4000)
        a = bb.roles[members[0]].region
        a.local_up(bb.now, home(1), 30000)
        a.local_up(bb.now, home(2), 12000)
        bb.run(3000)
        self.assertEqual(len(learned(bb, members[2], bb.now)), 2)
        bb.run(6000)  # across the wrap: both still held, snapshots still flowing
        self.assertLess(bb.now, 10000)
        self.assertEqual(len(learned(bb, members[2], bb.now)), 2)
        a.local_down(bb.now, home(2))
        bb.run(3000)
        self.assertEqual(learned(bb, members[2], bb.now), {home(1): ipv4.aton(members[0])})
        bb.cut(members[0], members[1])  # no more refreshes: home(1) runs out after the wrap
        bb.run(30000)
        self.assertEqual(learned(bb, members[2], bb.now), {})


class Partition(unittest.TestCase):
    def test_each_part_keeps_working_and_heals(self):
        members, edges = line(4)
        bb = build(members, edges, republish_ms=5000)
        bb.cut(members[1], members[2])
        bb.roles[members[0]].region.local_up(0, home(1), LIFE_MS)
        bb.roles[members[3]].region.local_up(0, home(2), LIFE_MS)
        bb.run(3000)
        self.assertEqual(learned(bb, members[1], bb.now), {home(1): ipv4.aton(members[0])})
        self.assertEqual(learned(bb, members[2], bb.now), {home(2): ipv4.aton(members[3])})
        bb.connect(members[1], members[2])
        bb.run(6000)  # the periodic snapshots cross the healed link
        both = {home(1): ipv4.aton(members[0]), home(2): ipv4.aton(members[3])}
        self.assertEqual(learned(bb, members[1], bb.now), both)
        self.assertEqual(learned(bb, members[2], bb.now), both)
        self.assertEqual(learned(bb, members[0], bb.now), {home(2): ipv4.aton(members[3])})


class ForgedAndReplayed(unittest.TestCase):
    def setUp(self):
        self.members, self.edges = line(3)
        self.bb = build(self.members, self.edges)
        self.a = self.bb.roles[self.members[0]].region
        self.a.local_up(0, home(1), LIFE_MS)
        self.bb.run(3000)
        self.b = self.bb.roles[self.members[1]]

    def inject(self, payload, src=None):
        src = self.members[0] if src is None else src
        pkt = copy_packet(src, self.b.address, payload)  # (a true hop tag: the origin's is tested)
        before = bytes(self.b.region.table.buf), len(self.bb.frames)
        self.b.on_frame(self.bb.now, actions.IF_BACKBONE, link_mac(src), 0, pkt)
        self.bb.settle()
        after = bytes(self.b.region.table.buf), len(self.bb.frames)
        self.assertEqual(before, after)  # no state change, nothing forwarded

    def pub(self, seq, epoch=0):
        return publication.Publication(
            ipv4.aton(self.members[0]), epoch, seq, False, [(home(5), 100)], [home(1)]
        )

    def test_wrong_key(self):
        self.inject(publication.encode_payload(self.pub(50), b"not the region key at all"))

    def test_no_authentication(self):
        self.inject(publication.encode_payload(self.pub(50), None))

    def test_wrong_spi(self):
        p = self.pub(50)
        p.spi = auth.SPI_CELL
        self.inject(publication.encode_payload(p, REGION_KEY))

    def test_replayed_publication(self):
        frames = [f for s, d, f in self.bb.frames if s == self.members[0]]
        self.assertTrue(frames)
        h = ipv4.decode(frames[0])
        self.inject(ipv4.decode_udp(h)[2])

    def test_replay_of_an_older_epoch(self):
        self.inject(publication.encode_payload(self.pub(60, epoch=0xFFF0), REGION_KEY))

    def test_from_a_non_neighbour(self):
        p = publication.encode_payload(self.pub(70), REGION_KEY)
        self.inject(p, src="10.0.0.99")

    def test_genuine_new_one_is_accepted(self):
        # the control: the same construction, correctly signed and new, does change state
        pkt = copy_packet(
            self.members[0], self.b.address, publication.encode_payload(self.pub(80), REGION_KEY)
        )
        self.b.on_frame(self.bb.now, actions.IF_BACKBONE, link_mac(self.members[0]), 0, pkt)
        self.assertEqual(
            self.b.region.published_addr(self.bb.now, home(5)), ipv4.aton(self.members[0])
        )
        self.assertIsNone(self.b.region.published_addr(self.bb.now, home(1)))


class Tunnelling(unittest.TestCase):
    def test_tunnel_crosses_the_backbone_by_the_learned_route(self):
        members, edges = line(4)
        bb = build(members, edges)
        bb.roles[members[3]].region.local_up(0, home(1), LIFE_MS)
        bb.run(3000)
        bb.frames = []
        first = bb.roles[members[0]]
        dgram = ipv4.udp(ipv4.aton("10.5.0.1"), home(1), ipv4.APP_PORT, ipv4.APP_PORT, b"hello")
        first.on_frame(bb.now, actions.IF_BACKBONE, link_mac("10.5.0.1"), 0, dgram)
        bb.settle()
        hops = [(s, d) for s, d, f in bb.frames]
        self.assertEqual(
            hops, [(members[0], members[1]), (members[1], members[2]), (members[2], members[3])]
        )
        last = bb.frames[-1][2]
        h = ipv4.decode(last)
        self.assertEqual(h.proto, ipv4.PROTO_IPIP)
        self.assertEqual(h.ttl, 62)  # two backbone hops after the entry
        inner = bb.roles[members[3]].region.on_tunnel(
            bb.now, last, h, actions.IF_BACKBONE, link_mac(members[2])
        )
        self.assertEqual(ipv4.decode(inner).payload[8:], b"hello")
        self.assertEqual(ipv4.decode(inner).ttl, 63)  # the entry decremented it once

    def test_publications_are_never_tunnelled(self):
        members, edges = line(2)
        bb = build(members, edges)
        bb.roles[members[1]].region.local_up(0, home(1), LIFE_MS)
        bb.run(3000)
        r = bb.roles[members[0]].region
        pub = publication.packet(
            ipv4.aton(members[0]),
            home(1),
            publication.encode_payload(self_pub(members), REGION_KEY),
        )
        self.assertFalse(r.tunnel(bb.now, pub, r.published(bb.now, home(1))))
        # nor accepted out of a tunnel
        outer = tunnel.encapsulate(ipv4.aton(members[1]), ipv4.aton(members[0]), pub)
        self.assertIsNone(
            r.on_tunnel(
                bb.now, outer, ipv4.decode(outer), actions.IF_BACKBONE, link_mac(members[1])
            )
        )
        bb.collect()
        self.assertEqual(bb.event_count("drop"), 2)

    def poisoned(self, hops):
        """A ring of 3 whose routes toward a member outside it, 10.0.0.77, are poisoned as
        ``hops`` {member index: neighbour index}; returns the backbone."""
        members, edges = ring(3)
        bb = build(members, edges)
        bb.roles[members[2]].region.local_up(0, home(1), LIFE_MS)
        bb.run(3000)
        far = ipv4.aton("10.0.0.77")
        for i in hops:
            b = bb.roles[members[i]].region.backbone
            b._members += far
            b._member[ipv4.addr_key(far, 0)] = b.n_members
            b.n_members += 1
            b.hop.append(b.peer(ipv4.aton(members[hops[i]]), 0))
        inner = ipv4.udp(ipv4.aton("10.5.0.1"), home(1), ipv4.APP_PORT, ipv4.APP_PORT, b"x")
        # a tunnel from member 2 (a neighbour of 0) toward the far member enters at 0
        outer = tunnel.encapsulate(ipv4.aton(members[2]), far, inner)
        bb.frames = []
        bb.events = []
        bb.roles[members[0]].on_frame(bb.now, actions.IF_BACKBONE, link_mac(members[2]), 0, outer)
        bb.settle()
        return bb

    def drops(self, bb, reason):
        return [f for n, e, f in bb.events if e == "drop" and f.get("reason") == reason]

    def test_a_routing_loop_is_caught_by_ttl_and_logged(self):
        bb = self.poisoned({0: 1, 1: 2, 2: 0})  # 0 -> 1 -> 2 -> 0 -> ...
        self.assertLess(len(bb.frames), 200)
        self.assertEqual(len(self.drops(bb, "ttl")), 1)

    def test_a_tunnel_is_never_sent_back_over_the_link_it_came_by(self):
        # two members that point at each other (0 -> 1 -> 0) would bounce it 64 times
        bb = self.poisoned({0: 1, 1: 0})
        self.assertEqual(len(bb.frames), 1)
        self.assertEqual(len(self.drops(bb, "loop")), 1)


def self_pub(members):
    return publication.Publication(ipv4.aton(members[0]), 0, 1, False, [], [])


if __name__ == "__main__":
    unittest.main()

"""Attacks on the region, the backbone and proxy bindings (issue 15, the region side): each
test plays one attack from a small program, as an outsider on the access point or a region
member insider would, and shows that the victim keeps its binding and its traffic, that the
attacker's frames change no routing state, and that every table an outsider can grow stays
within its cap. docs/CORE.md "Threat model: the region side" lists them."""

import unittest

from backbone import (
    REGION_KEY,
    Backbone,
    Rand,
    keys_for,
    line,
    link_mac,
    node_config,
    peer,
    region_config,
)

from mobility import actions, auth, ipv4, publication, registration, tunnel
from mobility.host import Host
from mobility.router import Router

LIFE_MS = 120000
REPUBLISH_MS = 10000
HOLD_OFF_MS = 500


def home(i):
    return ipv4.aton("10.9.0.%d" % i)


def build(members, edges, hosts=None, extra=None, **options):
    """Routers joined by backbone links (the agents' part is played by ``local_up``)."""
    bb = Backbone(0)
    for i in range(len(members)):
        m = members[i]
        opts = {"republish_ms": REPUBLISH_MS, "hold_off_ms": HOLD_OFF_MS}
        for k in options:
            opts[k] = options[k]
        cfg = node_config(i + 1, m, region=region_config(members, edges, m, hosts, **opts))
        if extra and m in extra:
            for k in extra[m]:
                cfg[k] = extra[m][k]
        bb.add(m, Router(cfg, Rand(i + 1), 0))
    for a, b in edges:
        bb.connect(a, b)
    return bb


def origin_of(bb, name, h):
    return bb.roles[name].region.published_addr(bb.now, h)


def tunnels_to(bb, dst, tag):
    """Backbone frames that reached ``dst`` as a tunnel carrying ``tag``."""
    n = 0
    for _s, d, f in bb.frames:
        if d == dst and f[ipv4.PROTO_AT] == ipv4.PROTO_IPIP and tag in f:
            n += 1
    return n


class ForgedEpochOrSequenceJump(unittest.TestCase):
    """Finding 2: a region-key holder sends a publication "from origin O" far ahead of O's
    epoch or sequence. Before: every member dropped O's bindings and refused O's genuine
    publications until it rebooted."""

    def setUp(self):
        self.members, self.edges = line(4)
        self.bb = build(self.members, self.edges)
        self.o = self.bb.roles[self.members[0]].region
        self.o.local_up(0, home(1), LIFE_MS)
        self.bb.run(2000)
        for m in self.members[1:]:
            self.assertEqual(origin_of(self.bb, m, home(1)), ipv4.aton(self.members[0]))

    def forge(self, epoch, seq, bindings=(), full=True):
        """The insider (the last member) sends the forged publication to its neighbour."""
        pub = publication.Publication(
            ipv4.aton(self.members[0]), epoch & 0xFFFF, seq & 0xFFFF, full, list(bindings), []
        )
        payload = publication.encode_payload(pub, REGION_KEY)
        insider, victim = self.members[3], self.members[2]
        pkt = publication.packet(ipv4.aton(insider), ipv4.aton(victim), payload)
        self.bb.roles[victim].on_frame(self.bb.now, actions.IF_BACKBONE, link_mac(insider), 0, pkt)
        self.bb.settle()

    def traffic(self, ms, tag):
        """A datagram every 100 ms for home(1) enters at the far end; returns how many reached
        the origin (tunnelled to it)."""
        first = self.bb.roles[self.members[3]]
        n = ms // 100
        for i in range(n):
            d = ipv4.udp(ipv4.aton("10.5.0.1"), home(1), 5000, 5000, tag + b"%05d" % i)
            first.on_frame(self.bb.now, actions.IF_BACKBONE, link_mac("10.5.0.1"), 0, d)
            self.bb.run(100)
        return n

    def genuine_change_arrives(self, i):
        self.o.local_up(self.bb.now, home(i), LIFE_MS)
        self.bb.run(2 * HOLD_OFF_MS)
        for m in self.members[1:]:
            self.assertEqual(origin_of(self.bb, m, home(i)), ipv4.aton(self.members[0]), m)

    def test_epoch_far_ahead_changes_nothing(self):
        e = self.o.publisher.epoch
        self.forge(e + 0x7FFF, 0)
        self.forge(e + 0x7FFF, 1)  # its "continuation" too
        self.forge(e + EPOCH_FAR, 0)
        for m in self.members[1:]:
            self.assertEqual(origin_of(self.bb, m, home(1)), ipv4.aton(self.members[0]), m)
        self.assertEqual(self.bb.event_count("origin_restart"), 0)
        sent = self.traffic(30000, b"ep")
        got = tunnels_to(self.bb, self.members[0], b"ep")
        self.assertGreaterEqual(got * 100, sent * 99)
        self.genuine_change_arrives(2)

    def test_sequence_far_ahead_changes_nothing(self):
        e, s = self.o.publisher.epoch, self.o.publisher.seq
        self.forge(e, s + 0x7FFF, full=False)
        self.forge(e, s + 0x3000, full=False)
        for m in self.members[1:]:
            self.assertEqual(origin_of(self.bb, m, home(1)), ipv4.aton(self.members[0]), m)
        sent = self.traffic(20000, b"sq")
        self.assertGreaterEqual(tunnels_to(self.bb, self.members[0], b"sq") * 100, sent * 99)
        self.genuine_change_arrives(3)

    def test_a_small_forged_jump_heals_at_the_origins_next_publication(self):
        # within the bounds a forged restart (an empty snapshot of a newer epoch) is taken,
        # as a genuine one would be: O's bindings go. The origin's own next publication, on
        # the line the jump left, gives the jump up: no reboot, within one snapshot period
        e, s = self.o.publisher.epoch, self.o.publisher.seq
        for forged in ((e + 1, 0), (e, s + 40)):
            self.forge(forged[0], forged[1])
            self.assertIsNone(origin_of(self.bb, self.members[1], home(1)))
            self.bb.run(REPUBLISH_MS + HOLD_OFF_MS)
            for m in self.members[1:]:
                self.assertEqual(origin_of(self.bb, m, home(1)), ipv4.aton(self.members[0]), m)
            self.assertGreater(self.bb.event_count("origin_revert"), 0)
            self.genuine_change_arrives(4)
            e, s = self.o.publisher.epoch, self.o.publisher.seq

    def test_a_genuine_restart_and_a_partition_are_still_taken(self):
        # the bounds do not lock out the owner itself: a reboot (epoch + 1) is a restart, and
        # after a snapshot period of silence (a partition) any sequence is taken again
        o = self.o
        o.publisher.seq = (o.publisher.seq + 5000) & 0xFFFF  # far ahead: many frames lost
        self.bb.cut(self.members[0], self.members[1])
        self.bb.run(REPUBLISH_MS + 2 * HOLD_OFF_MS)
        self.bb.connect(self.members[0], self.members[1])
        self.genuine_change_arrives(5)
        o.publisher.epoch = (o.publisher.epoch + 1) & 0xFFFF
        o.publisher.seq = 0
        self.genuine_change_arrives(6)


EPOCH_FAR = 17  # one beyond published.EPOCH_JUMP


if __name__ == "__main__":
    unittest.main()

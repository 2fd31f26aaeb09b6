"""Delivery across agents without a common region (issue 16 part 4, docs/CORE.md "Relay to the
agents near"): a node bound to one agent reaches a node bound to another agent in radio range,
and a node in host-to-host mode reaches a bound node in its radio range."""

import unittest

from medium import CELL_KEY, Medium, addr, config, make_rand

from mobility import advert, ipv4
from mobility.agent import Agent
from mobility.mobile import MobileNode


def two_agents(third=False):
    """A1 and A2 hear each other; M1 is A1's (hears A2 faintly), M2 is A2's; M1 and M2 do not
    hear each other. With ``third``: A3 hears both agents and has no visitor."""
    m = Medium()
    m.add("A1", Agent(config(1), make_rand(1), m.now))
    m.add("A2", Agent(config(2), make_rand(2), m.now))
    m.add("M1", MobileNode(config(11), make_rand(11), m.now))
    m.add("M2", MobileNode(config(12), make_rand(12), m.now))
    m.hear("A1", "A2", -70)
    m.hear("A1", "M1", -50)
    m.hear("A2", "M1", -80)
    m.hear("A2", "M2", -50)
    m.hear("A1", "M2", -80)
    if third:
        m.add("A3", Agent(config(3), make_rand(3), m.now))
        m.hear("A3", "A1", -70)
        m.hear("A3", "A2", -70)
    m.run(4000)
    return m


def served_by(m, node):
    return ipv4.ntoa(m.stations[node].role.serving.addr)


def advertisement(src, seq, lifetime=3, key=CELL_KEY):
    adv = advert.Advertisement(
        src=src,
        adv_lifetime=lifetime,
        seq=seq,
        reg_lifetime=60,
        flags=advert.FLAG_R | advert.FLAG_F,
        services=advert.SVC_ROUTING,
        capacity=20,
    )
    return advert.encode_advertisement(adv, key)


class AcrossAgentsTest(unittest.TestCase):
    def test_nodes_of_two_agents_reach_each_other_without_a_region(self):
        m = two_agents()
        self.assertEqual((served_by(m, "M1"), served_by(m, "M2")), ("10.0.0.1", "10.0.0.2"))
        m.flow("M1", "10.0.0.12", 100, 50, b"a")
        m.flow("M2", "10.0.0.11", 100, 50, b"b")
        m.run(6000)
        # before: 0 of 50 each way, A1 and A2 dropped every one with no_route
        self.assertEqual(m.count("M2", b"a"), 50)
        self.assertEqual(m.count("M1", b"b"), 50)
        self.assertEqual(m.logged("drop"), [])
        # relayed by A1 then forwarded by A2: TTL decremented twice, checksum still right
        pkt = m.stations["M2"].inbox[0]
        self.assertEqual(pkt[8], 62)
        self.assertEqual(ipv4.checksum(pkt, 0, 20), 0)

    def test_a_relayed_datagram_is_never_relayed_again(self):
        m = two_agents(third=True)
        m.capture = []
        m.send("M1", "10.0.0.99", b"nobody")  # bound nowhere
        m.run(50)
        sends = [c for c in m.capture if c[4][ipv4.PROTO_AT] == ipv4.PROTO_UDP]
        # M1 -> A1, A1 -> A2 and A3: three frames, and no copy comes back
        self.assertEqual(sorted(c[1] for c in sends), ["A1", "A1", "M1"])
        drops = m.logged("drop")
        self.assertEqual(sorted(e[1] for e in drops), ["A2", "A3"])
        self.assertEqual({e[3]["reason"] for e in drops}, {"relay_no_route"})

    def test_only_a_visitors_own_datagrams_are_relayed(self):
        m = two_agents()
        m.capture = []
        # a datagram from M1's address but from another MAC (a spoofer), and one from a
        # source that is not A1's visitor: neither is relayed
        pkt = bytearray(ipv4.udp(addr(11), addr(12), 5000, 5000, b"x"))
        m.inject("A1", b"\x02\x00\x00\x00\x0e\x0e", pkt)
        pkt = bytearray(ipv4.udp(addr(77), addr(12), 5000, 5000, b"y"))
        m.inject("A1", m.stations["M1"].mac, pkt)
        m.run(50)
        self.assertEqual([c for c in m.capture if c[1] == "A1" and c[3] != b"\xff" * 6], [])
        self.assertEqual([e[3]["reason"] for e in m.logged("drop", "A1")], ["no_route"] * 2)
        self.assertEqual(m.count("M2", b""), 0)


class RelayTargetsTest(unittest.TestCase):
    def test_forged_and_host_reply_advertisements_make_no_relay_target(self):
        m = two_agents()
        a1 = m.stations["A1"].role
        self.assertEqual([e[0] for e in a1.near], [m.stations["A2"].mac])
        m.inject("A1", b"\x02\x00\x00\x00\x0f\x01", advertisement(addr(40), 5, key=b"guess"))
        m.inject("A1", b"\x02\x00\x00\x00\x0f\x02", advertisement(addr(41), 5, key=None))
        self.assertEqual(len(a1.near), 1)

    def test_the_table_is_capped_and_a_live_agent_is_never_pushed_out(self):
        # an insider (cell key) advertises as 20 agents from 20 MACs: at most 4 targets,
        # and A2, which keeps advertising, stays one of them; M1 still reaches M2
        m = two_agents()
        a1 = m.stations["A1"].role
        for i in range(20):
            mac = b"\x02\x00\x00\x00\x0f" + bytes([i])
            m.inject("A1", mac, advertisement(addr(40 + i), 1, lifetime=9000))
            m.run(200)
        self.assertEqual(len(a1.near), 4)
        self.assertIn(m.stations["A2"].mac, [e[0] for e in a1.near])
        m.flow("M1", "10.0.0.12", 100, 20, b"a")
        m.run(3000)
        self.assertEqual(m.count("M2", b"a"), 20)
        # an advertised lifetime is trusted for 10 s at most: the squatters' slots free up
        m.run(10000)
        live = [e for e in a1.near if e[2] - m.now > 0]
        self.assertEqual([e[0] for e in live], [m.stations["A2"].mac])


class HostToHostReachesABoundNodeTest(unittest.TestCase):
    def test_a_node_without_an_agent_reaches_a_bound_node_in_its_range(self):
        # S hears D only; D is bound to A, which S does not hear: S downgrades, D answers its
        # host-level solicitation and S sends to D directly
        m = Medium()
        m.add("A", Agent(config(1), make_rand(1), m.now))
        m.add("D", MobileNode(config(12), make_rand(12), m.now))
        m.add("S", MobileNode(config(11), make_rand(11), m.now))
        m.hear("A", "D", -50)
        m.hear("S", "D", -60)
        m.run(5000)
        self.assertEqual(served_by(m, "D"), "10.0.0.1")
        s = m.stations["S"].role
        self.assertEqual(s.mode, "direct")  # before: "search", D never answered
        m.flow("S", "10.0.0.12", 100, 30, b"s")
        m.run(4000)
        self.assertEqual(m.count("D", b"s"), 30)
        self.assertEqual(served_by(m, "D"), "10.0.0.1")  # D stays bound


if __name__ == "__main__":
    unittest.main()


class OwnAdvertisementsTest(unittest.TestCase):
    def test_an_agent_advertises_its_own_fields_after_decoding_anothers(self):
        # An agent decodes what it hears into messages it keeps (no object per frame), one of
        # them the one its beacon fills in: its next advertisement must carry none of what it
        # decoded (another agent's lifetime, services, care-of address, a host reply's form)
        m = two_agents()
        a1 = m.stations["A1"].role
        other = advert.Advertisement(
            src=addr(40),
            adv_lifetime=999,
            seq=9,
            reg_lifetime=7,
            coa=addr(41),
            services=advert.SVC_HOST,
            capacity=3,
            is_host_reply=True,
        )
        m.capture = []
        for adv in (other, advert.Advertisement(src=addr(42), adv_lifetime=77, coa=addr(43))):
            m.inject("A1", b"\x02\x00\x00\x00\x0f\x09", advert.encode_advertisement(adv, CELL_KEY))
            m.run(1500)  # A1 advertises meanwhile
        mine = [
            advert.decode_icmp(ipv4.decode(bytes(c[4])))
            for c in m.capture
            if c[1] == "A1" and c[4][ipv4.PROTO_AT] == ipv4.PROTO_ICMP
        ]
        self.assertGreaterEqual(len(mine), 2)
        for adv in mine:
            self.assertFalse(adv.is_host_reply)
            self.assertEqual((adv.src, adv.coa), (a1.address, a1.address))
            self.assertEqual(adv.adv_lifetime, a1.beacon.lifetime_s)
            self.assertEqual(adv.services, a1.beacon.services)
            self.assertTrue(adv.verify(a1.keys))

"""Delivery between nodes that share an agent, with no backbone at all: the agent forwards from
its own table (the cell keeps working when the agent is cut off from the rest)."""

import sys
import unittest

from medium import Medium, addr, config, make_rand

from mobility import ipv4
from mobility.actions import IF_RADIO as RADIO
from mobility.agent import Agent
from mobility.cell import B_IFACE, B_MAC
from mobility.mobile import MobileNode

IS_MPY = sys.implementation.name == "micropython"


def cell(n_mobiles):
    m = Medium()
    m.add("A", Agent(config(1), make_rand(1), m.now))
    for i in range(n_mobiles):
        name = "M%d" % (i + 1)
        m.add(name, MobileNode(config(11 + i), make_rand(2 + i), m.now))
        m.hear("A", name, -55 - i)
    return m


class IntraCellTest(unittest.TestCase):
    def test_two_mobiles_exchange_through_the_agent(self):
        m = cell(2)  # M1 and M2 do not hear each other: only the agent links them
        m.run(3000)
        m.flow("M1", "10.0.0.12", 50, 200, b"a")
        m.flow("M2", "10.0.0.11", 50, 200, b"b")
        m.run(12000)
        self.assertEqual(len(m.received("M2", b"a")), 200)
        self.assertEqual(len(m.received("M1", b"b")), 200)
        # forwarded by the agent: TTL decremented once, header checksum still right
        pkt = m.stations["M2"].inbox[0]
        self.assertEqual(pkt[8], 63)
        self.assertEqual(ipv4.checksum(pkt, 0, 20), 0)
        self.assertEqual(m.logged("drop"), [])

    def test_destination_without_local_binding_is_dropped_and_logged(self):
        m = cell(1)
        m.run(3000)
        m.send("M1", "10.0.0.99", b"nobody")
        m.run(10)
        drops = m.logged("drop", "A")
        self.assertEqual(len(drops), 1)
        self.assertEqual(drops[0][3]["reason"], "no_route")
        self.assertEqual(drops[0][3]["dst"], "10.0.0.99")

    def test_ttl_expiry_is_not_forwarded(self):
        m = cell(2)
        m.run(3000)
        pkt = bytearray(ipv4.udp(addr(11), addr(12), 5000, 5000, b"x", ttl=1))
        m.inject("A", m.stations["M1"].mac, pkt)
        m.run(10)
        self.assertEqual(m.received("M2"), [])
        self.assertEqual(m.logged("drop", "A")[0][3]["reason"], "ttl")

    def test_forward_in_cell_answers_with_the_binding_and_the_ttl_decremented(self):
        # the driver's question before on_frame (firmware/driver.py radio_rx)
        m = cell(2)
        m.run(3000)
        agent = m.stations["A"].role
        pkt = bytearray(ipv4.udp(addr(11), addr(12), 5000, 5000, b"x"))
        b = agent.forward_in_cell(pkt)
        self.assertIsNotNone(b)
        self.assertEqual(b[B_MAC], m.stations["M2"].mac)
        self.assertEqual(b[B_IFACE], RADIO)
        self.assertEqual(pkt[8], 63)
        self.assertEqual(ipv4.checksum(pkt, 0, 20), 0)
        self.assertEqual(agent.out.n, 0)  # no action: the driver sends it

    def test_forward_in_cell_leaves_every_other_frame_to_on_frame_untouched(self):
        m = cell(2)
        m.run(3000)
        agent = m.stations["A"].role
        others = [
            ipv4.udp(addr(11), addr(12), 5000, 5000, b"x", ttl=1),  # TTL runs out: on_frame drops
            ipv4.udp(addr(11), addr(99), 5000, 5000, b"x"),  # no local binding
            ipv4.udp(addr(11), bytes([74, 0, 0, 12]), 5000, 5000, b"x"),  # same key, other address
            ipv4.udp(addr(11), addr(12), 5000, 5000, b"x")[:19],  # shorter than a header
        ]
        for frame in others:
            buf = bytearray(frame)
            self.assertIsNone(agent.forward_in_cell(buf), frame)
            self.assertEqual(buf, frame)
        # a caller's bytes cannot be changed in place: on_frame forwards a copy
        self.assertIsNone(agent.forward_in_cell(ipv4.udp(addr(11), addr(12), 5000, 5000, b"x")))
        agent.plan_outage(m.now, 0, 60)
        agent.on_timer(m.now)  # the outage begins: an agent out of service forwards nothing
        self.assertIsNone(agent.forward_in_cell(bytearray(ipv4.udp(addr(11), addr(12), 1, 1, b""))))

    @unittest.skipUnless(IS_MPY, "allocation is measured on MicroPython only")
    def test_forward_in_cell_allocates_nothing(self):
        import gc

        import micropython

        m = cell(2)
        m.run(3000)
        agent = m.stations["A"].role
        pkt = bytearray(ipv4.udp(addr(11), addr(12), 5000, 5000, b"x"))
        agent.forward_in_cell(pkt)
        gc.collect()
        before = micropython.mem_total()
        for _ in range(200):
            pkt[8] = 64  # (the checksum no longer matters here)
            agent.forward_in_cell(pkt)
        self.assertEqual(micropython.mem_total() - before, 0)

    def test_agent_serves_twenty_bindings(self):
        m = cell(20)
        m.run(5000)
        agent = m.stations["A"].role
        self.assertEqual(len(agent.bindings), 20)
        m.flow("M1", "10.0.0.30", 100, 10, b"c")
        m.flow("M20", "10.0.0.11", 100, 10, b"d")
        m.run(2000)
        self.assertEqual(len(m.received("M20", b"c")), 10)
        self.assertEqual(len(m.received("M1", b"d")), 10)

    def test_agent_own_datagrams(self):
        m = cell(1)
        m.run(3000)
        m.send("A", "10.0.0.11", b"from agent")
        m.send("M1", "10.0.0.1", b"to agent")
        m.run(10)
        self.assertEqual(m.received("M1"), [b"from agent"])
        self.assertEqual(m.received("A"), [b"to agent"])


if __name__ == "__main__":
    unittest.main()

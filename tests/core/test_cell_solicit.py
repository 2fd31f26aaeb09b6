"""No agent: solicitation with back-off, downgrade to host-to-host, direct exchange, and
binding again when an agent returns."""

import unittest

from medium import Medium, config, make_rand

from mobility import ipv4
from mobility.agent import Agent
from mobility.host import Host
from mobility.mobile import MobileNode


def no_agent(n=2):
    m = Medium()
    for i in range(n):
        m.add("M%d" % (i + 1), MobileNode(config(11 + i), make_rand(11 + i), m.now))
    return m


class SolicitationTest(unittest.TestCase):
    def test_backoff_is_exponential_capped_and_never_faster_than_1_per_s(self):
        m = no_agent(1)
        m.run(120000)
        sols = m.logged("solicit", "M1")
        times = [e[0] for e in sols]
        gaps = [times[i + 1] - times[i] for i in range(len(times) - 1)]
        self.assertTrue(all(g >= 1000 for g in gaps))
        self.assertEqual(gaps[:2], [1000, 1000])  # the first attempts at 1/s ...
        self.assertEqual(max(gaps), 8000)  # ... then doubling up to the cap
        self.assertIn(4000, gaps)
        self.assertLess(len(sols), 25)
        levels = [e[3]["level"] for e in sols]
        self.assertEqual(levels[0], 2)
        self.assertEqual(set(levels[1:]), {1})
        down = m.logged("downgrade", "M1")
        self.assertEqual(len(down), 1)
        self.assertEqual((down[0][3]["from"], down[0][3]["to"]), (2, 1))

    def test_bound_node_asks_only_the_new_agent_it_heard(self):
        # bound to A, the node hears B (not in its table): its solicitation goes to B alone
        # (unicast), C, in range too and already known, does not answer; B enters the table
        m = Medium()
        m.capture = []
        for name, n in (("A", 1), ("B", 2), ("C", 3)):
            m.add(name, Agent(config(n), make_rand(n), m.now))
        m.add("M", MobileNode(config(11), make_rand(11), m.now))
        m.hear("A", "M", -50)
        m.hear("C", "M", -75)
        m.run(6000)
        mn = m.stations["M"].role
        self.assertEqual(mn.serving.addr, ipv4.aton("10.0.0.1"))
        self.assertEqual(
            sorted(mn.agents.table),
            sorted(ipv4.addr_key(ipv4.aton(a), 0) for a in ("10.0.0.1", "10.0.0.3")),
        )
        m.capture = []
        m.hear("B", "M", -52)
        m.run(4000)
        sols = [
            (mac, d)
            for t, node, i, mac, d in m.capture
            if node == "M" and d[9] == 1 and d[20] == 10
        ]
        self.assertEqual(len(sols), 1)
        self.assertEqual(sols[0][0], m.stations["B"].mac)
        self.assertEqual(bytes(sols[0][1][16:20]), ipv4.aton("10.0.0.2"))
        answers = [
            node
            for t, node, i, mac, d in m.capture
            if node in "ABC" and d[9] == 1 and d[20] == 9 and mac == m.stations["M"].mac
        ]
        self.assertEqual(answers, ["B"])
        self.assertIn(ipv4.addr_key(ipv4.aton("10.0.0.2"), 0), mn.agents.table)

    def test_downgrade_after_is_configurable(self):
        m = Medium()
        m.add("M1", MobileNode(config(11, downgrade_after=3), make_rand(1), m.now))
        m.run(10000)
        levels = [e[3]["level"] for e in m.logged("solicit", "M1")]
        self.assertEqual(levels[:4], [2, 2, 2, 1])

    def test_direct_exchange_between_nodes_without_agent(self):
        m = no_agent(2)
        m.hear("M1", "M2", -60)
        m.run(3000)
        self.assertEqual(m.stations["M1"].role.mode, "direct")
        self.assertEqual(m.stations["M2"].role.mode, "direct")
        m.flow("M1", "10.0.0.12", 100, 50, b"a")
        m.flow("M2", "10.0.0.11", 100, 50, b"b")
        m.run(6000)
        self.assertEqual(len(m.received("M2", b"a")), 50)
        self.assertEqual(len(m.received("M1", b"b")), 50)
        self.assertEqual(m.stations["M2"].inbox[0][8], 64)  # direct: no hop in between
        hosts = m.logged("host_up", "M1")
        self.assertEqual(hosts[0][3]["host"], "10.0.0.12")
        self.assertEqual(m.logged("host_lost"), [])  # refreshed by later solicitations

    def test_host_to_host_within_3_s_of_the_agent_going_silent(self):
        m = Medium()
        m.add("A", Agent(config(1), make_rand(1), m.now))
        for name, n in (("M1", 11), ("M2", 12)):
            m.add(name, MobileNode(config(n), make_rand(n), m.now))
            m.hear("A", name, -50)
        m.hear("M1", "M2", -70)
        m.run(5000)
        m.flow("M1", "10.0.0.12", 100, 100, b"a")
        m.flow("M2", "10.0.0.11", 100, 100, b"b")
        m.run(500)
        t_off = m.t
        m.power("A", False)
        m.run(9500)
        for node, tag in (("M1", b"b"), ("M2", b"a")):
            got = m.received(node, tag)
            self.assertGreaterEqual(len(got), 85)
        # first direct delivery after the agent went silent
        direct = [p for p in m.stations["M2"].inbox if p[8] == 64]
        self.assertTrue(direct)
        seqs = [int(p[29:]) for p in direct]
        t_first = min(seqs) * 100 - 500  # flow started 500 ms before t_off
        self.assertLessEqual(t_first, 3000)
        self.assertEqual(m.logged("host_up", "M1")[0][3]["host"], "10.0.0.12")
        self.assertLess(m.logged("host_up", "M1")[0][0] - t_off, 3000)

    def test_hosts_never_forward_for_others(self):
        m = no_agent(3)  # a chain: M1 - M2 - M3
        m.hear("M1", "M2", -60)
        m.hear("M2", "M3", -60)
        m.run(3000)
        m.send("M1", "10.0.0.13", b"through M2?")
        m.run(5000)
        self.assertEqual(m.received("M3"), [])
        self.assertEqual(m.received("M2"), [])

    def test_binding_again_when_an_agent_returns(self):
        m = no_agent(2)
        m.hear("M1", "M2", -60)
        m.add("A", Agent(config(1), make_rand(1), m.now))
        m.power("A", False)
        m.hear("A", "M1", -55)
        m.hear("A", "M2", -55)
        m.run(5000)
        self.assertEqual(m.stations["M1"].role.mode, "direct")
        m.power("A", True)
        m.run(3000)
        for node in ("M1", "M2"):
            role = m.stations[node].role
            self.assertEqual(role.mode, "agent")
            self.assertEqual(role.serving.addr[3], 1)
            modes = [e[3]["mode"] for e in m.logged("mode", node)]
            self.assertEqual(modes[-2:], ["direct", "agent"])
        m.flow("M1", "10.0.0.12", 100, 10, b"c")
        m.run(2000)
        got = [p for p in m.stations["M2"].inbox if p[28:29] == b"c"]
        self.assertEqual(len(got), 10)
        self.assertEqual(got[0][8], 63)  # through the agent again

    def test_plain_host_answers_and_is_reached_directly(self):
        m = no_agent(1)
        mac_m1 = m.stations["M1"].mac
        m.add("H", Host(config(20, neighbours={"10.0.0.11": mac_m1}), make_rand(20), m.now))
        m.hear("M1", "H", -60)
        m.run(4000)
        self.assertEqual(m.logged("host_up", "M1")[0][3]["host"], "10.0.0.20")
        m.send("M1", "10.0.0.20", b"to host")
        m.send("H", "10.0.0.11", b"to mobile")
        m.run(100)
        self.assertEqual(m.received("H"), [b"to host"])
        self.assertEqual(m.received("M1"), [b"to mobile"])

    def test_host_uses_its_gateway(self):
        m = Medium()
        m.add("A", Agent(config(1), make_rand(1), m.now))
        m.add("M", MobileNode(config(11), make_rand(11), m.now))
        gw = m.stations["A"].mac
        m.add("H", Host(config(20, gateway=gw), make_rand(20), m.now))
        m.hear("A", "M", -50)
        m.hear("A", "H", -50)
        m.run(3000)
        m.send("H", ipv4.aton("10.0.0.11"), b"via gateway")
        m.run(10)
        self.assertEqual(m.received("M"), [b"via gateway"])


if __name__ == "__main__":
    unittest.main()

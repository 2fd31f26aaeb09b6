"""Ranking: the best score is chosen; signal, load and services matter; capacity refusal."""

import unittest

from medium import Medium, config, make_rand

from mobility import advert, ranking
from mobility.agent import Agent
from mobility.agenttable import AgentInfo
from mobility.mobile import MobileNode


def info(rssi, load=0, capacity=20, services=advert.SVC_ROUTING):
    i = AgentInfo(b"\x0a\x00\x00\x01", b"\x02" * 6, 0, rssi)
    i.load = load
    i.capacity = capacity
    i.services = services
    return i


class ScoreTest(unittest.TestCase):
    def setUp(self):
        self.w = ranking.weights(None)

    def test_signal_load_and_services(self):
        self.assertGreater(ranking.score(info(-50), 0, self.w), ranking.score(info(-70), 0, self.w))
        self.assertGreater(
            ranking.score(info(-60), 0, self.w), ranking.score(info(-60, load=15), 0, self.w)
        )
        rich = info(-60, services=advert.SVC_ROUTING | advert.SVC_REGION | advert.SVC_REVERSE)
        self.assertEqual(ranking.score(rich, 0, self.w) - ranking.score(info(-60), 0, self.w), 10)

    def test_no_candidates(self):
        self.assertIsNone(ranking.score(info(-40, services=advert.SVC_HOST), 0, self.w))
        self.assertIsNone(ranking.score(info(-40, capacity=0), 0, self.w))
        self.assertIsNone(ranking.score(info(-40, load=20), 0, self.w))
        self.assertIsNotNone(ranking.score(info(-40, load=20), 0, self.w, serving=True))
        refused = info(-40)
        refused.blocked_until = 5000
        self.assertIsNone(ranking.score(refused, 1000, self.w))
        self.assertIsNotNone(ranking.score(refused, 6000, self.w))

    def test_imminent_outage_is_penalised(self):
        i = info(-40)
        i.outage_start = 12000  # beyond the 10 s horizon: not yet
        self.assertEqual(ranking.score(i, 0, self.w), ranking.score(info(-40), 0, self.w))
        i.outage_start = 20000
        far = ranking.score(i, 0, self.w)
        i.outage_start = 5000
        self.assertLess(ranking.score(i, 0, self.w), far - 500)

    def test_configured_weights(self):
        w = ranking.weights({"w_rssi": 0, "w_load": 100})
        self.assertGreater(ranking.score(info(-90), 0, w), ranking.score(info(-40, load=10), 0, w))


def field(agents, mobile_cfg=None):
    """agents: list of (node_id, rssi at M, agent config extras)."""
    m = Medium()
    for node_id, _rssi, extra in agents:
        name = "A%d" % node_id
        m.add(name, Agent(config(node_id, **extra), make_rand(node_id), m.now))
    m.add("M", MobileNode(config(50, **(mobile_cfg or {})), make_rand(99), m.now))
    for node_id, rssi, _extra in agents:
        m.hear("A%d" % node_id, "M", rssi)
    return m


def serving(m):
    s = m.stations["M"].role.serving
    return None if s is None else s.addr[3]


class ChoiceTest(unittest.TestCase):
    def test_strongest_signal_wins(self):
        m = field([(1, -75, {}), (2, -55, {}), (3, -65, {})])
        m.run(3000)
        self.assertEqual(serving(m), 2)

    def test_load_matters(self):
        # Same signal; agent 1 is nearly full (a loaded agent is advertised as such).
        m = field([(1, -60, {"capacity": 4}), (2, -60, {"capacity": 40})])
        agent1 = m.stations["A1"].role
        for i in range(3):
            agent1.bindings[100 + i] = [bytes([10, 0, 1, i]), b"\x02" * 6, 0, 10**6]
        m.run(3000)
        self.assertEqual(serving(m), 2)

    def test_services_matter(self):
        m = field([(1, -60, {}), (2, -62, {"services": advert.SVC_REGION | advert.SVC_REVERSE})])
        m.run(3000)
        self.assertEqual(serving(m), 2)


class CapacityTest(unittest.TestCase):
    def test_full_agent_refuses_with_66_and_the_node_binds_elsewhere(self):
        m = Medium()
        m.add("A1", Agent(config(1, capacity=1), make_rand(1), m.now))
        m.add("A2", Agent(config(2), make_rand(2), m.now))
        for i in (1, 2):
            m.add("M%d" % i, MobileNode(config(10 + i), make_rand(10 + i), m.now))
            m.hear("A1", "M%d" % i, -50)  # both prefer A1 ...
            m.hear("A2", "M%d" % i, -70)  # ... and both hear A1's first advertisement (load 0)
        m.run(5000)
        a1 = m.stations["A1"].role
        self.assertEqual(len(a1.bindings), 1)
        refused = [e for e in m.logged("reject", "A1") if e[3]["reason"] == "capacity"]
        self.assertEqual(len(refused), 1)
        self.assertEqual(refused[0][3]["capacity"], 1)
        loser = "M1" if refused[0][3]["src"] == "10.0.0.11" else "M2"
        self.assertEqual([e[3]["code"] for e in m.logged("reg_refused", loser)], [66])
        self.assertEqual(m.stations[loser].role.serving.addr[3], 2)
        # it does not keep knocking at the full agent
        m.run(20000)
        self.assertEqual(
            len([e for e in m.logged("reject", "A1") if e[3]["reason"] == "capacity"]), 1
        )
        self.assertEqual(m.stations[loser].role.serving.addr[3], 2)


if __name__ == "__main__":
    unittest.main()

"""Tick wrap-around: nodes whose clock starts 5 s before ticks_ms wraps (2**30 ms) keep every
binding and timer right across the wrap for minutes of virtual time."""

import unittest

from medium import Medium, config, make_rand
from test_cell_handoff import swap, two_cells

from mobility import ticks
from mobility.agent import Agent
from mobility.mobile import MobileNode

START = ticks.PERIOD - 5000


class WrapTest(unittest.TestCase):
    def test_bindings_refreshes_and_traffic_across_the_wrap(self):
        m = Medium(start=START, keep=False)
        m.add("A", Agent(config(1, reg_lifetime_s=8), make_rand(1), m.now))
        for name, n in (("M1", 11), ("M2", 12)):
            m.add(name, MobileNode(config(n, reg_lifetime_s=8), make_rand(n), m.now))
            m.hear("A", name, -50)
        m.run(3000)
        m.flow("M1", "10.0.0.12", 100, 2900, b"w")
        m.flow("M2", "10.0.0.11", 100, 2900, b"v")
        m.run(300000)  # five minutes; the roles' clocks wrapped after five seconds
        self.assertLess(m.now, START)  # wrapped indeed
        for bad in ("binding_down", "unbound", "agent_lost", "drop", "host_up"):
            self.assertEqual(m.logged(bad), [], bad)
        self.assertEqual(m.count("M2", b"w"), 2900)
        self.assertEqual(m.count("M1", b"v"), 2900)
        refreshes = m.logged("binding_refresh", "A")
        self.assertGreaterEqual(len(refreshes), 2 * 45)  # every 6 s for each node
        # advertisements kept their period across the wrap: agent stays known, no gaps
        for name in ("M1", "M2"):
            self.assertEqual(m.stations[name].role.mode, "agent")

    def test_expiry_and_loss_timers_across_the_wrap(self):
        m = Medium(start=START)
        m.add("A", Agent(config(1, reg_lifetime_s=10), make_rand(1), m.now))
        m.add("M", MobileNode(config(11, reg_lifetime_s=10), make_rand(11), m.now))
        m.hear("A", "M", -50)
        m.run(2000)  # bound 3 s before the wrap
        m.power("M", False)
        m.run(20000)
        down = m.logged("binding_down", "A")
        self.assertEqual(len(down), 1)
        self.assertEqual(down[0][3]["reason"], "expired")
        t_up = m.logged("binding_up", "A")[0][0]
        self.assertGreaterEqual(down[0][0] - t_up, 10000)
        self.assertLessEqual(down[0][0] - t_up, 10000 + 7500 + 5)
        # the node comes back, then the agent goes silent across the next part of the run
        m.power("M", True)
        m.run(3000)
        self.assertEqual(m.stations["M"].role.mode, "agent")
        t_off = m.t
        m.power("A", False)
        m.run(60000)
        lost = [e for e in m.logged("agent_lost", "M") if e[0] > t_off]
        self.assertEqual(len(lost), 1)
        self.assertLessEqual(lost[0][0] - t_off, 3000)
        sols = [e[0] for e in m.logged("solicit", "M") if e[0] > t_off]
        gaps = [sols[i + 1] - sols[i] for i in range(len(sols) - 1)]
        self.assertTrue(gaps and min(gaps) >= 1000 and max(gaps) <= 8000)

    def test_hysteresis_dwell_across_the_wrap(self):
        m = two_cells(seed=7, start=ticks.PERIOD - 2000)
        m.hear("A", "M", -50)
        m.hear("B", "M", -80)
        m.run(1500)
        t0, h = swap(m, -50, -80, 20000)
        self.assertEqual(len(h), 1)
        self.assertGreaterEqual(h[0][0] - t0, 3000)
        self.assertLessEqual(h[0][0] - t0, 7000)


if __name__ == "__main__":
    unittest.main()

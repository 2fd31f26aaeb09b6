"""Local binding, refresh, deregistration and lifetime expiry in one cell."""

import unittest

from medium import Medium, addr, config, make_rand

from mobility import ipv4
from mobility.agent import Agent
from mobility.mobile import MobileNode


def cell(start=0, **mobile_cfg):
    m = Medium(start=start)
    m.add("A", Agent(config(1), make_rand(1), m.now))
    m.add("M", MobileNode(config(11, **mobile_cfg), make_rand(2), m.now))
    m.hear("A", "M", -60)
    return m


class BindingTest(unittest.TestCase):
    def test_binds_to_the_agent_it_hears(self):
        m = cell()
        m.run(2500)
        agent = m.stations["A"].role
        mobile = m.stations["M"].role
        b = agent.bindings.get(ipv4.addr_key(addr(11), 0))
        self.assertIsNotNone(b)
        self.assertEqual(b[0], addr(11))
        self.assertEqual(b[1], m.stations["M"].mac)  # the route: home address -> MAC
        self.assertIs(mobile.serving, mobile.agents.table[ipv4.addr_key(addr(1), 0)])
        self.assertEqual(mobile.mode, "agent")
        self.assertEqual(len(m.logged("binding_up", "A")), 1)
        self.assertEqual(len(m.logged("bound", "M")), 1)
        self.assertEqual(m.logged("bound", "M")[0][3]["agent"], "10.0.0.1")

    def test_refresh_keeps_the_binding_for_many_lifetimes(self):
        m = cell(reg_lifetime_s=4)
        m.run(60000)
        self.assertEqual(m.logged("binding_down"), [])
        self.assertEqual(m.logged("unbound"), [])
        # refreshed at 3/4 of each 4 s lifetime: about 20 refreshes in a minute
        self.assertGreaterEqual(len(m.logged("binding_refresh", "A")), 15)
        self.assertEqual(len(m.stations["A"].role.bindings), 1)

    def test_lifetime_expiry_removes_the_binding_and_logs_it(self):
        m = cell(reg_lifetime_s=5)
        m.run(2000)
        t_bound = m.logged("binding_up", "A")[-1][0]
        m.power("M", False)  # the node vanishes: no refresh, no deregistration
        m.run(10000)
        agent = m.stations["A"].role
        self.assertEqual(agent.bindings, {})
        down = m.logged("binding_down", "A")
        self.assertEqual(len(down), 1)
        self.assertEqual(down[0][3]["reason"], "expired")
        self.assertEqual(down[0][3]["home"], "10.0.0.11")
        # removed when its lifetime ran out (granted 5 s; refreshes stopped after t_bound)
        self.assertGreaterEqual(down[0][0] - t_bound, 5000)
        self.assertLessEqual(down[0][0] - t_bound, 5000 + 3750 + 10)

    def test_mobile_side_binding_expires_when_refreshes_go_unanswered(self):
        m = cell(reg_lifetime_s=4)
        m.run(2000)
        # The agent still advertises (so it is not lost by silence) but no longer hears M.
        m.deafen("M", "A", both=False)
        m.run(6000)
        ends = m.logged("unbound", "M") + m.logged("agent_lost", "M")
        self.assertTrue(ends, "the node must notice its binding is gone")
        self.assertIsNone(m.stations["M"].role.serving)

    def test_deregistration_with_lifetime_zero(self):
        m = cell()
        m.run(2000)
        mobile = m.stations["M"].role
        agent = m.stations["A"].role
        mobile.reg.deregister(m.now, mobile.serving)  # what a hand-off sends to the old agent
        m._drain(m.stations["M"])
        m.run(10)
        self.assertEqual(agent.bindings, {})
        self.assertEqual(m.logged("binding_down", "A")[0][3]["reason"], "dereg")

    def test_reply_goes_to_the_request_mac_without_a_route(self):
        m = cell()
        m.capture = []
        m.run(2000)
        replies = [c for c in m.capture if c[1] == "A" and c[4][9] == ipv4.PROTO_UDP]
        self.assertTrue(replies)
        self.assertEqual(replies[0][3], m.stations["M"].mac)


class ConfigTest(unittest.TestCase):
    def test_bad_config_is_refused_with_a_clear_error(self):
        rand = make_rand(1)
        for bad in (
            {"node_id": 1, "keys": {0x100: b"k"}},  # no address
            {"node_id": 1, "address": "10.0.0", "keys": {0x100: b"k"}},
            {"node_id": 1, "address": "10.0.0.1", "keys": {0x200: b"k"}},  # no cell key
            {"node_id": 1, "address": "10.0.0.1", "keys": {0x100: b"k"}, "capacity": -1},
        ):
            self.assertRaises(ValueError, Agent, bad, rand, 0)
        self.assertRaises(ValueError, MobileNode, config(2, policy="fast"), rand, 0)
        self.assertRaises(ValueError, MobileNode, config(2, rank={"w_rsi": 1}), rand, 0)

    def test_config_accepts_text_forms(self):
        a = Agent(
            {"node_id": 3, "address": b"\x0a\x00\x00\x03", "keys": {"0x100": "00112233"}},
            make_rand(1),
            0,
        )
        self.assertEqual(a.address, addr(3))
        self.assertEqual(a.cell_key, b"\x00\x11\x22\x33")


if __name__ == "__main__":
    unittest.main()


class SignalLogTest(unittest.TestCase):
    def test_bound_node_logs_the_signal_of_the_agents_it_hears(self):
        m = cell(rssi_log_ms=2000)
        m.run(10500)
        logs = m.logged("rssi", "M")
        self.assertTrue(4 <= len(logs) <= 5)  # at most every 2 s once bound
        for ev in logs:
            self.assertEqual(ev[3]["serving"], "10.0.0.1")
            self.assertTrue(-70 <= ev[3]["agents"]["10.0.0.1"] <= -50)

    def test_off_by_default(self):
        m = cell()
        m.run(10500)
        self.assertEqual(m.logged("rssi", "M"), [])

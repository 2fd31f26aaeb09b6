"""Detecting a lost agent: missed advertisements (lifetime) or failed link-layer sends,
whichever comes first; the Mobile IPv4 baseline only by lifetime."""

import unittest

from medium import BCAST, Medium, config, make_rand

from mobility import ipv4
from mobility.agent import Agent
from mobility.mobile import MobileNode


def cell(policy="roam"):
    m = Medium()
    m.add("A", Agent(config(1), make_rand(1), m.now))
    m.add("B", Agent(config(2), make_rand(2), m.now))
    m.add("M", MobileNode(config(11, policy=policy), make_rand(11), m.now))
    m.add("C", MobileNode(config(12, policy=policy), make_rand(12), m.now))
    m.hear("A", "M", -50)
    m.hear("A", "C", -50)
    m.hear("B", "M", -75)
    m.hear("B", "C", -75)
    m.run(4000)
    return m


def agent_off_under_traffic(policy):
    """M sends 10 datagrams a second to C for a second, then A loses power for 8 s: the medium,
    when A went off, and M's agent_lost events."""
    m = cell(policy)
    m.flow("M", "10.0.0.12", 100, 100, b"x")
    m.run(1000)
    t_off = m.t
    m.power("A", False)
    m.run(8000)
    return m, t_off, m.logged("agent_lost", "M")


class LossTest(unittest.TestCase):
    def test_an_idle_node_checks_an_overdue_agent_and_rebinds(self):
        # A crashes (no goodbye) and M sends nothing: 1.5 advertisement periods after A's last
        # advertisement M solicits A alone; no acknowledgement comes, and that failed send with
        # the overdue advertisement makes A lost (before: only the 3 s lifetime, by silence)
        m = cell()
        t_off = m.t
        m.power("A", False)
        m.run(6000)
        lost = m.logged("agent_lost", "M")
        self.assertEqual(len(lost), 1)
        self.assertEqual(lost[0][3]["cause"], "link")
        self.assertTrue(lost[0][3]["serving"])
        self.assertLessEqual(lost[0][0] - t_off, 1600)
        self.assertEqual(m.stations["M"].role.serving.addr[3], 2)  # bound to the other agent
        self.assertLessEqual(m.logged("bound", "M")[-1][0] - t_off, 1800)

    def test_a_missed_advertisement_of_a_live_agent_is_no_loss(self):
        # A's broadcasts do not reach anyone for 2.5 s (a collision, a fade): M's check is
        # acknowledged and answered, so M stays with A: no false alarm, no hand-off
        m = cell()
        t0 = m.t
        m.lose = lambda node, mac, data: node == "A" and mac == BCAST and m.t < t0 + 2500
        m.run(6000)
        self.assertEqual(m.logged("agent_lost"), [])
        self.assertEqual(m.logged("handoff"), [])
        self.assertEqual(m.stations["M"].role.serving.addr[3], 1)
        self.assertEqual(m.stations["C"].role.serving.addr[3], 1)

    def test_failed_sends_detect_first_when_traffic_flows(self):
        m, t_off, lost = agent_off_under_traffic("roam")
        self.assertEqual(lost[0][3]["cause"], "link")
        self.assertLessEqual(lost[0][0] - t_off, 250)  # two failed sends at 10 datagrams/s
        # C sends nothing: it finds out when A's advertisement is overdue (its check fails)
        lost_c = m.logged("agent_lost", "C")
        self.assertEqual(lost_c[0][3]["cause"], "link")
        self.assertGreater(lost_c[0][0], lost[0][0])
        self.assertLessEqual(lost_c[0][0] - t_off, 1600)
        # after both re-bound to B the flow resumes
        self.assertEqual(m.stations["M"].role.serving.addr[3], 2)
        self.assertGreaterEqual(len(m.received("C", b"x")), 60)

    def test_mip4_baseline_ignores_failed_sends(self):
        _m, t_off, lost = agent_off_under_traffic("mip4")
        self.assertEqual(lost[0][3]["cause"], "silence")
        self.assertGreater(lost[0][0] - t_off, 1000)

    def test_one_failed_send_is_not_a_loss(self):
        m = cell()
        mobile = m.stations["M"].role
        m.stations["M"].role.on_link_failure(m.now, 0, m.stations["A"].mac)
        m.run(1500)  # an advertisement arrives meanwhile: the count starts again
        mobile.on_link_failure(m.now, 0, m.stations["A"].mac)
        m._drain(m.stations["M"])
        self.assertEqual(m.logged("agent_lost"), [])
        self.assertEqual(mobile.serving.addr[3], 1)

    def test_an_agent_lost_in_a_fade_is_taken_back_from_its_own_advertisement(self):
        # M's sends to A fail for 300 ms (a fade at the cell edge): A is lost ("link"). For 5 s
        # after, A's answers to solicitations do not reach M (the broadcast and its answer are
        # what a fade, or others' solicitations using up A's answers, take first), but A's
        # periodic advertisements do: the first one takes A back and M binds again (before:
        # M stayed unbound until an answer got through)
        m = Medium()
        m.add("A", Agent(config(1), make_rand(1), m.now))
        m.add("M", MobileNode(config(11), make_rand(11), m.now))
        m.add("C", MobileNode(config(12), make_rand(12), m.now))
        for n in ("M", "C"):
            m.hear("A", n, -50)
        m.run(4000)
        a_mac, m_mac = m.stations["A"].mac, m.stations["M"].mac
        t0 = m.t
        m.flow("M", "10.0.0.12", 100, 60, b"x")

        def lose(node, mac, data):
            if node == "M" and mac == a_mac and m.t < t0 + 300:
                return True
            # A's unicast ICMP to M: the answers to its solicitations (registration replies,
            # UDP, get through)
            return node == "A" and mac == m_mac and data[9] == 1 and m.t < t0 + 5000

        m.lose = lose
        m.run(6000)
        lost = m.logged("agent_lost", "M")
        self.assertEqual([e[3]["cause"] for e in lost], ["link"])
        bound = [e for e in m.logged("bound", "M") if e[0] > lost[0][0]]
        self.assertTrue(bound, "M never bound again")
        self.assertLessEqual(bound[0][0] - t0, 1800)  # an advertisement period after the fade
        self.assertEqual(m.stations["M"].role.serving.addr[3], 1)
        self.assertGreaterEqual(len(m.received("C", b"x")), 45)

    def test_an_agent_that_did_not_answer_registrations_needs_an_answer_again(self):
        # lost by unanswered registrations (A hears M no more, M still hears A): A's broadcasts
        # do not take it back, or M would register into silence again and again; lost by a
        # failed send, its next advertisement may
        for cause, back in (("noreply", False), ("ident", False), ("link", True)):
            m = cell()
            mobile = m.stations["M"].role
            a = mobile.serving
            mobile._lose(m.now, a, cause)
            k = ipv4.addr_key(a.addr, 0)
            self.assertEqual(mobile.agents._back(m.now, k, a.mac), back, cause)


if __name__ == "__main__":
    unittest.main()

"""Replays after the receiver forgot the sender, and after the sender rebooted.

A mobile node that lost an agent by silence drops it from its agent table, but the replay state
(sequence, boot nonce) stays in its bounded cache: a recording of the agent replayed later
changes nothing. Boots are ordered by the epoch in the boot nonce's high 16 bits, so frames of
an earlier boot are refused, whatever their sequence. The same for host replies (epoch in the
nonce field), registrations (the agent's IdentCheck never forgets a home address's counter, and
a reboot brings a new nonce) and remote bindings.
"""

import unittest

from medium import Medium, addr, config, make_rand
from test_cell_security import ATTACKER, agent_state, frames, join, mobile_state

from mobility import advert, advreplay, ipv4
from mobility.agent import Agent
from mobility.mobile import MobileNode

AGENT_MAC = b"\x02\xaa\x00\x00\x00\x01"


def decode_adv(frame):
    return advert.decode_icmp(ipv4.decode(frame))


def cell(epoch=1):
    m = Medium()
    m.capture = []
    m.add("A", Agent(config(1, epoch=epoch), make_rand(1), m.now), AGENT_MAC)
    join(m, "M", 11, -50)
    return m


def reboot_agent(m, epoch, seed):
    """The agent restarts (same address and MAC, the given boot counter, no memory)."""
    m.add("A", Agent(config(1, epoch=epoch), make_rand(seed), m.now), AGENT_MAC)


def state_events(m, node, since):
    names = ("agent_up", "bound", "handoff", "host_up", "agent_reboot")
    return [e for e in m.events[since:] if e[1] == node and e[2] in names]


class _ReplayCase(unittest.TestCase):
    def assertReplaysChangeNothing(self, m, node, olds, rssi=-50, run=0, src=ATTACKER):
        """The attacker plays the recorded frames ``olds`` to mobile ``node`` from MAC ``src``
        (then ``run`` ms pass): its state stays as it was, no state event is logged."""
        mn = m.stations[node].role
        before = mobile_state(mn)
        mark = len(m.events)
        for old in olds:
            m.inject(node, src, old, rssi=rssi)
        if run:
            m.run(run)
        self.assertEqual(mobile_state(mn), before)
        self.assertEqual(state_events(m, node, mark), [])


class NonceTest(unittest.TestCase):
    def test_boot_nonce_carries_the_epoch(self):
        a = Agent(config(1, epoch=0x1234), make_rand(5), 0)
        self.assertEqual(a.nonce >> 16, 0x1234)
        self.assertEqual(a.visitors.idents.nonce, a.nonce)
        with self.assertRaises(ValueError):
            Agent(config(1, epoch=0x10000), make_rand(5), 0)


class AdvertisementAfterForgetTest(_ReplayCase):
    def test_replayed_advertisement_after_loss_by_silence_changes_nothing(self):
        m = cell()
        mn = m.stations["M"].role
        olds = frames(m, "A", "adv")
        self.assertIsNotNone(mn.serving)
        m.deafen("A", "M")
        # overdue, its check unacknowledged (or, without it, the lifetime runs out): agent_lost,
        # forgotten from the table
        m.run(10000)
        self.assertEqual(mn.agents.table, {})
        causes = [e[3]["cause"] for e in m.logged("agent_lost", "M")]
        self.assertTrue(causes and set(causes) <= {"link", "silence"})
        # from the agent's own MAC (forged): a copy from any other is refused as relayed first
        a_mac = m.stations["A"].mac
        self.assertReplaysChangeNothing(m, "M", olds, rssi=-20, run=50, src=a_mac)
        rejected = [e for e in m.logged("reject", "M") if e[3]["reason"] == "replay"]
        self.assertGreaterEqual(len(rejected), len(olds))
        # the agent's real advertisements are newer: heard again, it is taken back at once
        m.hear("A", "M", -50)
        m.run(3000)
        self.assertIsNotNone(mn.serving)
        self.assertEqual(mn.serving.mac, AGENT_MAC)

    def test_evicted_from_a_full_table_the_agent_stays_replay_checked(self):
        m = cell()
        mn = m.stations["M"].role
        old = frames(m, "A", "adv")[0]
        k = ipv4.addr_key(addr(1), 0)
        held = mn.agents.window.held(k)
        mn._lose(m.now, mn.agents.table[k], "link")  # dropped from the agent table
        m._drain(m.stations["M"])
        self.assertEqual(mn.agents.window.held(k), held)
        mark = len(m.events)
        m.inject("M", ATTACKER, old)
        self.assertEqual(state_events(m, "M", mark), [])
        self.assertNotIn(k, mn.agents.table)


class FirstHeardTest(_ReplayCase):
    def test_a_replayed_answer_to_our_own_solicitation_is_stale(self):
        # an answer that echoes an old challenge (one we may never have received) is refused
        m = cell()
        mn = m.stations["M"].role
        answers = [f for f in frames(m, "A", "adv") if decode_adv(f).dst == addr(11)]
        self.assertTrue(answers)
        m.deafen("A", "M")
        m.run(10000)
        self.assertEqual(mn.agents.table, {})
        mn.sol.send(m.now, advert.LEVEL_ROUTING)  # a new challenge is out
        m._drain(m.stations["M"])
        self.assertReplaysChangeNothing(m, "M", answers)

    def test_recording_of_an_agent_never_heard_changes_nothing(self):
        # M2 never heard A: A's recorded broadcast puts it on probation, nothing more
        m = cell()
        olds = frames(m, "A", "adv")
        m.add("M2", MobileNode(config(12), make_rand(12), m.now))
        m.run(100)
        mn = m.stations["M2"].role
        # two in order: a newer sequence does not confirm a broadcast
        self.assertReplaysChangeNothing(m, "M2", olds[:2], rssi=-20, run=50)
        self.assertEqual(mn.agents.table, {})

    def test_a_real_agent_is_confirmed_by_its_answer(self):
        m = cell()
        mn = join(m, "M2", 12, -55)
        self.assertIsNotNone(mn.serving)
        # it entered with an answer echoing M2's challenge (the broadcasts alone do not)
        answers = [
            decode_adv(f)
            for f in frames(m, "A", "adv")
            if decode_adv(f).dst == addr(12) and decode_adv(f).challenge
        ]
        self.assertTrue(answers)


class AgentRebootTest(_ReplayCase):
    def test_reboot_with_newer_epoch_is_taken_and_the_old_boot_refused(self):
        m = cell(epoch=7)
        mn = m.stations["M"].role
        old_boot = frames(m, "A", "adv")
        self.assertEqual(decode_adv(old_boot[0]).seq, 0)  # the first: a reboot-looking sequence
        reboot_agent(m, 8, 99)
        mark = len(m.events)
        m.run(3000)
        self.assertTrue(state_events(m, "M", mark))  # agent_reboot: registered again
        self.assertIsNotNone(mn.serving)
        self.assertEqual(mn.serving.nonce >> 16, 8)
        a = m.stations["A"].role
        self.assertIn(ipv4.addr_key(addr(11), 0), a.bindings)
        before_a = agent_state(a)
        self.assertReplaysChangeNothing(m, "M", old_boot, rssi=-20, run=20)
        self.assertEqual(agent_state(a), before_a)

    def test_old_boot_refused_also_after_the_agent_was_forgotten(self):
        m = cell(epoch=3)
        mn = m.stations["M"].role
        old_boot = frames(m, "A", "adv")
        reboot_agent(m, 4, 77)
        m.run(3000)
        m.deafen("A", "M")
        m.run(10000)
        self.assertEqual(mn.agents.table, {})
        self.assertReplaysChangeNothing(m, "M", old_boot, rssi=-20, run=20)

    def test_reboot_under_an_earlier_or_equal_epoch_is_refused_until_it_answers(self):
        # A board that failed to count its boot is indistinguishable from a replay of its
        # previous boot by its broadcasts: those are refused. Its answer to a solicitation
        # echoes a live challenge, which no recording can: that one is taken (the window heals,
        # docs/CORE.md "Security rules").
        m = cell(epoch=5)
        mn = m.stations["M"].role
        old = m.stations["A"].role.nonce
        reboot_agent(m, 5, 55)
        m.run(3000)
        k = ipv4.addr_key(addr(1), 0)
        self.assertTrue(any(e[3]["reason"] == "replay" for e in m.logged("reject", "M")))
        m.run(15000)
        self.assertEqual(mn.agents.window.held(k)[1], m.stations["A"].role.nonce)
        self.assertNotEqual(old, m.stations["A"].role.nonce)
        self.assertIsNotNone(mn.serving)


class RegistrationReplayTest(unittest.TestCase):
    def test_registration_replayed_after_the_binding_expired_is_refused(self):
        m = cell()
        a = m.stations["A"].role
        req = frames(m, "M", "req")[0]
        m.deafen("A", "M")
        m.run(70000)  # the node is gone: its binding expires at the agent
        self.assertEqual(a.bindings, {})
        m.inject("A", ATTACKER, req)  # from its own MAC: the request names another
        m.run(5)
        self.assertEqual(a.bindings, {})
        self.assertEqual(m.logged("reject", "A")[-1][3]["reason"], "mac")
        m.inject("A", m.stations["M"].mac, req)  # under the node's MAC (spoofed)
        m.run(5)
        self.assertEqual(a.bindings, {})
        # the advertisement it echoes is 70 s old: refused before its counter is looked at
        # (which refuses it too: test_cell_security.py)
        self.assertEqual(m.logged("reject", "A")[-1][3]["reason"], "stale")

    def test_registration_replayed_after_agent_reboot_is_refused(self):
        m = cell(epoch=1)
        req = frames(m, "M", "req")[0]
        reboot_agent(m, 2, 42)
        a = m.stations["A"].role
        m.deafen("A", "M")
        m.inject("A", ATTACKER, req)
        m.run(5)
        self.assertEqual(a.bindings, {})


class HostReplyReplayTest(_ReplayCase):
    def pair(self, epoch2):
        m = Medium()
        m.capture = []
        m.add("M1", MobileNode(config(11), make_rand(11), m.now))
        m.add("M2", MobileNode(config(12, epoch=epoch2), make_rand(12), m.now), b"\x02\xbb\0\0\0\2")
        m.hear("M1", "M2", -60)
        m.run(3000)
        return m

    def test_host_reply_replayed_after_the_host_was_lost_changes_nothing(self):
        m = self.pair(1)
        mn = m.stations["M1"].role
        olds = frames(m, "M2", "host")
        self.assertTrue(olds)
        m.deafen("M1", "M2")
        m.run(40000)  # the host reply's lifetime runs out
        self.assertEqual(mn.direct.table, {})
        self.assertReplaysChangeNothing(m, "M1", olds)

    def test_host_reply_of_an_earlier_boot_is_refused(self):
        m = self.pair(1)
        mn = m.stations["M1"].role
        olds = frames(m, "M2", "host")
        # M2 reboots with a counted boot: its replies are taken again
        m.add("M2", MobileNode(config(12, epoch=2), make_rand(13), m.now), b"\x02\xbb\0\0\0\2")
        m.deafen("M1", "M2")
        m.run(40000)
        m.hear("M1", "M2", -60)
        m.run(12000)  # solicitations back off to one per 8 s
        k = ipv4.addr_key(addr(12), 0)
        self.assertIn(k, mn.direct.table)
        self.assertEqual(mn.direct.window.held(k)[1] >> 16, 2)
        m.deafen("M1", "M2")
        m.run(40000)
        self.assertEqual(mn.direct.table, {})
        self.assertReplaysChangeNothing(m, "M1", olds)


class WindowVerdictTest(unittest.TestCase):
    def test_replayed_frames_get_replay_verdicts(self):
        # the unit rule under the tests above, on the decoded frames of two boots
        m = cell(epoch=10)
        boot10 = [decode_adv(f) for f in frames(m, "A", "adv")]
        m.capture = []
        reboot_agent(m, 11, 123)
        m.run(3000)
        boot11 = [decode_adv(f) for f in frames(m, "A", "adv")]
        w = advreplay.AdvWindow()
        for adv in boot10:
            w.accept(1, adv.seq, adv.nonce, 0)
        for adv in boot11:
            self.assertNotEqual(w.accept(1, adv.seq, adv.nonce, 0), advreplay.REPLAY)
        for adv in boot10 + boot11:
            self.assertEqual(w.accept(1, adv.seq, adv.nonce, 0), advreplay.REPLAY)


if __name__ == "__main__":
    unittest.main()

"""A datagram whose unicast failed is sent again after a fade's time (docs/CORE.md "Sent
again"): by the agent to a node at the edge of its cell, by a node to its agent; a few times at
most, in a few slots at most; never by the Mobile IPv4 baseline."""

import unittest

from medium import Medium, config, make_rand

from mobility import actions
from mobility.agent import Agent
from mobility.host import Host
from mobility.mobile import MobileNode


def cell(policy="roam", hold=None):
    """Agent A, nodes M and C bound to it; ``hold``: the config key of every role."""
    extra = {} if hold is None else {"hold": hold}
    m = Medium()
    m.add("A", Agent(config(1, **extra), make_rand(1), m.now))
    m.add("M", MobileNode(config(11, policy=policy, **extra), make_rand(11), m.now))
    m.add("C", MobileNode(config(12, policy=policy, **extra), make_rand(12), m.now))
    m.hear("A", "M", -60)
    m.hear("A", "C", -60)
    m.run(3000)
    return m


def failing(m, sender, tag, times):
    """Make the first ``times`` unicasts by ``sender`` of datagrams tagged ``tag`` fail (a
    fade, a collision with a hidden sender); returns the list of their times."""
    tries = []

    def lose(node, mac, data):
        if node == sender and len(data) > 34 and bytes(data[28:-6]) == tag:
            tries.append(m.t)
            return len(tries) <= times
        return False

    m.lose = lose
    return tries


def sent(role, tag):
    """Copies of the frames ``role`` sent (SEND actions in its out buffer) that carry ``tag``."""
    out = role.out
    return [
        bytearray(out.data[i])
        for i in range(out.n)
        if out.kind[i] == actions.SEND and tag in bytes(out.data[i])
    ]


class SentAgainTest(unittest.TestCase):
    def test_the_agent_sends_a_datagram_again_after_a_failed_unicast(self):
        # A's unicast to C fails once (before: the datagram was lost; the node, which only
        # receives, cannot know); sent again after a fade's time, it arrives once
        m = cell()
        tries = failing(m, "A", b"d", 1)
        m.send("M", "10.0.0.12", b"d000001")
        m.run(1000)
        self.assertEqual(m.received("C", b"d"), [b"d000001"])
        self.assertEqual(len(tries), 2)
        self.assertGreaterEqual(tries[1] - tries[0], 50)  # a new fade, not the same one
        self.assertLess(tries[1] - tries[0], 150)
        self.assertEqual(m.logged("agent_lost"), [])  # nobody moved for it

    def test_a_node_sends_its_datagram_again_after_a_failed_unicast(self):
        m = cell()
        tries = failing(m, "M", b"u", 1)
        m.send("M", "10.0.0.12", b"u000001")
        m.run(1000)
        self.assertEqual(m.received("C", b"u"), [b"u000001"])
        self.assertEqual(len(tries), 2)
        self.assertEqual(m.stations["M"].role.serving.addr[3], 1)  # one failure: still bound

    def test_a_datagram_is_sent_again_three_times_at_most_each_wait_longer(self):
        # 50-100 ms, then 200-400, then 800-1,600: a fade passes at the first, a node that is
        # handing off has registered elsewhere by the last (city seed 7)
        m = cell()
        tries = failing(m, "A", b"n", 100)
        m.send("M", "10.0.0.12", b"n000001")
        m.run(4000)
        self.assertEqual(len(tries), 4)  # the first send and three more
        for i, least in enumerate((50, 200, 800)):  # (MicroPython's zip takes no strict=)
            wait = tries[i + 1] - tries[i]
            self.assertGreaterEqual(wait, least)
            self.assertLess(wait, 2 * least + 20)  # (+ the medium's latency)
        self.assertEqual(m.received("C", b"n"), [])
        self.assertEqual([h[0] for h in m.stations["A"].role._held], [None] * 4)  # all free

    def test_at_most_hold_datagrams_are_held(self):
        # 10 datagrams fail at once: 4 slots, the others are not held (nothing grows)
        m = cell()
        tries = failing(m, "A", b"h", 100)
        for i in range(10):
            m.send("M", "10.0.0.12", b"h%06d" % i)
        m.run(4000)
        self.assertEqual(len(m.stations["A"].role._held), 4)
        self.assertEqual(len(tries), 10 + 4 * 3)

    def test_control_messages_are_not_sent_again(self):
        # a registration reply that fails is not repeated: the node's request has retries
        m = cell()
        a = m.stations["A"].role
        a._hold(m.now, 0, bytearray(b"\x45" + bytes(30)))  # not UDP
        self.assertEqual(a.again_at, None)

    def test_the_baseline_sends_nothing_again(self):
        m = cell("mip4", hold=0)
        tries = failing(m, "A", b"b", 1)
        m.send("M", "10.0.0.12", b"b000001")
        m.run(1000)
        self.assertEqual(m.received("C", b"b"), [])
        self.assertEqual(len(tries), 1)


if __name__ == "__main__":
    unittest.main()


class LateFailureTest(unittest.TestCase):
    """A failure that comes back after _HOLD_MS (the frame waited in a busy channel's transmit
    queue) belongs to the copy sent again: its tries go on, and the datagram is given up after
    three more sends. Before, the slot had been freed, the late failure was held as a new
    datagram with its tries at 0, and the datagram went round until its TTL ran out (city
    seed 2: 429 datagrams sent 5 to 30 times, a node that had gone never given up)."""

    def test_a_late_failure_counts_with_the_tries_already_made(self):
        mac = b"\x02\x00\x00\x00\x00\x0c"
        h = Host(config(5, neighbours={"10.0.0.12": mac}), make_rand(5), 0)
        h.out.clear()
        frame = h.datagram(b"\x0a\x00\x00\x0c", b"late01")
        now = 0
        h.on_link_failure(now, actions.IF_RADIO, mac, bytearray(frame))
        sends = 0
        for _ in range(40):  # 40 rounds: a datagram that is never given up shows
            wake = h.again_at
            if wake is None:
                break
            now = wake
            h.out.clear()
            h.on_timer(now)
            copies = sent(h, b"late01")
            sends += len(copies)
            if copies:
                now += 120  # the failure comes back 120 ms later: after _HOLD_MS
                h.on_timer(now - 60)  # (the slot's 50 ms pass meanwhile)
                h.on_link_failure(now, actions.IF_RADIO, mac, copies[0])
        self.assertEqual(sends, 3)
        self.assertIsNone(h.again_at)

    def test_a_late_failure_after_its_slot_was_taken_still_counts_its_tries(self):
        """The quiet slot of a copy sent again once is taken by another datagram before that
        copy's failure comes back: the datagram goes on with the tries it had (two more
        sends), not from 0 (city seed 20: a datagram sent six times, never given up)."""
        mac = b"\x02\x00\x00\x00\x00\x0c"
        h = Host(config(5, neighbours={"10.0.0.12": mac}, hold=2), make_rand(5), 0)
        h.out.clear()
        dst = b"\x0a\x00\x00\x0c"
        a, c, d = (bytearray(h.datagram(dst, tag)) for tag in (b"lateAA", b"lateCC", b"lateDD"))

        h.on_link_failure(0, actions.IF_RADIO, mac, bytearray(a))
        h.on_link_failure(0, actions.IF_RADIO, mac, bytearray(c))
        late, c_again, now = None, False, 0
        while late is None or not c_again:  # each sent again once (and not failing: yet)
            now = h.again_at
            h.out.clear()
            h.on_timer(now)
            late = late or (sent(h, b"lateAA") or [None])[0]
            c_again = c_again or bool(sent(h, b"lateCC"))
        now += 60
        h.on_timer(now)  # both slots quiet
        h.on_link_failure(now, actions.IF_RADIO, mac, bytearray(d))  # takes A's slot
        h.on_link_failure(now, actions.IF_RADIO, mac, late)  # A's failure, late
        sends = 0
        for _ in range(40):
            now = h.again_at
            if now is None:
                break
            h.out.clear()
            h.on_timer(now)
            for frame in sent(h, b"lateAA"):
                sends += 1
                h.on_link_failure(now, actions.IF_RADIO, mac, frame)
        self.assertEqual(sends, 2)

    def test_another_datagram_of_the_same_source_starts_its_own_tries(self):
        """A remembered copy is known by its source and IP identification: a later datagram
        from the same source is sent again three times, not with the remembered copy's tries."""
        mac = b"\x02\x00\x00\x00\x00\x0c"
        h = Host(config(5, neighbours={"10.0.0.12": mac}, hold=1), make_rand(5), 0)
        dst = b"\x0a\x00\x00\x0c"
        a, b, c = (bytearray(h.datagram(dst, tag)) for tag in (b"sameAA", b"sameBB", b"sameCC"))
        self.assertNotEqual(a[4:6], b[4:6])  # one identification per datagram
        h.on_link_failure(0, actions.IF_RADIO, mac, a)
        now = h.again_at
        h.on_timer(now)  # A sent again once
        now += 60
        h.on_timer(now)  # A's slot quiet
        h.on_link_failure(now, actions.IF_RADIO, mac, b)  # takes it: A remembered
        h.on_link_failure(now, actions.IF_RADIO, mac, c)  # every slot taken: given up
        for _ in range(40):  # B: sent again, gets through
            if h.again_at is None:
                break
            now = h.again_at
            h.on_timer(now)
        h.out.clear()
        c = bytearray(h.datagram(dst, b"sameDD"))
        h.on_link_failure(now, actions.IF_RADIO, mac, c)
        sends = 0
        for _ in range(40):
            if h.again_at is None:
                break
            now = h.again_at
            h.out.clear()
            h.on_timer(now)
            for frame in sent(h, b"sameDD"):
                sends += 1
                h.on_link_failure(now, actions.IF_RADIO, mac, frame)
        self.assertEqual(sends, 3)

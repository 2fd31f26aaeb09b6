"""driver.py's radio loop on a real agent: a datagram for a local binding goes on at once in the
same buffer (Agent.forward_in_cell), an unacknowledged send goes back to the core, a send that
raises is logged, everything else goes to on_frame; forwarding allocates nothing beyond the
link's own receive. MicroPython only: the driver runs on its clock (time.ticks_ms) and asyncio.

The loop is run as a board runs it, ``Driver.radio_rx``; the test's link never makes it wait,
and ends the loop with ``Done`` when its frames are used up.
"""

import sys
import unittest

IS_MPY = sys.implementation.name == "micropython"
# the protocol core's in-test medium builds the agent and registers its nodes (on a board:
# there with `roam test --core`)
sys.path.append(__file__.rsplit("/", 2)[0] + "/core")
try:
    import medium
except ImportError:
    medium = None

APP_PORT = 5000


class Done(Exception):
    pass


class Link:
    """A link whose frames are queued beforehand; ``answer``: what send returns (or raises)."""

    def __init__(self, frames, answer=True):
        self.frames = list(frames)
        self.answer = answer
        self.sent = []

    async def arecv(self):
        if not self.frames:
            raise Done
        return self.frames.pop(0)

    def send(self, mac, data):
        self.sent.append((mac, data))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def rssi(self, mac):
        return -50


class Log:
    def __init__(self):
        self.events = []

    def event(self, name, fields=None, now=None):
        self.events.append((name, fields))

    def named(self, name):
        return [f for n, f in self.events if n == name]


def run(loop):
    try:
        loop.send(None)
    except Done:
        return
    raise AssertionError("the loop waited")


@unittest.skipUnless(IS_MPY, "the driver runs on MicroPython")
@unittest.skipUnless(medium, "needs tests/core (roam test --core)")
class RadioLoopTest(unittest.TestCase):
    def setUp(self):
        from medium import Medium, addr, config, make_rand

        from mobility.agent import Agent
        from mobility.mobile import MobileNode

        m = Medium()
        m.add("A", Agent(config(1), make_rand(1), m.now))
        for i in (1, 2):
            m.add("M%d" % i, MobileNode(config(10 + i), make_rand(1 + i), m.now))
            m.hear("A", "M%d" % i, -55)
        m.run(3000)
        self.medium = m
        self.agent = m.stations["A"].role
        self.m1 = m.stations["M1"].mac
        self.m2 = m.stations["M2"].mac
        self.addr = addr

    def datagram(self, dst=12, payload=b"to m2", port=APP_PORT):
        from mobility import ipv4

        return bytearray(ipv4.udp(self.addr(11), self.addr(dst), port, port, payload))

    def driver(self, link):
        from driver import Driver

        log = Log()
        return Driver(self.agent, link, log, clock=lambda: self.medium.now), log

    def test_a_datagram_for_a_local_binding_goes_on_in_the_same_buffer(self):
        pkt = self.datagram()
        link = Link([(self.m1, pkt)])
        drv, log = self.driver(link)
        run(drv.radio_rx())
        self.assertEqual(len(link.sent), 1)
        mac, data = link.sent[0]
        self.assertEqual(mac, self.m2)
        self.assertIs(data, pkt)  # the receive buffer itself, its TTL decremented
        self.assertEqual(pkt[8], 63)
        self.assertEqual(self.agent.out.n, 0)
        self.assertEqual(log.events, [])

    def test_an_unacknowledged_send_goes_back_to_the_core(self):
        pkt = self.datagram()
        link = Link([(self.m1, pkt)], answer=False)
        drv, _log = self.driver(link)
        run(drv.radio_rx())
        self.assertEqual(len(link.sent), 1)
        # the agent holds a copy and sends it again after a fade's time (Node._hold), among
        # its advertisements
        from mobility import ticks

        link.answer = True
        link.sent = []
        start = self.medium.now
        again = []
        while not again:
            wake = self.agent.next_wake()
            self.assertLess(ticks.diff(wake, start), 5000, "not sent again")
            self.agent.on_timer(wake)
            drv.run_actions(wake)
            again = [d for mac, d in link.sent if mac == self.m2]
        self.assertEqual(len(again), 1)
        self.assertEqual(bytes(again[0][28:]), b"to m2")

    def test_a_send_that_raises_is_logged_and_the_loop_goes_on(self):
        link = Link([(self.m1, self.datagram()), (self.m1, self.datagram())])
        link.answer = OSError(12, "ESP_ERR_ESPNOW_NO_MEM")
        drv, log = self.driver(link)
        run(drv.radio_rx())
        self.assertEqual(len(link.sent), 2)
        self.assertEqual(len(log.named("send_error")), 2)

    def test_a_datagram_without_a_local_binding_goes_to_the_core(self):
        link = Link([(self.m1, self.datagram(dst=99))])
        drv, log = self.driver(link)
        run(drv.radio_rx())
        self.assertEqual(link.sent, [])
        drops = log.named("drop")
        self.assertEqual(len(drops), 1)
        self.assertEqual(drops[0]["reason"], "no_route")

    def test_the_field_service_takes_only_what_is_not_for_a_local_binding(self):
        # a datagram to port 4345 (the field service's) for a node bound here goes on like any
        # other; one addressed beyond the cell (here: to the agent, a LOG, on a board without
        # a backbone and not an update message) is the field service's, never the core's
        log_frame = self.datagram(dst=1, payload=b"\x01" + bytes(40), port=4345)
        to_m2 = self.datagram(port=4345)
        link = Link([(self.m1, log_frame), (self.m1, to_m2)])
        drv, log = self.driver(link)
        run(drv.radio_rx())
        self.assertEqual(link.sent, [(self.m2, to_m2)])
        self.assertEqual((log.events, self.agent.out.n), ([], 0))

    def test_forwarding_allocates_nothing_beyond_the_links_receive(self):
        import gc

        import micropython

        n = 50  # (each forward decrements the one buffer's TTL: 64 down to 14)

        async def bare(link):
            while True:
                mac, msg = await link.arecv()
                link.send(mac, msg)

        def allocated(make):
            pkt = self.datagram()
            link = Link([(self.m1, pkt)] * n)
            link.sent = Sink()
            loop = make(link)
            gc.collect()
            before = micropython.mem_total()
            run(loop)
            return micropython.mem_total() - before

        class Sink:
            def append(self, item):
                pass

        def forward(link):
            return self.driver(link)[0].radio_rx()

        self.assertEqual(allocated(forward), allocated(bare))


if __name__ == "__main__":
    unittest.main()

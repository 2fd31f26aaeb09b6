"""A tiny test-only role family for the simulator's own tests (engine, radio, traffic, metrics).

It speaks the sans-I/O contract (docs/DESIGN.md) with real IPv4/UDP datagrams but no protocol:
an "agent" broadcasts a beacon every 100 ms; every other node broadcasts its application
datagrams and delivers those addressed to it. It lets the simulator be tested without depending
on the protocol core's behaviour.
"""

from mobility import ipv4
from mobility.actions import BROADCAST, IF_RADIO, Actions

TICKS = (1 << 30) - 1


class ToyRole:
    def __init__(self, addr, beacon, rand, now):
        self.addr = addr
        self.beacon = beacon
        self.out = Actions()
        self.wake = (now + rand(6)) & TICKS if beacon else None
        self.heard = 0
        self.failures = 0

    def next_wake(self):
        return self.wake

    def on_timer(self, now):
        if self.beacon:
            self.out.send(IF_RADIO, BROADCAST, ipv4.udp(self.addr, ipv4.BCAST_ADDR, 9, 9, b"b"))
            self.out.log("beacon", {"n": 1})
            self.wake = (now + 100) & TICKS

    def on_frame(self, now, iface, mac, rssi, frame):
        self.heard += 1
        h = ipv4.decode(frame)
        if h.dst == self.addr:
            self.out.deliver(frame)

    def on_send(self, now, dst, payload):
        self.out.send(IF_RADIO, BROADCAST, ipv4.udp(self.addr, dst, 5000, 5000, payload))

    def on_link_failure(self, now, iface, mac, frame=None):
        self.failures += 1


class ToyFactory:
    def prepare(self, world):
        pass

    def make(self, world, nd, now):
        import random

        r = random.Random(world.seed * 1000 + nd.idx * 10 + nd.boot)
        return ToyRole(nd.addr, nd.kind == "agent", r.getrandbits, now)

"""MicroPython side of bench/core_cost.py: forwarding inside a cell, allocation and time.

A simulated ESP-NOW driver: ``irecv()`` hands out a reused receive buffer holding a datagram
from node 10.0.0.100 to node 10.0.0.101 (as the radio fills it: a fresh TTL and checksum each
time, no allocation), ``send(mac, buf)`` takes the bytes (counts them). Two loops, side by side
in one run, several rounds alternating:
* bare: receive, re-send the same bytes to a fixed MAC;
* forward: receive, ``agent.on_frame`` (the core looks up the local binding, decrements the TTL
  in place and emits a SEND of the same buffer), run the SEND actions, clear them.
Allocation: ``micropython.mem_total()`` delta (bytes allocated) over N datagrams.
Prints one JSON line.
"""

import gc
import sys
import time

import micropython

from mobility import ipv4, registration, ticks
from mobility.agent import Agent

KEY = b"cell key of the benchmark"
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5


def rand_factory():
    state = [99]

    def rand(bits):
        x = state[0]
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        state[0] = x
        return x >> (32 - bits)

    return rand


class Radio:
    """The driver side: a reused receive buffer and a send that takes the bytes."""

    def __init__(self, frame, src_mac):
        self.buf = bytearray(frame)
        self.ttl = frame[8]
        self.c0 = frame[10]
        self.c1 = frame[11]
        self.msg = [src_mac, self.buf]  # like espnow.irecv(): one reused list
        self.sent = 0
        self.sent_bytes = 0

    def irecv(self):
        b = self.buf  # the radio wrote a fresh copy of the frame: TTL and checksum as sent
        b[8] = self.ttl
        b[10] = self.c0
        b[11] = self.c1
        return self.msg

    def send(self, mac, buf):
        self.sent += 1
        self.sent_bytes += len(buf)


def setup():
    now = ticks.PERIOD - 1000
    a = Agent({"node_id": 1, "address": "10.0.0.1", "keys": {0x100: KEY}}, rand_factory(), now)
    for i, last in enumerate((100, 101)):
        home = bytes([10, 0, 0, last])
        req = registration.RegRequest(
            src=home, dst=a.address, lifetime=600, home=home, coa=a.address,
            ident=(a.nonce << 32) | 1,
        )
        a.on_frame(now, 0, bytes([2, 0, 0, 0, 0, 10 + i]), -50,
                   bytearray(registration.encode_request(req, KEY)))
        a.out.clear()
    if len(a.bindings) != 2:
        raise SystemExit("bindings not made")
    frame = ipv4.udp(bytes([10, 0, 0, 100]), bytes([10, 0, 0, 101]), 5000, 5000, b"d" * 64)
    return a, now, frame


def bare(radio, n):
    dst = b"\x02\x00\x00\x00\x00\x0b"
    for _ in range(n):
        msg = radio.irecv()
        radio.send(dst, msg[1])


def forward(radio, agent, now, n):
    # Written as a driver must be on MicroPython: a method called through its object (a bound
    # method kept in a variable allocates its arguments when called), a while loop over the
    # actions.
    out = agent.out
    for _ in range(n):
        msg = radio.irecv()
        agent.on_frame(now, 0, msg[0], -50, msg[1])
        i = 0
        while i < out.n:
            if out.kind[i] == 0:
                radio.send(out.mac[i], out.data[i])
            i += 1
        out.clear()


def measure(fn, *args):
    gc.collect()
    a0 = micropython.mem_total()
    t0 = time.ticks_us()
    fn(*args)
    t1 = time.ticks_us()
    a1 = micropython.mem_total()
    return time.ticks_diff(t1, t0), a1 - a0


def main():
    agent, now, frame = setup()
    radio = Radio(frame, b"\x02\x00\x00\x00\x00\x0a")
    forward(radio, agent, now, 100)  # warm up: a forwarded frame reaches node 101's MAC
    if radio.sent != 100 or agent.out.n != 0:
        raise SystemExit("forwarding did not happen")
    t_bare = []
    t_fwd = []
    a_bare = 0
    a_fwd = 0
    for _ in range(ROUNDS):
        t, a = measure(bare, radio, N)
        t_bare.append(t)
        a_bare = a
        radio.sent = 0
        t, a = measure(forward, radio, agent, now, N)
        t_fwd.append(t)
        a_fwd = a
        if radio.sent != N:
            raise SystemExit("forwarded %d of %d" % (radio.sent, N))
    t_bare.sort()
    t_fwd.sort()
    print(
        '{"n": %d, "rounds": %d, "bare_us": %d, "forward_us": %d, "bare_alloc": %d, '
        '"forward_alloc": %d}' % (N, ROUNDS, t_bare[ROUNDS // 2], t_fwd[ROUNDS // 2], a_bare, a_fwd)
    )


main()

"""MicroPython side of bench/core_cost.py: forwarding inside a cell, allocation and time.

Two receive loops run side by side in one process, alternating over several rounds, both
coroutines awaiting the link's ``arecv`` as a board's do:
* bare: receive a frame into the reused buffer, re-send the same bytes (and, for reference, the
  same without awaiting the link: ``bare_sync``);
* forward: the board's own loop, ``Driver.radio_rx`` of firmware/driver.py
  (``Agent.forward_in_cell``: the local binding found, the TTL decremented in place; the send of
  the same buffer on the link; the clock and the look for another board's log only for what is
  not forwarded).
The datagram goes from node 10.0.0.100 to node 10.0.0.101, both bound to the agent. A loop ends
when its batch is done (``arecv`` raises ``Done``); the link never makes it wait, so each loop
runs to its end in one step of its coroutine, without an event loop.

Two link layers:
* socket: UDP on the loopback, what a virtual board's link is (the air carries frames as UDP):
  ``readinto`` the reused buffer, ``sendto``. Frames are queued in batches beforehand, so only
  the receive and re-send are timed.
* memory: a simulated ESP-NOW driver whose receive only refreshes the TTL/checksum bytes of the
  reused buffer and whose send only counts: no I/O cost at all, so it shows the core's own cost.
Allocation: ``micropython.mem_total()`` delta (bytes allocated) over the timed datagrams; both
loops allocate the ``arecv`` coroutine per datagram, so forwarding's own is the difference.
Prints one JSON line.
"""

import gc
import socket
import sys
import time

import micropython
from driver import Driver

from mobility import auth, ipv4, registration, request, ticks
from mobility.agent import Agent

KEY = b"cell key of the benchmark"
SECRET = b"binding secret of the benchmark"  # agents derive each node's binding key from it
AGENT_MAC = b"\x02\x00\x00\x00\x00\x01"
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
PORT = int(sys.argv[3]) if len(sys.argv) > 3 else 47310
BATCH = 100  # frames queued per batch (well inside a UDP receive buffer)
SRC_MAC = b"\x02\x00\x00\x00\x00\x0a"
DST_MAC = b"\x02\x00\x00\x00\x00\x0b"


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


class Done(Exception):
    """The batch is done: ends a receive loop."""


class Link:
    """What both radios share: a board link's ``arecv`` over their ``irecv``, for ``left``
    more frames."""

    left = 0

    async def arecv(self):
        if self.left == 0:
            raise Done
        self.left -= 1
        return self.irecv()


class MemoryRadio(Link):
    """A reused receive buffer the 'radio' refreshes, a send that counts."""

    def __init__(self, frame):
        self.buf = bytearray(frame)
        self.ttl = frame[8]
        self.c0 = frame[10]
        self.c1 = frame[11]
        self.msg = [SRC_MAC, self.buf]  # like espnow.irecv(): one reused list
        self.sent = 0

    def prepare(self, n):
        self.left = n

    def irecv(self):
        b = self.buf  # the radio wrote a fresh copy of the frame: TTL and checksum as sent
        b[8] = self.ttl
        b[10] = self.c0
        b[11] = self.c1
        return self.msg

    def send(self, mac, buf):
        self.sent += 1
        return True

    def rssi(self, mac):
        return -50


class SocketRadio(Link):
    """UDP on the loopback: a source queues frames, the node receives into its reused buffer
    and re-sends to a sink (never read: the kernel drops what overflows, as the air would)."""

    def __init__(self, frame, port):
        def ai(p):
            return socket.getaddrinfo("127.0.0.1", p)[0][-1]

        self.frame = frame
        self.src = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.node = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.node.bind(ai(port))
        self.sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sink.bind(ai(port + 1))
        self.node_addr = ai(port)
        self.sink_addr = ai(port + 1)
        self.buf = bytearray(len(frame))
        self.msg = [SRC_MAC, self.buf]
        self.sent = 0

    def prepare(self, n):
        for _ in range(n):
            self.src.sendto(self.frame, self.node_addr)
        self.left = n

    def irecv(self):
        self.node.readinto(self.buf)
        return self.msg

    def send(self, mac, buf):
        self.node.sendto(buf, self.sink_addr)
        self.sent += 1
        return True

    def rssi(self, mac):
        return -50


class Log:
    """The driver's log: nothing on the forwarding path writes to it (counted to make sure)."""

    def __init__(self):
        self.events = 0

    def event(self, name, fields, now=None):
        self.events += 1


def setup():
    now = ticks.PERIOD - 1000
    keys = {0x100: KEY, auth.SPI_NODE_SECRET: SECRET}
    cfg = {"node_id": 1, "address": "10.0.0.1", "keys": keys, "mac": AGENT_MAC}
    a = Agent(cfg, rand_factory(), now)
    a.beacon.next_at = now  # an advertisement first: a request echoes its sequence
    a.beacon.on_timer(now)
    for i, last in enumerate((100, 101)):
        home = bytes([10, 0, 0, last])
        req = registration.RegRequest(
            src=home,
            dst=a.address,
            lifetime=600,
            home=home,
            coa=a.address,
            ident=(a.nonce << 32) | 1,
            node_mac=bytes([2, 0, 0, 0, 0, 10 + i]),
            agent_mac=AGENT_MAC,
            agent_seq=a.beacon.last_seq,
        )
        a.on_frame(
            now,
            0,
            bytes([2, 0, 0, 0, 0, 10 + i]),
            -50,
            bytearray(request.encode_request(req, auth.node_key(SECRET, home))),
        )
        a.out.clear()
    if len(a.bindings) != 2:
        raise SystemExit("bindings not made")
    frame = ipv4.udp(bytes([10, 0, 0, 100]), bytes([10, 0, 0, 101]), 5000, 5000, b"d" * 64)
    return a, now, frame


async def bare(radio):
    while True:
        mac, msg = await radio.arecv()
        radio.send(DST_MAC, msg)


async def bare_sync(radio):
    # the same without awaiting the link (no coroutine per datagram): what a loop that had the
    # board to itself could do; a board's firmware cannot (its timers and other links share
    # the event loop), so this is for reference
    while True:
        if radio.left == 0:
            raise Done
        radio.left -= 1
        msg = radio.irecv()
        radio.send(DST_MAC, msg[1])


def run(loop):
    """Run a receive loop to the end of its batch."""
    try:
        loop.send(None)
    except Done:
        return
    raise SystemExit("a receive loop waited")


def measure(radio, loop):
    """Time and allocation of ``loop()`` over N datagrams, in batches of BATCH (queued
    beforehand)."""
    us = 0
    alloc = 0
    done = 0
    while done < N:
        n = BATCH if N - done > BATCH else N - done
        radio.prepare(n)
        coro = loop()
        gc.collect()
        a0 = micropython.mem_total()
        t0 = time.ticks_us()
        run(coro)
        t1 = time.ticks_us()
        alloc += micropython.mem_total() - a0
        us += time.ticks_diff(t1, t0)
        done += n
    return us, alloc


def compare(radio, drv):
    t_bare = []
    t_sync = []
    t_fwd = []
    a_bare = a_fwd = 0

    def bare_loop():
        return bare(radio)

    def sync_loop():
        return bare_sync(radio)

    for _ in range(ROUNDS):
        t, a_bare = measure(radio, bare_loop)
        t_bare.append(t)
        t_sync.append(measure(radio, sync_loop)[0])
        radio.sent = 0
        t, a_fwd = measure(radio, drv.radio_rx)
        t_fwd.append(t)
        if radio.sent != N:
            raise SystemExit("forwarded %d of %d" % (radio.sent, N))
    t_bare.sort()
    t_sync.sort()
    t_fwd.sort()
    return t_bare[ROUNDS // 2], t_fwd[ROUNDS // 2], a_bare, a_fwd, t_sync[ROUNDS // 2]


def main():
    agent, _now, frame = setup()
    results = []
    for radio in (SocketRadio(frame, PORT), MemoryRadio(frame)):
        log = Log()
        drv = Driver(agent, radio, log)
        radio.prepare(10)
        run(drv.radio_rx())  # warm up; a forwarded frame went to node 101's MAC
        if radio.sent != 10 or agent.out.n != 0 or log.events:
            raise SystemExit("forwarding did not happen")
        results.append(compare(radio, drv))
        if log.events:
            raise SystemExit("the driver logged %d events while forwarding" % log.events)
    (sb, sf, sab, saf, ss), (mb, mf, mab, maf, _ms) = results
    print(
        '{"n": %d, "rounds": %d, "socket_bare_us": %d, "socket_forward_us": %d, '
        '"socket_bare_alloc": %d, "socket_forward_alloc": %d, "memory_bare_us": %d, '
        '"memory_forward_us": %d, "memory_bare_alloc": %d, "memory_forward_alloc": %d, '
        '"socket_bare_sync_us": %d}' % (N, ROUNDS, sb, sf, sab, saf, mb, mf, mab, maf, ss)
    )


main()

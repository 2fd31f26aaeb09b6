"""A backbone board's side of the field service (only boards on the access point load it): the
field socket (UDP port 4345), the collector's address, on an agent the relay of the log frames
of the radio-only boards it serves (fieldlog/relay.py), the collector's REWIND
(fieldlog/wire.py): send the stored log again, and the laptop's update messages
(update/wire.py): for this board (handed to the driver's update service) or, on an agent, in a
RELAY for a radio-only board it relays the log of (sent on by ESP-NOW; that board's answers
come back to whoever asked). fieldlog/setup.py builds it at boot."""

from fieldlog import wire
from mobility import ticks
from mobility.compat import const

# update message types (update/wire.py: that module is loaded only while an update runs)
U_FIRST = const(0x10)
U_STATUS = const(0x11)
U_ACK = const(0x17)
U_RELAY = const(0x1F)
RX_MAX = const(560)  # an update DATA message (512 bytes of a file) with its head and tag
RELAY_RATE = const(100)  # update messages a second an agent sends on by radio, all boards
# (the laptop paces itself below it: hosttools/ota/runner.py)
HEARD_MS = const(15000)  # a board whose log the relay passed this recently is in reach
MAX_ASKERS = const(8)


class Backbone:
    def __init__(self, log, node, key, sock, collector, relayer):
        self.log = log
        self.node = node
        self.key = key  # this board's log key: a REWIND must carry its tag
        self.sock = sock  # bound to port 4345
        self.collector = collector  # its address, or None
        self.relayer = relayer  # fieldlog.relay.Relay on an agent, else None
        self.stream = None  # the board's stream: what a REWIND rewinds
        self.counter = 0  # the last REWIND counter taken in this boot
        self.relay_off = 0  # log frames heard on the radio with no relay to pass them on
        self.radio = None  # the ESP-NOW link (an agent sends RELAYed messages on it)
        self.address = None  # this board's IPv4 address (4 bytes)
        self.on_update = None  # (msg, send(reply)): the driver's update service
        self.clock = None  # time.ticks_ms
        self.askers = {}  # node -> [(ip, port) that sent its last RELAY, when]
        self.u_tokens = RELAY_RATE * 1000
        self.u_at = 0
        self.u_relayed = 0
        self.u_refused = 0  # over the rate
        self.u_lost = 0
        self.oom = 0  # datagrams dropped for want of memory

    def send(self, frame):
        """A LOG frame to the collector: True once the stack took it."""
        try:
            self.sock.sendto(frame, self.collector)
            return True
        except OSError:
            return False

    def relay(self, now, mac, msg):
        """A radio frame to port 4345 from another board: its log, passed on to the collector
        when it checks out, or its answer to an update, passed back to whoever asked."""
        if self.relayer is None:
            self.relay_off += 1
            return
        payload = memoryview(msg)[28:]
        t = payload[0]
        if t == wire.LOG:
            if self.relayer.check(now, payload, mac):
                self.send(payload)
        elif (t == U_STATUS or t == U_ACK) and len(payload) >= 4:
            # only to whoever sent that board a RELAY lately (what a board answers)
            asker = self.askers.get(int.from_bytes(payload[2:4], "big"))
            if asker is not None and ticks.diff(now, asker[1]) < HEARD_MS:
                try:
                    self.sock.sendto(payload, asker[0])
                except OSError:
                    pass

    def _token(self, now):
        """One of RELAY_RATE update messages a second (radio airtime stays with the data)."""
        d = ticks.diff(now, self.u_at)
        if d > 0:
            self.u_tokens = min(RELAY_RATE * 1000, self.u_tokens + d * RELAY_RATE)
            self.u_at = now
        if self.u_tokens < 1000:
            self.u_refused += 1
            return False
        self.u_tokens -= 1000
        return True

    def relay_update(self, now, msg, addr):
        """A RELAY from the laptop: its message to the radio-only board it names, when this
        agent passed that board's log lately (it knows its MAC), within the rate."""
        if self.relayer is None or self.radio is None or len(msg) < 8 + 28:
            return
        node = int.from_bytes(msg[2:4], "big")
        e = self.relayer.nodes.get(node)
        if e is None or e[5] is None or ticks.diff(now, e[4]) > HEARD_MS or not self._token(now):
            return
        if node not in self.askers and len(self.askers) >= MAX_ASKERS:
            oldest = None
            for k in self.askers:
                if oldest is None or ticks.diff(self.askers[k][1], self.askers[oldest][1]) < 0:
                    oldest = k
            del self.askers[oldest]
        self.askers[node] = [addr, now]
        from mobility import ipv4

        inner = memoryview(msg)[8:]
        frame = bytearray(28 + len(inner))
        ipv4.udp_head(
            frame, ipv4.aton(addr[0]), msg[4:8], wire.FIELD_PORT, wire.FIELD_PORT, len(inner)
        )
        frame[28:] = inner
        try:
            if self.radio.send(e[5], frame):
                self.u_relayed += 1
            else:
                self.u_lost += 1  # not acknowledged: the laptop sends it again
        except (OSError, ValueError):
            self.u_lost += 1

    async def serve(self):
        """What the laptop sends to port 4345: REWIND (the stored log once more: roam logs
        --pull), update messages for this board, RELAYs for a radio-only board."""
        import link_wifi

        sock = self.sock
        while True:
            try:
                msg, addr = sock.recvfrom(RX_MAX)
            except OSError:
                await link_wifi._wait_readable(sock)
                continue
            except MemoryError:
                # no block that big just now: this datagram is lost (the laptop sends it
                # again), the board goes on. It is still queued (the buffer comes before the
                # read), so it is read into a few bytes (UDP drops the rest), and the other
                # tasks run before the next try: retried at once, it froze an agent for good.
                self.oom += 1
                import gc

                gc.collect()
                try:
                    sock.recvfrom(8)
                except (OSError, MemoryError):
                    pass
                import asyncio

                await asyncio.sleep_ms(10)
                continue
            if not msg:
                continue
            t = msg[0]
            if t == wire.REWIND:
                self.on_request(msg)
            elif t == U_RELAY:
                self.relay_update(self.clock(), msg, addr)  # addr: (ip text, port)
            elif U_FIRST <= t < U_RELAY and self.on_update is not None:
                self.on_update(msg, lambda reply, a=addr: sock.sendto(reply, a))

    def on_request(self, msg):
        """A REWIND for this board with a fresh counter and its key: the stream goes back."""
        if len(msg) != 24 or msg[0] != wire.REWIND or self.stream is None:
            return
        counter = int.from_bytes(msg[4:8], "big")
        if (
            int.from_bytes(msg[2:4], "big") == self.node
            and counter > self.counter
            and not self.stream.rewound  # one at a time: the collector asks until one is taken
            and wire.verify(self.key, msg)
        ):
            self.counter = counter
            # the stream starts again from the ring's oldest line (after a frame in flight),
            # four times as fast and without jumping ahead until it has caught up
            st = self.stream
            start = (st.store.nums[0], 0, False)
            if st.size:
                st.after = start
            else:
                st.num, st.off, st.cont = start
            st.rewound = True
            self.log.event("log_rewind", {"counter": counter})

    def stats(self, f):
        r = self.relayer
        if r is not None:
            f["relayed"] = r.passed
            f["refused"] = r.refused
            if self.u_relayed or self.u_refused:
                f["updates_relayed"] = self.u_relayed
                f["updates_refused"] = self.u_refused
                f["updates_lost"] = self.u_lost
        if self.relay_off:
            f["relay_off"] = self.relay_off
        if self.oom:
            f["rx_oom"] = self.oom

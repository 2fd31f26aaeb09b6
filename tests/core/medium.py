"""A small in-test medium for the protocol core: several role instances, who hears whom (an
explicit table of RSSI per direction, or positions with a path-loss model), delivery of SEND
actions to the nodes that hear the sender, link-layer failures for a unicast to a node out of
reach, and virtual time that jumps to the earliest next event or wake-up. Runs on MicroPython
and CPython.

Time: ``self.t`` is the virtual elapsed time in ms (an unbounded int, used for ordering); the
roles see ``self.now`` = ``ticks.add(start, t)``, so a medium started at ``2**30 - 5000`` makes
every role's clock wrap after five seconds.
"""

import heapq
import math

from mobility import actions, auth, ipv4, ticks

RADIO = actions.IF_RADIO
BACKBONE = actions.IF_BACKBONE
BCAST = actions.BROADCAST


def make_rand(seed):
    """A seedable ``rand(bits)`` (xorshift32), the randomness roles are built with."""
    state = [(seed * 2654435761 + 1) & 0xFFFFFFFF or 1]

    def rand(bits):
        out = 0
        got = 0
        while got < bits:
            x = state[0]
            x ^= (x << 13) & 0xFFFFFFFF
            x ^= x >> 17
            x ^= (x << 5) & 0xFFFFFFFF
            state[0] = x
            out = (out << 32) | x
            got += 32
        return out >> (got - bits)

    return rand


class Station:
    def __init__(self, name, role, mac):
        self.name = name
        self.role = role
        self.mac = mac
        self.on = True
        self.pos = None
        self.wake_t = 0
        self.inbox = []  # datagrams delivered to the application (bytes), when kept
        self.counts = {}  # payload tag (all but the 6-digit number) -> datagrams delivered
        self.frames_sent = 0


class Medium:
    def __init__(self, start=0, latency_ms=1, seed=7, range_dbm=-90, keep=True):
        self.start = start
        self.keep = keep  # False: count deliveries only (long runs on a small heap)
        self.t = 0
        self.latency = latency_ms
        self.range_dbm = range_dbm
        self.stations = {}
        self.by_mac = {}
        self.heap = []
        self._seq = 0
        self.table = {}  # (from, to) -> rssi: explicit who-hears-whom
        self.noise_db = 0  # +- uniform noise added to every received RSSI
        self.rand = make_rand(seed)
        self.wires = {}  # backbone: (a, b) -> True
        self.events = []  # (t, node, name, fields)
        self.frames = 0
        self.capture = None  # a list to record every transmission in: (t, node, iface, mac, bytes)
        # lose(node, mac, bytes) -> True: that frame is lost on the air (a unicast comes back as
        # a link-layer failure, as after its last retry)
        self.lose = None

    @property
    def now(self):
        return ticks.add(self.start, self.t)

    # --- building the field ---

    def add(self, name, role, mac=None):
        if mac is None:
            i = len(self.stations) + 1
            mac = bytes([2, 0, 0, 0, i >> 8, i & 0xFF])
        st = Station(name, role, mac)
        if getattr(role, "mac", 0) is None:
            role.mac = mac  # what a board's driver passes from its radio (config "mac")
        self.stations[name] = st
        self.by_mac[mac] = st
        self._drain(st)
        return st

    def hear(self, a, b, rssi, both=True):
        """``b`` hears ``a`` at ``rssi`` dBm (and ``a`` hears ``b`` unless both=False)."""
        self.table[(a, b)] = rssi
        if both:
            self.table[(b, a)] = rssi

    def deafen(self, a, b, both=True):
        self.table.pop((a, b), None)
        if both:
            self.table.pop((b, a), None)

    def place(self, name, x, y):
        self.stations[name].pos = (x, y)

    def power(self, name, on):
        st = self.stations[name]
        st.on = on
        if on:
            self._drain(st)

    def wire(self, a, b):
        self.wires[(a, b)] = True
        self.wires[(b, a)] = True

    def rssi(self, a, b):
        """The RSSI at which ``b`` hears ``a`` now (noise excluded), or None (out of reach)."""
        r = self.table.get((a, b))
        if r is None:
            pa = self.stations[a].pos
            pb = self.stations[b].pos
            if pa is None or pb is None:
                return None
            d = math.sqrt((pa[0] - pb[0]) ** 2 + (pa[1] - pb[1]) ** 2)
            r = int(-40 - 25 * math.log10(d if d > 1 else 1))
        return r if r >= self.range_dbm else None

    # --- running ---

    def _push(self, t, kind, name, a, b, c, d):
        self._seq += 1
        heapq.heappush(self.heap, (t, self._seq, kind, name, a, b, c, d))

    def _noise(self):
        if not self.noise_db:
            return 0
        return self.rand(16) % (2 * self.noise_db + 1) - self.noise_db

    def _transmit(self, st, iface, mac, data):
        st.frames_sent += 1
        if self.capture is not None:
            self.capture.append((self.t, st.name, iface, mac, bytes(data)))
        self.frames += 1
        t = self.t + self.latency
        if self.lose is not None and self.lose(st.name, mac, data):
            if mac != BCAST:
                self._push(t, 1, st.name, iface, mac, None, bytearray(data))
            return
        if iface == BACKBONE:
            dst = self.by_mac.get(mac)
            if dst is not None and dst.on and (st.name, dst.name) in self.wires:
                self._push(t, 0, dst.name, iface, st.mac, 0, bytearray(data))
            else:
                self._push(t, 1, st.name, iface, mac, None, bytearray(data))
            return
        if mac == BCAST:
            for other in self.stations.values():
                if other is st or not other.on:
                    continue
                r = self.rssi(st.name, other.name)
                if r is not None:
                    self._push(t, 0, other.name, iface, st.mac, r + self._noise(), bytearray(data))
            return
        dst = self.by_mac.get(mac)
        r = None if dst is None or not dst.on else self.rssi(st.name, dst.name)
        if r is None:
            # no ACK: link-layer failure, the frame handed back as a driver does
            self._push(t, 1, st.name, iface, mac, None, bytearray(data))
        else:
            self._push(t, 0, dst.name, iface, st.mac, r + self._noise(), bytearray(data))

    def _drain(self, st):
        out = st.role.out
        for i in range(out.n):
            k = out.kind[i]
            if k == actions.SEND:
                if st.on:
                    self._transmit(st, out.iface[i], out.mac[i], out.data[i])
            elif k == actions.DELIVER:
                d = out.data[i]
                tag = bytes(d[28:-6])
                st.counts[tag] = st.counts.get(tag, 0) + 1
                if self.keep:
                    st.inbox.append(bytes(d))
            else:
                name, fields = out.data[i]
                self.events.append((self.t, st.name, name, fields))
        out.clear()
        d = ticks.diff(st.role.next_wake(), self.now)
        st.wake_t = self.t + (d if d > 0 else 0)

    def run(self, ms):
        """Advance virtual time by ``ms``, delivering frames and running timers on the way."""
        end = self.t + ms
        while True:
            t_next = self.heap[0][0] if self.heap else None
            for st in self.stations.values():
                if st.on and (t_next is None or st.wake_t < t_next):
                    t_next = st.wake_t
            if t_next is None or t_next > end:
                break
            if t_next > self.t:
                self.t = t_next
            if self.heap and self.heap[0][0] <= self.t:
                self._event(heapq.heappop(self.heap))
                continue
            for st in self.stations.values():
                if st.on and st.wake_t <= self.t:
                    st.role.on_timer(self.now)
                    self._drain(st)
        self.t = end

    def _event(self, ev):
        t, seq, kind, name, a, b, c, d = ev
        st = self.stations[name]
        if not st.on:
            if kind == 2 and c + 1 < d:  # a switched-off node's application keeps its pace
                self._push(self.t + b[1], 2, name, a, b, c + 1, d)
            return
        if kind == 0:
            st.role.on_frame(self.now, a, b, c, d)
        elif kind == 1:
            st.role.on_link_failure(self.now, a, b, d)
        else:  # one datagram of a flow: a = address, b = (tag, interval), c = number, d = count
            st.role.on_send(self.now, a, b[0] + b"%06d" % c)
            if c + 1 < d:
                self._push(self.t + b[1], 2, name, a, b, c + 1, d)
        self._drain(st)

    # --- traffic and inspection ---

    def send(self, name, dst, payload):
        """The application of ``name`` sends ``payload`` to address ``dst`` now."""
        st = self.stations[name]
        st.role.on_send(self.now, ipv4.aton(dst) if isinstance(dst, str) else dst, payload)
        self._drain(st)

    def flow(self, src, dst, interval_ms, count, tag=b"", start_ms=0):
        """Send ``count`` datagrams src -> dst every ``interval_ms`` (payload: tag + number),
        the first ``start_ms`` from now. Scheduled one at a time, so long flows cost no memory."""
        addr = ipv4.aton(dst) if isinstance(dst, str) else dst
        if count > 0:
            self._push(self.t + start_ms, 2, src, addr, (tag, interval_ms), 0, count)

    def inject(self, name, src_mac, frame, rssi=-50, iface=RADIO):
        """Hand ``frame`` to ``name`` now as if sent by ``src_mac`` (an attacker's frame)."""
        st = self.stations[name]
        st.role.on_frame(self.now, iface, src_mac, rssi, bytearray(frame))
        self._drain(st)

    def received(self, name, tag=b""):
        """Application payloads delivered to ``name`` (optionally only those starting with tag)."""
        got = []
        for pkt in self.stations[name].inbox:
            payload = pkt[28:]
            if payload.startswith(tag):
                got.append(payload)
        return got

    def count(self, name, tag):
        """How many datagrams with payload ``tag`` + number were delivered to ``name``."""
        return self.stations[name].counts.get(tag, 0)

    def logged(self, name=None, node=None):
        return [
            e
            for e in self.events
            if (name is None or e[2] == name) and (node is None or e[1] == node)
        ]


# --- building roles for tests ---

CELL_KEY = b"cell key of the test deployment"
NODE_SECRET = b"binding secret of the test infrastructure"
KEYS = {0x100: CELL_KEY}


def node_keys(address, agent=True):
    """The keys of the node at ``address`` (4 bytes or dotted): the cell key, its own binding
    key K_X (SPI 0x101) and, with ``agent``, the infrastructure's binding secret (SPI 0x102,
    what agents hold). The tests' nodes hold all three unless a test says otherwise (an insider
    holds the first two only)."""
    a = ipv4.aton(address) if isinstance(address, str) else bytes(address)
    k = {auth.SPI_CELL: CELL_KEY, auth.SPI_NODE: auth.node_key(NODE_SECRET, a)}
    if agent:
        k[auth.SPI_NODE_SECRET] = NODE_SECRET
    return k


def config(node_id, **extra):
    a = "10.0.0.%d" % node_id
    c = {"node_id": node_id, "address": a, "keys": node_keys(a)}
    for k in extra:
        c[k] = extra[k]
    return c


def addr(node_id):
    return ipv4.aton("10.0.0.%d" % node_id)

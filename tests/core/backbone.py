"""A backbone for region tests: roles joined by point-to-point links, in virtual time.

Each role has a backbone link address (``link_mac(address)``: its IPv4 address and UDP port
4344, as a Wi-Fi peer). A SEND on the backbone reaches the role with that link address when a
link joins the two and it is up; everything sent is recorded in ``frames`` so that tests can
count transmissions and see which nodes handled a datagram. Radio sends (IF_RADIO) are handed to
``radio`` when one is attached (the cell medium of the integrated tests), else dropped and
counted. Runs on CPython and MicroPython.
"""

from mobility import actions, auth, ipv4, publication, ticks

REGION_KEY = b"region key for tests 0123456789"
CELL_KEY = b"cell key for tests 0123456789abc"
NODE_SECRET = b"binding secret for tests 0123456"
PORT = 4344


def link_mac(addr):
    a = ipv4.aton(addr) if isinstance(addr, str) else addr
    return bytes(a) + bytes((PORT >> 8, PORT & 0xFF))


def copy_packet(src, dst, payload, key=REGION_KEY):
    """The packet by which member ``src`` sends publication ``payload`` to member ``dst``
    (addresses as text or 4 bytes), with the hop tag it computes under the region ``key``."""
    s = ipv4.aton(src) if isinstance(src, str) else src
    d = ipv4.aton(dst) if isinstance(dst, str) else dst
    return publication.hop_packet(auth.Keys({auth.SPI_REGION: key}), s, d, payload)


class Rand:
    """Seeded randomness for roles (a 32-bit LCG; deterministic on both Pythons)."""

    def __init__(self, seed=1):
        self.state = seed & 0xFFFFFFFF

    def __call__(self, bits):
        out = 0
        got = 0
        while got < bits:
            self.state = (self.state * 1103515245 + 12345) & 0xFFFFFFFF
            out = (out << 16) | (self.state >> 16)
            got += 16
        return out >> (got - bits)


def region_config(members, edges, me, hosts=None, **options):
    """The region dict of member ``me``: ``members`` addresses, ``edges`` pairs of addresses
    joined by a backbone link (its neighbours are the members at the other end of its edges),
    ``hosts`` {member address: [non-member peer addresses]}, plus options (hold_off_ms, ...)."""
    nbs = []
    for a, b in edges:
        if me in (a, b):
            other = b if a == me else a
            if other in members:
                nbs.append({"addr": other, "iface": actions.IF_BACKBONE, "mac": link_mac(other)})
    cfg = {"name": "test", "members": list(members), "neighbours": nbs}
    if hosts and me in hosts:
        cfg["hosts"] = [
            {"addr": h, "iface": actions.IF_BACKBONE, "mac": link_mac(h)} for h in hosts[me]
        ]
    for k in options:
        cfg[k] = options[k]
    return cfg


def node_config(node_id, address, **extra):
    cfg = {
        "node_id": node_id,
        "address": address,
        "keys": {
            auth.SPI_CELL: CELL_KEY,
            auth.SPI_REGION: REGION_KEY,
            auth.SPI_NODE_SECRET: NODE_SECRET,
        },
    }
    for k in extra:
        cfg[k] = extra[k]
    return cfg


def line(n, prefix="10.0.0."):
    members = [prefix + str(i + 1) for i in range(n)]
    return members, [(members[i], members[i + 1]) for i in range(n - 1)]


def ring(n, prefix="10.0.0."):
    members, edges = line(n, prefix)
    return members, edges + [(members[-1], members[0])]


def grid(w, h, prefix="10.0.0."):
    members = [prefix + str(i + 1) for i in range(w * h)]
    edges = []
    for y in range(h):
        for x in range(w):
            i = y * w + x
            if x + 1 < w:
                edges.append((members[i], members[i + 1]))
            if y + 1 < h:
                edges.append((members[i], members[i + w]))
    return members, edges


class Backbone:
    def __init__(self, now=0):
        self.now = now
        self.roles = {}  # name -> role
        self.names = []
        self._by_mac = {}  # link mac -> name
        self._mac_of = {}  # name -> link mac
        self.links = {}  # (a, b) with a < b -> up (bool)
        self.queue = []  # (dst name, src mac, iface, frame)
        self.frames = []  # (src name, dst name, frame) for every backbone transmission
        self.events = []  # (name, event name, fields)
        self.delivered = {}  # name -> [datagram]
        self.radio = None  # callable(name, iface, mac, data) for IF_RADIO sends
        self.radio_dropped = 0
        self.lost = 0  # backbone sends with no (up) link to the destination

    def add(self, name, role, mac=None):
        mac = link_mac(role.address) if mac is None else mac
        self.roles[name] = role
        self.names.append(name)
        self._by_mac[mac] = name
        self._mac_of[name] = mac
        self.delivered[name] = []
        return role

    def replace(self, name, role):
        """A node restarted: the new role instance takes over its name and link address."""
        self.roles[name] = role

    def _key(self, a, b):
        return (a, b) if a < b else (b, a)

    def connect(self, a, b):
        self.links[self._key(a, b)] = True

    def cut(self, a, b):
        self.links[self._key(a, b)] = False

    def is_up(self, a, b):
        return self.links.get(self._key(a, b), False)

    def collect(self):
        for name in self.names:
            role = self.roles[name]
            out = role.out
            for i in range(out.n):
                kind = out.kind[i]
                if kind == actions.SEND:
                    self._send(name, out.iface[i], out.mac[i], out.data[i])
                elif kind == actions.DELIVER:
                    self.delivered[name].append(bytes(out.data[i]))
                else:
                    ev = out.data[i]
                    self.events.append((name, ev[0], ev[1]))
            out.clear()

    def _send(self, name, iface, mac, data):
        if iface != actions.IF_BACKBONE:
            if self.radio is not None:
                self.radio(name, iface, mac, data)
            else:
                self.radio_dropped += 1
            return
        dst = self._by_mac.get(bytes(mac))
        if dst is None or not self.is_up(name, dst):
            self.lost += 1
            return
        frame = bytes(data)
        self.frames.append((name, dst, frame))
        self.queue.append((dst, self._mac_of[name], iface, frame))

    def settle(self, limit=100000):
        """Deliver queued frames (and what they cause) until nothing is in flight."""
        self.collect()
        n = 0
        while self.queue:
            dst, src_mac, iface, frame = self.queue.pop(0)
            self.roles[dst].on_frame(self.now, iface, src_mac, 0, frame)
            self.collect()
            n += 1
            if n > limit:
                raise RuntimeError("backbone does not settle: a forwarding loop?")

    def run(self, ms):
        """Advance virtual time by ``ms``, running timers as they come due (wrap-safe)."""
        end = ticks.add(self.now, ms)
        self.settle()
        while True:
            wake = None
            for name in self.names:
                w = self.roles[name].next_wake()
                if w is not None and (wake is None or ticks.diff(w, wake) < 0):
                    wake = w
            if wake is None or ticks.diff(wake, end) > 0:
                self.now = end
                return
            if ticks.diff(wake, self.now) > 0:
                self.now = wake
            for name in self.names:
                role = self.roles[name]
                w = role.next_wake()
                if w is not None and ticks.diff(w, self.now) <= 0:
                    role.on_timer(self.now)
            self.settle()

    def event_count(self, event, name=None):
        n = 0
        for who, ev, _ in self.events:
            if ev == event and (name is None or who == name):
                n += 1
        return n

    def _region_payloads(self):
        """[(sender, receiver, UDP payload)] of every frame to the region's port (4344)."""
        found = []
        for src, dst, frame in self.frames:
            h = ipv4.decode(frame)
            if h.proto == ipv4.PROTO_UDP:
                sport, dport, payload = ipv4.decode_udp(h)
                if dport == ipv4.PUB_PORT:
                    found.append((src, dst, payload))
        return found

    def publications(self):
        """[(sender, receiver, Publication)] of every publication frame sent on the backbone."""
        return [
            (src, dst, publication.decode_publication(p))
            for src, dst, p in self._region_payloads()
            if p[0] != publication.MSG_ACK
        ]

    def acks(self):
        """[(sender, receiver, payload)] of every acknowledgement frame sent on the backbone."""
        return [(s, d, p) for s, d, p in self._region_payloads() if p[0] == publication.MSG_ACK]


# --- integrated fields: agents, routers, home agent, hosts and mobile nodes on the cell medium ---

HOME_KEYS = {}  # node id -> home key


def home_key(node_id):
    k = HOME_KEYS.get(node_id)
    if k is None:
        k = (b"home key of node %d " % node_id + b"0123456789abcdef0123456789")[:32]
        HOME_KEYS[node_id] = k
    return k


def keys_for(*home_ids, region=False):
    # (with the binding secret: agents derive every node's binding key, a mobile node its own)
    keys = {auth.SPI_CELL: CELL_KEY, auth.SPI_NODE_SECRET: NODE_SECRET}
    if region:
        keys[auth.SPI_REGION] = REGION_KEY
    for n in home_ids:
        keys[auth.spi_home(n)] = home_key(n)
    return keys


def peer(addr):
    """A backbone peer entry {addr, iface, mac} (Wi-Fi UDP link address)."""
    return {"addr": addr, "iface": actions.IF_BACKBONE, "mac": link_mac(addr)}

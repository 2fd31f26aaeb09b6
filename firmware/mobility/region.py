"""Mobility region: publication of local bindings by flooding, the published-binding table, and
tunnelling across the region's backbone.

A ``Region`` is a component owned by a region member (a foreign agent, or a router that has no
cell). It shares its owner's action buffer and is fed by it:

* the owner's local bindings: ``local_up`` (made or refreshed) and ``local_down`` (ended);
* publications that arrived (UDP 4344): ``on_publication``;
* IP-in-IP packets that arrived: ``on_tunnel`` (forwarded on, or de-tunnelled for the owner);
* its timer: ``on_timer`` / ``next_wake``.

Flooding (docs/REGION.md): an origin signs each publication with the region key; a member
accepts it only when it is new for that origin, by ``(epoch, seq)`` with RFC 1982 comparison,
and then re-sends the *same payload bytes* to every neighbour but the one it came from. So each
member transmits a given publication at most once and the flood ends by itself. The neighbour
the first copy came from is the next hop toward the origin (reverse path of the flood), which is
how tunnels find their way across a multi-hop backbone.

The published-binding table (``BindingTable``) is one bytearray allocated at start-up, an
open-addressing hash table of 8-byte slots: the home address and a packed value (the expiry in
units of 1024 ms, 20 bits, wrapping with the ticks period; the origin's member index, 8 bits).
No object per binding and no allocation or resizing afterwards, so 500 bindings take 8 KiB
whatever the heap's fragmentation.
"""

from mobility import auth, ipv4, publication, ticks, tunnel
from mobility.errors import DecodeError, FrameTooLarge

try:
    from micropython import const
except ImportError:

    def const(x):  # type: ignore[misc]
        return x


DEFAULT_HOLD_OFF_MS = const(2000)  # changes are batched this long before they are published
DEFAULT_REPUBLISH_MS = const(30000)  # period of the full snapshot
DEFAULT_DUP_HOLD_MS = const(1000)  # how long a late (reordered) part of a batch is accepted
DEFAULT_MAX_PUBLISHED = const(512)  # capacity of the published-binding table
SWEEP_MS = const(5000)  # how often expired published bindings are removed
WINDOW = const(16)  # duplicate set: the 16 sequence numbers below the newest, one bit each
MAX_MEMBERS = const(255)
POLICY_ROAM = "roam"  # publish, tunnel by published bindings, correspondent and proxy bindings
POLICY_MIP4 = "mip4"  # the baseline: no publication; everything through the home agent
TUNNEL_TTL = const(64)
_PUB_OFF = const(28)  # a publication's payload in its IPv4/UDP packet (IHL 5)
_PUB_PORT_HI = const(0x10)  # ipv4.PUB_PORT, 4344, big-endian
_PUB_PORT_LO = const(0xF8)

# packed published binding: | used (1) | expiry units (20) | member index (8) |
_UNIT_SHIFT = const(10)  # 1024 ms
_UNITS_MASK = const(0xFFFFF)
_UNITS_HALF = const(0x80000)
_ORIGIN_MASK = const(0xFF)
_EXP_SHIFT = const(8)
_USED = const(0x10000000)


def _units_diff(a, b):
    """a - b in expiry units, signed, wrap-safe (the units wrap with the ticks period)."""
    d = (a - b) & _UNITS_MASK
    if d >= _UNITS_HALF:
        d -= _UNITS_MASK + 1
    return d


def parse_addr(value, what="address"):
    """A 4-byte address from bytes or dotted text."""
    if isinstance(value, str):
        try:
            return ipv4.aton(value)
        except ValueError:
            raise ValueError(
                "region config: %s %r is not an IPv4 address" % (what, value)
            ) from None
    if isinstance(value, (bytes, bytearray)) and len(value) == 4:
        return bytes(value)
    raise ValueError("region config: %s must be 'a.b.c.d' or 4 bytes, not %r" % (what, value))


def parse_link(value, what="link address"):
    """A 6-byte link address from bytes, 12 hex digits (an ESP-NOW MAC, ':' allowed) or
    'a.b.c.d:port' (a Wi-Fi backbone peer: its IPv4 address and UDP port)."""
    if isinstance(value, (bytes, bytearray)) and len(value) == 6:
        return bytes(value)
    if isinstance(value, str):
        if "." in value:
            i = value.rfind(":")
            if i > 0:
                port = value[i + 1 :]
                if port.isdigit() and 0 < int(port) < 65536:
                    p = int(port)
                    return parse_addr(value[:i], what) + bytes((p >> 8, p & 0xFF))
        else:
            h = value.replace(":", "").replace("-", "")
            if len(h) == 12:
                try:
                    return bytes(int(h[i : i + 2], 16) for i in range(0, 12, 2))
                except ValueError:
                    pass
    raise ValueError(
        "region config: %s must be 6 bytes, 12 hex digits or 'a.b.c.d:port', not %r" % (what, value)
    )


def _positive_ms(cfg, name, default):
    v = cfg.get(name, default)
    if not isinstance(v, int) or v <= 0:
        raise ValueError("region config: %s must be a positive int (ms), not %r" % (name, v))
    return v


def _prefix_match(net, plen, buf, off):
    full = plen >> 3
    for i in range(full):
        if net[i] != buf[off + i]:
            return False
    rest = plen & 7
    if rest:
        m = (0xFF << (8 - rest)) & 0xFF
        return (net[full] & m) == (buf[off + full] & m)
    return True


def is_publication(buf):
    """True when the IPv4 packet in ``buf`` is a region publication (UDP to port 4344): such a
    packet is never tunnelled."""
    return (
        len(buf) >= 24 and buf[9] == ipv4.PROTO_UDP and ((buf[22] << 8) | buf[23]) == ipv4.PUB_PORT
    )


class BindingTable:
    """Home address -> packed value (28 bits), in one preallocated bytearray.

    Open addressing with linear probing over a power-of-two number of 8-byte slots (address 4,
    value 4; value 0 = empty), at most 3/4 full; deletion shifts the following entries back
    (no tombstones), so lookups stay short however many bindings come and go.
    """

    def __init__(self, capacity):
        size = 16
        while size * 3 < capacity * 4:
            size <<= 1
        self.capacity = capacity
        self.size = size
        self.mask = size - 1
        self.buf = bytearray(8 * size)
        self.n = 0

    def __len__(self):
        return self.n

    def _home(self, p):
        b = self.buf
        k = ((b[p] & 0x3F) << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]
        return (k ^ (k >> 10) ^ (k >> 20)) & self.mask

    def value_at(self, i):
        b = self.buf
        p = i * 8 + 4
        return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]

    def _set_value(self, i, v):
        b = self.buf
        p = i * 8 + 4
        b[p] = v >> 24
        b[p + 1] = (v >> 16) & 0xFF
        b[p + 2] = (v >> 8) & 0xFF
        b[p + 3] = v & 0xFF

    def find(self, a, off=0):
        """The slot holding the address at a[off:off+4], or -1 - (the empty slot where it would
        go). No allocation."""
        k = ((a[off] & 0x3F) << 24) | (a[off + 1] << 16) | (a[off + 2] << 8) | a[off + 3]
        i = (k ^ (k >> 10) ^ (k >> 20)) & self.mask
        b = self.buf
        while True:
            p = i * 8
            if not (b[p + 4] | b[p + 5] | b[p + 6] | b[p + 7]):
                return -1 - i
            if (
                b[p] == a[off]
                and b[p + 1] == a[off + 1]
                and b[p + 2] == a[off + 2]
                and b[p + 3] == a[off + 3]
            ):
                return i
            i = (i + 1) & self.mask

    def get(self, a, off=0):
        """The value stored for the address, or 0."""
        i = self.find(a, off)
        return self.value_at(i) if i >= 0 else 0

    def put(self, a, value):
        """Store ``value`` (1..2**28-1) for address ``a``; False when the table is full."""
        i = self.find(a, 0)
        if i < 0:
            if self.n >= self.capacity:
                return False
            i = -1 - i
            p = i * 8
            self.buf[p : p + 4] = a
            self.n += 1
        self._set_value(i, value | _USED)
        return True

    def address(self, i):
        p = i * 8
        return bytes(self.buf[p : p + 4])

    def remove(self, i):
        """Empty slot ``i`` and shift back the entries that probed past it."""
        b = self.buf
        mask = self.mask
        self.n -= 1
        j = i
        while True:
            j = (j + 1) & mask
            q = j * 8
            if not (b[q + 4] | b[q + 5] | b[q + 6] | b[q + 7]):
                break
            h = self._home(q)
            # the entry at j stays unless its home slot lies cyclically outside (i, j]
            if i <= j:
                stays = i < h <= j
            else:
                stays = h > i or h <= j
            if stays:
                continue
            p = i * 8
            b[p : p + 8] = b[q : q + 8]
            i = j
        p = i * 8
        for x in range(8):
            b[p + x] = 0


class Region:
    """Publication flooding, the published-binding table and backbone routing of one member.

    ``config`` is the region dict of docs/REGION.md; ``own`` the member's address (it must be a
    member); ``keys`` its ``auth.Keys`` (the region key, SPI 0x200, signs publications); ``out``
    the owner's action buffer; ``epoch`` the owner's boot counter (kept in flash, +1 per boot).
    """

    def __init__(self, config, own, keys, out, epoch=0):
        if not isinstance(config, dict):
            raise ValueError("region config must be a dict, not %r" % (config,))
        self.name = config.get("name", "region")
        self.own = parse_addr(own, "own address")
        self.keys = keys
        self.out = out
        members = config.get("members")
        if not members:
            raise ValueError("region config: 'members' must list the region's agents and routers")
        if len(members) > MAX_MEMBERS:
            raise ValueError("region config: at most %d members" % MAX_MEMBERS)
        self.members = [parse_addr(m, "member") for m in members]
        self._member = {}
        for i in range(len(self.members)):
            self._member[ipv4.addr_key(self.members[i], 0)] = i
        self.me = self._member_index(self.own, 0)
        if self.me < 0:
            raise ValueError("region config: own address %s is not a member" % ipv4.ntoa(self.own))
        # neighbours: region members this member exchanges publications and tunnels with;
        # hosts: other backbone peers it reaches directly (a home agent, a laptop), which get
        # datagrams and tunnels but never publications
        self.nb_addr = []
        self.nb_iface = []
        self.nb_mac = []
        self.nb_member = []
        self._nb = {}
        for n in config.get("neighbours", ()):
            self._add_peer(n, True)
        for n in config.get("hosts", ()):
            self._add_peer(n, False)
        # static routes: {"dst": "a.b.c.d/len", "via": neighbour or host address}, e.g. a home
        # network whose home agent is a host of this member (the mip4 baseline's only path)
        self.routes = []
        for r in config.get("routes", ()):
            if not isinstance(r, dict) or not isinstance(r.get("dst"), str) or "/" not in r["dst"]:
                raise ValueError("region config: a route is {'dst': 'a.b.c.d/len', 'via': addr}")
            net, plen = r["dst"].split("/")
            if not plen.isdigit() or int(plen) > 32:
                raise ValueError("region config: bad prefix length in %r" % r["dst"])
            via = self._neighbour_index(parse_addr(r.get("via"), "route via"), 0)
            if via < 0:
                raise ValueError(
                    "region config: route via %r is not a neighbour or host" % r.get("via")
                )
            self.routes.append((parse_addr(net, "route dst"), int(plen), via))
        self.policy = config.get("policy", POLICY_ROAM)
        if self.policy not in (POLICY_ROAM, POLICY_MIP4):
            raise ValueError(
                "region config: policy must be 'roam' or 'mip4', not %r" % (self.policy,)
            )
        self.publishing = self.policy == POLICY_ROAM
        self.hold_off = _positive_ms(config, "hold_off_ms", DEFAULT_HOLD_OFF_MS)
        self.republish = _positive_ms(config, "republish_ms", DEFAULT_REPUBLISH_MS)
        self.dup_hold = _positive_ms(config, "dup_hold_ms", DEFAULT_DUP_HOLD_MS)
        self.max_published = _positive_ms(config, "max_published", DEFAULT_MAX_PUBLISHED)
        self._key = keys.get(auth.SPI_REGION)
        if self._key is None:
            raise ValueError("region member without the region key (SPI 0x200)")
        # per origin (member index): newest (epoch, seq), duplicate-set bits, learned next hop
        n = len(self.members)
        self._epoch = [-1] * n  # -1: nothing accepted from this origin yet
        self._top = [0] * n
        self._bits = [0] * n  # bit i set: seq (top - 1 - i) was seen
        self._top_at = [0] * n
        self.hop = [-1] * n  # neighbour index toward the origin, -1 unknown
        # this member as an origin
        self.epoch = epoch & 0xFFFF
        self.seq = 0
        self._local = {}  # addr_key -> [home, expiry ms, expiry as published]
        self._pending = {}  # addr_key -> home: changed since the last publication
        self._withdrawn = {}  # addr_key -> home: repeated in the next snapshot
        self._run = {}  # origin index -> [next part expected, keys not yet in the snapshot]
        self.table = BindingTable(self.max_published)  # the published bindings
        self._started = False
        self._due = 0  # incremental publication due (when _pending is not empty)
        self._snapshot_at = 0
        self._last_pub = 0
        self._published_once = False
        self._sweep_at = 0
        # counters (read by tests and benchmarks)
        self.originated = 0  # publication frames this member signed
        self.forwarded = 0  # publications accepted from a neighbour (each re-sent once)
        self.duplicates = 0
        self.rejected = 0

    def _add_peer(self, n, member):
        what = "neighbour" if member else "host"
        if not isinstance(n, dict):
            raise ValueError("region config: each %s is a dict {addr, iface, mac}" % what)
        a = parse_addr(n.get("addr"), what + " addr")
        if member != (self._member_index(a, 0) >= 0):
            raise ValueError(
                "region config: %s %s %s a member"
                % (what, ipv4.ntoa(a), "is not" if member else "is")
            )
        if self._neighbour_index(a, 0) >= 0 or a == self.own:
            raise ValueError("region config: %s %s listed twice" % (what, ipv4.ntoa(a)))
        iface = n.get("iface", 1)
        if iface not in (0, 1):
            raise ValueError("region config: %s iface must be 0 or 1, not %r" % (what, iface))
        self._nb[ipv4.addr_key(a, 0)] = len(self.nb_addr)
        self.nb_addr.append(a)
        self.nb_iface.append(iface)
        self.nb_mac.append(parse_link(n.get("mac"), what + " mac"))
        self.nb_member.append(member)

    # ---- helpers -------------------------------------------------------------------------

    def _member_index(self, buf, off):
        i = self._member.get(ipv4.addr_key(buf, off))
        if i is None:
            return -1
        m = self.members[i]
        if m[0] != buf[off] or m[1] != buf[off + 1] or m[2] != buf[off + 2] or m[3] != buf[off + 3]:
            return -1
        return i

    def _neighbour_index(self, buf, off):
        i = self._nb.get(ipv4.addr_key(buf, off))
        if i is None:
            return -1
        a = self.nb_addr[i]
        if a[0] != buf[off] or a[1] != buf[off + 1] or a[2] != buf[off + 2] or a[3] != buf[off + 3]:
            return -1
        return i

    def _log(self, name, fields):
        self.out.log(name, fields)

    def start(self, now):
        """Begin publishing: the first publication after a boot is a full snapshot (so the
        others recognise the new epoch), one hold-off from now."""
        if self._started:
            return
        self._started = True
        self._snapshot_at = ticks.add(now, self.hold_off)
        self._sweep_at = ticks.add(now, SWEEP_MS)
        self._log("region_start", {"region": self.name, "epoch": self.epoch})

    # ---- this member's local bindings ------------------------------------------------------

    def local_up(self, now, home, lifetime_ms):
        """A local binding was made or refreshed. A new one is published after the hold-off; a
        refresh only when what the others hold would lapse before the next snapshot."""
        self.start(now)
        if not self.publishing:
            return
        k = ipv4.addr_key(home, 0)
        expiry = ticks.add(now, lifetime_ms)
        e = self._local.get(k)
        if e is None or e[0] != home:
            self._local[k] = [bytes(home), expiry, now]
            self._withdrawn.pop(k, None)
            self._mark(now, k, home)
            return
        e[1] = expiry
        if ticks.diff(e[2], self._snapshot_at) < 0:
            self._mark(now, k, home)

    def local_down(self, now, home):
        """A local binding ended (released, expired, or the node moved away): withdraw it."""
        self.start(now)
        if not self.publishing:
            return
        k = ipv4.addr_key(home, 0)
        e = self._local.pop(k, None)
        if e is None:
            return
        self._withdrawn[k] = e[0]
        self._mark(now, k, e[0])

    def local_moved(self, now, home, coa):
        """Our local binding for ``home`` ended because the node registered with member
        ``coa`` (its deregistration named that agent; docs/REGION.md "Forwarding pointer").
        The new agent publishes after its hold-off, which may still run for up to
        ``hold_off_ms``; meanwhile the others still tunnel to us. So instead of withdrawing
        at once, we keep a short-lived entry pointing at ``coa`` (replaced by coa's own
        publication when it arrives) and tunnel what still reaches us there; the withdrawal
        of our binding rides on our next snapshot. Not a member: withdrawn as usual."""
        self.start(now)
        oi = self._member_index(coa, 0)
        if not self.publishing or oi < 0 or coa == self.own:
            self.local_down(now, home)
            return
        k = ipv4.addr_key(home, 0)
        e = self._local.pop(k, None)
        if e is not None:
            self._withdrawn[k] = e[0]
        v = self.table.get(home, 0)
        if v and v & _ORIGIN_MASK == oi and self.published(now, home, 0) >= 0:
            return  # coa's publication is already here
        life = (2 * self.hold_off) >> _UNIT_SHIFT
        exp = ((now >> _UNIT_SHIFT) + life + 2) & _UNITS_MASK
        if not self.table.put(home, (exp << _EXP_SHIFT) | oi):
            self.local_down(now, home)

    def local_binding(self, home):
        """True when this member holds a local binding for ``home`` (it takes precedence)."""
        e = self._local.get(ipv4.addr_key(home, 0))
        return e is not None and e[0] == home

    def _mark(self, now, k, home):
        # rate limit with a leading edge: a change after a quiet hold-off goes out at once (a
        # single move is known region-wide within one flood); every change made while a
        # hold-off since the last publication runs joins one batch sent when it ends
        if not self._pending:
            self._due = now
            self._space()
        self._pending[k] = bytes(home)

    def _space(self):
        # two publications of one origin are at least a hold-off apart, so a late part that a
        # receiver still accepts (dup_hold < hold_off) always belongs to the newest batch
        if self._published_once:
            earliest = ticks.add(self._last_pub, self.hold_off)
            if ticks.diff(self._due, earliest) < 0:
                self._due = earliest
            if ticks.diff(self._snapshot_at, earliest) < 0:
                self._snapshot_at = earliest

    def _publish(self, now, full):
        bindings = []
        withdrawals = []
        if full:
            for k in self._local:
                e = self._local[k]
                left = ticks.diff(e[1], now)
                if left > 0:
                    bindings.append((e[0], min((left + 999) // 1000, 0xFFFF)))
                    e[2] = e[1]
            for k in self._withdrawn:
                withdrawals.append(self._withdrawn[k])
            self._withdrawn = {}
        else:
            for k in self._pending:
                e = self._local.get(k)
                left = ticks.diff(e[1], now) if e is not None else 0
                if left > 0:
                    bindings.append((e[0], min((left + 999) // 1000, 0xFFFF)))
                    e[2] = e[1]
                else:
                    withdrawals.append(self._pending[k])
        self._pending = {}
        if not (full or bindings or withdrawals):
            return
        chunks = publication.split(bindings, withdrawals)  # an empty snapshot is one part
        last = len(chunks) - 1
        for part in range(len(chunks)):
            b, w = chunks[part]
            pub = publication.Publication(
                self.own,
                self.epoch,
                self.seq,
                full,
                b,
                w,
                auth.SPI_REGION,
                part if full else 0,
                part == last or not full,
            )
            payload = publication.encode_payload(pub, self._key)
            self._log(
                "publish",
                {
                    "epoch": self.epoch,
                    "seq": self.seq,
                    "full": full,
                    "bindings": len(b),
                    "withdrawals": len(w),
                },
            )
            self.seq = (self.seq + 1) & 0xFFFF
            self.originated += 1
            self._flood(payload, -1)
        self._last_pub = now
        self._published_once = True
        if full:
            self._snapshot_at = ticks.add(now, self.republish)

    def _flood(self, payload, came_from):
        pkt = None
        for i in range(len(self.nb_addr)):
            if i != came_from and self.nb_member[i]:
                if pkt is None:
                    pkt = publication.packet(self.own, self.nb_addr[i], payload)
                else:  # the same packet to the next neighbour: no second checksum pass
                    pkt = ipv4.readdress(pkt, self.nb_addr[i])
                self.out.send(self.nb_iface[i], self.nb_mac[i], pkt)

    # ---- timer ---------------------------------------------------------------------------

    def next_wake(self):
        """When ``on_timer`` must run next (ticks ms), or None before ``start``."""
        if not self._started or not self.publishing:
            return None
        t = self._snapshot_at
        if self._pending and ticks.diff(self._due, t) < 0:
            t = self._due
        if ticks.diff(self._sweep_at, t) < 0:
            t = self._sweep_at
        return t

    def on_timer(self, now):
        self.start(now)
        if not self.publishing:
            return
        if ticks.diff(now, self._snapshot_at) >= 0:
            self._publish(now, True)
        elif self._pending and ticks.diff(now, self._due) >= 0:
            self._publish(now, not self._published_once)
        if ticks.diff(now, self._sweep_at) >= 0:
            self._sweep(now)
            self._sweep_at = ticks.add(now, SWEEP_MS)

    def _sweep(self, now):
        nu = (now >> _UNIT_SHIFT) & _UNITS_MASK
        t = self.table
        b = t.buf
        size = t.size
        dead = 0
        i = 0
        while i < size:
            if not b[i * 8 + 4]:  # empty (a used value has _USED in its top byte)
                i += 1
                continue
            v = t.value_at(i)
            if _units_diff((v >> _EXP_SHIFT) & _UNITS_MASK, nu) <= 0:
                t.remove(i)  # an entry may shift back into slot i: look at it again
                dead += 1
                continue
            i += 1
        if dead:
            self._log("published_expired", {"count": dead})
        for k in [k for k in self._local if ticks.diff(self._local[k][1], now) <= 0]:
            # the owner normally calls local_down; an unrefreshed copy is withdrawn here too
            self.local_down(now, self._local[k][0])

    # ---- receiving publications ----------------------------------------------------------

    def on_publication(self, now, src, payload):
        """A publication (UDP 4344 ``payload``) arrived from the neighbour whose address is
        ``src``. Accepted once per origin (epoch, seq), applied, and re-sent byte for byte to
        every other neighbour. Returns True when it was accepted."""
        self.start(now)
        if not self.publishing:
            self._log("region_ignored", {"reason": "policy_mip4", "src": ipv4.ntoa(src)})
            return False
        nb = self._neighbour_index(src, 0)
        if nb < 0 or not self.nb_member[nb]:
            self.rejected += 1
            self._log("region_ignored", {"reason": "not_neighbour", "src": ipv4.ntoa(src)})
            return False
        if self._taken(now, payload, 0):
            # a copy of one already taken (most copies of a flood are): dropped before it is
            # decoded and its HMAC checked, which changes nothing, as after it (anything that
            # could be new is decoded and its tag checked first)
            self.duplicates += 1
            return False
        try:
            pub = publication.decode_publication(payload)
        except DecodeError as e:
            self.rejected += 1
            self._log("drop", {"reason": "decode", "what": "publication", "error": str(e)})
            return False
        oi = self._member_index(pub.origin, 0)
        if pub.spi != auth.SPI_REGION or not pub.verify(self.keys):
            self.rejected += 1
            self._log("drop", {"reason": "auth", "what": "publication", "src": ipv4.ntoa(src)})
            return False
        if oi < 0:
            self.rejected += 1
            self._log("region_ignored", {"reason": "not_member", "origin": ipv4.ntoa(pub.origin)})
            return False
        if not self._accept(now, oi, pub.epoch, pub.seq):
            self.duplicates += 1
            return False
        self.hop[oi] = nb  # the first copy came this way: the next hop toward the origin
        self._apply(now, oi, pub)
        self.forwarded += 1
        self._flood(payload, nb)
        return True

    def stale_copy(self, now, frame):
        """True when ``frame``, an IPv4 packet for this member not decoded yet, is a copy of a
        publication already taken, from a region neighbour. The owner drops it then (counted
        as a duplicate) without computing its checksums or decoding it: that changes nothing a
        full decode would change, since a copy of one taken is dropped either way, damaged or
        not. Anything else (False) goes the normal way: decoded, checked, on_publication."""
        own = self.own
        if (
            not self.publishing
            or len(frame) < _PUB_OFF
            or frame[0] != 0x45
            or frame[9] != ipv4.PROTO_UDP
            or frame[22] != _PUB_PORT_HI
            or frame[23] != _PUB_PORT_LO
            or frame[19] != own[3]
            or frame[18] != own[2]
            or frame[17] != own[1]
            or frame[16] != own[0]
        ):
            return False
        nb = self._neighbour_index(frame, 12)
        if nb < 0 or not self.nb_member[nb] or not self._taken(now, frame, _PUB_OFF):
            return False
        self.duplicates += 1
        return True

    def _taken(self, now, buf, off):
        """True when the publication at buf[off:] is one already taken (or our own), as far as
        its origin, epoch and sequence go; changes nothing."""
        if not publication.is_copy_candidate(buf, off):
            return False
        oi = self._member_index(buf, off + 2)
        return oi >= 0 and (
            oi == self.me
            or self._stale(
                now,
                oi,
                (buf[off + 6] << 8) | buf[off + 7],
                (buf[off + 8] << 8) | buf[off + 9],
            )
        )

    def _stale(self, now, oi, epoch, seq):
        """True when _accept would refuse (epoch, seq) from origin oi; changes nothing."""
        held = self._epoch[oi]
        if held < 0 or auth.serial_newer(epoch, held):
            return False
        if epoch != held:
            return True
        top = self._top[oi]
        if auth.serial_newer(seq, top):
            return False
        d = (top - seq) & 0xFFFF
        if d == 0 or d > WINDOW or ticks.diff(now, self._top_at[oi]) >= self.dup_hold:
            return True
        return bool(self._bits[oi] & (1 << (d - 1)))

    def _accept(self, now, oi, epoch, seq):
        held = self._epoch[oi]
        if held < 0 or auth.serial_newer(epoch, held):
            if held >= 0:
                self._drop_origin(oi)
                self._log(
                    "origin_restart",
                    {"origin": ipv4.ntoa(self.members[oi]), "epoch": epoch, "was": held},
                )
            self._epoch[oi] = epoch
            self._top[oi] = seq
            self._bits[oi] = 0
            self._top_at[oi] = now
            return True
        if epoch != held:
            return False  # an older epoch: a replay from before the origin restarted
        top = self._top[oi]
        if auth.serial_newer(seq, top):
            shift = (seq - top) & 0xFFFF
            if shift > WINDOW:
                bits = 0
            else:
                bits = ((self._bits[oi] << shift) | (1 << (shift - 1))) & ((1 << WINDOW) - 1)
            self._bits[oi] = bits
            self._top[oi] = seq
            self._top_at[oi] = now
            return True
        d = (top - seq) & 0xFFFF
        if d == 0 or d > WINDOW or ticks.diff(now, self._top_at[oi]) >= self.dup_hold:
            return False
        bit = 1 << (d - 1)
        if self._bits[oi] & bit:
            return False
        self._bits[oi] |= bit  # a late part of the newest batch, seen for the first time
        return True

    def _drop_origin(self, oi):
        self._run.pop(oi, None)
        t = self.table
        b = t.buf
        i = 0
        while i < t.size:
            # the low byte of a value is its origin; its top byte is non-zero when used
            if b[i * 8 + 7] == oi and b[i * 8 + 4]:
                t.remove(i)
                continue
            i += 1

    def _origin_homes(self, oi):
        t = self.table
        b = t.buf
        found = set()
        for p in range(7, t.size * 8, 8):
            if b[p] == oi and b[p - 3]:  # origin byte, and the slot is used
                found.add(t.address(p >> 3))
        return found

    def _apply(self, now, oi, pub):
        table = self.table
        # A full snapshot (parts 0..last, consecutive) replaces what is held for the origin:
        # bindings of the origin that no part mentions are removed after the last part. A run
        # with a missing or reordered part removes nothing (its stale entries expire instead),
        # so a lost frame never loses a still-valid binding.
        run = None
        if pub.full:
            if pub.part == 0:
                run = [1, self._origin_homes(oi)]
                self._run[oi] = run
            else:
                run = self._run.get(oi)
                if run is not None and run[0] == pub.part:
                    run[0] += 1
                else:
                    self._run.pop(oi, None)
                    run = None
        nu = now >> _UNIT_SHIFT
        for home, life_s in pub.bindings:
            if run is not None:
                run[1].discard(home)
            if life_s == 0:
                self._withdraw(home, oi)
                continue
            exp = (nu + ((life_s * 1000) >> _UNIT_SHIFT) + 1) & _UNITS_MASK
            if not table.put(home, (exp << _EXP_SHIFT) | oi):
                self._log("drop", {"reason": "region_full", "home": ipv4.ntoa(home)})
        for home in pub.withdrawals:
            self._withdraw(home, oi)
        if run is not None and pub.last:
            del self._run[oi]
            n = 0
            for home in run[1]:
                if self._withdraw(home, oi):
                    n += 1
            if n:
                self._log("snapshot_removed", {"origin": ipv4.ntoa(pub.origin), "count": n})

    def _withdraw(self, home, oi):
        # only the origin that published a binding can withdraw it: when the node has moved,
        # the old agent's withdrawal must not remove the new agent's binding
        i = self.table.find(home, 0)
        if i >= 0 and self.table.value_at(i) & _ORIGIN_MASK == oi:
            self.table.remove(i)
            return True
        return False

    # ---- lookups -------------------------------------------------------------------------

    def published(self, now, buf, off=0):
        """The member index of the agent that published a binding for the address at
        ``buf[off:off+4]``, or -1. No allocation (a forwarding-path lookup)."""
        v = self.table.get(buf, off)
        if not v:
            return -1
        if _units_diff((v >> _EXP_SHIFT) & _UNITS_MASK, (now >> _UNIT_SHIFT) & _UNITS_MASK) <= 0:
            return -1
        return v & _ORIGIN_MASK

    def newer_elsewhere(self, now, home, expiry):
        """True when another member published a binding for ``home`` that expires at least
        two units (about 2 s) after ``expiry``, our local binding's: the node registered there
        after it last registered here (agents grant the same lifetimes). A stale binding of
        the other agent (the node left it without deregistering) expires earlier than ours
        and does not count, so two agents that both fail to reach the node never both give
        it up."""
        v = self.table.get(home, 0)
        if not v or self.published(now, home, 0) < 0:
            return False
        d = _units_diff((v >> _EXP_SHIFT) & _UNITS_MASK, (expiry >> _UNIT_SHIFT) & _UNITS_MASK)
        return d >= 2

    def bindings(self, now):
        """{home address: origin address} of every unexpired published binding (for tests,
        reports and the CLI; allocates)."""
        t = self.table
        found = {}
        for i in range(t.size):
            if t.value_at(i):
                home = t.address(i)
                oi = self.published(now, home, 0)
                if oi >= 0:
                    found[home] = self.members[oi]
        return found

    def published_addr(self, now, home):
        """The address of the agent holding ``home``'s published binding, or None."""
        oi = self.published(now, home, 0)
        return self.members[oi] if oi >= 0 else None

    def next_hop(self, buf, off=0):
        """Neighbour index toward the member at ``buf[off:off+4]``: itself when it is a
        neighbour, else the learned reverse path of its publications; -1 when unknown."""
        nb = self._neighbour_index(buf, off)
        if nb >= 0:
            return nb
        oi = self._member_index(buf, off)
        if oi >= 0 and self.hop[oi] >= 0:
            return self.hop[oi]
        best = -1
        best_len = -1
        for net, plen, via in self.routes:
            if plen > best_len and _prefix_match(net, plen, buf, off):
                best = via
                best_len = plen
        return best

    # ---- tunnelling ----------------------------------------------------------------------

    def tunnel(self, now, datagram, oi):
        """Tunnel ``datagram`` (an IPv4 packet) IP-in-IP to member ``oi`` over the backbone.
        Returns True when sent; every refusal is logged as a drop with its reason."""
        if is_publication(datagram):
            self._log("drop", {"reason": "publication_in_tunnel"})
            return False
        dst = self.members[oi]
        nb = self.next_hop(dst)
        if nb < 0:
            self._log("drop", {"reason": "no_route", "to": ipv4.ntoa(dst)})
            return False
        inner = bytearray(datagram)
        if not ipv4.dec_ttl(inner):
            self._log("drop", {"reason": "ttl", "what": "tunnel entry"})
            return False
        try:
            outer = tunnel.encapsulate(self.own, dst, inner, TUNNEL_TTL)
        except FrameTooLarge:
            self._log("drop", {"reason": "mtu", "len": len(inner)})
            return False
        self.out.send(self.nb_iface[nb], self.nb_mac[nb], outer)
        return True

    def on_tunnel(self, now, frame, header):
        """An IP-in-IP packet arrived on the backbone (``header`` = its decoded outer header).
        Not for this member: forwarded toward the outer destination (outer TTL decremented; a
        packet that runs out of TTL was looping or lost its way, and is logged). For this member:
        returns the inner datagram (bytes) for the owner to deliver, else None."""
        if header.dst != self.own:
            nb = self.next_hop(header.dst)
            if nb < 0:
                self._log("drop", {"reason": "no_route", "to": ipv4.ntoa(header.dst)})
                return None
            buf = bytearray(frame[: header.length])
            if not ipv4.dec_ttl(buf):
                self._log("drop", {"reason": "ttl", "what": "tunnel", "to": ipv4.ntoa(header.dst)})
                return None
            self.out.send(self.nb_iface[nb], self.nb_mac[nb], buf)
            return None
        try:
            inner = tunnel.decapsulate(header)
        except DecodeError as e:
            self._log("drop", {"reason": "decode", "what": "tunnel", "error": str(e)})
            return None
        if is_publication(inner):
            self._log("drop", {"reason": "publication_in_tunnel"})
            return None
        return inner


class Links:
    """The backbone peers of a node that is not a region member (a home agent, a correspondent
    on the Wi-Fi backbone): ``links`` [{"addr", "iface", "mac"}] it reaches directly, and an
    optional ``gateway`` (the address of one of them, usually a region member) for every other
    destination."""

    def __init__(self, links=None, gateway=None):
        self._peers = {}
        for n in links or ():
            if not isinstance(n, dict):
                raise ValueError("links: each entry is a dict {addr, iface, mac}")
            a = parse_addr(n.get("addr"), "link addr")
            iface = n.get("iface", 1)
            if iface not in (0, 1):
                raise ValueError("links: iface must be 0 or 1, not %r" % (iface,))
            self._peers[ipv4.addr_key(a, 0)] = (a, (iface, parse_link(n.get("mac"), "link mac")))
        self.gateway = None
        if gateway is not None:
            g = self._peers.get(ipv4.addr_key(parse_addr(gateway, "gateway"), 0))
            if g is None:
                raise ValueError("links: the gateway %r is not one of the links" % (gateway,))
            self.gateway = g[1]

    def route(self, addr):
        """(iface, mac) toward ``addr``: the peer itself, else the gateway; None without."""
        p = self._peers.get(ipv4.addr_key(addr, 0))
        if p is not None and p[0] == addr:
            return p[1]
        return self.gateway

"""The backbone as a node sees it: whom it reaches directly and where everything else goes.

* ``Backbone``: a region member's view (docs/REGION.md): the region's members, its direct
  peers (neighbours, which are members, and hosts, which are not), static routes, and the next
  hop toward each member learned from the reverse path of its publications. It sends on that
  view: one packet to a peer, or a publication flooded to every member neighbour.
* ``Links``: a node beside a region (a home agent, a correspondent): its direct peers and a
  gateway for the rest.

Addresses are looked up by ``ipv4.addr_key`` in a dict, then compared in full, so a lookup at
an offset of a received frame allocates nothing.
"""

from mobility import ipv4
from mobility.compat import const
from mobility.node import parse_mac

_MAX_MEMBERS = const(255)  # a member index fits the published-binding table's 8 bits


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
    if isinstance(value, str) and "." in value:
        i = value.rfind(":")
        if i > 0:
            port = value[i + 1 :]
            if port.isdigit() and 0 < int(port) < 65536:
                p = int(port)
                return parse_addr(value[:i], what) + bytes((p >> 8, p & 0xFF))
    else:
        try:
            return parse_mac(value, what)
        except ValueError:
            pass
    raise ValueError(
        "region config: %s must be 6 bytes, 12 hex digits or 'a.b.c.d:port', not %r" % (what, value)
    )


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


def _index(keys, addrs, buf, off):
    """The index that ``keys`` (addr_key -> index into ``addrs``) holds for the address at
    buf[off:off+4], or -1; the key leaves out two bits, so the address is compared in full."""
    i = keys.get(ipv4.addr_key(buf, off))
    if i is None:
        return -1
    a = addrs[i]
    if a[0] != buf[off] or a[1] != buf[off + 1] or a[2] != buf[off + 2] or a[3] != buf[off + 3]:
        return -1
    return i


class Backbone:
    """One region member's backbone: ``config`` is the region dict (members, neighbours, hosts,
    routes), ``own`` the member's address, ``out`` its action buffer. Peers are numbered in
    the order of the config, neighbours first; ``addr``, ``iface``, ``mac`` and ``is_member``
    are indexed by that number."""

    def __init__(self, config, own, out):
        self.own = own
        self.out = out
        members = config.get("members")
        if not members:
            raise ValueError("region config: 'members' must list the region's agents and routers")
        if len(members) > _MAX_MEMBERS:
            raise ValueError("region config: at most %d members" % _MAX_MEMBERS)
        self.members = [parse_addr(m, "member") for m in members]
        self._member = {}
        for i in range(len(self.members)):
            self._member[ipv4.addr_key(self.members[i], 0)] = i
        self.me = self.member(own, 0)
        if self.me < 0:
            raise ValueError("region config: own address %s is not a member" % ipv4.ntoa(own))
        # neighbours: region members this member exchanges publications and tunnels with;
        # hosts: other backbone peers it reaches directly (a home agent, a laptop), which get
        # datagrams and tunnels but never publications
        self.addr = []
        self.iface = []
        self.mac = []
        self.is_member = []
        self._peer = {}
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
            via = self.peer(parse_addr(r.get("via"), "route via"), 0)
            if via < 0:
                raise ValueError(
                    "region config: route via %r is not a neighbour or host" % r.get("via")
                )
            self.routes.append((parse_addr(net, "route dst"), int(plen), via))
        # per member: the neighbour its publications came through first, -1 unknown
        self.hop = [-1] * len(self.members)

    def _add_peer(self, n, member):
        what = "neighbour" if member else "host"
        if not isinstance(n, dict):
            raise ValueError("region config: each %s is a dict {addr, iface, mac}" % what)
        a = parse_addr(n.get("addr"), what + " addr")
        if member != (self.member(a, 0) >= 0):
            raise ValueError(
                "region config: %s %s %s a member"
                % (what, ipv4.ntoa(a), "is not" if member else "is")
            )
        if self.peer(a, 0) >= 0 or a == self.own:
            raise ValueError("region config: %s %s listed twice" % (what, ipv4.ntoa(a)))
        iface = n.get("iface", 1)
        if iface not in (0, 1):
            raise ValueError("region config: %s iface must be 0 or 1, not %r" % (what, iface))
        self._peer[ipv4.addr_key(a, 0)] = len(self.addr)
        self.addr.append(a)
        self.iface.append(iface)
        self.mac.append(parse_link(n.get("mac"), what + " mac"))
        self.is_member.append(member)

    def member(self, buf, off):
        """The member index of the address at buf[off:off+4], or -1."""
        return _index(self._member, self.members, buf, off)

    def peer(self, buf, off):
        """The peer (neighbour or host) index of the address at buf[off:off+4], or -1."""
        return _index(self._peer, self.addr, buf, off)

    def member_neighbour(self, buf, off):
        """The index of the neighbour at buf[off:off+4] when it is a member (publications come
        and go only between those), or -1."""
        nb = _index(self._peer, self.addr, buf, off)
        return nb if nb >= 0 and self.is_member[nb] else -1

    def via(self, nb, iface, mac):
        """True when a frame that came over ``iface`` from link address ``mac`` came from peer
        ``nb``'s own link (the IP source alone is not evidence: it is not signed)."""
        if nb < 0 or mac is None or iface != self.iface[nb]:
            return False
        m = self.mac[nb]
        for i in range(6):
            if m[i] != mac[i]:
                return False
        return True

    def link_peer(self, iface, mac):
        """The peer whose link is (``iface``, ``mac``), or -1."""
        for nb in range(len(self.addr)):
            if self.via(nb, iface, mac):
                return nb
        return -1

    def next_hop(self, buf, off=0):
        """Peer index toward the address at ``buf[off:off+4]``: itself when it is a peer, else
        the learned reverse path of a member's publications, else the longest matching static
        route; -1 when unknown."""
        nb = self.peer(buf, off)
        if nb >= 0:
            return nb
        oi = self.member(buf, off)
        if oi >= 0 and self.hop[oi] >= 0:
            return self.hop[oi]
        best = -1
        best_len = -1
        for net, plen, via in self.routes:
            if plen > best_len and _prefix_match(net, plen, buf, off):
                best = via
                best_len = plen
        return best

    def send(self, nb, pkt):
        """Send ``pkt`` to peer ``nb``."""
        self.out.send(self.iface[nb], self.mac[nb], pkt)

    def link(self, nb):
        """(iface, link address) of peer ``nb``."""
        return (self.iface[nb], self.mac[nb])


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

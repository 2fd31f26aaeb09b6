"""The backbone as a region member sees it (docs/REGION.md): the region's members, its direct
peers (neighbours, which are members, and hosts, which are not), static routes, and the next
hop toward each member learned from the reverse path of its publications. It sends on that
view: one packet to a peer, or a publication flooded to every member neighbour. (A node beside
a region, a home agent or a correspondent, has links.py instead.)

Addresses are looked up by ``ipv4.addr_key`` in a dict, then compared in full, so a lookup at
an offset of a received frame allocates nothing.
"""

from mobility import ipv4
from mobility.compat import const

_MAX_MEMBERS = const(255)  # a member index fits the published-binding table's 8 bits


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
    """The index that ``keys`` (addr_key -> index) holds for the address at buf[off:off+4], or
    -1; the key leaves out two bits, so the address is compared in full with the index's in
    ``addrs`` (4 bytes each, packed)."""
    i = keys.get(ipv4.addr_key(buf, off))
    if i is None:
        return -1
    p = 4 * i
    if (
        addrs[p] != buf[off]
        or addrs[p + 1] != buf[off + 1]
        or addrs[p + 2] != buf[off + 2]
        or addrs[p + 3] != buf[off + 3]
    ):
        return -1
    return i


class Backbone:
    """One region member's backbone: ``config`` is the region dict (members, neighbours, hosts,
    routes), ``own`` the member's address, ``out`` its action buffer. Peers are numbered in
    the order of the config, neighbours first; ``addr``, ``iface``, ``mac`` and ``is_member``
    are indexed by that number."""

    def __init__(self, config, own, out):
        from mobility import settings

        self.own = own
        self.out = out
        members = settings.region_members(config, own, _MAX_MEMBERS)
        self.n_members = len(members)
        # the members' addresses in one bytes, 4 each (``address``): one object, not one per
        # member (a 27-member region: 0.7 KB less of a board's heap at 32 bits)
        self._members = b"".join(members)
        self._member = {}
        for i in range(self.n_members):
            self._member[ipv4.addr_key(members[i], 0)] = i
        self.me = self.member(own, 0)
        # neighbours: region members this member exchanges publications and tunnels with;
        # hosts: other backbone peers it reaches directly (a home agent, a laptop), which get
        # datagrams and tunnels but never publications; numbered neighbours first
        self.addr, self.iface, self.mac, self.is_member = settings.region_peers(
            config, self.member, own
        )
        self._peer = {}
        for i in range(len(self.addr)):
            self._peer[ipv4.addr_key(self.addr[i], 0)] = i
        self._peers = b"".join(self.addr)  # (for _index)
        # static routes (prefix, length, peer index): a home network whose home agent is a host
        # of this member (the mip4 baseline's only path)
        self.routes = settings.region_routes(config, self.peer)
        # per member: the neighbour its publications came through first, -1 unknown
        self.hop = [-1] * self.n_members

    def address(self, oi):
        """Member ``oi``'s address (4 bytes, a new object)."""
        p = 4 * oi
        return self._members[p : p + 4]

    def member(self, buf, off):
        """The member index of the address at buf[off:off+4], or -1."""
        return _index(self._member, self._members, buf, off)

    def peer(self, buf, off):
        """The peer (neighbour or host) index of the address at buf[off:off+4], or -1."""
        return _index(self._peer, self._peers, buf, off)

    def member_neighbour(self, buf, off):
        """The index of the neighbour at buf[off:off+4] when it is a member (publications come
        and go only between those), or -1."""
        nb = _index(self._peer, self._peers, buf, off)
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

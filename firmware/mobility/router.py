"""Plain region router: a member of a mobility region that has no cell of its own.

It floods publications (its ``Region`` component), keeps the published-binding table, forwards
IP-in-IP packets across the backbone toward their care-of agent, and tunnels a datagram for a
node with a published binding to that node's agent. A router holding a published binding that
receives traffic for the node from a correspondent may set up a *proxy binding* with that
correspondent (a remote binding signed with the region key), so the correspondent's next
datagrams tunnel straight to the agent.

Sans-I/O: fed frames and timers with the current time; writes actions into ``out``.
"""

from mobility import auth, ipv4, publication, region, ticks
from mobility.compat import const
from mobility.errors import DecodeError
from mobility.node import Node

_PROXY_LIFETIME_S = const(60)
_PROXY_CAPACITY = const(16)  # proxy bindings held at most (RemoteClient: unbound ones make room)
_PROXY_GAP_MS = const(1000)  # at most one new proxy binding per gap (each costs a signed request)
IDLE_WAKE_MS = const(3600000)  # nothing due: wake once an hour anyway


class Router(Node):
    """A region member without a cell. ``config`` (docs/REGION.md): the common node keys
    (node_id, address, keys with the region key) plus "region" (the region dict), "epoch"
    (boot counter, from flash), "proxy" (True: set up proxy bindings with correspondents),
    "proxy_lifetime_s", "proxy_capacity"."""

    def __init__(self, config, rand, now):
        from mobility import settings

        Node.__init__(self, config, rand, now)
        self.region = region.Region(
            config.get("region"), self.address, self.keys, self.out, self.epoch
        )
        # proxy bindings are route optimisation: never in the "mip4" baseline
        self.proxy = bool(config.get("proxy", False)) and self.region.publishing
        self.proxy_lifetime_s = config.get("proxy_lifetime_s", _PROXY_LIFETIME_S)
        # their machinery (the sender of signed requests, and with it the registration codec)
        # loads only on a router that makes them: code is heap on a board without a romfs,
        # some 7 KB at 32 bits, and a router that makes none never needs it
        self.proxies = None
        if self.proxy:
            from mobility.remoteclient import RemoteClient

            self.proxies = RemoteClient(
                self.address,
                self.keys,
                auth.SPI_REGION,
                self.out,
                self.route,
                capacity=settings.cfg_int(config, "proxy_capacity", _PROXY_CAPACITY, 1, 255),
                follow=self._follow,
            )
        self._proxy_at = None  # when the last new proxy binding was made (rate limit)
        self.handled = 0  # datagrams this router forwarded or tunnelled (tests count hops)
        self.region.start(now)
        self._schedule(now)

    def _schedule(self, now):
        self._wake = ticks.add(now, IDLE_WAKE_MS)

    def next_wake(self):
        # computed on demand: the owner of a test or the agent may feed the region directly
        t = self.region.next_wake()
        p = self.proxies.next_wake() if self.proxy else None
        if t is None or (p is not None and ticks.diff(p, t) < 0):
            t = p
        if t is None or ticks.diff(self._wake, t) < 0:
            t = self._wake
        return t

    def on_timer(self, now):
        self.region.on_timer(now)
        if self.proxy:
            self.proxies.follow_all(now)  # a binding may have expired (the region's sweep)
            self.proxies.on_timer(now)
        self._schedule(now)

    def on_link_failure(self, now, iface, mac, frame=None):
        self.out.log("link_failure", {"iface": iface})

    def on_send(self, now, dst, payload):
        raise ValueError("a router has no application")

    def on_frame(self, now, iface, src_mac, rssi, frame):
        self._on_frame(now, iface, src_mac, rssi, frame)
        self._schedule(now)

    def _on_frame(self, now, iface, src_mac, rssi, frame):
        if self.region.stale_copy(now, frame, iface, src_mac):
            return  # most copies of the region's flood: nothing to decode
        try:
            h = ipv4.decode(frame)
        except DecodeError as e:
            self.out.log("drop", {"reason": "decode", "error": str(e)})
            return
        if h.proto == ipv4.PROTO_UDP and h.dst == self.address:
            try:
                sport, dport, payload = ipv4.decode_udp(h)
            except DecodeError as e:
                self.out.log("drop", {"reason": "decode", "error": str(e)})
                return
            if dport == ipv4.PUB_PORT:
                if self.region.on_publication(now, h.src, payload, iface, src_mac) and self.proxy:
                    self.proxies.follow_all(now)  # a proxy's node may have moved
            elif dport == ipv4.REG_PORT and self.proxy:
                self._on_registration(now, h)  # (the answer to a proxy binding's request)
            elif dport == ipv4.REG_PORT:
                self.out.log("drop", {"reason": "no_proxies", "what": "registration"})
            return
        if h.proto == ipv4.PROTO_IPIP:
            inner = self.region.on_tunnel(now, frame, h, iface, src_mac)
            if inner is not None:
                self.out.log("drop", {"reason": "not_an_agent", "what": "tunnel"})
            else:
                self.handled += 1
            return
        self.forward(now, frame, h, iface, src_mac)

    def forward(self, now, frame, h, iface=None, src_mac=None):
        """A datagram to route: to the node's agent by a published binding (tunnel), else on
        the backbone toward a member."""
        if publication.is_publication(frame):
            return  # publications travel one hop, to this member's own address only
        oi = self.region.published(now, h.dst, 0)
        if oi >= 0:
            if self.region.tunnel(now, frame, oi):
                self.handled += 1
                if self.proxy and src_mac is not None:
                    self._proxy(now, iface, src_mac, h.src, h.dst, self.region.backbone.address(oi))
            return
        nb = self.region.backbone.next_hop(h.dst, 0)
        if nb < 0:
            self.out.log("drop", {"reason": "no_route", "to": ipv4.ntoa(h.dst)})
            return
        buf = bytearray(frame[: h.length])
        if not ipv4.dec_ttl(buf):
            self.out.log("drop", {"reason": "ttl", "to": ipv4.ntoa(h.dst)})
            return
        self.handled += 1
        self.region.backbone.send(nb, buf)

    def route(self, addr):
        """(iface, mac) of the backbone next hop toward ``addr``, or None."""
        nb = self.region.backbone.next_hop(addr, 0)
        if nb < 0:
            return None
        return self.region.backbone.link(nb)

    def _proxy(self, now, iface, src_mac, correspondent, home, coa):
        """Offer ``correspondent`` a proxy binding for ``home`` at ``coa``. Only to a backbone
        host of this router (config ``hosts``) whose datagram came over that host's own link
        (a spoofed source elsewhere makes nothing), and at most one new binding per
        _PROXY_GAP_MS (an existing one is only refreshed or moved)."""
        bb = self.region.backbone
        nb = bb.peer(correspondent, 0)
        if nb < 0 or bb.is_member[nb] or not bb.via(nb, iface, src_mac):
            return
        if self.proxies.state(correspondent, home) is None:
            if self._proxy_at is not None and ticks.diff(now, self._proxy_at) < _PROXY_GAP_MS:
                return
            self._proxy_at = now
        self.proxies.bind(now, correspondent, home, coa, self.proxy_lifetime_s)

    def _follow(self, now, home):
        """The agent that holds ``home``'s published binding now (a proxy follows it), or None."""
        return self.region.published_addr(now, home)

    def _on_registration(self, now, h):
        from mobility import registration  # (loaded with the proxies' sender)

        try:
            msg = registration.decode_registration(h)
        except DecodeError as e:
            self.out.log("drop", {"reason": "decode", "what": "registration", "error": str(e)})
            return
        if isinstance(msg, registration.RegReply):
            self.proxies.on_reply(now, msg)

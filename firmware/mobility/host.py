"""Plain host / correspondent role (docs/CORE.md "Host").

A host has a fixed address and no mobility: it sends datagrams to a neighbour it knows directly
(config ``neighbours``) or else through its configured gateway MAC, delivers the datagrams
addressed to it, and answers host-to-host solicitations with a host reply so that nodes without
an agent can reach it. It never forwards for others.

Correspondent (core II, docs/REGION.md "Remote bindings"): a host holding a mobile node's home
key (config ``peers`` {home address: node id}) accepts that node's remote bindings, and with
``accept_proxy`` (and the region key) proxy bindings from region routers; it then tunnels its
datagrams for the node straight to the care-of agent. ``links`` [{addr, iface, mac}] are its
direct backbone peers (agents it can tunnel to without the gateway).
"""

from mobility import advert, ipv4, registration, ticks, tunnel
from mobility.actions import IF_RADIO
from mobility.compat import const
from mobility.errors import DecodeError, FrameTooLarge
from mobility.hostreply import HostReplies
from mobility.links import Links
from mobility.node import Node, due, fmt_mac, parse_addr, soonest
from mobility.remotecache import DEFAULT_CAPACITY, RemoteCache

IDLE_WAKE_MS = const(3600000)  # a host has no timer of its own


class Host(Node):
    def __init__(self, config, rand, now):
        from mobility import settings

        Node.__init__(self, config, rand, now)
        self.replies = HostReplies(self, config)
        gw = config.get("gateway")
        self.gateway = None if gw is None else settings.parse_mac(gw, "gateway")
        self.gateway_iface = settings.cfg_int(config, "gateway_iface", IF_RADIO, 0, 1)
        self.neighbours = {}  # addr_key -> (addr, mac, iface)
        table = config.get("neighbours") or {}
        if not isinstance(table, dict):
            raise ValueError("config 'neighbours' must be a dict {address: MAC}")
        for a in table:
            addr = parse_addr(a, "neighbour address")
            self.neighbours[ipv4.addr_key(addr, 0)] = (
                addr,
                settings.parse_mac(table[a], "neighbour MAC"),
                IF_RADIO,
            )
        self.links = Links(config.get("links"))
        self.remote = RemoteCache(
            self.address,
            self.keys,
            self.nonce,
            self.out,
            homes=config.get("peers"),
            accept_proxy=bool(config.get("accept_proxy", False)),
            capacity=settings.cfg_int(config, "remote_capacity", DEFAULT_CAPACITY, 1, 65535),
        )
        self._wake = ticks.add(now, IDLE_WAKE_MS)

    def uplink(self):
        if self.gateway is None or self.gateway_iface != IF_RADIO:
            return None
        return (self.gateway, None)

    def _schedule(self, now):
        wake = soonest(now, self.remote.next_wake(), ticks.add(now, IDLE_WAKE_MS))
        self._wake = soonest(now, wake, self.again_at)

    def on_timer(self, now):
        self.remote.on_timer(now)
        if due(now, self.again_at):
            self._again(now)
        self._schedule(now)

    def on_link_failure(self, now, iface, mac, frame=None):
        self._hold(now, iface, frame)  # sent again after a fade's time (docs/CORE.md)
        self._schedule(now)

    def _send_again(self, now, pkt):
        self._send(pkt, pkt[ipv4.DST_AT : ipv4.DST_AT + 4])

    def on_send(self, now, dst, payload):
        dst = parse_addr(dst, "destination")
        pkt = self.datagram(dst, payload)
        coa = self.remote.care_of(now, dst, 0)
        if coa is not None:
            # a remote binding: tunnel straight to the node's care-of agent
            inner = bytearray(pkt)
            ipv4.dec_ttl(inner)
            try:
                pkt = tunnel.encapsulate(self.address, coa, inner)
            except FrameTooLarge:
                self.log("drop", {"reason": "mtu", "dst": ipv4.ntoa(dst), "size": len(inner)})
                raise
            dst = coa
        self._send(pkt, dst)

    def _send(self, pkt, dst):
        n = self.neighbours.get(ipv4.addr_key(dst, 0))
        link = self.links.route(dst)
        if n is not None and n[0] == dst:
            self.out.send(n[2], n[1], pkt)
        elif link is not None:
            self.out.send(link[0], link[1], pkt)
        elif self.gateway is not None:
            self.out.send(self.gateway_iface, self.gateway, pkt)
        else:
            self.log("drop", {"reason": "no_route", "dst": ipv4.ntoa(dst)})

    def on_frame(self, now, iface, src_mac, rssi, frame):
        h = self.decode(frame, src_mac)
        if h is None:
            return
        try:
            self._dispatch(now, iface, src_mac, frame, h)
        except DecodeError as exc:
            self.log("drop", {"reason": "malformed", "mac": fmt_mac(src_mac), "error": str(exc)})

    def _dispatch(self, now, iface, src_mac, frame, h):
        if h.proto == ipv4.PROTO_ICMP and h.dst in (self.address, ipv4.BCAST_ADDR):
            msg = advert.decode_icmp(h)
            if isinstance(msg, advert.Solicitation) and msg.level == advert.LEVEL_HOST:
                if self.check_solicitation(msg, src_mac, now):
                    self.replies.send(iface, src_mac, msg)
            return
        if h.dst != self.address:
            if h.dst != ipv4.BCAST_ADDR:
                self.log(
                    "drop",
                    {"reason": "not_for_me", "src": ipv4.ntoa(h.src), "dst": ipv4.ntoa(h.dst)},
                )
            return
        if h.proto == ipv4.PROTO_UDP:
            sport, dport, payload = ipv4.decode_udp(h)
            if dport == ipv4.APP_PORT:
                self.out.deliver(frame)
                return
            if dport == ipv4.REG_PORT:
                msg = registration.decode_registration(h)
                if isinstance(msg, registration.RegRequest):
                    self.remote.on_request(now, msg, iface, src_mac)  # the correspondent part
                    self._schedule(now)
                return
        self._on_other(now, iface, src_mac, h)

    def _on_other(self, now, iface, src_mac, header):
        self.log("drop", {"reason": "proto", "src": ipv4.ntoa(header.src), "proto": header.proto})

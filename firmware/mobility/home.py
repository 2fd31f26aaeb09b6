"""Home agent role: the fixed point of a mobile node's remote bindings.

A mobile node, once bound to a foreign agent, registers with its home agent (registration
request, authentication type 32, its home key): home address -> care-of agent. The home agent
then receives datagrams for the node's home address (the home network is routed to it) and
tunnels them IP-in-IP to the care-of agent, which de-tunnels and delivers over the link layer.
This is the only path in the "mip4" baseline; with region publication the home agent is a
fallback, and the region keeps delivering when it is down.

Config (besides node_id, address, keys with the home keys of its mobile nodes):
``mobiles`` {home address: node id}, ``links`` and ``gateway`` (links.Links: its backbone
peers), ``max_lifetime_s``, ``remote_capacity`` (bindings held at most; default: one per
mobile node).
"""

from mobility import ipv4, links, registration, ticks, tunnel
from mobility.errors import DecodeError, FrameTooLarge
from mobility.node import Node, parse_addr, soonest
from mobility.remotecache import DEFAULT_MAX_LIFETIME_S, RemoteCache

IDLE_WAKE_MS = 3600000  # nothing due: wake once an hour anyway


class HomeAgent(Node):
    def __init__(self, config, rand, now):
        from mobility import settings

        Node.__init__(self, config, rand, now)
        mobiles = config.get("mobiles")
        if not isinstance(mobiles, dict) or not mobiles:
            raise ValueError("home agent config needs 'mobiles': {home address: node id}")
        self.links = links.Links(config.get("links"), config.get("gateway"))
        self.cache = RemoteCache(
            self.address,
            self.keys,
            self.nonce,
            self.out,
            homes=mobiles,
            max_lifetime_s=settings.cfg_int(
                config, "max_lifetime_s", DEFAULT_MAX_LIFETIME_S, 1, 65535
            ),
            # each of its mobile nodes holds at most one binding here: room for all of them
            capacity=settings.cfg_int(config, "remote_capacity", len(mobiles), 1, 65535),
        )
        self._schedule(now)
        self.tunnelled = 0  # datagrams sent on to a care-of agent (tests count hops)

    def _schedule(self, now):
        self._wake = soonest(now, self.cache.next_wake(), ticks.add(now, IDLE_WAKE_MS))

    def on_timer(self, now):
        self.cache.on_timer(now)
        self._schedule(now)

    def on_send(self, now, dst, payload):
        dst = parse_addr(dst, "destination")
        self._forward(now, self.datagram(dst, payload), dst)
        self._schedule(now)

    def on_frame(self, now, iface, src_mac, rssi, frame):
        self._on_frame(now, iface, src_mac, rssi, frame)
        self._schedule(now)

    def _on_frame(self, now, iface, src_mac, rssi, frame):
        h = self.decode(frame, src_mac)
        if h is None:
            return
        if h.dst != self.address:
            self._forward(now, frame, h.dst, iface, src_mac)
            return
        try:
            if h.proto == ipv4.PROTO_UDP:
                sport, dport, payload = ipv4.decode_udp(h)
                if dport == ipv4.REG_PORT:
                    msg = registration.decode_registration(h)
                    if isinstance(msg, registration.RegRequest):
                        self.cache.on_request(now, msg, iface, src_mac)
                    return
                if dport == ipv4.APP_PORT:
                    self.out.deliver(frame)
                    return
        except DecodeError as e:
            self.log("drop", {"reason": "malformed", "error": str(e)})
            return
        self.log("drop", {"reason": "port", "src": ipv4.ntoa(h.src)})

    def _forward(self, now, frame, dst, iface=None, src_mac=None):
        coa = self.cache.care_of(now, dst, 0)
        if coa is None:
            # a home agent routes only for its mobile nodes, and only while they are bound
            self.log("drop", {"reason": "no_binding", "to": ipv4.ntoa(dst)})
            return
        r = self.links.route(coa)
        if r is None:
            self.log("drop", {"reason": "no_route", "to": ipv4.ntoa(coa)})
            return
        if r[0] == iface and r[1] == src_mac:
            # from the care-of agent itself: it could not reach the node and sent the
            # datagram home (agent.py _gave_up); tunnelling it back would make it circle
            self.log("drop", {"reason": "loop", "to": ipv4.ntoa(dst)})
            return
        inner = bytearray(frame)
        if not ipv4.dec_ttl(inner):
            self.log("drop", {"reason": "ttl", "to": ipv4.ntoa(dst)})
            return
        try:
            outer = tunnel.encapsulate(self.address, coa, inner)
        except FrameTooLarge:
            self.log("drop", {"reason": "mtu", "len": len(inner)})
            return
        self.tunnelled += 1
        self.out.send(r[0], r[1], outer)

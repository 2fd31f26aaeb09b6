"""Foreign agent role: one radio cell (docs/CORE.md "Agent").

The agent coordinates its components and owns the forwarding:

* ``Beacon`` (cell.py): periodic advertisement with jitter (services, capacity/load, planned
  outage, boot nonce) and answers to solicitations, unicast to the solicitor's MAC;
* ``Visitors`` (cell.py): local bindings home address -> (MAC, interface, expiry) made by
  authenticated, replay-checked registration requests (type 33, cell key); refusal with code 66
  when full; deregistration; expiry;
* ``Region`` (region.py, when the agent is a region member): publication of its local bindings,
  the published bindings of the others, tunnels;
* forwarding inside the cell from its own table (the hot path: TTL decremented in place on the
  received buffer, SEND of that same buffer), so a cell keeps working when the agent is cut off
  from everything else. Destinations without a local binding go to ``_route_beyond_cell``, the
  hook where mobility regions (core II) tunnel via published bindings; what has no route there
  either, a visitor's datagram is relayed to the agents near (``_relay``: the agents heard
  advertising lately), one of which may hold the destination.

A planned outage is the agent's one mode: _IN_SERVICE, _OUTAGE_PLANNED (announced), then
_OUT_OF_SERVICE until it ends.
"""

from mobility import advert, ipv4, publication, registration, ticks, tunnel
from mobility.actions import IF_RADIO
from mobility.cell import B_EXPIRY, B_HOME, B_IFACE, B_MAC, Beacon, Visitors
from mobility.compat import const
from mobility.errors import DecodeError
from mobility.node import Node, due, fmt_mac, soonest
from mobility.region import Region

DEFAULT_ADV_INTERVAL_MS = const(1000)
DEFAULT_REG_LIFETIME_S = const(60)  # longest local binding granted
DEFAULT_CAPACITY = const(20)
_DEFAULT_ANSWER_GAP_MS = const(100)  # at most one unicast answer per solicitor per gap
_NEAR_MAX = const(4)  # agents heard advertising that a datagram without a route is relayed to
_NEAR_LIFE_MS = const(10000)  # ... each for its advertisement's lifetime, at most this long

# service states
_IN_SERVICE = const(0)
_OUTAGE_PLANNED = const(1)  # still in service; every advertisement announces the outage
_OUT_OF_SERVICE = const(2)  # the outage: neither answers nor forwards, and holds no binding


class Agent(Node):
    def __init__(self, config, rand, now):
        from mobility import settings

        Node.__init__(self, config, rand, now)
        (
            adv_interval_ms,
            adv_lifetime_s,
            reg_lifetime_s,
            capacity,
            services,
            cell_iface,
            answer_gap_ms,
        ) = settings.cell(
            config,
            DEFAULT_ADV_INTERVAL_MS,
            DEFAULT_REG_LIFETIME_S,
            DEFAULT_CAPACITY,
            IF_RADIO,
            _DEFAULT_ANSWER_GAP_MS,
        )
        services |= advert.SVC_ROUTING
        self.visitors = Visitors(self, capacity, reg_lifetime_s)
        # the same dict, one attribute away: the forwarding hot path looks it up per frame
        self.bindings = self.visitors.bindings
        self.beacon = Beacon(
            self, now, adv_interval_ms, adv_lifetime_s, services, cell_iface, answer_gap_ms
        )
        # the agents near (their authentic broadcast advertisements heard lately), each
        # [MAC, interface, until (ticks)]: where a datagram without a route goes (_relay)
        self.near = []
        # the messages each received advertisement, solicitation or registration is decoded
        # into (advert.decode_icmp, registration.decode_registration): none allocated per
        # frame. The advertisement is the beacon's own, and the reply the one the cell's
        # replies are filled in: neither is in use while the other is
        self._icmp_rx = (self.beacon.adv, advert.Solicitation())
        self._reg_rx = (registration.RegRequest(), self.visitors.reply)
        self._now = now  # on_frame hands time and RSSI to its slow path through these
        self._rssi = 0
        self.state = _IN_SERVICE
        self.outage_start = None  # the planned outage (ticks), None: none planned
        self.outage_end = None
        self.outage_for_s = 0
        plan = settings.outage(config)
        if plan is not None:
            self.plan_outage(now, plan[0], plan[1])
        # core II: the mobility region this agent is a member of (docs/REGION.md), or None
        rc = config.get("region")
        self.region = None
        if rc is not None:
            self.region = Region(rc, self.address, self.keys, self.out, self.epoch)
            self.region.bound_elsewhere = self._bound_elsewhere
            self.region.start(now)
        self._schedule(now)

    # --- the sans-I/O interface ---

    def on_frame(self, now, iface, src_mac, rssi, frame):
        # MicroPython allocates a call's frame on the heap when it needs more than 11 slots
        # (arguments + locals + value stack). This method has 6 arguments, so it stays at 11:
        # the hot path is one small call, and the rest gets time and RSSI through attributes.
        if self._forward(frame):
            return
        self._now = now
        self._rssi = rssi
        self._other_frame(iface, src_mac, frame)

    def forward_in_cell(self, frame):
        """The hot path as a question the driver asks before ``on_frame``: is ``frame`` (the
        driver's receive buffer, a bytearray) an IPv4 datagram for a node with a local binding?
        Then its TTL is decremented in place (the header checksum patched, RFC 1624) and the
        binding is the answer: the driver sends the same buffer to ``b[B_MAC]`` on
        ``b[B_IFACE]`` at once, and reports a failed send with ``on_link_failure`` as for a SEND
        action. None: not for this path, the frame untouched (``on_frame`` decides, a TTL run
        out included). The answer costs no action, no loop over actions and no clear: on
        MicroPython that is a third of the core's time per datagram (docs/CORE.md, "Forwarding
        (hot path)"). The address is read without a call (``ipv4.plain`` and ``ipv4.addr_key``
        written out): each call is a global lookup and a frame more per datagram."""
        if len(frame) < 20 or frame[0] != 0x45 or frame[8] <= 1 or self.state == _OUT_OF_SERVICE:
            return None
        # B_HOME is 0; the key leaves out two bits of the address, so its first byte is compared
        b = self.bindings.get(
            ((frame[16] & 0x3F) << 24) | (frame[17] << 16) | (frame[18] << 8) | frame[19]
        )
        if b is None or b[0][0] != frame[16] or isinstance(frame, bytes):
            return None
        ipv4.dec_ttl(frame)
        return b

    def _forward(self, frame):
        """The hot path inside ``on_frame`` (the simulator's and a driver's that does not ask
        ``forward_in_cell`` first): the same answer as a SEND action; a datagram for a local
        binding whose TTL ran out is dropped. False: not for this path."""
        b = self.forward_in_cell(frame)
        if b is not None:
            self.out.send(b[B_IFACE], b[B_MAC], frame)
            return True
        if not ipv4.plain(frame) or self.state == _OUT_OF_SERVICE:
            return False
        b = self.bindings.get(ipv4.addr_key(frame, ipv4.DST_AT))
        if b is None or b[B_HOME][0] != frame[ipv4.DST_AT]:
            return False
        if isinstance(frame, bytes):  # a caller's own bytes: forwarded in a copy
            frame = bytearray(frame)
        if ipv4.dec_ttl(frame):
            self.out.send(b[B_IFACE], b[B_MAC], frame)
        else:
            self._drop("ttl", frame)
        return True

    def _other_frame(self, iface, src_mac, frame):
        now = self._now
        if self.state == _OUT_OF_SERVICE:
            return  # the agent is out of service: it neither answers nor forwards
        # a datagram for someone else (not broadcast, 255.x.x.x) is routed beyond the cell
        if ipv4.plain(frame) and frame[ipv4.DST_AT] != 255:
            if ipv4.addr_key(frame, ipv4.DST_AT) != self.key:
                v = self.visitors
                if v.clashes:  # a binding the hot path cannot find (Visitors.get)
                    b = v.get(frame[ipv4.DST_AT : ipv4.DST_AT + 4])
                    if b is not None:
                        if isinstance(frame, bytes):
                            frame = bytearray(frame)
                        if ipv4.dec_ttl(frame):
                            self.out.send(b[B_IFACE], b[B_MAC], frame)
                        return
                self._route_beyond_cell(now, iface, src_mac, frame)
                return
            if self.region is not None and self.region.stale_copy(now, frame, iface, src_mac):
                return  # most copies of a region's flood: nothing to decode (Region.stale_copy)
        self._on_control(now, iface, src_mac, self._rssi, frame)
        self._schedule(now)

    def on_timer(self, now):
        if self.state == _OUTAGE_PLANNED and due(now, self.outage_start):
            self._begin_outage(now)
        if self.state == _OUT_OF_SERVICE and due(now, self.outage_end):
            self._end_outage(now)
        if self.state != _OUT_OF_SERVICE:
            self.beacon.on_timer(now)
            if due(now, self.visitors.next_expiry):
                self.visitors.expire(now)
            if due(now, self.again_at):
                self._again(now)
            if self.region is not None:
                self.region.on_timer(now)
        self._schedule(now)

    def on_send(self, now, dst, payload):
        """The agent's own application sends a datagram (it may be a correspondent too)."""
        pkt = bytearray(self.datagram(dst, payload))
        b = self.visitors.get(dst)
        if b is not None:
            self.out.send(b[B_IFACE], b[B_MAC], pkt)
        elif dst == self.address:
            self.out.deliver(pkt)
        else:
            self._route_beyond_cell(now, None, None, pkt)

    def on_link_failure(self, now, iface, mac, frame=None):
        """A unicast send to ``mac`` failed (no link-layer ACK after the MAC's retries).

        The local binding ends only when the node is known to be bound elsewhere: the region
        holds a binding for it published by another agent that is newer than ours (it expires
        later; ``Region.newer_elsewhere``); the withdrawal of ours is then published, and the
        failed ``frame`` is routed again at once, tunnelled to that agent. A bare count of
        failures is no evidence the node left: at the edge of a cell a slow fade (shadowing, a
        body in the way) silences a link for seconds while the node still hears an
        advertisement now and then, and ending the binding then only sends its traffic into a
        routing loop until the node notices. Otherwise the datagram is held and sent again
        after a fade's time (``Node._hold``), by the route of that moment: to the node, or
        where the region says it went meanwhile (a node that left silently, docs/CORE.md "Sent
        again"). A node bound nowhere is reached again as soon as it registers elsewhere, and
        a binding no one refreshes expires."""
        r = self.region
        hk = None if r is None else self.visitors.on_link(iface, mac)
        if hk is not None:
            b = self.bindings[hk]
            if r.newer_elsewhere(now, b[B_HOME], b[B_EXPIRY]):
                self.visitors.remove(now, hk, "link")
                if frame is not None and ipv4.plain(frame):
                    self._route_beyond_cell(now, iface, None, frame)
                self._schedule(now)
                return
        self._hold(now, iface, frame)
        self._schedule(now)

    def _bound_elsewhere(self, now, home, origin):
        """The region took ``origin``'s binding of ``home``: when we hold a local binding of
        that node too and theirs is newer (the node registered there after it last registered
        here, ``Region.newer_elsewhere``), ours ends now, as if the node had said it moved
        there. A node that left without deregistering (lost us by silence or failed sends)
        otherwise keeps a place of our capacity until our next failed send to it or to the
        end of its lifetime: in `city` seed 20 the agents that refused registrations as full
        held 60 bindings, of which 13 were nodes still there and 16 nodes bound elsewhere in
        the region (docs/REGION.md "A node that walks off without deregistering")."""
        v = self.visitors
        hk = v.key(home)
        b = v.bindings.get(hk)
        if b is not None and self.region.newer_elsewhere(now, home, b[B_EXPIRY]):
            v.remove(now, hk, "elsewhere", origin)

    def _send_again(self, now, pkt):
        if self.state != _OUT_OF_SERVICE and not self._forward(pkt):
            self._route_beyond_cell(now, None, None, pkt)

    def _gave_up(self, now, pkt):
        """A datagram for a visitor failed on the radio every time it was sent (docs/REGION.md
        "A node that left for another region"): the node may have registered with an agent
        our region knows nothing of (it left us without deregistering, so our binding still
        runs and nothing newer is published here). Its home agent knows where it registered
        last: the datagram goes on by the backbone route toward the node's home network,
        once. A home agent whose binding names us drops it (``loop``) instead of tunnelling
        it back, so a node in a long fade costs one backbone send per datagram lost, as
        before plus one."""
        r = self.region
        if r is None or self.state == _OUT_OF_SERVICE:
            return
        b = self.bindings.get(ipv4.addr_key(pkt, ipv4.DST_AT))
        if b is None or b[B_HOME][0] != pkt[ipv4.DST_AT]:
            return  # (no longer ours: the route of this moment took it, or nothing does)
        nb = r.backbone.next_hop(pkt, ipv4.DST_AT)
        if nb < 0 or r.backbone.is_member[nb]:
            return  # no home route (a member's hop would lead back to our own binding)
        if ipv4.dec_ttl(pkt):
            r.backbone.send(nb, pkt)

    def plan_outage(self, now, start_in_s, duration_s):
        """Announce in every advertisement from now on that the agent will be out of service
        from ``start_in_s`` seconds for ``duration_s`` seconds (nodes move away in time). Planned
        during an outage, it moves that outage's end."""
        if not isinstance(start_in_s, int) or not 0 <= start_in_s < advert.OUTAGE_NONE:
            raise ValueError("start_in_s", start_in_s)  # 0..65534
        if not isinstance(duration_s, int) or not 1 <= duration_s <= 0xFFFF:
            raise ValueError("duration_s", duration_s)  # 1..65535
        self.outage_start = ticks.add(now, start_in_s * 1000)
        self.outage_end = ticks.add(self.outage_start, duration_s * 1000)
        self.outage_for_s = duration_s
        if self.state != _OUT_OF_SERVICE:
            self.state = _OUTAGE_PLANNED
        self.log("outage_planned", {"start_in_s": start_in_s, "duration_s": duration_s})
        self._schedule(now)

    # --- hooks for core II (region publication, tunnels, remote bindings) ---

    def _route_beyond_cell(self, now, iface, src_mac, buf):
        """A datagram whose destination has no local binding (a local binding takes
        precedence: the hot path delivered those). In a region: a tunnel passing through is
        forwarded toward its end; a node with a published binding is tunnelled to its agent;
        other destinations go by the backbone routes (a neighbour, a host, a static route)."""
        r = self.region
        if r is None:
            self._relay(now, src_mac, buf)
            return
        if buf[ipv4.PROTO_AT] == ipv4.PROTO_IPIP:
            h = self.decode(buf, src_mac or b"\0\0\0\0\0\0")
            if h is not None:
                r.on_tunnel(now, buf, h, iface, src_mac)
            return
        oi = r.published(now, buf, ipv4.DST_AT)
        if oi >= 0:
            r.tunnel(now, buf, oi)
            return
        nb = r.backbone.next_hop(buf, ipv4.DST_AT)
        if nb < 0:
            self._relay(now, src_mac, buf)
            return
        if isinstance(buf, bytes):
            buf = bytearray(buf)
        if ipv4.dec_ttl(buf):
            r.backbone.send(nb, buf)
        else:
            self._drop("ttl", buf)

    def _relay(self, now, src_mac, buf):
        """No route to the datagram's destination (docs/CORE.md "Relay to the agents near"). One
        that a visitor sent (its source address has a local binding at the MAC it came from)
        goes, TTL decremented once, to every agent near: whichever holds a binding of the
        destination forwards it (its hot path), the others drop it (``relay_no_route``). A relayed
        copy comes from an agent's MAC, never a visitor's, so it is never relayed again."""
        b = self.bindings.get(ipv4.addr_key(buf, ipv4.SRC_AT))
        near = self.near
        if b is not None and b[1] == src_mac and b[0][0] == buf[ipv4.SRC_AT]:
            sent = False
            for e in near:
                if ticks.diff(now, e[2]) < 0:
                    if not sent:
                        if isinstance(buf, bytes):
                            buf = bytearray(buf)
                        if not ipv4.dec_ttl(buf):
                            self._drop("ttl", buf)
                            return
                        sent = True
                    self.out.send(e[1], e[0], buf)
            if sent:
                return
        for e in near:
            if e[0] == src_mac:
                self._drop("relay_no_route", buf)  # a neighbour's copy, not for us either
                return
        self._drop("no_route", buf)

    def _on_advertisement(self, now, iface, src_mac, rssi, adv):
        """Another agent's advertisement (agents do not bind to each other). A broadcast one
        that verifies under the cell key makes its MAC a relay target (``near``) for its
        lifetime (at most _NEAR_LIFE_MS); at most _NEAR_MAX of them, and one still live is
        never replaced, so a stream of advertisements from other MACs cannot push out an
        agent that keeps advertising (docs/CORE.md "Relay to the agents near")."""
        if adv.is_host_reply or adv.dst != ipv4.BCAST_ADDR or src_mac is None:
            return
        near = self.near
        slot = None  # its own entry, else one run out
        for e in near:
            if e[0] == src_mac:
                slot = e
                break
            if slot is None and ticks.diff(now, e[2]) >= 0:
                slot = e
        if slot is None and len(near) >= _NEAR_MAX:
            return
        if not adv.verify(self.keys) or advert.relayed(adv, src_mac):
            return  # (a copy from another MAC than the one it signs is not that agent)
        until = ticks.add(now, min(adv.adv_lifetime * 1000, _NEAR_LIFE_MS))
        if slot is None:
            near.append([bytes(src_mac), iface, until])
        else:
            slot[0] = bytes(src_mac)
            slot[1] = iface
            slot[2] = until

    def _on_udp(self, now, iface, src_mac, header, dport, payload):
        if dport == ipv4.PUB_PORT and header.dst == self.address:
            if self.region is not None:
                self.region.on_publication(now, header.src, payload, iface, src_mac)
            else:
                self.log("region_ignored", {"reason": "not_member", "src": ipv4.ntoa(header.src)})
            return
        self._drop("port", None, header)

    def _on_other(self, now, iface, src_mac, header):
        if header.proto == ipv4.PROTO_IPIP and header.dst == self.address:
            # the end of a tunnel (from a region member, a home agent or a correspondent):
            # deliver the inner datagram as if it had arrived here, which takes it to the
            # node's MAC, or on by a newer published binding (its TTL bounds any loop); in a
            # region only from a member or a host of it (Region.admits); never nested
            if self.region is not None and self.region.admits(header, iface, src_mac) < 0:
                return
            inner = tunnel.decapsulate(header)
            if publication.is_publication(inner):
                self._drop("publication_in_tunnel", None, header)
                return
            self.on_frame(now, iface, src_mac, 0, bytearray(inner))
            return
        self._drop("proto", None, header)

    def _local_up(self, now, binding, new):
        """A local binding was made (``new`` 1, or 2 for a node bound nowhere else) or
        refreshed (0): the region hears of it."""
        if self.region is not None:
            life = ticks.diff(binding[B_EXPIRY], now)
            self.region.local_up(now, binding[B_HOME], life, new == 2)

    def _local_down(self, now, binding, reason, moved_to=None):
        """A local binding ended: withdrawn from the region; when the node said where it moved
        (``moved_to``, a member of the region), a forwarding pointer to that agent bridges
        the time until its publication arrives (Region.local_moved)."""
        if self.region is not None:
            if moved_to is not None:
                self.region.local_moved(now, binding[B_HOME], moved_to)
            else:
                self.region.local_down(now, binding[B_HOME])

    # --- control plane ---

    def _on_control(self, now, iface, src_mac, rssi, frame):
        h = self.decode(frame, src_mac)
        if h is None:
            return
        to_me = h.dst == self.address
        if not to_me and h.dst != ipv4.BCAST_ADDR:
            self._drop("no_route", None, h)  # broadcast-looking or malformed destinations
            return
        try:
            if h.proto == ipv4.PROTO_ICMP:
                msg = advert.decode_icmp(h, self._icmp_rx)
                if isinstance(msg, advert.Solicitation):
                    self.beacon.on_solicitation(now, iface, src_mac, msg)
                elif msg.src != self.address:
                    self._on_advertisement(now, iface, src_mac, rssi, msg)
            elif h.proto == ipv4.PROTO_UDP:
                sport, dport, payload = ipv4.decode_udp(h)
                if dport == ipv4.REG_PORT and to_me:
                    msg = registration.decode_registration(h, self._reg_rx)
                    if isinstance(msg, registration.RegRequest):
                        self.visitors.on_request(now, iface, src_mac, msg)
                    else:
                        self._drop("unexpected", None, None)  # a reply: agents send none
                elif dport == ipv4.APP_PORT and to_me:
                    self.out.deliver(frame)
                else:
                    self._on_udp(now, iface, src_mac, h, dport, payload)
            else:
                self._on_other(now, iface, src_mac, h)
        except DecodeError as exc:
            self.log("drop", {"reason": "malformed", "mac": fmt_mac(src_mac), "error": str(exc)})

    # --- the outage and the timers ---

    def _begin_outage(self, now):
        self.state = _OUT_OF_SERVICE
        self.log("outage_start", {"duration_s": self.outage_for_s})
        self.visitors.remove_all(now, "outage")

    def _end_outage(self, now):
        self.state = _IN_SERVICE
        self.outage_start = None
        self.outage_end = None
        self.outage_for_s = 0
        self.beacon.next_at = now  # back in service: advertise at once
        self.log("outage_end", {})

    def _schedule(self, now):
        if self.state == _OUT_OF_SERVICE:
            self._wake = self.outage_end
            return
        wake = soonest(now, self.beacon.next_at, self.visitors.next_expiry)
        wake = soonest(now, wake, self.outage_start)
        wake = soonest(now, wake, self.again_at)
        if self.region is not None:
            wake = soonest(now, wake, self.region.next_wake())
        self._wake = wake

    def _drop(self, reason, buf, header=None):
        if header is not None:
            src, dst = header.src, header.dst
        elif buf is not None and len(buf) >= ipv4.HEADER_LEN:
            src = buf[ipv4.SRC_AT : ipv4.SRC_AT + 4]
            dst = buf[ipv4.DST_AT : ipv4.DST_AT + 4]
        else:
            self.log("drop", {"reason": reason})
            return
        self.log("drop", {"reason": reason, "src": ipv4.ntoa(src), "dst": ipv4.ntoa(dst)})

"""Foreign agent role: one radio cell (docs/CORE.md "Agent").

* periodic advertisement with jitter (services, capacity/load, planned outage, boot nonce);
* answers to solicitations, unicast to the solicitor's MAC;
* local bindings home address -> (MAC, interface, expiry) made by authenticated, replay-checked
  registration requests (type 33, cell key); refusal with code 66 when full; deregistration;
* forwarding inside the cell from its own table (the hot path: TTL decremented in place on the
  received buffer, SEND of that same buffer), so a cell keeps working when the agent is cut off
  from everything else. Destinations without a local binding go to ``_route_beyond_cell``, the
  hook where mobility regions (core II) tunnel via published bindings.
"""

from mobility import advert, auth, ipv4, registration, replay, ticks, tunnel
from mobility.actions import IF_RADIO
from mobility.errors import DecodeError
from mobility.node import Node, cfg_int, due, fmt_mac, soonest
from mobility.region import Region, is_publication

try:
    from micropython import const
except ImportError:

    def const(x):  # type: ignore[misc]
        return x


DEFAULT_ADV_INTERVAL_MS = const(1000)
DEFAULT_REG_LIFETIME_S = const(60)  # longest local binding granted
DEFAULT_CAPACITY = const(20)
DEFAULT_ANSWER_GAP_MS = const(100)  # at most one unicast answer per solicitor per gap
ANSWERS_HELD = const(32)  # solicitors remembered for that limit
SEQ_WRAP_TO = const(256)  # RFC 5944 2.1.1: after 0xffff the sequence continues at 256

# a local binding: [home address (4 bytes), MAC, interface, expiry (ticks)]
B_HOME = const(0)
B_MAC = const(1)
B_IFACE = const(2)
B_EXPIRY = const(3)


class Agent(Node):
    def __init__(self, config, rand, now):
        Node.__init__(self, config, rand, now)
        self.adv_interval_ms = cfg_int(
            config, "adv_interval_ms", DEFAULT_ADV_INTERVAL_MS, 20, 600000
        )
        default_life = (3 * self.adv_interval_ms + 999) // 1000
        self.adv_lifetime_s = cfg_int(config, "adv_lifetime_s", default_life, 1, 9000)
        self.reg_lifetime_s = cfg_int(config, "reg_lifetime_s", DEFAULT_REG_LIFETIME_S, 1, 65535)
        self.capacity = cfg_int(config, "capacity", DEFAULT_CAPACITY, 0, 255)
        self.services = advert.SVC_ROUTING | cfg_int(config, "services", 0, 0, 0x07)
        self.cell_iface = cfg_int(config, "cell_iface", IF_RADIO, 0, 1)
        self.answer_gap_ms = cfg_int(
            config, "solicit_answer_gap_ms", DEFAULT_ANSWER_GAP_MS, 0, 60000
        )
        self.idents = replay.IdentCheck(self.nonce)
        self.bindings = {}  # addr_key(home) -> [home, mac, iface, expiry]
        self.seq = 0
        self._next_adv = ticks.add(now, rand(16) % (self.adv_interval_ms // 4 + 1))
        self._next_expiry = None
        self._answers = {}  # addr_key(solicitor) -> when we last answered it
        self._now = now  # on_frame hands time and RSSI to its slow path through these
        self._rssi = 0
        self.outage_start = None  # planned outage (ticks), None: none planned
        self.outage_end = None
        self.outage_for_s = 0
        self.in_outage = False
        plan = config.get("outage")
        if plan is not None:
            if not isinstance(plan, dict) or "start_in_s" not in plan or "duration_s" not in plan:
                raise ValueError("config 'outage' must be {'start_in_s': s, 'duration_s': s}")
            self.plan_outage(now, plan["start_in_s"], plan["duration_s"])
        # core II: the mobility region this agent is a member of (docs/REGION.md), or None
        rc = config.get("region")
        self.region = None
        if rc is not None:
            self.region = Region(rc, self.address, self.keys, self.out, self.epoch)
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

    def _forward(self, frame):
        """The hot path: an IPv4 datagram for a node with a local binding, looked up without
        decoding or slicing, its TTL decremented in place, sent on in the same buffer. The header
        checksum is not verified here: dec_ttl patches it incrementally, so a corrupted header
        stays corrupted and its receiver drops it. False: not for this path."""
        if len(frame) < 20 or frame[0] != 0x45 or self.in_outage:
            return False
        b = self.bindings.get(
            ((frame[16] & 0x3F) << 24) | (frame[17] << 16) | (frame[18] << 8) | frame[19]
        )
        if b is None or b[0][0] != frame[16]:
            return False
        if isinstance(frame, bytes):  # the driver's buffer is a bytearray
            frame = bytearray(frame)
        if ipv4.dec_ttl(frame):
            self.out.send(b[2], b[1], frame)
        else:
            self._drop("ttl", frame)
        return True

    def _other_frame(self, iface, src_mac, frame):
        now = self._now
        if self.in_outage:
            return  # the agent is out of service: it neither answers nor forwards
        if len(frame) >= 20 and frame[0] == 0x45 and frame[16] != 255:
            if ipv4.addr_key(frame, 16) != self.key:
                self._route_beyond_cell(now, iface, src_mac, frame)
                return
            if self.region is not None and self.region.stale_copy(now, frame):
                return  # most copies of a region's flood: nothing to decode (Region.stale_copy)
        self._on_control(now, iface, src_mac, self._rssi, frame)
        self._schedule(now)

    def on_timer(self, now):
        if self.outage_start is not None and due(now, self.outage_start) and not self.in_outage:
            self._begin_outage(now)
        if self.in_outage and due(now, self.outage_end):
            self._end_outage(now)
        if not self.in_outage:
            if due(now, self._next_adv):
                self._advertise(now, ipv4.BCAST_ADDR, b"\xff" * 6, self.cell_iface)
                j = self.adv_interval_ms // 10  # +-10 % jitter: agents do not stay in step
                self._next_adv = ticks.add(
                    now, self.adv_interval_ms - j + self.rand(16) % (2 * j + 1)
                )
            if due(now, self._next_expiry):
                self._expire(now)
            if self.region is not None:
                self.region.on_timer(now)
        self._schedule(now)

    def on_send(self, now, dst, payload):
        """The agent's own application sends a datagram (it may be a correspondent too)."""
        pkt = bytearray(self.datagram(dst, payload))
        b = self.bindings.get(ipv4.addr_key(dst, 0))
        if b is not None and b[B_HOME] == dst:
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
        routing loop until the node notices. A node that walked off and is bound nowhere cannot
        be helped by ending the binding either; it is reached again as soon as it registers
        elsewhere (whose publication ends this binding at the next failed send), and a binding
        no one refreshes expires."""
        r = self.region
        if r is None:
            return
        hk = -1
        for k in self.bindings:
            b = self.bindings[k]
            if b[B_MAC] == mac and b[B_IFACE] == iface:
                hk = k
                break
        if hk < 0 or not r.newer_elsewhere(now, b[B_HOME], b[B_EXPIRY]):
            return
        self._remove(now, hk, "link")
        if frame is not None and len(frame) >= 20 and frame[0] == 0x45:
            self._route_beyond_cell(now, iface, None, frame)
        self._schedule(now)

    def plan_outage(self, now, start_in_s, duration_s):
        """Announce in every advertisement from now on that the agent will be out of service
        from ``start_in_s`` seconds for ``duration_s`` seconds (nodes move away in time)."""
        if not isinstance(start_in_s, int) or not 0 <= start_in_s < advert.OUTAGE_NONE:
            raise ValueError("outage start_in_s must be an int in 0..65534, not %r" % (start_in_s,))
        if not isinstance(duration_s, int) or not 1 <= duration_s <= 0xFFFF:
            raise ValueError("outage duration_s must be an int in 1..65535, not %r" % (duration_s,))
        self.outage_start = ticks.add(now, start_in_s * 1000)
        self.outage_end = ticks.add(self.outage_start, duration_s * 1000)
        self.outage_for_s = duration_s
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
            self._drop("no_route", buf)
            return
        if buf[9] == ipv4.PROTO_IPIP:
            h = self.decode(buf, src_mac or b"\0\0\0\0\0\0")
            if h is not None:
                r.on_tunnel(now, buf, h)
            return
        oi = r.published(now, buf, 16)
        if oi >= 0:
            r.tunnel(now, buf, oi)
            return
        nb = r.next_hop(buf, 16)
        if nb < 0:
            self._drop("no_route", buf)
            return
        if isinstance(buf, bytes):
            buf = bytearray(buf)
        if ipv4.dec_ttl(buf):
            self.out.send(r.nb_iface[nb], r.nb_mac[nb], buf)
        else:
            self._drop("ttl", buf)

    def _on_advertisement(self, now, iface, src_mac, rssi, adv):
        """Another agent's advertisement (agents do not bind to each other)."""

    def _on_udp(self, now, iface, src_mac, header, dport):
        if dport == ipv4.PUB_PORT and header.dst == self.address:
            if self.region is not None:
                self.region.on_publication(now, header.src, header.payload[8:])
            else:
                self.log("region_ignored", {"reason": "not_member", "src": ipv4.ntoa(header.src)})
            return
        self._drop("port", None, header)

    def _on_other(self, now, iface, src_mac, header):
        if header.proto == ipv4.PROTO_IPIP and header.dst == self.address:
            # the end of a tunnel (from a region member, a home agent or a correspondent):
            # deliver the inner datagram as if it had arrived here, which takes it to the
            # node's MAC, or on by a newer published binding (its TTL bounds any loop)
            inner = tunnel.decapsulate(header)
            if is_publication(inner):
                self._drop("publication_in_tunnel", None, header)
                return
            self.on_frame(now, iface, src_mac, 0, bytearray(inner))
            return
        self._drop("proto", None, header)

    def _local_up(self, now, binding, new):
        """A local binding was made (new) or refreshed: the region hears of it."""
        if self.region is not None:
            self.region.local_up(now, binding[B_HOME], ticks.diff(binding[B_EXPIRY], now))

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
                msg = advert.decode_icmp(h)
                if isinstance(msg, advert.Solicitation):
                    self._on_solicitation(now, iface, src_mac, msg)
                elif msg.src != self.address:
                    self._on_advertisement(now, iface, src_mac, rssi, msg)
            elif h.proto == ipv4.PROTO_UDP:
                sport, dport, payload = ipv4.decode_udp(h)
                if dport == ipv4.REG_PORT and to_me:
                    msg = registration.decode_registration(h)
                    if isinstance(msg, registration.RegRequest):
                        self._on_request(now, iface, src_mac, msg)
                    else:
                        self._on_reply(now, iface, src_mac, msg)
                elif dport == ipv4.APP_PORT and to_me:
                    self.out.deliver(frame)
                else:
                    self._on_udp(now, iface, src_mac, h, dport)
            else:
                self._on_other(now, iface, src_mac, h)
        except DecodeError as exc:
            self.log("drop", {"reason": "malformed", "mac": fmt_mac(src_mac), "error": str(exc)})

    def _on_reply(self, now, iface, src_mac, rep):
        self._drop("unexpected", None, None)

    def _on_solicitation(self, now, iface, src_mac, sol):
        if not self.check_solicitation(sol, src_mac):
            return
        k = ipv4.addr_key(sol.src, 0)
        last = self._answers.get(k)
        if last is not None and ticks.diff(now, last) < self.answer_gap_ms:
            return  # rate limit (a replayed burst): the solicitor asks again later
        if len(self._answers) >= ANSWERS_HELD:
            self._answers.clear()
        self._answers[k] = now
        # Unicast back to the MAC and interface the solicitation came from: no route needed.
        self._advertise(now, sol.src, src_mac, iface, sol.challenge)

    def _advertise(self, now, dst, mac, iface, challenge=0):
        load = len(self.bindings)
        flags = advert.FLAG_R | advert.FLAG_F
        if load >= self.capacity:
            flags |= advert.FLAG_B
        outage_in = advert.OUTAGE_NONE
        if self.outage_start is not None:
            outage_in = max(0, (ticks.diff(self.outage_start, now) + 999) // 1000)
            if outage_in >= advert.OUTAGE_NONE:
                outage_in = advert.OUTAGE_NONE - 1
        adv = advert.Advertisement(
            src=self.address,
            dst=dst,
            adv_lifetime=self.adv_lifetime_s,
            seq=self.seq,
            reg_lifetime=self.reg_lifetime_s,
            flags=flags,
            services=self.services,
            capacity=self.capacity,
            load=min(load, 255),
            outage_in=outage_in,
            outage_for=self.outage_for_s if self.outage_start is not None else 0,
            nonce=self.nonce,
            challenge=challenge,
        )
        self.out.send(iface, mac, advert.encode_advertisement(adv, self.cell_key))
        self.seq = self.seq + 1 if self.seq < 0xFFFF else SEQ_WRAP_TO

    def _on_request(self, now, iface, src_mac, req):
        if req.ext_type != registration.EXT_MF_AUTH or not req.verify(self.keys, auth.SPI_CELL):
            # Unauthenticated: no reply (no amplification), no state.
            self.reject("registration", "auth", req.src, src_mac)
            return
        hk = ipv4.addr_key(req.home, 0)
        if self.idents.accept(hk, req.ident) != replay.ACCEPTED:
            self.reject("registration", "ident", req.home, src_mac)
            self._reply(
                iface, src_mac, req, registration.IDENT_MISMATCH, 0, self.idents.reply_ident(hk)
            )
            return
        # From here the request is authentic and fresh; its counter is recorded (so a replay of
        # a refused request cannot succeed later) but no route is installed unless accepted.
        home = bytes(req.home)
        # (a deregistration may name the node's new agent as care-of: the node moved there)
        moved_to = None
        if req.lifetime == 0 and req.coa != self.address:
            moved_to = bytes(req.coa)
        elif req.coa != self.address:
            moved_to = ipv4.BCAST_ADDR  # poorly formed
        if moved_to == ipv4.BCAST_ADDR or home == self.address or home == ipv4.BCAST_ADDR:
            self.reject("registration", "poorly_formed", home, src_mac)
            self._reply(iface, src_mac, req, registration.FA_POORLY_FORMED, 0, req.ident)
            return
        b = self.bindings.get(hk)
        if b is not None and b[B_HOME] != home:
            # Another address with the same 30-bit table key is bound (they differ only in the
            # top two bits of the first octet): the table holds one of them at a time.
            self.reject("registration", "key_clash", home, src_mac)
            self._reply(iface, src_mac, req, registration.FA_UNSPECIFIED, 0, req.ident)
            return
        if req.lifetime == 0:
            if b is not None:
                self._remove(now, hk, "dereg", moved_to)
            self._reply(iface, src_mac, req, registration.ACCEPTED, 0, req.ident)
            return
        if b is None and len(self.bindings) >= self.capacity:
            self.log(
                "reject",
                {
                    "msg": "registration",
                    "reason": "capacity",
                    "src": ipv4.ntoa(home),
                    "mac": fmt_mac(src_mac),
                    "load": len(self.bindings),
                    "capacity": self.capacity,
                },
            )
            self._reply(iface, src_mac, req, registration.FA_NO_RESOURCES, 0, req.ident)
            return
        granted = min(req.lifetime, self.reg_lifetime_s)
        expiry = ticks.add(now, granted * 1000)
        mac = bytes(src_mac)
        fields = {"home": ipv4.ntoa(home), "mac": fmt_mac(mac), "lifetime": granted}
        if b is None:
            b = [home, mac, iface, expiry]
            self.bindings[hk] = b
            self._expiry_set(now, expiry)
            fields["load"] = len(self.bindings)
            fields["s"] = bool(req.flags & registration.FLAG_S)
            self.log("binding_up", fields)
            self._local_up(now, b, True)
        else:
            moved = b[B_MAC] != mac or b[B_IFACE] != iface
            b[B_MAC] = mac
            b[B_IFACE] = iface
            b[B_EXPIRY] = expiry
            self._expiry_set(now, expiry)  # (a shorter grant than before is possible)
            if moved:
                fields["moved"] = True
            self.log("binding_refresh", fields)
            self._local_up(now, b, False)
        self._reply(iface, src_mac, req, registration.ACCEPTED, granted, req.ident)

    def _reply(self, iface, mac, req, code, lifetime, ident):
        # Straight back to the MAC and interface of the request: the node may not be bound yet
        # (or was refused), so no route is looked up or installed for the reply.
        rep = registration.RegReply(
            src=self.address,
            dst=req.home,
            code=code,
            lifetime=lifetime,
            home=req.home,
            home_agent=req.home_agent,
            ident=ident,
        )
        self.out.send(iface, mac, registration.encode_reply(rep, self.cell_key))

    # --- bindings and timers ---

    def _remove(self, now, hk, reason, moved_to=None):
        b = self.bindings.pop(hk)
        fields = {"home": ipv4.ntoa(b[B_HOME]), "reason": reason, "load": len(self.bindings)}
        if moved_to is not None:
            fields["to"] = ipv4.ntoa(moved_to)
        self.log("binding_down", fields)
        self._local_down(now, b, reason, moved_to)

    def _expire(self, now):
        """_next_expiry has come: remove what expired and find the true earliest expiry."""
        gone = None
        nxt = None
        for hk in self.bindings:
            e = self.bindings[hk][B_EXPIRY]
            if ticks.diff(now, e) >= 0:
                if gone is None:
                    gone = []
                gone.append(hk)
            elif nxt is None or ticks.diff(e, nxt) < 0:
                nxt = e
        self._next_expiry = nxt
        if gone is not None:
            for hk in gone:
                self._remove(now, hk, "expired")

    def _expiry_set(self, now, e):
        # _next_expiry is a lower bound of the bindings' expiries (kept without a scan: a
        # refresh or a removal leaves it early, and _expire then finds the true one)
        if self._next_expiry is None or ticks.diff(e, self._next_expiry) < 0:
            self._next_expiry = e

    def _begin_outage(self, now):
        self.in_outage = True
        self.log("outage_start", {"duration_s": self.outage_for_s})
        for hk in list(self.bindings):
            self._remove(now, hk, "outage")

    def _end_outage(self, now):
        self.in_outage = False
        self.outage_start = None
        self.outage_end = None
        self.outage_for_s = 0
        self._next_adv = now
        self.log("outage_end", {})

    def _schedule(self, now):
        nxt = self._next_expiry
        wake = self.outage_end if self.in_outage else soonest(now, self._next_adv, nxt)
        if not self.in_outage:
            wake = soonest(now, wake, self.outage_start)
            if self.region is not None:
                wake = soonest(now, wake, self.region.next_wake())
        self._wake = wake

    def _drop(self, reason, buf, header=None):
        if header is not None:
            src, dst = header.src, header.dst
        elif buf is not None and len(buf) >= 20:
            src, dst = bytes(buf[12:16]), bytes(buf[16:20])
        else:
            self.log("drop", {"reason": reason})
            return
        self.log("drop", {"reason": reason, "src": ipv4.ntoa(src), "dst": ipv4.ntoa(dst)})

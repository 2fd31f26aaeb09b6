"""A foreign agent's cell (docs/CORE.md "Agent"): whom it binds and what it announces.

* ``Visitors``: the visitor list, the agent's local bindings home address -> (MAC, interface,
  expiry), made, refreshed and ended by registration requests (type 33, signed with the cell
  key, replay-checked by their Identification), and by expiry. A binding is a list ``[home, mac,
  iface, expiry]`` (B_* below) in a dict keyed by ``ipv4.addr_key(home)``, so the agent's
  forwarding hot path finds it without allocating.
* ``Beacon``: an advertisement every interval with +-10 % jitter (so agents do not stay in
  step), and an answer to each authentic solicitation, unicast to the solicitor's MAC and
  rate-limited per solicitor. Each carries the agent's services, capacity and load (its visitor
  list), its planned outage and its boot nonce.
"""

from mobility import advert, auth, ipv4, registration, replay, ticks
from mobility.compat import const
from mobility.node import fmt_mac
from mobility.replay import RateLimit

# a local binding: [home address (4 bytes), MAC, interface, expiry (ticks)]
B_HOME = const(0)
B_MAC = const(1)
B_IFACE = const(2)
B_EXPIRY = const(3)

_IDENTS_SPARE = const(32)  # counters held beyond the capacity (unbound addresses)
_REFUSAL_GAP_MS = const(1000)  # at most one 133 per home address per second ...
_REFUSAL_BURST = const(8)  # ... and this many a second in all
_ANSWER_BURST = const(16)  # answers to solicitations a second, in all
_SEQ_WRAP_TO = const(256)  # RFC 5944 2.1.1: after 0xffff the sequence continues at 256
_BCAST_MAC = b"\xff" * 6


class Visitors:
    """The local bindings of ``agent`` (its address, keys, log and the hooks ``_local_up`` /
    ``_local_down``): at most ``capacity``, each granted at most ``reg_lifetime_s``."""

    def __init__(self, agent, capacity, reg_lifetime_s):
        self.agent = agent
        self.capacity = capacity
        self.reg_lifetime_s = reg_lifetime_s
        # counters of the home addresses heard (bound ones never evicted) and the rate of
        # refusals (133) that a replayed request triggers
        self.idents = replay.IdentCheck(agent.nonce, capacity + _IDENTS_SPARE)
        self.refusals = RateLimit(_REFUSAL_GAP_MS, _REFUSAL_BURST)
        self.bindings = {}  # addr_key(home) -> [home, mac, iface, expiry]
        self.clashes = 0  # bindings held under their 4 bytes (another has their 30-bit key)
        # a lower bound of the bindings' expiries, kept without a scan: a refresh or a removal
        # leaves it early, and expire() then finds the true one
        self.next_expiry = None
        self.reply = registration.RegReply()  # filled in for each reply (_reply)

    def on_request(self, now, iface, src_mac, req):
        """A decoded registration request arrived from ``src_mac`` on ``iface``; the reply
        goes straight back there. The checks that cost nothing come before the HMAC: the
        authentication type, the link-layer addresses the request names (its own node's MAC,
        this agent's), and for a request that would only be refused (its identification is not
        fresh) the refusal's rate limit."""
        a = self.agent
        if (
            req.ext_type != registration.EXT_MF_AUTH
            or req.spi != auth.SPI_NODE
            or req.node_mac is None
        ):
            # Unauthenticated: no reply (no amplification), no state.
            a.reject("registration", "auth", req.src, src_mac)
            return
        if req.node_mac != src_mac or a.mac is None or req.agent_mac != a.mac:
            # Sent through someone else's MAC (a relay), or addressed to another agent's:
            # the binding would use a link-layer address its owner did not sign.
            a.reject("registration", "mac", req.home, src_mac)
            return
        if not a.beacon.fresh(req.agent_seq):
            # It echoes an advertisement older than any a node could still hold us by: a
            # recording of a request we never took (lost on the air), replayed once the node
            # moved on, would bind it here again. No reply: the node's next try echoes the
            # advertisement it hears next.
            a.reject("registration", "stale", req.home, src_mac)
            return
        home = bytes(req.home)
        hk = ipv4.addr_key(home, 0)
        # counters by address: the 30-bit key when the top two bits are 0 (10.x.x.x: a small
        # int, nothing allocated and kept), else the 4 bytes (two addresses of one 30-bit key
        # never share a counter)
        ik = hk if home[0] < 64 else home
        fresh = self.idents.check(ik, req.ident)
        if not fresh and not self.refusals.allow(now, ik, False):
            a.reject("registration", "rate", home, src_mac)  # a replayed burst: no work
            return
        # K_X = HMAC(binding secret, "B" || home)[:16] (auth.node_key): one HMAC under the
        # secret's padded blocks, those and K_X's made once per request (auth.Keys keeps none
        # of them: registrations are rare, a board's heap is not), nothing kept per node
        key = a.keys.tag(auth.SPI_NODE_SECRET, b"B", home)
        if key is not None:
            key = auth.pads(key)
        if key is None or not req.verify(key):
            a.reject("registration", "auth", home, src_mac)
            return
        if not fresh or self.idents.accept(ik, req.ident, self._bound) != replay.ACCEPTED:
            a.reject("registration", "ident", home, src_mac)
            if self.refusals.allow(now, ik):
                self._reply(
                    iface, req, registration.IDENT_MISMATCH, 0, self.idents.reply_ident(ik), key
                )
            return
        # From here the request is authentic, fresh and from X itself (only X and the
        # infrastructure hold K_X); its counter is recorded (so a replay of a refused request
        # cannot succeed later) but no route is installed unless accepted.
        # (a deregistration may name the node's new agent as care-of: the node moved there)
        moved_to = None
        if req.lifetime == 0 and req.coa != a.address:
            moved_to = bytes(req.coa)
        elif req.coa != a.address:
            moved_to = ipv4.BCAST_ADDR  # poorly formed
        if moved_to == ipv4.BCAST_ADDR or home == a.address or home == ipv4.BCAST_ADDR:
            a.reject("registration", "poorly_formed", home, src_mac)
            self._reply(iface, req, registration.FA_POORLY_FORMED, 0, req.ident, key)
            return
        # (held under its 4 bytes when another address has its 30-bit key, which the hot path
        # never finds: the agent's slow path does, Agent._other_frame)
        hk = self.key(home)
        b = self.bindings.get(hk)
        if req.lifetime == 0:
            if b is not None:
                self.remove(now, hk, "dereg", moved_to)
            self._reply(iface, req, registration.ACCEPTED, 0, req.ident, key)
            return
        if b is None and len(self.bindings) >= self.capacity:
            a.log(
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
            self._reply(iface, req, registration.FA_NO_RESOURCES, 0, req.ident, key)
            return
        granted = min(req.lifetime, self.reg_lifetime_s)
        expiry = ticks.add(now, granted * 1000)
        mac = bytes(req.node_mac)  # signed by X: the only MAC its binding may use
        fields = {"home": ipv4.ntoa(home), "mac": fmt_mac(mac), "lifetime": granted}
        if b is None:
            b = [home, mac, iface, expiry]
            self.bindings[hk] = b
            if not isinstance(hk, int):
                self.clashes += 1
            self._expiry_set(expiry)
            fields["load"] = len(self.bindings)
            s = req.flags & registration.FLAG_S
            fields["s"] = bool(s)
            a.log("binding_up", fields)
            a._local_up(now, b, 1 if s else 2)  # 2: bound nowhere (it lost its agent): urgent
        else:
            moved = b[B_MAC] != mac or b[B_IFACE] != iface
            b[B_MAC] = mac
            b[B_IFACE] = iface
            b[B_EXPIRY] = expiry
            self._expiry_set(expiry)  # (a shorter grant than before is possible)
            if moved:
                fields["moved"] = True
            a.log("binding_refresh", fields)
            a._local_up(now, b, 0)
        self._reply(iface, req, registration.ACCEPTED, granted, req.ident, key)

    def _bound(self, k):
        """True when the counter key ``k`` (on_request) has a local binding: its counter is
        never evicted."""
        return (self.bindings.get(k) if isinstance(k, int) else self.get(k)) is not None

    def get(self, home):
        """The local binding of ``home`` (4 bytes), or None: under its 30-bit key, or under
        its 4 bytes when another address holds that key."""
        b = self.bindings.get(ipv4.addr_key(home, 0))
        if b is not None and b[B_HOME] == home:
            return b
        return self.bindings.get(bytes(home)) if self.clashes else None

    def key(self, home):
        """The key the local binding of ``home`` (4 bytes) is held under, or would be: its
        30-bit key, or its 4 bytes when another address holds that key (they differ only in
        the top two bits of the first octet). ``get`` is this and the lookup in one, for the
        forwarding path."""
        hk = ipv4.addr_key(home, 0)
        b = self.bindings.get(hk)
        return hk if b is None or b[B_HOME] == home else bytes(home)

    def _reply(self, iface, req, code, lifetime, ident, key):
        # Straight back to the MAC (signed in the request) and interface of the request: the
        # node may not be bound yet (or was refused), so no route is looked up or installed
        # for the reply. It names both MACs and the request's identification, signed with K_X.
        a = self.agent
        rep = self.reply
        registration.RegReply.__init__(
            rep,
            src=a.address,
            dst=req.home,
            code=code,
            lifetime=lifetime,
            home=req.home,
            home_agent=req.home_agent,
            ident=ident,
            node_mac=req.node_mac,
            agent_mac=req.agent_mac,
            req_ident=req.ident,
        )
        rep.dport = req.sport  # RFC 5944 3.7.4: back to the request's source port
        a.out.send(iface, req.node_mac, registration.encode_reply(rep, key))

    def on_link(self, iface, mac):
        """The key of the binding whose node is at ``mac`` on ``iface``, or None."""
        for k in self.bindings:
            b = self.bindings[k]
            if b[B_MAC] == mac and b[B_IFACE] == iface:
                return k
        return None

    def remove(self, now, hk, reason, moved_to=None):
        """End the binding keyed ``hk`` (logged as ``binding_down`` with ``reason``)."""
        b = self.bindings.pop(hk)
        if not isinstance(hk, int):
            self.clashes -= 1
        fields = {"home": ipv4.ntoa(b[B_HOME]), "reason": reason, "load": len(self.bindings)}
        if moved_to is not None:
            fields["to"] = ipv4.ntoa(moved_to)
        self.agent.log("binding_down", fields)
        self.agent._local_down(now, b, reason, moved_to)

    def remove_all(self, now, reason):
        for hk in list(self.bindings):
            self.remove(now, hk, reason)

    def expire(self, now):
        """next_expiry has come: remove what expired and find the true earliest expiry."""
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
        self.next_expiry = nxt
        if gone is not None:
            for hk in gone:
                self.remove(now, hk, "expired")

    def _expiry_set(self, e):
        if self.next_expiry is None or ticks.diff(e, self.next_expiry) < 0:
            self.next_expiry = e


class Beacon:
    """The advertisements of ``agent`` (its address, cell key, log, randomness, ``visitors``
    and planned outage): every ``interval_ms`` on interface ``iface``, valid ``lifetime_s``;
    at most one answer per solicitor per ``answer_gap_ms``."""

    def __init__(self, agent, now, interval_ms, lifetime_s, services, iface, answer_gap_ms):
        self.agent = agent
        self.interval_ms = interval_ms
        self.lifetime_s = lifetime_s
        self.services = services
        self.iface = iface
        self.answer_gap_ms = answer_gap_ms
        self.seq = 0  # of the next advertisement
        self.last_seq = -1  # of the last one (answers carry it: they advance nothing); -1: none yet
        self.next_at = ticks.add(now, agent.rand(16) % (interval_ms // 4 + 1))
        agent.answers = RateLimit(answer_gap_ms, _ANSWER_BURST)
        # one message filled in for each advertisement and answer: an Advertisement is an
        # object of 17 attributes, the largest block an agent allocated again and again (a
        # plain ESP32 agent ran out of memory there, its heap in pieces, not full)
        self.adv = advert.Advertisement()

    def fresh(self, seq):
        """True when ``seq`` (echoed in a registration request) is one of our last
        advertisements: a request is good for a few advertisements only. A node holds us for
        an advertisement lifetime after the last one it took (at most lifetime / 0.9 periods,
        with the jitter), and tries a request for up to about two periods more (+ 3): an
        older sequence cannot come from a node that holds us."""
        last = self.last_seq
        if last < 0:
            return False
        d = (last - seq) & 0xFFFF
        if seq > last:
            d -= _SEQ_WRAP_TO  # (after 0xffff the sequence went on at 256)
        i = self.interval_ms
        return 0 <= d <= self.lifetime_s * 1000 // (i - i // 10) + 3

    def on_timer(self, now):
        """Advertise when the next advertisement is due."""
        if ticks.diff(now, self.next_at) >= 0:
            self._advertise(now, ipv4.BCAST_ADDR, _BCAST_MAC, self.iface)
            j = self.interval_ms // 10  # +-10 % jitter: agents do not stay in step
            self.next_at = ticks.add(now, self.interval_ms - j + self.agent.rand(16) % (2 * j + 1))

    def on_solicitation(self, now, iface, src_mac, sol):
        # a replayed challenge, the rate limit (per solicitor and in all), then the tag
        if not self.agent.check_solicitation(sol, src_mac, now):
            return
        # Unicast back to the MAC and interface the solicitation came from: no route needed.
        # The answer carries the last advertisement's sequence: answers do not move it, so
        # no number of (replayed) solicitations pushes it past a receiver's window; the
        # challenge it echoes proves it fresh (agenttable.py takes it so).
        self._advertise(now, sol.src, src_mac, iface, sol.challenge)

    def _advertise(self, now, dst, mac, iface, challenge=0):
        a = self.agent
        v = a.visitors
        load = len(v.bindings)
        flags = advert.FLAG_R | advert.FLAG_F
        if load >= v.capacity:
            flags |= advert.FLAG_B
        outage_in = advert.OUTAGE_NONE
        outage_for = 0
        if a.outage_start is not None:
            outage_in = max(0, (ticks.diff(a.outage_start, now) + 999) // 1000)
            if outage_in >= advert.OUTAGE_NONE:
                outage_in = advert.OUTAGE_NONE - 1
            outage_for = a.outage_for_s
        adv = self.adv
        # every field set anew: the agent also decodes what it hears into this message
        advert.Advertisement.__init__(
            adv,
            src=a.address,
            dst=dst,
            adv_lifetime=self.lifetime_s,
            seq=self.seq if challenge == 0 or self.last_seq < 0 else self.last_seq,
            reg_lifetime=v.reg_lifetime_s,
            flags=flags,
            services=self.services,
            capacity=v.capacity,
            load=min(load, 255),
            outage_in=outage_in,
            outage_for=outage_for,
            nonce=a.nonce,
            challenge=challenge,
            mac=a.mac,
        )
        a.out.send(iface, mac, advert.encode_advertisement(adv, a.cell_key))
        if challenge == 0 or self.last_seq < 0:  # (before the first broadcast, as one)
            self.last_seq = self.seq
            self.seq = self.seq + 1 if self.seq < 0xFFFF else _SEQ_WRAP_TO

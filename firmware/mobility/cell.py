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

# a local binding: [home address (4 bytes), MAC, interface, expiry (ticks)]
B_HOME = const(0)
B_MAC = const(1)
B_IFACE = const(2)
B_EXPIRY = const(3)

_ANSWERS_HELD = const(32)  # solicitors remembered for the rate limit
_SEQ_WRAP_TO = const(256)  # RFC 5944 2.1.1: after 0xffff the sequence continues at 256
_BCAST_MAC = b"\xff" * 6


class Visitors:
    """The local bindings of ``agent`` (its address, keys, log and the hooks ``_local_up`` /
    ``_local_down``): at most ``capacity``, each granted at most ``reg_lifetime_s``."""

    def __init__(self, agent, capacity, reg_lifetime_s):
        self.agent = agent
        self.capacity = capacity
        self.reg_lifetime_s = reg_lifetime_s
        self.idents = replay.IdentCheck(agent.nonce)
        self.bindings = {}  # addr_key(home) -> [home, mac, iface, expiry]
        # a lower bound of the bindings' expiries, kept without a scan: a refresh or a removal
        # leaves it early, and expire() then finds the true one
        self.next_expiry = None

    def on_request(self, now, iface, src_mac, req):
        """A decoded registration request arrived from ``src_mac`` on ``iface``; the reply
        goes straight back there."""
        a = self.agent
        if req.ext_type != registration.EXT_MF_AUTH or not req.verify(a.keys, auth.SPI_CELL):
            # Unauthenticated: no reply (no amplification), no state.
            a.reject("registration", "auth", req.src, src_mac)
            return
        hk = ipv4.addr_key(req.home, 0)
        if self.idents.accept(hk, req.ident) != replay.ACCEPTED:
            a.reject("registration", "ident", req.home, src_mac)
            self._reply(
                iface, src_mac, req, registration.IDENT_MISMATCH, 0, self.idents.reply_ident(hk)
            )
            return
        # From here the request is authentic and fresh; its counter is recorded (so a replay of
        # a refused request cannot succeed later) but no route is installed unless accepted.
        home = bytes(req.home)
        # (a deregistration may name the node's new agent as care-of: the node moved there)
        moved_to = None
        if req.lifetime == 0 and req.coa != a.address:
            moved_to = bytes(req.coa)
        elif req.coa != a.address:
            moved_to = ipv4.BCAST_ADDR  # poorly formed
        if moved_to == ipv4.BCAST_ADDR or home == a.address or home == ipv4.BCAST_ADDR:
            a.reject("registration", "poorly_formed", home, src_mac)
            self._reply(iface, src_mac, req, registration.FA_POORLY_FORMED, 0, req.ident)
            return
        b = self.bindings.get(hk)
        if b is not None and b[B_HOME] != home:
            # Another address with the same 30-bit table key is bound (they differ only in the
            # top two bits of the first octet): the table holds one of them at a time.
            a.reject("registration", "key_clash", home, src_mac)
            self._reply(iface, src_mac, req, registration.FA_UNSPECIFIED, 0, req.ident)
            return
        if req.lifetime == 0:
            if b is not None:
                self.remove(now, hk, "dereg", moved_to)
            self._reply(iface, src_mac, req, registration.ACCEPTED, 0, req.ident)
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
            self._reply(iface, src_mac, req, registration.FA_NO_RESOURCES, 0, req.ident)
            return
        granted = min(req.lifetime, self.reg_lifetime_s)
        expiry = ticks.add(now, granted * 1000)
        mac = bytes(src_mac)
        fields = {"home": ipv4.ntoa(home), "mac": fmt_mac(mac), "lifetime": granted}
        if b is None:
            b = [home, mac, iface, expiry]
            self.bindings[hk] = b
            self._expiry_set(expiry)
            fields["load"] = len(self.bindings)
            fields["s"] = bool(req.flags & registration.FLAG_S)
            a.log("binding_up", fields)
            a._local_up(now, b, True)
        else:
            moved = b[B_MAC] != mac or b[B_IFACE] != iface
            b[B_MAC] = mac
            b[B_IFACE] = iface
            b[B_EXPIRY] = expiry
            self._expiry_set(expiry)  # (a shorter grant than before is possible)
            if moved:
                fields["moved"] = True
            a.log("binding_refresh", fields)
            a._local_up(now, b, False)
        self._reply(iface, src_mac, req, registration.ACCEPTED, granted, req.ident)

    def _reply(self, iface, mac, req, code, lifetime, ident):
        # Straight back to the MAC and interface of the request: the node may not be bound yet
        # (or was refused), so no route is looked up or installed for the reply.
        a = self.agent
        rep = registration.RegReply(
            src=a.address,
            dst=req.home,
            code=code,
            lifetime=lifetime,
            home=req.home,
            home_agent=req.home_agent,
            ident=ident,
        )
        a.out.send(iface, mac, registration.encode_reply(rep, a.cell_key))

    def on_link(self, iface, mac):
        """The key of the binding whose node is at ``mac`` on ``iface``, or -1."""
        for k in self.bindings:
            b = self.bindings[k]
            if b[B_MAC] == mac and b[B_IFACE] == iface:
                return k
        return -1

    def remove(self, now, hk, reason, moved_to=None):
        """End the binding keyed ``hk`` (logged as ``binding_down`` with ``reason``)."""
        b = self.bindings.pop(hk)
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
        self.seq = 0
        self.next_at = ticks.add(now, agent.rand(16) % (interval_ms // 4 + 1))
        self._answers = {}  # addr_key(solicitor) -> when we last answered it

    def on_timer(self, now):
        """Advertise when the next advertisement is due."""
        if ticks.diff(now, self.next_at) >= 0:
            self._advertise(now, ipv4.BCAST_ADDR, _BCAST_MAC, self.iface)
            j = self.interval_ms // 10  # +-10 % jitter: agents do not stay in step
            self.next_at = ticks.add(now, self.interval_ms - j + self.agent.rand(16) % (2 * j + 1))

    def on_solicitation(self, now, iface, src_mac, sol):
        if not self.agent.check_solicitation(sol, src_mac):
            return
        k = ipv4.addr_key(sol.src, 0)
        last = self._answers.get(k)
        if last is not None and ticks.diff(now, last) < self.answer_gap_ms:
            return  # rate limit (a replayed burst): the solicitor asks again later
        if len(self._answers) >= _ANSWERS_HELD:
            self._answers.clear()
        self._answers[k] = now
        # Unicast back to the MAC and interface the solicitation came from: no route needed.
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
        adv = advert.Advertisement(
            src=a.address,
            dst=dst,
            adv_lifetime=self.lifetime_s,
            seq=self.seq,
            reg_lifetime=v.reg_lifetime_s,
            flags=flags,
            services=self.services,
            capacity=v.capacity,
            load=min(load, 255),
            outage_in=outage_in,
            outage_for=outage_for,
            nonce=a.nonce,
            challenge=challenge,
        )
        a.out.send(iface, mac, advert.encode_advertisement(adv, a.cell_key))
        self.seq = self.seq + 1 if self.seq < 0xFFFF else _SEQ_WRAP_TO

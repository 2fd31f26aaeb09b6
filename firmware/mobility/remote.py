"""Remote bindings: home address -> care-of agent, held away from the node's cell.

Two sides, both sans-I/O components owned by a role and writing into its action buffer:

* ``RemoteCache`` (receiver): a home agent, a correspondent, or a correspondent that accepts
  proxy bindings. It accepts a registration request (type 1, authentication type 32) signed with
  the node's home key (or, for a proxy binding, the region key), replay-checked by the
  Identification (docs/PROTOCOL.md "Replay protection"), and answers with a signed reply. The
  binding lasts the granted lifetime unless refreshed.
* ``RemoteClient`` (sender): a mobile node registering with its home agent and correspondents,
  or a router setting up proxy bindings. It retries with back-off, learns the receiver's nonce
  from a code-133 reply, and refreshes a binding at half its granted lifetime.

A forged request (wrong key, no authentication, a home the key does not belong to) or a replayed
one changes nothing: no state moves before the tag and the Identification are checked.
"""

from mobility import auth, ipv4, registration, replay, ticks
from mobility.compat import const

DEFAULT_MAX_LIFETIME_S = const(600)
DEFAULT_CAPACITY = const(64)
RETRY_MS = const(1000)  # first retry of an unanswered request, doubled per try
MAX_TRIES = const(4)
_FAILED_BACKOFF_MS = const(30000)  # after MAX_TRIES: try again this much later
_REFUSAL_GAP_MS = const(100)  # RemoteCache: one 133 per counter per gap
_PROXY_COUNTER = const(-1)  # RemoteCache: the replay counter of every proxy (the region key's)

# RemoteClient binding states
PENDING = const(0)
BOUND = const(1)
FAILED = const(2)


def _same(a, b):
    return a[0] == b[0] and a[1] == b[1] and a[2] == b[2] and a[3] == b[3]


class RemoteCache:
    """Receiver side. ``homes``: {home address (4 bytes or dotted text): node id} of the nodes
    whose home keys this node holds (its mobile nodes for a home agent, its peers for a
    correspondent); a request signed with a home key must come from that key's node.
    ``accept_proxy``: also accept proxy bindings signed with the region key."""

    def __init__(
        self,
        own,
        keys,
        nonce,
        out,
        homes=None,
        accept_proxy=False,
        max_lifetime_s=DEFAULT_MAX_LIFETIME_S,
        capacity=DEFAULT_CAPACITY,
    ):
        self.own = own
        self.keys = keys
        self.out = out
        self.idents = replay.IdentCheck(nonce)
        self.accept_proxy = accept_proxy
        self.max_lifetime_s = max_lifetime_s
        self.capacity = capacity
        self._spi_of = {}
        if homes:
            for h in homes:
                addr = ipv4.aton(h) if isinstance(h, str) else bytes(h)
                ipv4.check_addr(addr, "home address")
                self._spi_of[ipv4.addr_key(addr, 0)] = (addr, auth.spi_home(homes[h]))
        self.bindings = {}  # addr_key(home) -> [home, care-of agent, expiry ms, proxy]
        self._next = None  # lower bound of the expiries (None: nothing held)
        self._refused_at = {}  # counter key -> when its last 133 was sent
        self.accepted = 0
        self.refused = 0

    def _authorised(self, req):
        if req.ext_type != registration.EXT_MH_AUTH or req.spi is None:
            return False
        if req.spi == auth.SPI_REGION:
            return self.accept_proxy
        known = self._spi_of.get(ipv4.addr_key(req.home, 0))
        return known is not None and _same(known[0], req.home) and known[1] == req.spi

    def on_request(self, now, req, iface, mac):
        """A decoded registration request arrived from link address ``mac`` on ``iface``; the
        reply goes back there (no route is needed to answer). Returns True when a binding was
        made, refreshed or removed."""
        if not self._authorised(req) or not req.verify(self.keys):
            self.refused += 1
            self.out.log(
                "drop", {"reason": "auth", "what": "remote binding", "home": ipv4.ntoa(req.home)}
            )
            return False
        # counters are keyed by who signed: a node's by its home address (its home key), every
        # proxy's by the one key of the region (the region key is the only identity a proxy
        # proves; its IP source is not signed). So the table holds one counter per configured
        # home and one for the region, whatever sources requests claim; the region's routers
        # share the counter (one that lags gets a 133 and continues above it).
        proxy = req.spi == auth.SPI_REGION
        hk = _PROXY_COUNTER if proxy else ipv4.addr_key(req.home, 0)
        code = self.idents.accept(hk, req.ident)
        if code != replay.ACCEPTED:
            self.refused += 1
            self.out.log(
                "drop", {"reason": "replay", "what": "remote binding", "home": ipv4.ntoa(req.home)}
            )
            # a replayed request gets at most one signed answer per counter and _REFUSAL_GAP_MS
            # (the table of those times has the counters' keys: bounded the same way)
            t = self._refused_at.get(hk)
            if t is None or ticks.diff(now, t) >= _REFUSAL_GAP_MS:
                self._refused_at[hk] = now
                self._reply(
                    req, registration.IDENT_MISMATCH, 0, self.idents.reply_ident(hk), iface, mac
                )
            return False
        k = ipv4.addr_key(req.home, 0)
        life = min(req.lifetime, self.max_lifetime_s)
        e = self.bindings.get(k)
        if proxy and e is not None and not e[3] and ticks.diff(e[2], now) > 0:
            # the node's own binding (its home key) stands: a router's word neither replaces
            # nor releases it
            self._reply(req, registration.HA_UNSPECIFIED, 0, req.ident, iface, mac)
            return False
        if life == 0:
            if self.bindings.pop(k, None) is not None:
                self.out.log("remote_down", {"home": ipv4.ntoa(req.home), "reason": "released"})
            self._reply(req, registration.ACCEPTED, 0, req.ident, iface, mac)
            return True
        if e is None and len(self.bindings) >= self.capacity:
            self._reply(req, registration.HA_NO_RESOURCES, 0, req.ident, iface, mac)
            return False
        if e is None or e[1] != req.coa:
            self.out.log(
                "remote_up",
                {
                    "home": ipv4.ntoa(req.home),
                    "coa": ipv4.ntoa(req.coa),
                    "lifetime": life,
                    "proxy": proxy,
                },
            )
        exp = ticks.add(now, life * 1000)
        self.bindings[k] = [bytes(req.home), bytes(req.coa), exp, proxy]
        if self._next is None or ticks.diff(exp, self._next) < 0:
            self._next = exp  # a lower bound of the expiries; on_timer finds the true one
        self.accepted += 1
        self._reply(req, registration.ACCEPTED, life, req.ident, iface, mac)
        return True

    def _reply(self, req, code, life, ident, iface, mac):
        rep = registration.RegReply(
            self.own,
            req.src,
            code,
            life,
            req.home,
            req.home_agent,
            ident,
            registration.EXT_MH_AUTH,
            req.spi,
        )
        self.out.send(iface, mac, registration.encode_reply(rep, self.keys.get(req.spi)))

    def care_of(self, now, buf, off=0):
        """The care-of agent address of the node whose home address is at ``buf[off:off+4]``,
        or None (no binding, or it expired)."""
        e = self.bindings.get(ipv4.addr_key(buf, off))
        if e is None:
            return None
        h = e[0]
        if h[0] != buf[off] or h[1] != buf[off + 1] or h[2] != buf[off + 2] or h[3] != buf[off + 3]:
            return None
        if ticks.diff(e[2], now) <= 0:
            return None
        return e[1]

    def next_wake(self):
        return self._next

    def on_timer(self, now):
        if self._next is None or ticks.diff(self._next, now) > 0:
            return
        dead = [k for k in self.bindings if ticks.diff(self.bindings[k][2], now) <= 0]
        for k in dead:
            e = self.bindings.pop(k)
            self.out.log("remote_down", {"home": ipv4.ntoa(e[0]), "reason": "expired"})
        t = None
        for k in self.bindings:
            e = self.bindings[k][2]
            if t is None or ticks.diff(e, t) < 0:
                t = e
        self._next = t


class RemoteClient:
    """Sender side. ``src``: the address requests come from (the node's home address, or the
    router's address for proxy bindings); ``spi``: the key they are signed with (the node's
    home key, or SPI_REGION). ``route(addr) -> (iface, mac)`` or None: how to reach a peer now
    (set by the owner; a mobile node sends through its current agent).

    A router's proxies (``capacity`` > 0) are what others' datagrams made: at most ``capacity``
    bindings (a new one takes the place of one not bound, else it is not made), and one that
    is not answered after MAX_TRIES, or refused, is given up rather than tried again later.
    ``follow(now, home)`` -> the care-of agent that ``home`` has now, or None: a binding is
    refreshed with it (released when None) instead of the care-of it was made with."""

    def __init__(
        self, src, keys, spi, out, route=None, home_agent=ipv4.ANY_ADDR, capacity=0, follow=None
    ):
        self.src = src
        self.capacity = capacity
        self.follow = follow
        self.keys = keys
        self.spi = spi
        self.out = out
        self.route = route
        self.home_agent = home_agent
        self.counter = replay.IdentCounter()
        self._nonce = {}  # addr_key(peer) -> the peer's boot nonce as last learned
        # (addr_key(peer), addr_key(home)) -> [peer, home, coa, lifetime_s, state, ident,
        #                                      next_at, tries, expiry, outstanding]
        self.bindings = {}
        # next_wake() is asked after every input of the owner: the earliest next_at is kept
        # and found again only after something changed one (every change goes through here)
        self._wake = None
        self._wake_known = True

    def state(self, peer, home):
        e = self.bindings.get((ipv4.addr_key(peer, 0), ipv4.addr_key(home, 0)))
        return None if e is None else e[4]

    def bind(self, now, peer, home, coa, lifetime_s):
        """Hold a remote binding home -> coa with ``peer``: sent now when new or when the
        care-of agent changed; otherwise kept (and refreshed) as it is. False: not made (a
        proxy table full of bound entries)."""
        key = (ipv4.addr_key(peer, 0), ipv4.addr_key(home, 0))
        e = self.bindings.get(key)
        if e is not None and e[2] == coa and e[3] == lifetime_s and e[4] != FAILED:
            return True
        if e is None:
            if self.capacity and len(self.bindings) >= self.capacity and not self._evict():
                self.out.log("drop", {"reason": "proxy_full", "home": ipv4.ntoa(home)})
                return False
            e = [bytes(peer), bytes(home), None, 0, PENDING, 0, now, 0, now, False]
            self.bindings[key] = e
            self._wake_known = False
        e[2] = bytes(coa)
        e[3] = lifetime_s
        e[4] = PENDING
        e[7] = 0
        self._send(now, e)
        return True

    def _evict(self):
        """Make room in a full proxy table: the first binding not bound goes. False: all are
        bound (the table then keeps them, and the new one is not made)."""
        for k in self.bindings:
            if self.bindings[k][4] != BOUND:
                del self.bindings[k]
                self._wake_known = False
                return True
        return False

    def follow_all(self, now):
        """Bring every binding in line with ``follow``: a care-of that changed is sent at once,
        a binding whose node has none any more is released (the owner calls this when what
        ``follow`` answers may have changed, e.g. a publication was taken)."""
        if self.follow is None:
            return
        for k in list(self.bindings):
            e = self.bindings[k]
            coa = self.follow(now, e[1])
            if coa is None:
                self.release(now, e[0], e[1])
            elif coa != e[2]:
                self.bind(now, e[0], e[1], coa, e[3])

    def release(self, now, peer, home):
        """End the binding with ``peer`` (a lifetime-0 request, sent once)."""
        e = self.bindings.pop((ipv4.addr_key(peer, 0), ipv4.addr_key(home, 0)), None)
        if e is not None:
            self._wake_known = False
            e[3] = 0
            self._send(now, e)

    def _send(self, now, e):
        r = self.route(e[0]) if self.route is not None else None
        e[7] += 1
        e[6] = ticks.add(now, RETRY_MS << (e[7] - 1))
        self._wake_known = False
        if r is None:
            self.out.log(
                "drop", {"reason": "no_route", "what": "remote binding", "to": ipv4.ntoa(e[0])}
            )
            return
        nonce = self._nonce.get(ipv4.addr_key(e[0], 0), 0)
        e[5] = self.counter.next(nonce)
        e[9] = True
        req = registration.RegRequest(
            self.src,
            e[0],
            0,
            e[3],
            e[1],
            self.home_agent,
            e[2],
            e[5],
            registration.EXT_MH_AUTH,
            self.spi,
        )
        self.out.send(r[0], r[1], registration.encode_request(req, self.keys.get(self.spi)))

    def on_reply(self, now, rep):
        """A decoded registration reply arrived. Returns True when it answered a request."""
        e = self.bindings.get((ipv4.addr_key(rep.src, 0), ipv4.addr_key(rep.home, 0)))
        if e is None or not e[9] or not rep.verify(self.keys, self.spi):
            return False  # no request outstanding: a replayed, stale or forged reply
        self._wake_known = False  # next_at is about to change
        if rep.code == registration.IDENT_MISMATCH:
            if e[7] >= MAX_TRIES:
                return False
            # the peer told us its nonce and the last counter it accepted: continue above it
            self._nonce[ipv4.addr_key(e[0], 0)] = self.counter.adopt(rep.ident)
            self._send(now, e)
            return True
        if rep.ident != e[5]:
            return False  # not the outstanding request: a replayed or stale reply
        e[9] = False
        if rep.code != registration.ACCEPTED and self.capacity:
            del self.bindings[(ipv4.addr_key(e[0], 0), ipv4.addr_key(e[1], 0))]
            self.out.log("remote_failed", {"peer": ipv4.ntoa(e[0]), "code": rep.code})
            return True
        if rep.code != registration.ACCEPTED:
            e[4] = FAILED
            e[6] = ticks.add(now, _FAILED_BACKOFF_MS)
            self.out.log("remote_failed", {"peer": ipv4.ntoa(e[0]), "code": rep.code})
            return True
        if e[4] != BOUND:
            self.out.log(
                "remote_bound",
                {
                    "peer": ipv4.ntoa(e[0]),
                    "home": ipv4.ntoa(e[1]),
                    "coa": ipv4.ntoa(e[2]),
                    "lifetime": rep.lifetime,
                },
            )
        e[4] = BOUND
        e[7] = 0
        life_ms = rep.lifetime * 1000
        e[8] = ticks.add(now, life_ms)
        e[6] = ticks.add(now, life_ms // 2)  # refresh at half the granted lifetime
        return True

    def next_wake(self):
        if self._wake_known:
            return self._wake
        t = None
        for k in self.bindings:
            n = self.bindings[k][6]
            if t is None or ticks.diff(n, t) < 0:
                t = n
        self._wake = t
        self._wake_known = True
        return t

    def on_timer(self, now):
        self._wake_known = False
        for k in list(self.bindings) if self.capacity or self.follow else self.bindings:
            e = self.bindings[k]
            if ticks.diff(now, e[6]) < 0:
                continue
            if e[4] == PENDING and e[7] >= MAX_TRIES and self.capacity:
                # a proxy nobody answers is given up (made again only by new traffic)
                del self.bindings[k]
                self.out.log("remote_failed", {"peer": ipv4.ntoa(e[0]), "reason": "no_reply"})
                continue
            if e[4] == BOUND and self.follow is not None:
                coa = self.follow(now, e[1])
                if coa is None:  # the node has no binding any more: neither has the peer
                    self.release(now, e[0], e[1])
                    continue
                if coa != e[2]:
                    e[2] = coa
                    e[4] = PENDING
                    e[7] = 0
            if e[4] == PENDING and e[7] >= MAX_TRIES:
                # the local binding stands without it; try again much later
                e[4] = FAILED
                e[6] = ticks.add(now, _FAILED_BACKOFF_MS)
                self.out.log("remote_failed", {"peer": ipv4.ntoa(e[0]), "reason": "no_reply"})
            elif e[4] == FAILED:
                e[4] = PENDING
                e[7] = 0
                self._send(now, e)
            else:
                self._send(now, e)  # retry, or refresh a bound binding

"""Remote bindings, the sender's side: a node's registrations with agents away from its cell
(the receiver's side is remotecache.py: a role loads the side it plays).

``RemoteClient``, a sans-I/O component owned by a role and writing into its action buffer: a
mobile node registering with its home agent and correspondents, or a router setting up proxy
bindings. It retries with back-off, learns the receiver's nonce from a code-133 reply, and
refreshes a binding at half its granted lifetime.
"""

from mobility import ipv4, registration, request, ticks
from mobility.compat import const

RETRY_MS = const(1000)  # first retry of an unanswered request, doubled per try
MAX_TRIES = const(4)
_FAILED_BACKOFF_MS = const(30000)  # after MAX_TRIES: try again this much later

# binding states
PENDING = const(0)
BOUND = const(1)
FAILED = const(2)


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
        self.counter = request.IdentCounter()
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
        self.out.send(r[0], r[1], request.encode_request(req, self.keys.get(self.spi)))

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

"""Remote bindings, the receiver's side: home address -> care-of agent, held away from the
node's cell (the sender's side is remoteclient.py: a role loads the side it plays).

``RemoteCache``, a sans-I/O component owned by a role and writing into its action buffer: a
home agent, a correspondent, or a correspondent that accepts proxy bindings. It accepts a
registration request (type 1, authentication type 32) signed with the node's home key (or, for
a proxy binding, the region key), replay-checked by the Identification (docs/PROTOCOL.md
"Replay protection"), and answers with a signed reply. The binding lasts the granted lifetime
unless refreshed.

A forged request (wrong key, no authentication, a home the key does not belong to) or a replayed
one changes nothing: no state moves before the tag and the Identification are checked.
"""

from mobility import auth, ipv4, registration, replay, ticks
from mobility.compat import const

DEFAULT_MAX_LIFETIME_S = const(600)
DEFAULT_CAPACITY = const(64)
_REFUSAL_GAP_MS = const(100)  # one 133 per counter per gap
_PROXY_COUNTER = const(-1)  # the replay counter of every proxy (the region key's)


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

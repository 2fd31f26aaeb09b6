"""A mobile node's registration exchange with agents (docs/CORE.md "Mobile node": binding,
refresh, make-before-break).

At most one request is in flight, in one of the states BIND, HANDOFF, REFRESH (IDLE: none), and
at most one deregistration of the agent the node left. A request goes under ``nonce || counter``
(request.IdentCounter), again with a new identification every ``reg_timeout_ms`` up to
``reg_retries`` times; a 133 reply makes it adopt the agent's nonce and continue above its
counter (at most _MAX_133 times). The exchange holds no binding: it tells its owner what a reply
or a timeout means, and the owner binds, moves or gives up on the agent.

The deregistration (lifetime 0) names the new agent as care-of, so the old one forwards what
still reaches it there (docs/REGION.md "Forwarding pointer"). It is retried like a request until
the old agent answers: an old agent that keeps a binding keeps the region (and, across regions,
its gateways) sending our traffic to where we no longer are. The Mobile IPv4 baseline sends it
once and lets the binding there expire.
"""

from mobility import auth, ipv4, registration, request, ticks
from mobility.compat import const
from mobility.node import parse_addr

DEFAULT_REG_LIFETIME_S = const(30)
_DEFAULT_REG_TIMEOUT_MS = const(500)  # no reply: send again (a new identification)
_DEFAULT_REG_RETRIES = const(3)  # then the agent counts as lost
_MAX_133 = const(3)  # identification mismatches in a row before giving up on an agent

# the request in flight
IDLE = const(0)  # none
BIND = const(1)  # unbound: the reply makes our only binding
HANDOFF = const(2)  # bound elsewhere (S flag while bound): the reply moves us
REFRESH = const(3)  # the serving agent again, before the binding runs out
KIND = ("idle", "bind", "handoff", "refresh")  # as logged

# what a registration reply is (on_reply)
_NOT_OURS = const(0)  # no answer to anything in flight (late, or replayed)
_HANDLED = const(1)  # the deregistration's answer, or a 133 answered by sending again
FORGED = const(2)  # from the agent of the request, without valid cell authentication
STALE = const(3)  # authentic, but not the identification in flight
GAVE_UP = const(4)  # one 133 too many: the request failed (the state says which)
ANSWERED = const(5)  # the answer to the request in flight, accepted or not (its code)


class Exchange:
    """``node``: the mobile node it registers (its address, keys, action buffer, policy and
    binding are read there: one reference, not five copies)."""

    def __init__(self, config, node):
        from mobility import settings

        self.lifetime_s = settings.cfg_int(
            config, "reg_lifetime_s", DEFAULT_REG_LIFETIME_S, 1, 65535
        )
        self.timeout_ms = settings.cfg_int(
            config, "reg_timeout_ms", _DEFAULT_REG_TIMEOUT_MS, 10, 60000
        )
        self.retries = settings.cfg_int(config, "reg_retries", _DEFAULT_REG_RETRIES, 0, 100)
        ha = config.get("home_agent")
        self.home_agent = ipv4.ANY_ADDR if ha is None else parse_addr(ha, "home_agent")
        self.node = node
        # K_X, this node's own binding key: it alone (and the infrastructure) can make or end
        # a binding for our address (docs/CORE.md "Security rules")
        self.key = node.keys.get(auth.SPI_NODE)
        secret = node.keys.get(auth.SPI_NODE_SECRET)
        if self.key is None and secret is not None:
            # (a node of the infrastructure, which holds the secret, derives its own)
            self.key = auth.node_key(secret, node.address)
            node.keys.set(auth.SPI_NODE, self.key)
        if self.key is None:
            raise ValueError("keys must hold the node's binding key (SPI 0x%x)" % auth.SPI_NODE)
        self.counter = request.IdentCounter()
        self.state = IDLE
        self.agent = None  # AgentInfo the request in flight goes to
        self.ident = 0
        self.deadline = None
        self.tries = 0
        self.n133 = 0
        self.dereg_agent = None  # AgentInfo being deregistered, or None
        self.dereg_coa = None
        self.dereg_ident = 0
        self.dereg_tries = 0
        self.dereg_deadline = None

    # --- the request: its states change here only ---

    def start(self, now, info, state):
        """Register with ``info`` (BIND, HANDOFF or REFRESH)."""
        self.state = state
        self.agent = info
        self.tries = 0
        self.n133 = 0
        self._send(now)

    def finish(self):
        """The request is over (answered, failed, or its agent is gone)."""
        self.state = IDLE
        self.agent = None
        self.deadline = None

    def serving_lost(self):
        """The binding a hand-off was to replace is gone: the new agent's reply makes our only
        binding."""
        if self.state == HANDOFF:
            self.state = BIND

    def _send(self, now):
        info = self.agent
        serving = self.node.serving
        if self.dereg_agent is not None and self.dereg_agent.addr == info.addr:
            self._clear_dereg()  # back to the agent we were leaving: a retry would unbind us
        self.ident = self.counter.next(info.nonce)
        flags = 0
        if serving is not None and serving is not info:
            flags = registration.FLAG_S  # make-before-break: we keep the old binding meanwhile
        lifetime = self.lifetime_s
        if info.reg_lifetime and info.reg_lifetime < lifetime:
            lifetime = info.reg_lifetime
        self._request(info, flags, lifetime, self.ident)
        self.deadline = ticks.add(now, self.timeout_ms)

    def retry(self, now):
        """The request went unanswered: send it again; False (logged) when out of retries."""
        if self.tries < self.retries:
            self.tries += 1
            self._send(now)
            return True
        self.node.log(
            "reg_timeout", {"agent": ipv4.ntoa(self.agent.addr), "kind": KIND[self.state]}
        )
        return False

    def on_reply(self, now, rep):
        """A registration reply with cell authentication type arrived: what it is (_NOT_OURS ...
        ANSWERED). On ANSWERED and GAVE_UP the request is still held: the owner reads it, then
        calls finish(). A reply counts only when it is signed with our binding key, names our
        MAC and the agent MAC we sent to, and answers the request in flight (its
        identification, echoed in the link extension: a refusal of a replayed old request is
        not ours)."""
        home = self.node.address
        d = self.dereg_agent
        if d is not None and rep.src == d.addr and rep.home == home:
            if self._dereg_reply(now, rep, d):
                return _HANDLED
        info = self.agent
        if info is None or rep.src != info.addr or rep.home != home:
            return _NOT_OURS
        if not self._authentic(rep, info):
            return FORGED
        if rep.req_ident != self.ident:
            return STALE
        if rep.code == registration.IDENT_MISMATCH:
            # The agent restarted or we did: continue above its counter under its nonce.
            self.n133 += 1
            info.nonce = self.counter.adopt(rep.ident)
            self.node.log("reg_refused", {"agent": ipv4.ntoa(info.addr), "code": rep.code})
            if self.n133 > _MAX_133:
                return GAVE_UP
            self._send(now)
            return _HANDLED
        if rep.ident != self.ident:
            return STALE
        return ANSWERED

    def _authentic(self, rep, info):
        node = self.node
        return (
            rep.ext_type == registration.EXT_MF_AUTH
            and rep.node_mac is not None
            and rep.node_mac == node.mac
            and rep.agent_mac == info.mac
            and rep.verify(node.keys, auth.SPI_NODE)
        )

    def _request(self, info, flags, lifetime, ident, coa=None):
        node = self.node
        req = registration.RegRequest(
            src=node.address,
            dst=info.addr,
            flags=flags,
            lifetime=lifetime,
            home=node.address,
            home_agent=self.home_agent,
            coa=info.addr if coa is None else coa,
            ident=ident,
            node_mac=node.mac or b"\0\0\0\0\0\0",
            agent_mac=info.mac,
            agent_seq=info.seq,
        )
        node.out.send(info.iface, info.mac, request.encode_request(req, self.key))

    # --- the deregistration of the agent we left ---

    def deregister(self, now, info, new=None):
        """Release our binding with ``info``; ``new``: the agent we moved to."""
        self.dereg_agent = info
        self.dereg_coa = new.addr if self.node.roam and new is not None else info.addr
        self.dereg_tries = 0
        self._send_dereg(now)
        self.node.log("unbound", {"agent": ipv4.ntoa(info.addr), "reason": "handoff"})

    def _send_dereg(self, now):
        info = self.dereg_agent
        self.dereg_ident = self.counter.next(info.nonce)
        self._request(info, 0, 0, self.dereg_ident, self.dereg_coa)
        if self.node.roam:
            self.dereg_deadline = ticks.add(now, self.timeout_ms)
        else:
            self._clear_dereg()

    def _clear_dereg(self):
        self.dereg_agent = None
        self.dereg_coa = None
        self.dereg_deadline = None

    def dereg_timeout(self, now):
        if self.dereg_tries < self.retries:
            self.dereg_tries += 1
            self._send_dereg(now)
            return
        self.node.log("reg_timeout", {"agent": ipv4.ntoa(self.dereg_agent.addr), "kind": "dereg"})
        self._clear_dereg()

    def _dereg_reply(self, now, rep, info):
        """True when ``rep`` answered the deregistration (it is done, or re-sent after a 133),
        False when it is not ours."""
        if rep.req_ident != self.dereg_ident or not self._authentic(rep, info):
            return False  # the request path rejects and logs it
        if rep.code == registration.IDENT_MISMATCH:
            info.nonce = self.counter.adopt(rep.ident)
            if self.dereg_tries < self.retries:
                self.dereg_tries += 1
                self._send_dereg(now)
            else:
                self._clear_dereg()
            return True
        self._clear_dereg()
        return True

"""Mobile node role (docs/CORE.md "Mobile node").

It keeps the agents it hears, ranks them (ranking.py), binds to the best with an authenticated,
replay-checked registration, re-ranks with hysteresis, moves make-before-break (registers with
the new agent with the S flag while still bound to the old one, switches when the reply arrives,
then deregisters the old one), detects a lost agent from missed advertisements or failed
link-layer sends (whichever first) and refreshes its binding before it expires.

Without an agent it solicits service (routing first, then host-to-host, with back-off),
puts the hosts that answer in its forwarding table and exchanges datagrams with them directly.
Bound or not, it answers host-to-host solicitations. It never forwards for others. Policy
"mip4" (the Mobile IPv4 baseline) detects movement only by advertisement lifetime expiry and
never moves make-before-break.

The node coordinates its components: the agent table (agenttable.py), the registration
exchange (exchange.py), the solicitor (solicit.py), the direct table (hosttable.py) and the
remote bindings (peers.py). It holds the binding (``serving``) and the mode.
"""

from mobility import advert, agenttable, exchange, hosttable, ipv4, ranking, registration, ticks
from mobility.actions import IF_RADIO
from mobility.agenttable import AgentTable
from mobility.compat import const
from mobility.errors import DecodeError
from mobility.exchange import BIND, HANDOFF, IDLE, REFRESH, Exchange
from mobility.hostreply import HostReplies
from mobility.hosttable import HostTable
from mobility.node import Node, due, fmt_mac, parse_addr, soonest
from mobility.peers import Peers
from mobility.solicit import Solicitor

_DEFAULT_LINK_FAILURES = const(2)  # consecutive failed unicasts to an agent or host: lost
_DEFAULT_QUEUE = const(4)  # datagrams held while a binding or a host is being found
# bound, a host-level solicitation is answered from this attempt on (~3 s of search): a node
# that just lost its agent finds the next one first, and the answers of every bound node in
# range would only collide (city: deferrals x2.3, delivery -0.1 point)
_BOUND_ANSWER_ATTEMPT = const(3)

MODE_AGENT = "agent"  # bound: everything goes through the serving agent
MODE_SEARCH = "search"  # no agent, no host: soliciting
MODE_DIRECT = "direct"  # no agent; host-to-host with the hosts that answered


class MobileNode(Node):
    def __init__(self, config, rand, now):
        from mobility import settings

        Node.__init__(self, config, rand, now)
        self.replies = HostReplies(self, config)
        self.roam = settings.policy(config) == "roam"
        self.link_failures = settings.cfg_int(
            config, "link_failures", _DEFAULT_LINK_FAILURES, 1, 1000
        )
        self.queue_len = settings.cfg_int(config, "queue", _DEFAULT_QUEUE, 0, 64)
        # components (a component's config keys are parsed there)
        self.agents = AgentTable(config, self.out, self.keys)
        self.reg = Exchange(config, self)
        self.sol = Solicitor(config, self, now)
        self.direct = HostTable(config, self.out, self.keys)
        # core II: remote bindings with the home agent and with correspondents (docs/REGION.md)
        self.peers = Peers(config, self, self.reg.home_agent, self._remote_route)
        # the binding: the agent holding it (AgentInfo) or None, until when, when to refresh
        self.serving = None
        self.bound_until = None
        self.refresh_at = None
        self.mode = MODE_SEARCH
        self._failing = False  # some agent or host has failed sends counted
        self.queue = []
        self._schedule(now)

    # --- the sans-I/O interface ---

    def uplink(self):
        a = self.serving
        if a is None or a.iface != IF_RADIO:
            return None
        return (a.mac, a.addr)

    def on_frame(self, now, iface, src_mac, rssi, frame):
        h = self.decode(frame, src_mac)
        if h is None:
            return
        try:
            self._dispatch(now, iface, src_mac, rssi, frame, h)
        except DecodeError as exc:
            self.log("drop", {"reason": "malformed", "mac": fmt_mac(src_mac), "error": str(exc)})
        self._after(now)

    def on_timer(self, now):
        if due(now, self.agents.next_silence) or due(now, self.direct.next_silence):
            self._silences(now)
        reg = self.reg
        if reg.state != IDLE and due(now, reg.deadline) and not reg.retry(now):
            self._request_failed(now, "noreply")
        if reg.dereg_agent is not None and due(now, reg.dereg_deadline):
            reg.dereg_timeout(now)
        if self.serving is not None:
            if due(now, self.bound_until):
                self._unbind(now, "expired")
                self._choose(now)
            elif reg.state == IDLE and due(now, self.refresh_at):
                reg.start(now, self.serving, REFRESH)
        sv = self.serving
        if self.roam and sv is not None and due(now, sv.miss_at):
            self.agents.misses(now)
            self.sol.check(now, sv)  # overdue: is it still there?
        if due(now, self.agents.choose_at):
            self.agents.choose_at = None
            self._choose(now)
        if self.roam and due(now, self.agents.next_rank):
            best = self.agents.rerank(now, self.serving, self.reg.state == IDLE)
            if best is not None:
                self.reg.start(now, best, HANDOFF)
        if self._soliciting() and due(now, self.sol.next):
            self.sol.solicit(now)
        if due(now, self.again_at):
            self._again(now)
        self.peers.on_timer(now)
        self._after(now)

    def _send_again(self, now, pkt):
        if not self._transmit(now, pkt[ipv4.DST_AT : ipv4.DST_AT + 4], pkt):
            if len(self.queue) < self.queue_len:
                self.queue.append(pkt)

    def on_send(self, now, dst, payload):
        """The application sends ``payload`` to address ``dst`` (UDP to APP_PORT)."""
        dst = parse_addr(dst, "destination")
        pkt = self.datagram(dst, payload)
        if not self._transmit(now, dst, pkt):
            if len(self.queue) < self.queue_len:
                self.queue.append(pkt)  # sent when a binding or a host is found
            else:
                self.log("drop", {"reason": "no_route", "dst": ipv4.ntoa(dst)})
            if self.serving is None and self.reg.state == IDLE and self.mode == MODE_DIRECT:
                self.sol.soon(now)  # a host we do not know yet may answer
        self._after(now)

    def on_link_failure(self, now, iface, mac, frame=None):
        if not self.roam:
            return  # the Mobile IPv4 baseline notices movement only by advertisement lifetime
        self._hold(now, iface, frame)  # sent again after a fade's time (docs/CORE.md)
        self._failing = True
        info = self.agents.link_failure(mac, self.link_failures)
        if info is not None:
            self._lose(now, info, "link")
        self.direct.link_failure(mac, self.link_failures)
        self._after(now)

    def _silences(self, now):
        """The earliest advertisement or host-reply lifetime (the tables' silence bounds) may
        have come: drop what ran out."""
        for info in self.agents.expired(now):
            self._lose(now, info, "silence")
        self.direct.expire(now)

    # --- received frames ---

    def _dispatch(self, now, iface, src_mac, rssi, frame, h):
        to_me = h.dst == self.address
        if self._failing:
            # a frame from an agent or host shows its link works: failed sends start again at 0
            self._failing = self.agents.heard(src_mac) | self.direct.heard(src_mac)
        if h.proto == ipv4.PROTO_ICMP and (to_me or h.dst == ipv4.BCAST_ADDR):
            msg = advert.decode_icmp(h)
            if isinstance(msg, advert.Solicitation):
                # Answer host-to-host solicitations, bound too once the solicitor has searched
                # a while: a node without an agent reaches us directly (docs/CORE.md "No agent").
                if (
                    msg.level == advert.LEVEL_HOST
                    and self.roam
                    and (self.serving is None or msg.attempt >= _BOUND_ANSWER_ATTEMPT)
                ):
                    if self.check_solicitation(msg, src_mac, now):
                        self.replies.send(iface, src_mac, msg)
            elif msg.src == self.address:
                return
            elif msg.is_host_reply:
                self._on_host_reply(now, iface, src_mac, msg)
            else:
                self._on_advert(now, iface, src_mac, rssi, msg)
            return
        if not to_me:
            if h.dst != ipv4.BCAST_ADDR:
                self.log(
                    "drop",
                    {"reason": "not_for_me", "src": ipv4.ntoa(h.src), "dst": ipv4.ntoa(h.dst)},
                )
            return
        if h.proto == ipv4.PROTO_UDP:
            sport, dport, payload = ipv4.decode_udp(h)
            if dport == ipv4.REG_PORT:
                msg = registration.decode_registration(h)
                if isinstance(msg, registration.RegReply):
                    if msg.ext_type == registration.EXT_MH_AUTH:
                        self.peers.on_reply(now, msg)  # home agent or correspondent
                    else:
                        self._on_reply(now, src_mac, msg)
                return
            if dport == ipv4.APP_PORT:
                sv = self.serving
                if sv is not None and src_mac == sv.mac:
                    # datagrams from the serving agent measure the link the traffic uses
                    sv.rssi = (3 * sv.rssi + rssi + 2) // 4
                self.out.deliver(frame)
                self.peers.heard(now, h.src, sv)
                return
        self._on_other(now, iface, src_mac, h)

    def _on_other(self, now, iface, src_mac, header):
        """A datagram for us that is neither control nor application (core II: tunnels)."""
        self.log("drop", {"reason": "proto", "src": ipv4.ntoa(header.src), "proto": header.proto})

    def _on_advert(self, now, iface, src_mac, rssi, adv):
        agents = self.agents
        k = ipv4.addr_key(adv.src, 0)
        fresh = self.sol.fresh(now, adv)
        got = agents.take(now, k, iface, src_mac, rssi, adv, fresh, self.serving, self.reg.agent)
        if got < agenttable.IGNORED:
            self.reject("advertisement", agenttable.REJECTED[got], adv.src, src_mac)
            if got == agenttable.REPLAYED and self.serving is None and k not in agents.table:
                # a replay, or an agent whose window we lost step with (its answer heals it):
                # unbound, a solicitation (within the 1/s limit) tells the two apart
                self.sol.ask(now)
            return
        if got == agenttable.PROBE:
            # for an answer, which takes the agent into the table
            if self.serving is None:
                self.sol.ask(now)
            else:
                self.sol.probe(now, iface, src_mac, adv.src)
        if got < agenttable.NEW:
            return
        info = agents.table[k]
        if got == agenttable.NEW:
            score = ranking.score(info, now, agents.w)
            self.log("agent_up", {"agent": ipv4.ntoa(info.addr), "rssi": rssi, "score": score})
        if got == agenttable.REBOOTED and info is self.serving:
            # It lost our binding with its memory: register again under its new nonce, now or,
            # when a hand-off is in flight, as soon as it ends (if it fails, we stay here).
            self.log("agent_reboot", {"agent": ipv4.ntoa(info.addr)})
            self.refresh_at = now
            if self.reg.state == IDLE:
                self.reg.start(now, info, REFRESH)
        if self.serving is None and self.reg.state == IDLE:
            self._first_heard(now)
        elif self.roam and info is self.serving and ranking.outage_imminent(info, now, agents.w):
            agents.next_rank = now  # leave before the outage: re-rank now

    def _first_heard(self, now):
        """Unbound, no request in flight, and an agent was heard: ask every agent in range to
        answer (one solicitation, within the 1/s limit) and choose the best after a short
        listening window, not merely the first heard. (After a loss, _lose chooses at once
        among the agents already known.)"""
        agents = self.agents
        if agents.choose_at is not None:
            return
        if agents.collect_ms == 0:
            self._choose(now)
            return
        agents.choose_at = ticks.add(now, agents.collect_ms)
        self.sol.ask(now)

    def _on_host_reply(self, now, iface, src_mac, adv):
        fresh = self.sol.fresh(now, adv)
        got = self.direct.take(now, iface, src_mac, adv, fresh, self.serving is not None)
        if got < hosttable.IGNORED:
            self.reject("host_reply", hosttable.REJECTED[got], adv.src, src_mac)
        elif got == hosttable.NEW:
            self._flush(now)

    def _on_reply(self, now, src_mac, rep):
        reg = self.reg
        what = reg.on_reply(now, rep)
        if what == exchange.FORGED:
            self.reject("reg_reply", "auth", rep.src, src_mac)
        elif what == exchange.STALE:
            self.reject("reg_reply", "ident", rep.src, src_mac)
        elif what == exchange.GAVE_UP:
            self._request_failed(now, "ident")
        elif what == exchange.ANSWERED:
            info = reg.agent
            state = reg.state
            reg.finish()
            if rep.code != registration.ACCEPTED or rep.lifetime == 0:
                self.log("reg_refused", {"agent": ipv4.ntoa(info.addr), "code": rep.code})
                self.agents.block(now, info)
                if state == REFRESH and info is self.serving:
                    self._unbind(now, "refused")
                if self.serving is None:
                    self._choose(now)
            else:
                self._bind(now, info, state, rep.lifetime)

    # --- binding ---

    def _bind(self, now, info, state, lifetime):
        """``info`` accepted our request (``state``) for ``lifetime`` seconds."""
        old = self.serving
        self.serving = info
        self.bound_until = ticks.add(now, lifetime * 1000)
        # Refresh when three quarters of the lifetime have passed: time for two retries.
        self.refresh_at = ticks.add(now, lifetime * 750)
        self.agents.bound(now, self.roam)
        score = ranking.score(info, now, self.agents.w, True)
        if state == REFRESH and old is info:
            return
        if old is not None and old is not info:
            left, joined = ipv4.ntoa(old.addr), ipv4.ntoa(info.addr)
            was = ranking.score(old, now, self.agents.w, True)
            self.log("handoff", {"old": left, "new": joined, "old_score": was, "new_score": score})
            self.reg.deregister(now, old, info)
        self.log("bound", {"agent": ipv4.ntoa(info.addr), "lifetime": lifetime, "score": score})
        self.peers.moved(now, info.addr)
        self.sol.stop()
        self._flush(now)

    def _choose(self, now):
        """Not bound: register with the best candidate, or solicit when there is none."""
        if self.reg.state != IDLE or self.serving is not None:
            return
        best = self.agents.best(now, None)
        if best is not None:
            self.reg.start(now, best, BIND)
        elif self.sol.next is None:
            self.sol.soon(now)

    def _request_failed(self, now, cause):
        info = self.reg.agent
        state = self.reg.state
        self.reg.finish()
        if state == HANDOFF and info is not self.serving:
            self.agents.block(now, info)  # stay where we are
            return
        self._lose(now, info, cause)

    def _unbind(self, now, reason):
        info = self.serving
        self.serving = None
        self.bound_until = None
        self.refresh_at = None
        self.agents.next_rank = None
        self.log("unbound", {"agent": ipv4.ntoa(info.addr), "reason": reason})

    def _lose(self, now, info, cause):
        """The agent is gone (silence: advertisement lifetime ran out; link: failed sends;
        noreply: registrations unanswered)."""
        # (its replay state stays: see agenttable.py); lost by a fade or by silence, its own
        # next advertisement may take it back (AgentTable._back); after registrations that went
        # unanswered or wrong (noreply, ident), only an answer to a solicitation may
        self.agents.remove(info, now if cause == "link" or cause == "silence" else None)
        was_serving = info is self.serving
        self.log(
            "agent_lost", {"agent": ipv4.ntoa(info.addr), "cause": cause, "serving": was_serving}
        )
        if info is self.reg.agent:
            self.reg.finish()
        if was_serving:
            self._unbind(now, cause)
            self.reg.serving_lost()
        if self.serving is None:
            self._choose(now)

    # --- sending, the mode and the next wake-up ---

    def _soliciting(self):
        return self.serving is None and self.reg.state == IDLE and self.sol.next is not None

    def _transmit(self, now, dst, pkt):
        """Send an application datagram by the current mode; False when there is no way yet."""
        if self.serving is not None:
            self.out.send(self.serving.iface, self.serving.mac, pkt)
            return True
        return self.direct.send(dst, pkt)  # direct: hosts never forward for others

    def _flush(self, now):
        q = self.queue
        self.queue = []
        for pkt in q:
            if not self._transmit(now, pkt[16:20], pkt):
                self.queue.append(pkt)

    def _after(self, now):
        """Every input ends here. The mode follows the binding and the direct table, and this
        is where it changes: once per input, so an input that passes through a mode (the agent
        lost, then its last host) logs only the mode it ends in."""
        if self.serving is not None:
            mode = MODE_AGENT
        elif self.direct.table:
            mode = MODE_DIRECT
        else:
            mode = MODE_SEARCH
        if mode != self.mode:
            self.mode = mode
            self.log("mode", {"mode": mode})
        if self.serving is None and self.reg.state == IDLE and self.sol.next is None:
            self.sol.soon(now)
        self._schedule(now)

    def _schedule(self, now):
        reg = self.reg
        wake = soonest(now, self.agents.next_silence, self.direct.next_silence)
        wake = soonest(now, wake, reg.deadline)
        wake = soonest(now, wake, reg.dereg_deadline)
        if self.serving is not None:
            wake = soonest(now, wake, self.bound_until)
            if reg.state == IDLE:
                wake = soonest(now, wake, self.refresh_at)
            if self.roam:
                wake = soonest(now, wake, self.agents.next_rank)
                wake = soonest(now, wake, self.serving.miss_at)
        elif reg.state == IDLE:
            wake = soonest(now, wake, self.sol.next)
            wake = soonest(now, wake, self.agents.choose_at)
        wake = soonest(now, wake, self.peers.next_wake())
        wake = soonest(now, wake, self.again_at)
        self._wake = wake if wake is not None else ticks.add(now, 60000)

    # --- remote bindings (core II) ---

    def _remote_route(self, addr):
        # remote binding requests leave through the serving agent, like every datagram
        if self.serving is None:
            return None
        return (self.serving.iface, self.serving.mac)

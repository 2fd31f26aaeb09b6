"""Mobile node role (docs/CORE.md "Mobile node").

It keeps the agents it hears, ranks them (ranking.py), binds to the best with an authenticated,
replay-checked registration, re-ranks with hysteresis, moves make-before-break (registers with
the new agent with the S flag while still bound to the old one, switches when the reply arrives,
then deregisters the old one), detects a lost agent from missed advertisements or failed
link-layer sends (whichever first) and refreshes its binding before it expires.

Without an agent it solicits service (routing first, then host-to-host contact, with back-off),
puts the hosts that answer in its forwarding table and exchanges datagrams with them directly.
It never forwards for others. Policy "mip4" (the Mobile IPv4 baseline) detects movement only by
advertisement lifetime expiry and never moves make-before-break.
"""

from mobility import advert, auth, ipv4, ranking, registration, replay, ticks
from mobility.actions import BROADCAST, IF_RADIO
from mobility.errors import DecodeError
from mobility.node import Node, cfg_int, due, fmt_mac, parse_addr, soonest
from mobility.remote import RemoteClient

try:
    from micropython import const
except ImportError:

    def const(x):  # type: ignore[misc]
        return x


DEFAULT_REG_LIFETIME_S = const(30)
DEFAULT_REG_TIMEOUT_MS = const(500)  # no reply: send again (a new identification)
DEFAULT_REG_RETRIES = const(3)  # then the agent counts as lost
DEFAULT_REFUSED_MS = const(10000)  # an agent that refused us is no candidate for this long
DEFAULT_RERANK_MS = const(1000)
DEFAULT_LINK_FAILURES = const(2)  # consecutive failed unicasts to an agent or host: lost
DEFAULT_SOL_INTERVAL_MS = const(1000)  # RFC 5944 2.4: at most one solicitation per second ...
DEFAULT_SOL_FAST = const(3)  # ... for the first attempts, then exponential back-off ...
DEFAULT_SOL_MAX_MS = const(8000)  # ... up to this spacing
DEFAULT_DOWNGRADE_AFTER = const(1)  # unanswered routing solicitations before asking for hosts
DEFAULT_MAX_AGENTS = const(10)
DEFAULT_MAX_HOSTS = const(16)
DEFAULT_COLLECT_MS = const(100)  # first agent heard while unbound: listen this long, then choose
DEFAULT_QUEUE = const(4)  # datagrams held while a binding or a host is being found
PROBE_BOUND_MS = const(3000)  # bound: at most one solicitation per this for a better agent
MAX_UNKNOWN = const(8)  # agents heard once, not yet probed, remembered at most
CHALLENGE_MS = const(2000)  # answers to a solicitation count as fresh this long after it
MAX_133 = const(3)  # identification mismatches in a row before giving up on an agent
FADING_MISSES = const(2)  # serving agent's advertisements missed in a row: move without dwell

MODE_AGENT = "agent"  # bound: everything goes through the serving agent
MODE_SEARCH = "search"  # no agent, no host: soliciting
MODE_DIRECT = "direct"  # no agent; host-to-host with the hosts that answered


class AgentInfo:
    """What the node knows about one agent it hears."""

    def __init__(self, addr, mac, iface, rssi):
        self.addr = addr
        self.mac = mac
        self.iface = iface
        self.rssi = rssi  # smoothed dBm
        self.expiry = 0  # advertisement lifetime runs out (ticks)
        self.services = 0
        self.capacity = 0
        self.load = 0
        self.reg_lifetime = 0
        self.nonce = 0  # the agent's boot nonce: first half of our registration identification
        self.outage_start = None  # planned outage (ticks) or None
        self.fails = 0  # consecutive failed unicasts
        self.interval = 1000  # advertisement period (ms): a third of the advertisement lifetime
        self.miss_at = 0  # an advertisement not heard by then counts as missed (ticks)
        self.missed = 0  # advertisements missed in a row
        self.blocked_until = None  # refused us: no candidate until then


class MobileNode(Node):
    def __init__(self, config, rand, now):
        Node.__init__(self, config, rand, now)
        policy = config.get("policy", "roam")
        if policy not in ("roam", "mip4"):
            raise ValueError("config 'policy' must be 'roam' or 'mip4', not %r" % (policy,))
        self.policy = policy
        self.roam = policy == "roam"
        ha = config.get("home_agent")
        self.home_agent = ipv4.ANY_ADDR if ha is None else parse_addr(ha, "home_agent")
        self.reg_lifetime_s = cfg_int(config, "reg_lifetime_s", DEFAULT_REG_LIFETIME_S, 1, 65535)
        self.reg_timeout_ms = cfg_int(config, "reg_timeout_ms", DEFAULT_REG_TIMEOUT_MS, 10, 60000)
        self.reg_retries = cfg_int(config, "reg_retries", DEFAULT_REG_RETRIES, 0, 100)
        self.refused_ms = cfg_int(config, "refused_ms", DEFAULT_REFUSED_MS, 0, 3600000)
        self.rerank_ms = cfg_int(config, "rerank_ms", DEFAULT_RERANK_MS, 10, 600000)
        # a field-test report plots the signal of every agent heard: an `rssi` event at most
        # this often (at re-ranking while bound); 0 = off (the simulator samples the radio itself)
        self.rssi_log_ms = cfg_int(config, "rssi_log_ms", 0, 0, 3600000)
        self._rssi_logged = None
        self.link_failures = cfg_int(config, "link_failures", DEFAULT_LINK_FAILURES, 1, 1000)
        self.sol_interval_ms = cfg_int(
            config, "sol_interval_ms", DEFAULT_SOL_INTERVAL_MS, 1000, 600000
        )
        self.sol_fast = cfg_int(config, "sol_fast", DEFAULT_SOL_FAST, 1, 1000)
        self.sol_max_ms = cfg_int(
            config, "sol_max_ms", DEFAULT_SOL_MAX_MS, self.sol_interval_ms, 3600000
        )
        self.downgrade_after = cfg_int(config, "downgrade_after", DEFAULT_DOWNGRADE_AFTER, 0, 255)
        self.max_agents = cfg_int(config, "max_agents", DEFAULT_MAX_AGENTS, 1, 255)
        self.max_hosts = cfg_int(config, "max_hosts", DEFAULT_MAX_HOSTS, 0, 255)
        self.queue_len = cfg_int(config, "queue", DEFAULT_QUEUE, 0, 64)
        self.collect_ms = cfg_int(config, "collect_ms", DEFAULT_COLLECT_MS, 0, 10000)
        self._choose_at = None
        self.w = ranking.weights(config.get("rank"))

        self.agents = {}  # addr_key -> AgentInfo
        self._next_silence = None  # lower bound of the agents' and hosts' expiries
        self._failing = False  # some agent or host has failed sends counted
        # advertisement replay state per agent; it outlives the agent table (replay.AdvWindow)
        self.adv_window = replay.AdvWindow()
        self._unknown = {}  # addr_key -> when an agent not in the table was first heard (bound)
        self._challenge = 0  # of our last solicitation (0: none), and of the one before
        self._challenge_prev = 0
        self.counter = replay.IdentCounter()
        self.serving = None  # AgentInfo holding our local binding
        self.bound_until = None
        self.refresh_at = None
        # the registration in flight (one at a time): agent, identification, kind, deadline
        self.req_agent = None
        self.req_ident = 0
        self.req_kind = None  # "bind", "handoff", "refresh"
        self.req_deadline = None
        self.req_tries = 0
        self.req_133 = 0
        # the deregistration in flight (one at a time) with the agent we left: retried until
        # answered, because an old agent that keeps a binding keeps the region (and, across
        # regions, its gateways) sending our traffic to where we no longer are
        self.dereg_agent = None
        self.dereg_coa = None
        self.dereg_ident = 0
        self.dereg_tries = 0
        self.dereg_deadline = None
        self._next_rank = None
        self._candidate = None
        self._candidate_since = 0
        # solicitation
        self.sol_level = advert.LEVEL_ROUTING
        self.sol_attempt = 0
        self.sol_gap = self.sol_interval_ms
        self.sol_next = ticks.add(now, rand(8) % 32)  # boot: ask soon, not in step with others
        self._sol_last = None
        # direct (host-to-host) forwarding table: addr_key -> [addr, mac, iface, expiry, fails]
        self.hosts = {}
        self.host_window = replay.AdvWindow()
        self.queue = []
        self.mode = MODE_SEARCH
        # core II: remote bindings with the home agent and with correspondents (docs/REGION.md)
        self.remote = None
        self.remote_lifetime_s = cfg_int(config, "remote_lifetime_s", 120, 1, 65535)
        self.correspondents = {}  # addr_key -> [address, heard from it (bool)]
        for c in config.get("correspondents") or ():
            a = parse_addr(c, "correspondent")
            self.correspondents[ipv4.addr_key(a, 0)] = [a, False]
        spi = auth.spi_home(self.node_id)
        if spi in self.keys:
            self.remote = RemoteClient(
                self.address, self.keys, spi, self.out, self._remote_route, self.home_agent
            )
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
        if due(now, self._next_silence):
            self._silences(now)
        if self.req_agent is not None and due(now, self.req_deadline):
            self._request_timeout(now)
        if self.dereg_agent is not None and due(now, self.dereg_deadline):
            self._dereg_timeout(now)
        if self.serving is not None:
            if due(now, self.bound_until):
                self._unbind(now, "expired")
                self._choose(now)
            elif self.req_agent is None and due(now, self.refresh_at):
                self._register(now, self.serving, "refresh")
        if due(now, self._choose_at):
            self._choose_at = None
            self._choose(now)
        if self.roam and self._next_rank is not None and due(now, self._next_rank):
            self._rerank(now)
        if self._soliciting() and due(now, self.sol_next):
            self._solicit(now)
        if self.remote is not None:
            self.remote.on_timer(now)
        self._after(now)

    def on_send(self, now, dst, payload):
        """The application sends ``payload`` to address ``dst`` (UDP to APP_PORT)."""
        dst = parse_addr(dst, "destination")
        pkt = self.datagram(dst, payload)
        if not self._transmit(now, dst, pkt):
            if len(self.queue) < self.queue_len:
                self.queue.append(pkt)  # sent when a binding or a host is found
            else:
                self.log("drop", {"reason": "no_route", "dst": ipv4.ntoa(dst)})
            if self.serving is None and self.req_agent is None and self.mode == MODE_DIRECT:
                self._solicit_soon(now)  # a host we do not know yet may answer
        self._after(now)

    def _silences(self, now):
        """The earliest advertisement or host-reply lifetime (_next_silence, a lower bound kept
        without scans) has come: drop what ran out and find the true earliest expiry."""
        for k in [k for k in self.agents if due(now, self.agents[k].expiry)]:
            self._lose(now, self.agents[k], "silence")
        for k in [k for k in self.hosts if due(now, self.hosts[k][3])]:
            self._host_lost(k, "silence")
        nxt = None
        for k in self.agents:
            nxt = soonest(now, nxt, self.agents[k].expiry)
        for k in self.hosts:
            nxt = soonest(now, nxt, self.hosts[k][3])
        self._next_silence = nxt

    def _expiry_set(self, now, e):
        if self._next_silence is None or ticks.diff(e, self._next_silence) < 0:
            self._next_silence = e

    def on_link_failure(self, now, iface, mac, frame=None):
        if not self.roam:
            return  # the Mobile IPv4 baseline notices movement only by advertisement lifetime
        self._failing = True
        for k in self.agents:
            info = self.agents[k]
            if info.mac == mac:
                info.fails += 1
                if info.fails >= self.link_failures:
                    self._lose(now, info, "link")
                break
        for k in self.hosts:
            h = self.hosts[k]
            if h[1] == mac:
                h[4] += 1
                if h[4] >= self.link_failures:
                    self._host_lost(k, "link")
                break
        self._after(now)

    # --- received frames ---

    def _dispatch(self, now, iface, src_mac, rssi, frame, h):
        to_me = h.dst == self.address
        self._heard_from(src_mac)
        if h.proto == ipv4.PROTO_ICMP and (to_me or h.dst == ipv4.BCAST_ADDR):
            msg = advert.decode_icmp(h)
            if isinstance(msg, advert.Solicitation):
                # Without an agent we are a host: answer host-to-host solicitations.
                if msg.level == advert.LEVEL_HOST and self.serving is None and self.roam:
                    if self.check_solicitation(msg, src_mac):
                        self.host_reply(now, iface, src_mac, msg)
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
                        if self.remote is not None:
                            self.remote.on_reply(now, msg)  # home agent or correspondent
                    else:
                        self._on_reply(now, src_mac, msg)
                return
            if dport == ipv4.APP_PORT:
                sv = self.serving
                if sv is not None and src_mac == sv.mac:
                    # datagrams from the serving agent measure the link the traffic uses
                    sv.rssi = (3 * sv.rssi + rssi + 2) // 4
                self.out.deliver(frame)
                self._heard_correspondent(now, h.src)
                return
        self._on_other(now, iface, src_mac, h)

    def _on_other(self, now, iface, src_mac, header):
        """A datagram for us that is neither control nor application (core II: tunnels)."""
        self.log("drop", {"reason": "proto", "src": ipv4.ntoa(header.src), "proto": header.proto})

    def _heard_from(self, mac):
        # A frame from an agent or host shows its link works: failed sends start again at 0.
        # (Scanned only after a failed send: most frames come while nothing failed.)
        if not self._failing:
            return
        self._failing = False
        for k in self.agents:
            if self.agents[k].fails:
                self._failing = True
        for k in self.hosts:
            if self.hosts[k][4]:
                self._failing = True
        for k in self.agents:
            if self.agents[k].mac == mac:
                self.agents[k].fails = 0
        for k in self.hosts:
            if self.hosts[k][1] == mac:
                self.hosts[k][4] = 0

    def _on_advert(self, now, iface, src_mac, rssi, adv):
        if not adv.verify(self.keys):
            self.reject("advertisement", "auth", adv.src, src_mac)
            return
        k = ipv4.addr_key(adv.src, 0)
        info = self.agents.get(k)
        verdict = self.adv_window.accept(k, adv.seq, adv.nonce, now)
        if verdict == replay.REPLAY:
            self.reject("advertisement", "replay", adv.src, src_mac)
            return
        if info is not None and info.addr != adv.src:
            return  # another address with the same table key: keep the one we have
        new = info is None
        if new and not self._fresh_answer(now, adv):
            # An agent not in the table: its broadcast could be a recording (one we never
            # received is newer than anything we hold). It enters only with an answer to our
            # solicitation that echoes the challenge we just sent: solicit for one (when it
            # may matter: unbound, or it sounds better than the agent serving us).
            # (Bound: one within the margin of the serving agent or better, so that agents of
            # the overlap are known and ranked before the serving one fades.)
            if self.serving is None:
                self._probe(now, iface, src_mac, adv.src)
            elif self._worth_probing(rssi) and self._heard_again(now, k, adv):
                self._probe(now, iface, src_mac, adv.src)
            return
        if new:
            if len(self.agents) >= self.max_agents and not self._evict(now):
                return
            info = AgentInfo(bytes(adv.src), bytes(src_mac), iface, rssi)
            self.agents[k] = info
        else:
            info.rssi = (3 * info.rssi + rssi + 2) // 4  # smoothing: one loud frame is not a move
            info.mac = bytes(src_mac) if info.mac != src_mac else info.mac
            info.iface = iface
        rebooted = not new and adv.nonce != info.nonce
        info.expiry = ticks.add(now, adv.adv_lifetime * 1000)
        self._expiry_set(now, info.expiry)
        # the agent advertises every lifetime / 3 (+-10 %): missed after 1.5 periods
        info.interval = adv.adv_lifetime * 1000 // 3
        info.miss_at = ticks.add(now, info.interval * 3 // 2)
        info.missed = 0
        info.services = adv.services
        info.capacity = adv.capacity
        info.load = adv.load
        info.reg_lifetime = adv.reg_lifetime
        info.nonce = adv.nonce
        info.fails = 0
        if adv.outage_in == advert.OUTAGE_NONE:
            info.outage_start = None
        else:
            info.outage_start = ticks.add(now, adv.outage_in * 1000)
        if new:
            self.log(
                "agent_up",
                {
                    "agent": ipv4.ntoa(info.addr),
                    "rssi": rssi,
                    "score": ranking.score(info, now, self.w),
                },
            )
        if rebooted and info is self.serving:
            # It lost our binding with its memory: register again under its new nonce.
            self.log("agent_reboot", {"agent": ipv4.ntoa(info.addr)})
            if self.req_agent is None:
                self._register(now, info, "refresh")
        if self.serving is None and self.req_agent is None:
            self._first_heard(now)
        elif self.roam and info is self.serving and ranking.outage_imminent(info, now, self.w):
            self._next_rank = now  # leave before the outage: re-rank now

    def _first_heard(self, now):
        """Unbound, no request in flight, and an agent was heard: ask every agent in range to
        answer (one solicitation, within the 1/s limit) and choose the best after a short
        listening window, not merely the first heard. (After a loss, _lose chooses at once
        among the agents already known.)"""
        if self._choose_at is not None:
            return
        if self.collect_ms == 0:
            self._choose(now)
            return
        self._choose_at = ticks.add(now, self.collect_ms)
        if self._sol_last is None or ticks.diff(now, self._sol_last) >= self.sol_interval_ms:
            self._send_solicitation(now, advert.LEVEL_ROUTING)

    def _worth_probing(self, rssi):
        """Bound: an agent heard at ``rssi`` could become ours: within the margin of the
        serving agent and not at the edge of its own cell, or simply better."""
        sv = self.serving.rssi
        w = self.w
        return rssi > sv or (rssi >= w["edge_rssi"] and rssi + w["margin"] >= sv)

    def _heard_again(self, now, k, adv):
        """Bound: an agent not in the table is worth a probe when this is its second
        advertisement within its lifetime. At the fringe of a cell a lucky frame now and then
        gets through from an agent the node will never use; probing each of those (and each
        time it is lost by silence and heard again) kept every node of a dense field soliciting
        at the limit, most of it unanswered. An agent coming into range is heard again."""
        first = self._unknown.get(k)
        if first is not None and ticks.diff(now, first) <= adv.adv_lifetime * 1000:
            del self._unknown[k]
            return True
        if first is None and len(self._unknown) >= MAX_UNKNOWN:
            self._unknown.clear()  # (a bounded memory; at worst a probe comes one frame later)
        self._unknown[k] = now
        return False

    def _probe(self, now, iface, mac, addr):
        """An agent not in the table was heard: solicit (within the 1/s limit) so that it
        answers us with our challenge; that answer takes it into the table. Unbound, every
        agent in range may answer (broadcast: we are choosing); bound, the solicitation goes
        to that agent alone: in a dense field a broadcast one is answered by every agent in
        range at once, and those answers (most from agents we would never choose) collide."""
        if self.serving is None:
            if self._sol_last is None or ticks.diff(now, self._sol_last) >= self.sol_interval_ms:
                self._send_solicitation(now, advert.LEVEL_ROUTING)
        elif self._sol_last is None or ticks.diff(now, self._sol_last) >= PROBE_BOUND_MS:
            self._send_solicitation(now, advert.LEVEL_ROUTING, iface, mac, addr)

    def _fresh_answer(self, now, adv):
        """True for an answer to one of our last two solicitations, sent within CHALLENGE_MS:
        it echoes a challenge that did not exist before, so it cannot be a recording."""
        c = adv.challenge
        return (
            c != 0
            and adv.dst == self.address
            and (c == self._challenge or c == self._challenge_prev)
            and ticks.diff(now, self._sol_last) <= CHALLENGE_MS
        )

    def _evict(self, now):
        """Make room in a full agent table: forget the lowest-ranked agent we do not use."""
        worst = None
        worst_score = None
        for k in self.agents:
            info = self.agents[k]
            if info is self.serving or info is self.req_agent:
                continue
            s = ranking.score(info, now, self.w)
            if worst is None or s is None or (worst_score is not None and s < worst_score):
                worst, worst_score = k, s
                if s is None:
                    break
        if worst is None:
            return False
        del self.agents[worst]  # its replay state stays in adv_window
        return True

    def _on_host_reply(self, now, iface, src_mac, adv):
        if not adv.verify(self.keys):
            self.reject("host_reply", "auth", adv.src, src_mac)
            return
        if not self._fresh_answer(now, adv):
            # a host reply only ever answers our solicitation: without our current challenge
            # it is a recording (perhaps of a reply we never received)
            self.reject("host_reply", "stale", adv.src, src_mac)
            return
        k = ipv4.addr_key(adv.src, 0)
        # nonce field: the host's epoch (16) || its reply sequence (16)
        seq = adv.nonce & 0xFFFF
        if self.host_window.accept(k, seq, adv.nonce - seq, now) == replay.REPLAY:
            self.reject("host_reply", "replay", adv.src, src_mac)
            return
        if self.serving is not None:
            return  # bound: everything goes through the agent
        h = self.hosts.get(k)
        expiry = ticks.add(now, adv.adv_lifetime * 1000)
        if h is None or h[0] != adv.src or h[1] != src_mac:
            if h is None and len(self.hosts) >= self.max_hosts:
                return
            self.hosts[k] = [bytes(adv.src), bytes(src_mac), iface, expiry, 0]
            self._expiry_set(now, expiry)
            self.log("host_up", {"host": ipv4.ntoa(adv.src), "mac": fmt_mac(src_mac)})
            self._flush(now)
        else:
            h[3] = expiry
            self._expiry_set(now, expiry)
            h[4] = 0

    def _on_reply(self, now, src_mac, rep):
        d = self.dereg_agent
        if d is not None and rep.src == d.addr and rep.home == self.address:
            if self._on_dereg_reply(now, src_mac, rep, d):
                return
        info = self.req_agent
        if info is None or rep.src != info.addr or rep.home != self.address:
            return  # not an answer to our request in flight (a late or replayed reply)
        if rep.ext_type != registration.EXT_MF_AUTH or not rep.verify(self.keys, auth.SPI_CELL):
            self.reject("reg_reply", "auth", rep.src, src_mac)
            return
        if rep.code == registration.IDENT_MISMATCH:
            # The agent restarted or we did: continue above its counter under its nonce.
            self.req_133 += 1
            info.nonce = self.counter.adopt(rep.ident)
            self.log("reg_refused", {"agent": ipv4.ntoa(info.addr), "code": rep.code})
            if self.req_133 <= MAX_133:
                self._send_request(now, info, self.req_kind)
            else:
                self._request_failed(now, "ident")
            return
        if rep.ident != self.req_ident:
            self.reject("reg_reply", "ident", rep.src, src_mac)
            return
        kind = self.req_kind
        self._clear_request()
        if rep.code != registration.ACCEPTED or rep.lifetime == 0:
            self.log("reg_refused", {"agent": ipv4.ntoa(info.addr), "code": rep.code})
            info.blocked_until = ticks.add(now, self.refused_ms)
            if kind == "refresh" and info is self.serving:
                self._unbind(now, "refused")
            if self.serving is None:
                self._choose(now)
            return
        old = self.serving
        self.serving = info
        self.bound_until = ticks.add(now, rep.lifetime * 1000)
        # Refresh when three quarters of the lifetime have passed: time for two retries.
        self.refresh_at = ticks.add(now, rep.lifetime * 750)
        self._candidate = None
        if self.roam and self._next_rank is None:
            self._next_rank = ticks.add(now, self.rerank_ms)
        score = ranking.score(info, now, self.w, True)
        if kind == "refresh" and old is info:
            return
        if old is not None and old is not info:
            self.log(
                "handoff",
                {
                    "old": ipv4.ntoa(old.addr),
                    "new": ipv4.ntoa(info.addr),
                    "old_score": ranking.score(old, now, self.w, True),
                    "new_score": score,
                },
            )
            self._deregister(now, old, info)
        self.log("bound", {"agent": ipv4.ntoa(info.addr), "lifetime": rep.lifetime, "score": score})
        self._remote_bind(now)
        self.sol_level = advert.LEVEL_ROUTING
        self.sol_attempt = 0
        self.sol_gap = self.sol_interval_ms
        self.sol_next = None
        self._flush(now)

    # --- binding ---

    def _candidates_best(self, now):
        best = None
        best_score = None
        for k in self.agents:
            info = self.agents[k]
            s = ranking.score(info, now, self.w, info is self.serving)
            if s is not None and (best_score is None or s > best_score):
                best, best_score = info, s
        return best, best_score

    def _choose(self, now):
        """Not bound: register with the best candidate, or solicit when there is none."""
        if self.req_agent is not None or self.serving is not None:
            return
        best, s = self._candidates_best(now)
        if best is not None:
            self._register(now, best, "bind")
        elif self.sol_next is None:
            self._solicit_soon(now)

    def _register(self, now, info, kind):
        self.req_tries = 0
        self.req_133 = 0
        self._send_request(now, info, kind)

    def _send_request(self, now, info, kind):
        if self.dereg_agent is not None and self.dereg_agent.addr == info.addr:
            self._clear_dereg()  # back to the agent we were leaving: a retry would unbind us
        self.req_agent = info
        self.req_kind = kind
        self.req_ident = self.counter.next(info.nonce)
        flags = 0
        if self.serving is not None and self.serving is not info:
            flags = registration.FLAG_S  # make-before-break: we keep the old binding meanwhile
        lifetime = self.reg_lifetime_s
        if info.reg_lifetime and info.reg_lifetime < lifetime:
            lifetime = info.reg_lifetime
        self._request(info, flags, lifetime, self.req_ident)
        self.req_deadline = ticks.add(now, self.reg_timeout_ms)

    def _request(self, info, flags, lifetime, ident, coa=None):
        req = registration.RegRequest(
            src=self.address,
            dst=info.addr,
            flags=flags,
            lifetime=lifetime,
            home=self.address,
            home_agent=self.home_agent,
            coa=info.addr if coa is None else coa,
            ident=ident,
        )
        self.out.send(info.iface, info.mac, registration.encode_request(req, self.cell_key))

    def _deregister(self, now, info, new=None):
        # Lifetime 0 releases the old local binding. The care-of names the new agent: the old
        # one forwards what still reaches it there until the region has the new binding
        # (docs/REGION.md "Forwarding pointer"; not in the Mobile IPv4 baseline). Retried like
        # a registration until the old agent answers (the baseline sends it once and lets the
        # binding there expire, as plain Mobile IPv4 does).
        self.dereg_agent = info
        self.dereg_coa = new.addr if self.roam and new is not None else info.addr
        self.dereg_tries = 0
        self._send_dereg(now)
        self.log("unbound", {"agent": ipv4.ntoa(info.addr), "reason": "handoff"})

    def _send_dereg(self, now):
        info = self.dereg_agent
        self.dereg_ident = self.counter.next(info.nonce)
        self._request(info, 0, 0, self.dereg_ident, self.dereg_coa)
        if self.roam:
            self.dereg_deadline = ticks.add(now, self.reg_timeout_ms)
        else:
            self._clear_dereg()

    def _clear_dereg(self):
        self.dereg_agent = None
        self.dereg_coa = None
        self.dereg_deadline = None

    def _dereg_timeout(self, now):
        if self.dereg_tries < self.reg_retries:
            self.dereg_tries += 1
            self._send_dereg(now)
            return
        self.log("reg_timeout", {"agent": ipv4.ntoa(self.dereg_agent.addr), "kind": "dereg"})
        self._clear_dereg()

    def _on_dereg_reply(self, now, src_mac, rep, info):
        """A reply from the agent we are deregistering from: True when it was the answer
        (the deregistration is done, or re-sent after a 133), False when it is not ours."""
        if rep.ext_type != registration.EXT_MF_AUTH or not rep.verify(self.keys, auth.SPI_CELL):
            return False  # the registration path rejects and logs it
        if rep.code == registration.IDENT_MISMATCH:
            if self.req_agent is info:
                return False  # (we are also registering with it: that exchange adopts it)
            info.nonce = self.counter.adopt(rep.ident)
            if self.dereg_tries < self.reg_retries:
                self.dereg_tries += 1
                self._send_dereg(now)
            else:
                self._clear_dereg()
            return True
        if rep.ident != self.dereg_ident:
            return False
        self._clear_dereg()
        return True

    def _clear_request(self):
        self.req_agent = None
        self.req_kind = None
        self.req_deadline = None

    def _request_timeout(self, now):
        if self.req_tries < self.reg_retries:
            self.req_tries += 1
            self._send_request(now, self.req_agent, self.req_kind)
            return
        info = self.req_agent
        self.log("reg_timeout", {"agent": ipv4.ntoa(info.addr), "kind": self.req_kind})
        self._request_failed(now, "noreply")

    def _request_failed(self, now, cause):
        info = self.req_agent
        kind = self.req_kind
        self._clear_request()
        if kind == "handoff" and info is not self.serving:
            info.blocked_until = ticks.add(now, self.refused_ms)  # stay where we are
            return
        self._lose(now, info, cause)

    def _unbind(self, now, reason):
        info = self.serving
        self.serving = None
        self.bound_until = None
        self.refresh_at = None
        self._next_rank = None
        self.log("unbound", {"agent": ipv4.ntoa(info.addr), "reason": reason})

    def _lose(self, now, info, cause):
        """The agent is gone (silence: advertisement lifetime ran out; link: failed sends;
        noreply: registrations unanswered)."""
        k = ipv4.addr_key(info.addr, 0)
        if self.agents.get(k) is info:
            # The replay state stays (adv_window outlives this table): a recording of the
            # agent replayed later is refused, its next real advertisement is newer.
            del self.agents[k]
        was_serving = info is self.serving
        self.log(
            "agent_lost", {"agent": ipv4.ntoa(info.addr), "cause": cause, "serving": was_serving}
        )
        if info is self.req_agent:
            self._clear_request()
        if was_serving:
            self._unbind(now, cause)
            if self.req_agent is not None and self.req_kind == "handoff":
                self.req_kind = "bind"  # the new agent's reply now makes our only binding
        if self.serving is None:
            self._choose(now)

    def _misses(self, now):
        """An advertisement that did not arrive counts as a sample at ``miss_rssi`` in the
        smoothed signal: a frame missed was (most likely) below the receiver's sensitivity.
        Without this, an agent fading out keeps the estimate of the last frame that got
        through, which at the edge of a cell is a lucky one, and the node stays with it until
        the advertisement lifetime runs out."""
        miss = self.w["miss_rssi"]
        for k in self.agents:
            info = self.agents[k]
            while due(now, info.miss_at):
                info.rssi = (3 * info.rssi + miss + 2) // 4
                info.missed += 1
                info.miss_at = ticks.add(info.miss_at, info.interval)

    def _rerank(self, now):
        self._next_rank = ticks.add(now, self.rerank_ms)
        cur = self.serving
        if cur is None:
            return
        self._misses(now)
        if self.rssi_log_ms and (
            self._rssi_logged is None or ticks.diff(now, self._rssi_logged) >= self.rssi_log_ms
        ):
            self._rssi_logged = now
            heard = {}
            for k in self.agents:
                heard[ipv4.ntoa(self.agents[k].addr)] = self.agents[k].rssi
            self.log("rssi", {"serving": ipv4.ntoa(cur.addr), "agents": heard})
        if self.req_agent is not None:
            return
        best, best_score = self._candidates_best(now)
        cur_score = ranking.score(cur, now, self.w, True)
        # at the edge of the serving cell half the margin is enough (and no dwell, below); this
        # holds toward an agent at the edge of its own cell too: keeping the full hysteresis
        # there cut ping-pong moves (3 -> 1 per run in walk) but cost delivery (walk seed 2:
        # 99.98 -> 99.74 %), and each move is make-before-break
        edge = cur.rssi <= self.w["edge_rssi"]
        margin = self.w["margin"] // 2 if edge else self.w["margin"]
        if (
            best is None
            or best is cur
            or (cur_score is not None and best_score < cur_score + margin)
        ):
            self._candidate = None
            return
        # No dwell when the serving agent is going (outage, no longer a candidate) or fading:
        # it missed FADING_MISSES advertisements in a row while the better one is heard.
        urgent = (
            cur_score is None
            or ranking.outage_imminent(cur, now, self.w)
            or (cur.missed >= FADING_MISSES and best.missed == 0)
            or edge
        )
        if self._candidate is not best:
            self._candidate = best
            self._candidate_since = now
        if urgent or ticks.diff(now, self._candidate_since) >= self.w["dwell_ms"]:
            self._candidate = None
            self._register(now, best, "handoff")

    # --- no agent: solicitation and host-to-host ---

    def _soliciting(self):
        return self.serving is None and self.req_agent is None and self.sol_next is not None

    def _solicit_soon(self, now):
        if self._sol_last is not None and ticks.diff(now, self._sol_last) < self.sol_interval_ms:
            self.sol_next = ticks.add(self._sol_last, self.sol_interval_ms)  # 1/s at most
        else:
            self.sol_next = now

    def _solicit(self, now):
        sol = self._send_solicitation(now, self.sol_level)
        self.sol_attempt += 1
        if self.sol_attempt >= self.sol_fast:
            self.sol_gap = min(self.sol_gap * 2, self.sol_max_ms)  # exponential back-off
        self.sol_next = ticks.add(now, self.sol_gap)
        self.log("solicit", {"level": sol.level, "attempt": sol.attempt, "next_ms": self.sol_gap})
        if (
            self.roam  # the Mobile IPv4 baseline never falls back to host-to-host
            and self.sol_level == advert.LEVEL_ROUTING
            and self.sol_attempt >= self.downgrade_after
        ):
            self.sol_level = advert.LEVEL_HOST
            self.log(
                "downgrade",
                {
                    "from": advert.LEVEL_ROUTING,
                    "to": advert.LEVEL_HOST,
                    "attempts": self.sol_attempt,
                },
            )
            self.sol_next = ticks.add(now, self.sol_interval_ms)

    def _send_solicitation(self, now, level, iface=IF_RADIO, mac=BROADCAST, dst=ipv4.BCAST_ADDR):
        self._challenge_prev = self._challenge
        self._challenge = self.rand(32) | 1  # never 0 ("no challenge")
        sol = advert.Solicitation(
            src=self.address,
            level=level,
            attempt=min(self.sol_attempt, 255),
            dst=dst,
            challenge=self._challenge,
        )
        self.out.send(iface, mac, advert.encode_solicitation(sol, self.cell_key))
        self._sol_last = now
        return sol

    def _host_lost(self, k, cause):
        h = self.hosts.pop(k)
        self.log("host_lost", {"host": ipv4.ntoa(h[0]), "cause": cause})

    # --- sending ---

    def _transmit(self, now, dst, pkt):
        """Send an application datagram by the current mode; False when there is no way yet."""
        if self.serving is not None:
            self.out.send(self.serving.iface, self.serving.mac, pkt)
            return True
        h = self.hosts.get(ipv4.addr_key(dst, 0))
        if h is not None and h[0] == dst:
            self.out.send(h[2], h[1], pkt)  # direct: hosts never forward for others
            return True
        return False

    def _flush(self, now):
        q = self.queue
        self.queue = []
        for pkt in q:
            if not self._transmit(now, pkt[16:20], pkt):
                self.queue.append(pkt)

    def _after(self, now):
        if self.serving is not None:
            mode = MODE_AGENT
        elif self.hosts:
            mode = MODE_DIRECT
        else:
            mode = MODE_SEARCH
        if mode != self.mode:
            self.mode = mode
            self.log("mode", {"mode": mode})
        if self.serving is None and self.req_agent is None and self.sol_next is None:
            self._solicit_soon(now)
        self._schedule(now)

    def _schedule(self, now):
        wake = soonest(now, self._next_silence, self.req_deadline)
        wake = soonest(now, wake, self.dereg_deadline)
        if self.serving is not None:
            wake = soonest(now, wake, self.bound_until)
            if self.req_agent is None:
                wake = soonest(now, wake, self.refresh_at)
            if self.roam:
                wake = soonest(now, wake, self._next_rank)
        elif self.req_agent is None:
            wake = soonest(now, wake, self.sol_next)
            wake = soonest(now, wake, self._choose_at)
        if self.remote is not None:
            wake = soonest(now, wake, self.remote.next_wake())
        self._wake = wake if wake is not None else ticks.add(now, 60000)

    # --- remote bindings (core II) ---

    def _remote_route(self, addr):
        # remote binding requests leave through the serving agent, like every datagram
        if self.serving is None:
            return None
        return (self.serving.iface, self.serving.mac)

    def _remote_bind(self, now):
        """Locally bound (or handed off): tell the home agent, and the correspondents that
        talk to us, where we are now. The local binding stands whatever they answer."""
        if self.remote is None or self.serving is None:
            return
        coa = self.serving.addr
        if self.home_agent != ipv4.ANY_ADDR:
            self.remote.bind(now, self.home_agent, self.address, coa, self.remote_lifetime_s)
        if self.roam:
            for k in self.correspondents:
                c = self.correspondents[k]
                if c[1]:
                    self.remote.bind(now, c[0], self.address, coa, self.remote_lifetime_s)

    def _heard_correspondent(self, now, src):
        # a datagram from a correspondent that holds our home key: bind with it so that it
        # tunnels straight to our agent (route optimisation; not in the mip4 baseline)
        c = self.correspondents.get(ipv4.addr_key(src, 0))
        if c is None or c[0] != src or not self.roam or self.remote is None:
            return
        if not c[1]:
            c[1] = True
            self.log("correspondent", {"peer": ipv4.ntoa(src)})
        if self.serving is not None:
            self.remote.bind(now, src, self.address, self.serving.addr, self.remote_lifetime_s)

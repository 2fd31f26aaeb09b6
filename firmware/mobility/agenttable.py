"""A mobile node's agent table (docs/CORE.md "Mobile node": agent table, re-ranking).

The agents it hears, what their last advertisement said, the signal it hears them at, and the
choice among them: the best candidate (scores from ranking.py), and while bound whether a better
one has led the serving agent long enough to move (hysteresis). Advertisement replay state
(``window``) outlives the entries: a recording of an agent replayed later is refused, its next
real advertisement is newer.
"""

from mobility import advert, advreplay, ipv4, ranking, ticks
from mobility.compat import const
from mobility.node import due, soonest

_DEFAULT_MAX_AGENTS = const(10)
_DEFAULT_REFUSED_MS = const(10000)  # an agent that refused us is no candidate for this long
DEFAULT_RERANK_MS = const(1000)
_DEFAULT_COLLECT_MS = const(100)  # first agent heard while unbound: listen this long, then choose
_MAX_UNKNOWN = const(8)  # agents heard once, not yet probed, remembered at most
_GONE_MS = const(10000)  # an agent lost by a failed send or silence: re-admitted this long
_FADING_MISSES = const(2)  # serving agent's advertisements missed in a row: move without dwell

# what take() made of an advertisement: the first three are rejections, logged as REJECTED[it]
FORGED = const(0)
REPLAYED = const(1)  # not newer than one accepted before
RELAYED = const(2)  # sent on by a station other than the agent its signed MAC names
IGNORED = const(3)  # another address under the key of one we hold, no room, or not worth it
PROBE = const(4)  # an agent not in the table, worth a solicitation that it would answer
NEW = const(5)  # an agent entered the table
_HEARD = const(6)  # an agent we hold, same boot
REBOOTED = const(7)  # an agent we hold, under a new boot nonce: it lost our binding
REJECTED = ("auth", "replay", "relayed")


def _resync(window, key, seq, nonce, now):
    """Set ``window`` (advreplay.AdvWindow) to (seq, nonce) for ``key`` whatever it held: for an
    answer proven fresh by the challenge it echoes (a recording cannot echo it), so a window
    that a sequence or nonce it can no longer compare with put out of step heals at the next
    answer."""
    if window.held(key) is None and len(window) >= window.size:
        window._evict(now)
    window._set(key, seq, nonce, now)


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
        self.seq = 0  # of the newest advertisement taken: echoed in our requests (its challenge)
        self.outage_start = None  # planned outage (ticks) or None
        self.fails = 0  # consecutive failed unicasts
        self.interval = 1000  # advertisement period (ms): a third of the advertisement lifetime
        self.miss_at = 0  # an advertisement not heard by then counts as missed (ticks)
        self.missed = 0  # advertisements missed in a row
        self.blocked_until = None  # refused us: no candidate until then


class AgentTable:
    def __init__(self, config, out, keys):
        from mobility import settings

        self.w = ranking.weights(config.get("rank"))
        self.capacity = settings.cfg_int(config, "max_agents", _DEFAULT_MAX_AGENTS, 1, 255)
        self.refused_ms = settings.cfg_int(config, "refused_ms", _DEFAULT_REFUSED_MS, 0, 3600000)
        self.rerank_ms = settings.cfg_int(config, "rerank_ms", DEFAULT_RERANK_MS, 10, 600000)
        # a field-test report plots the signal of every agent heard: an `rssi` event at most
        # this often (at re-ranking while bound); 0 = off (the simulator samples the radio itself)
        self.rssi_log_ms = settings.cfg_int(config, "rssi_log_ms", 0, 0, 3600000)
        self.collect_ms = settings.cfg_int(config, "collect_ms", _DEFAULT_COLLECT_MS, 0, 10000)
        self.choose_at = None  # unbound: the listening window closes then (ticks)
        self._rssi_logged = None
        self.out = out
        self.keys = keys
        self.next_rank = None  # bound: when to re-rank (ticks)
        self.next_silence = None  # a lower bound of the advertisement expiries, kept without scans
        self.table = {}  # addr_key -> AgentInfo
        self.window = advreplay.AdvWindow()
        self._unknown = {}  # addr_key -> when an agent not in the table was first heard (bound)
        self._gone = {}  # addr_key -> (when, MAC) of an agent lost by a failed send or silence
        self._candidate = None  # bound: the better agent, leading since _candidate_since
        self._candidate_since = 0

    def take(self, now, k, iface, mac, rssi, adv, fresh, serving, pending):
        """An advertisement under table key ``k``: what it made of it (FORGED ... REBOOTED).
        ``fresh``: it answers our solicitation. An agent not in the table enters only so: its
        broadcast could be a recording (one we never received is newer than anything we hold).
        A solicitation for such an answer is worth it when the agent may matter: unbound, or
        bound and it is within the margin of the serving agent or better (so that the agents of
        the overlap are known and ranked before the serving one fades). ``serving``,
        ``pending``: the agents our bindings involve, kept when a full table makes room."""
        if not adv.verify(self.keys):
            return FORGED
        if advert.relayed(adv, mac):
            # before the window: a relayed copy must neither enter the agent at the relay's
            # MAC (a probe's answer carried back) nor use up the sequence of the agent's own
            return RELAYED
        info = self.table.get(k)
        if self.window.accept(k, adv.seq, adv.nonce, now) == advreplay.REPLAY:
            if fresh:
                # an answer to our live challenge cannot be a recording: take its sequence
                # and nonce whatever the window held (a window out of step heals here)
                _resync(self.window, k, adv.seq, adv.nonce, now)
            else:
                return REPLAYED  # (unbound, the owner asks for a fresh answer all the same)
        if info is not None and info.addr != adv.src:
            return IGNORED  # keep the one we have
        if info is None and not fresh and serving is None and self._back(now, k, mac):
            fresh = True  # an agent we just lost, heard again (_back): admitted as answers are
        if info is None and not fresh:
            if serving is not None and not self._worth_probing(rssi, serving):
                return IGNORED
            if serving is not None and not self._heard_again(now, k, adv):
                return IGNORED
            return PROBE
        if info is None:
            if len(self.table) >= self.capacity and not self._evict(now, serving, pending):
                return IGNORED
            info = AgentInfo(bytes(adv.src), bytes(mac), iface, rssi)
            self.table[k] = info
            self._update(now, info, adv)
            return NEW
        info.rssi = (3 * info.rssi + rssi + 2) // 4  # smoothing: one loud frame is not a move
        # (the MAC and interface stay those of the fresh answer the agent entered by: a frame's
        # link-layer source is not signed, and a relay's copy must not redirect our traffic;
        # the registration reply confirms them, docs/CORE.md "Security rules")
        rebooted = adv.nonce != info.nonce
        self._update(now, info, adv)
        return REBOOTED if rebooted else _HEARD

    def _evict(self, now, serving, pending):
        """Make room: forget the lowest-ranked agent we do not use."""
        worst = None
        worst_score = None
        for k in self.table:
            info = self.table[k]
            if info is serving or info is pending:
                continue
            s = ranking.score(info, now, self.w)
            if worst is None or s is None or (worst_score is not None and s < worst_score):
                worst, worst_score = k, s
                if s is None:
                    break
        if worst is None:
            return False
        del self.table[worst]  # its replay state stays in window
        return True

    def _update(self, now, info, adv):
        info.expiry = e = ticks.add(now, adv.adv_lifetime * 1000)
        if self.next_silence is None or ticks.diff(e, self.next_silence) < 0:
            self.next_silence = e
        # the agent advertises every lifetime / 3 (+-10 %): missed after 1.5 periods
        info.interval = adv.adv_lifetime * 1000 // 3
        info.miss_at = ticks.add(now, info.interval * 3 // 2)
        info.missed = 0
        info.services = adv.services
        info.capacity = adv.capacity
        info.load = adv.load
        info.reg_lifetime = adv.reg_lifetime
        info.nonce = adv.nonce
        info.seq = adv.seq
        info.fails = 0
        if adv.outage_in == advert.OUTAGE_NONE:
            info.outage_start = None
        else:
            info.outage_start = ticks.add(now, adv.outage_in * 1000)

    def remove(self, info, now=None):
        """Forget ``info``. ``now`` given (it was lost by a failed send or by silence, not by
        unanswered registrations): for _GONE_MS its own next advertisement takes it back
        without a solicitation's answer (_back)."""
        k = ipv4.addr_key(info.addr, 0)
        if self.table.get(k) is info:
            del self.table[k]
            if now is not None:
                if len(self._gone) >= _MAX_UNKNOWN:
                    self._gone.clear()  # (a bounded memory; at worst an answer is needed)
                self._gone[k] = (now, info.mac)

    def _back(self, now, k, mac):
        """Unbound, an agent not in the table was heard: True (once) when it is one we lost
        lately, by a failed send or by silence, heard from its own MAC with an advertisement
        newer than any we took from it (the window, which outlived the entry, said so). A
        fade at the cell edge loses the agent; the broadcast solicitation and its answer are
        then the frames least likely to get through (a burst of others' solicitations may also
        have used up the agent's answers, docs/CORE.md "Security rules"), while the agent's
        next advertisement does: binding again from it saves seconds. A recording cannot do
        more here than the residual risk of an agent in the table (frames the node never
        received are newer): one registration, unanswered if the agent is not there, and no
        second re-admission."""
        g = self._gone.get(k)
        if g is None:
            return False
        del self._gone[k]
        return ticks.diff(now, g[0]) <= _GONE_MS and g[1] == mac

    def expired(self, now):
        """The agents whose advertisement lifetime ran out (the owner drops them); the silence
        bound becomes the first expiry of the others."""
        t = self.table
        gone = []
        nxt = None
        for k in t:
            if due(now, t[k].expiry):
                gone.append(t[k])
            else:
                nxt = soonest(now, nxt, t[k].expiry)
        self.next_silence = nxt
        return gone

    def link_failure(self, mac, limit):
        """A unicast to ``mac`` failed: the agent there once ``limit`` failed in a row, or at
        once when its advertisement is overdue as well (two signs: it is gone), else None."""
        t = self.table
        for k in t:
            info = t[k]
            if info.mac == mac:
                info.fails += 1
                return info if info.fails >= limit or info.missed else None
        return None

    def heard(self, mac):
        """A frame from ``mac``: the link to an agent there works. True while some agent still
        has failed sends counted."""
        failing = False
        t = self.table
        for k in t:
            info = t[k]
            if info.mac == mac:
                info.fails = 0
            elif info.fails:
                failing = True
        return failing

    def _worth_probing(self, rssi, serving):
        """Bound: an agent heard at ``rssi`` could become ours: within the margin of the
        serving agent and not at the edge of its own cell, or simply better."""
        sv = serving.rssi
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
        if first is None and len(self._unknown) >= _MAX_UNKNOWN:
            self._unknown.clear()  # (a bounded memory; at worst a probe comes one frame later)
        self._unknown[k] = now
        return False

    def best(self, now, serving):
        """The best candidate (the serving agent scored as such), or None."""
        best = None
        best_score = None
        for k in self.table:
            info = self.table[k]
            s = ranking.score(info, now, self.w, info is serving)
            if s is not None and (best_score is None or s > best_score):
                best, best_score = info, s
        return best

    def misses(self, now):
        """An advertisement that did not arrive counts as a sample at ``miss_rssi`` in the
        smoothed signal: a frame missed was (most likely) below the receiver's sensitivity.
        Without this, an agent fading out keeps the estimate of the last frame that got
        through, which at the edge of a cell is a lucky one, and the node stays with it until
        the advertisement lifetime runs out."""
        miss = self.w["miss_rssi"]
        for k in self.table:
            info = self.table[k]
            while due(now, info.miss_at):
                info.rssi = (3 * info.rssi + miss + 2) // 4
                info.missed += 1
                info.miss_at = ticks.add(info.miss_at, info.interval)

    def block(self, now, info):
        """``info`` refused us (or a hand-off to it failed): no candidate for a while."""
        info.blocked_until = ticks.add(now, self.refused_ms)

    def bound(self, now, rerank):
        """Bound (again): the hysteresis starts over; ``rerank``: re-rank while bound."""
        self._candidate = None
        if rerank and self.next_rank is None:
            self.next_rank = ticks.add(now, self.rerank_ms)

    def rerank(self, now, cur, idle):
        """Re-ranking is due while bound to ``cur``: the agent to move to now, or None (stay).
        ``idle``: no registration in flight (else the node stays, whatever it hears)."""
        self.next_rank = ticks.add(now, self.rerank_ms)
        if cur is None:
            return None
        self.misses(now)
        if self.rssi_log_ms and (
            self._rssi_logged is None or ticks.diff(now, self._rssi_logged) >= self.rssi_log_ms
        ):
            self._rssi_logged = now
            heard = {}
            for k in self.table:
                heard[ipv4.ntoa(self.table[k].addr)] = self.table[k].rssi
            self.out.log("rssi", {"serving": ipv4.ntoa(cur.addr), "agents": heard})
        if not idle:
            return None
        best = self.best(now, cur)
        cur_score = ranking.score(cur, now, self.w, True)
        # at the edge of the serving cell half the margin is enough (and no dwell, below); this
        # holds toward an agent at the edge of its own cell too: keeping the full hysteresis
        # there cut ping-pong moves (3 -> 1 per run in walk) but cost delivery (walk seed 2:
        # 99.98 -> 99.74 %), and each move is make-before-break
        edge = cur.rssi <= self.w["edge_rssi"]
        margin = self.w["margin"] // 2 if edge else self.w["margin"]
        if best is None or best is cur:
            self._candidate = None
            return None
        best_score = ranking.score(best, now, self.w)
        if cur_score is not None and best_score < cur_score + margin:
            self._candidate = None
            return None
        # No dwell when the serving agent is going (outage, no longer a candidate) or fading:
        # it missed _FADING_MISSES advertisements in a row while the better one is heard.
        urgent = (
            cur_score is None
            or ranking.outage_imminent(cur, now, self.w)
            or (cur.missed >= _FADING_MISSES and best.missed == 0)
            or edge
        )
        if self._candidate is not best:
            self._candidate = best
            self._candidate_since = now
        if urgent or ticks.diff(now, self._candidate_since) >= self.w["dwell_ms"]:
            self._candidate = None
            return best
        return None

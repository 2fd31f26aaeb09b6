"""The figures of a run (docs/METRICS.md defines each one).

Two layers, kept apart so that the same arithmetic serves hand-made event sequences in the
tests, simulator runs, and (later) board logs:

* pure functions over plain records: delivery, interruptions around hand-offs, convergence,
  percentiles;
* ``Collector``: fed by the world while it runs (core events, frames, application sends and
  deliveries, frames from the attacker), it keeps those records compactly and builds
  ``summary.json``.
"""

import bisect

from hosttools.sim.counters import ATTACK_COUNTERS
from mobility.ipv4 import PUB_PORT
from mobility.publication import is_copy_candidate, is_publication

# Core events that mean a message changed routing state (docs/EVENTS.md). An attacker's frame
# after which the receiving node logs one of these was accepted.
STATE_EVENTS = frozenset(
    (
        "binding_up",
        "binding_refresh",
        "binding_down",
        "remote_up",
        "remote_bound",
        "remote_down",
        "published",
        "publication_accepted",
        "agent_up",
        "agent_new",
        "bound",
        "handoff",
        "host_added",
        "direct_up",
    )
)


# answers a second a receiver may send to solicitations and requests (docs/CORE.md "Security
# rules"): agents 16 solicitation answers and 8 refusals (cell.py); hosts, home agents and
# mobile nodes 8 answers (node.py); a correspondent or home agent one 133 per counter per 100 ms
ANSWER_BURST = {
    ("agent", "icmp"): 16,
    ("agent", "reg"): 8,
    ("host", "reg"): 10,
    ("home", "reg"): 10,
}


def _remote_cache(nd):
    """The remote bindings a correspondent (host) or a home agent holds, else None."""
    if nd.kind == "host":
        return getattr(nd.role, "remote", None)
    if nd.kind == "home":
        return getattr(nd.role, "cache", None)
    return None


def percentile(values, p):
    """The p-th percentile (0..100) by linear interpolation; None for no values."""
    if not values:
        return None
    v = sorted(values)
    if len(v) == 1:
        return float(v[0])
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return float(v[lo] + (v[hi] - v[lo]) * (k - lo))


# the longest a datagram is taken to be on its way (flight_bounds: a flow's own longest is used
# when shorter); an undelivered datagram sent this close to the end was in flight at the end
IN_FLIGHT_US = 1000000


def delivery(sent, delivered):
    """(sent count, delivered count, ratio) for sets/dicts of (flow, seq)."""
    n = len(sent)
    d = sum(1 for k in delivered if k in sent)
    return n, d, (d / n if n else None)


# A hand-off's loss burst in the manner of RFC 3611's burst metrics (section 4.7.2): losses
# of a flow belong to one burst unless BURST_GMIN or more consecutive datagrams were received
# between them (Gmin = 16, the RFC's recommended value). A node that holds on to a fading link
# loses datagrams now and then before it moves on; the burst takes those in, where the gap
# between the two deliveries around the hand-off would see only its last few.
BURST_GMIN = 16


def interruptions(handoffs, flows, deliveries, end_us, sent=None):
    """handoff_gaps() with the count of the datagrams lost: ([interruption_us ...], count)."""
    out, lost = handoff_gaps(handoffs, flows, deliveries, end_us, sent)
    return out, len(lost)


def handoff_gaps(handoffs, flows, deliveries, end_us, sent=None):
    """Interruption per (hand-off, flow) and the datagrams lost around it.

    handoffs: [(t_us, mobile_id)]; flows: {flow: (src_id, dst_id, interval_us)};
    deliveries: {flow: sorted [(t_us, seq)]} (first delivery of each datagram);
    end_us: end of the run (a flow that never delivers again is interrupted until then);
    sent: the (flow, seq) handed to a core, or None (every sequence number was sent).

    For a hand-off of mobile M at h and a flow from or to M: t_a = the last delivery at or
    before h, t_b = the first after h. The hand-off's burst is the datagrams lost between
    them and every loss reached from there, in sequence order either way, across fewer than
    BURST_GMIN consecutive deliveries; a burst goes to the first hand-off of M that finds it
    (a later one keeps only the losses between its own t_a and t_b). Interruption = max(0,
    t_b - t_a - interval) (without a loss, a path's latency change), or the burst's duration
    if longer: the time between the deliveries that enclose it, less the interval. The
    datagrams lost in the hand-off are the bursts'. Returns ([interruption_us ...], {(flow,
    seq) lost}), in the order of the hand-offs' times."""
    by_node = {}
    for f, (src, dst, _interval) in flows.items():
        by_node.setdefault(src, []).append(f)
        if dst != src:
            by_node.setdefault(dst, []).append(f)
    times = {f: [t for t, _ in d] for f, d in deliveries.items()}
    at = {f: {s: t for t, s in d} for f, d in deliveries.items()}  # seq -> delivery time
    ends = {f: (min(g), max(g)) for f, g in at.items() if g}  # first and last seq delivered
    out = []
    lost = set()
    for h, m in sorted(handoffs):
        for f in by_node.get(m, ()):
            d = deliveries.get(f)
            if not d:
                continue
            ts = times[f]
            i = bisect.bisect_right(ts, h)
            if i == 0:
                continue  # the flow had not delivered anything yet
            t_a, s_a = d[i - 1]
            interval = flows[f][2]
            if i == len(d):  # never delivered again: interrupted until the end
                out.append(max(0, end_us - t_a - interval))
                continue
            t_b, s_b = d[i]
            got = at[f]
            burst = _burst(f, min(s_a, s_b), max(s_a, s_b), got, ends[f], sent)
            if any((f, s) in lost for s in burst):
                # a burst an earlier hand-off of M took (a ping-pong back): this one is
                # charged its own gap only
                burst = [s for s in burst if s_a < s < s_b]
            if burst:
                # the deliveries that enclose the burst (there are: it stops at the flow's
                # first and last delivery)
                below, above = min(burst) - 1, max(burst) + 1
                while below not in got:
                    below -= 1
                while above not in got:
                    above += 1
                lost.update((f, s) for s in burst)
                out.append(max(0, t_b - t_a - interval, got[above] - got[below] - interval))
            else:
                out.append(max(0, t_b - t_a - interval))
    return out, lost


def _burst(f, lo, hi, got, ends, sent):
    """The sequence numbers of flow f lost in the burst around the deliveries lo and hi
    (handoff_gaps): those between them, and beyond them either way while fewer than
    BURST_GMIN consecutive deliveries separate a loss from the burst. A number never sent
    (the sender was off) is neither. Scans stop at the flow's first and last delivery."""
    first, last = ends
    out = [s for s in range(lo + 1, hi) if s not in got and (sent is None or (f, s) in sent)]
    for step, s, stop in ((-1, lo, first), (1, hi, last)):
        run = 1  # lo and hi are deliveries
        while run < BURST_GMIN and s != stop:
            s += step
            if s in got:
                run += 1
            elif sent is None or (f, s) in sent:
                out.append(s)
                run = 0
    return out


# -- losses by cause ---------------------------------------------------------------------------
# Every datagram sent and never delivered gets exactly one cause: the first of these that
# applies, in this order (docs/METRICS.md, "Losses by cause").
CAUSE_ORDER = ("in_flight_at_end", "node_off", "partition", "no_route", "handoff", "radio", "other")
# the order of summary.json's lost_by_cause
CAUSE_KEYS = ("handoff", "no_route", "partition", "node_off", "radio", "in_flight_at_end", "other")
NO_ROUTE_REASONS = frozenset(("no_route", "no_binding"))
# the events the attribution reads (the Collector keeps these, with their time in us)
CAUSE_EVENTS = frozenset(
    ("sim_power", "sim_partition", "sim_radio_loss", "drop", "bound", "handoff", "unbound", "mode")
)
_FOREVER = float("inf")
_LAST = (_FOREVER,)  # sorts after every (flow, seq)


def _first(e):
    return e[0]


def flight_bounds(flows, sent, deliv, cap_us=IN_FLIGHT_US):
    """Per flow, how long one of its datagrams may be on its way: the longest time from send
    to first delivery among the flow's delivered datagrams, at most cap_us (cap_us for a flow
    that delivered nothing). flows: iterable of flow indices."""
    out = {f: 0 for f in flows}
    for k, t in deliv.items():
        s = sent.get(k)
        if s is not None and t - s > out.get(k[0], 0):
            out[k[0]] = t - s
    return {f: (min(v, cap_us) if v > 0 else cap_us) for f, v in out.items()}


def in_flight_at_end(sent, deliv, bounds, end_us):
    """The undelivered datagrams that were still in flight when the run stopped: sent later
    than end_us minus their flow's flight bound (an earlier datagram of the same flow took
    that long and arrived). A set of (flow, seq)."""
    return {
        k for k, t in sent.items() if k not in deliv and t > end_us - bounds.get(k[0], IN_FLIGHT_US)
    }


class _Periods:
    """Per key, sorted [(t_from, t_to)] intervals; overlaps(key, t0, t1)."""

    def __init__(self):
        self.p = {}

    def add(self, key, t0, t1):
        self.p.setdefault(key, []).append((t0, t1))

    def overlaps(self, key, t0, t1):
        for a, b in self.p.get(key, ()):
            if a <= t1 and t0 < b:
                return True
        return False


def attribute_losses(lost, flows, bounds, events, addrs, handoff_lost=(), relies=None, end_us=None):
    """The cause of every lost datagram, from the run's events (docs/METRICS.md).

    lost: {(flow, seq): t_us sent} of the datagrams never delivered (including the in-flight
    tail); flows: {flow: (src id, dst id)}; bounds: flight_bounds(); events: [(t_us, node id or
    None, name, fields)] in time order (the CAUSE_EVENTS among them count); addrs: {node id:
    dotted address}; handoff_lost: the (flow, seq) lying in a hand-off's delivery gap
    (handoff_gaps); relies: {node id: the node id it sends through when it has no agent}
    (a host's gateway); end_us: end of the run (None: no in-flight tail).
    Returns {(flow, seq): cause}, cause one of CAUSE_ORDER."""
    relies = relies or {}
    by_addr = {a: n for n, a in addrs.items()}
    events = sorted(events, key=_first)  # stable: a core's events come in with some delay
    off = _Periods()  # node id -> periods it was off
    off_since = {}
    partitions = []  # (t_from, t_to, {node id: part})
    attach = {}  # node id -> [(t_us, agent id or None)]: the agent it is bound to
    drops = []  # (t_us, src addr or None, dst addr)
    radio = set()
    for t, node, name, f in events:
        if name == "sim_power":
            if f.get("on"):
                if node in off_since:
                    off.add(node, off_since.pop(node), t)
            else:
                off_since.setdefault(node, t)
                attach.setdefault(node, []).append((t, None))
        elif name == "sim_partition":
            if partitions and partitions[-1][1] == _FOREVER:
                partitions[-1] = (partitions[-1][0], t, partitions[-1][2])
            groups = f.get("groups") or []
            if groups:
                part = {n: i for i, g in enumerate(groups) for n in g}
                partitions.append((t, _FOREVER, part))
        elif name == "drop":
            if f.get("reason") in NO_ROUTE_REASONS:
                dst = f.get("dst") or f.get("to")
                if dst is not None:
                    drops.append((t, f.get("src"), dst))
        elif name == "sim_radio_loss":
            radio.add((f.get("flow"), f.get("seq")))
        elif name == "bound":
            attach.setdefault(node, []).append((t, by_addr.get(f.get("agent"))))
        elif name == "handoff":
            attach.setdefault(node, []).append((t, by_addr.get(f.get("new"))))
        elif name == "unbound":
            a = attach.get(node)
            if a and a[-1][1] is not None and a[-1][1] == by_addr.get(f.get("agent")):
                a.append((t, None))
        elif name == "mode":
            if f.get("mode") != "agent":
                attach.setdefault(node, []).append((t, None))
    for node, t in off_since.items():
        off.add(node, t, _FOREVER)
    attach_t = {n: [t for t, _ in a] for n, a in attach.items()}

    def through(n, t):
        """The node n sends through at t: its agent, else its gateway."""
        a = attach.get(n)
        if a:
            i = bisect.bisect_right(attach_t[n], t)
            if i and a[i - 1][1] is not None:
                return a[i - 1][1]
        return relies.get(n)

    # each no-route drop explains one datagram: the last one sent at or before the drop with
    # the drop's addresses, not yet explained, sent no longer before it than its flight bound
    pending = {}  # (src addr, dst addr) -> sorted [(t sent, key)]; also (None, dst addr)
    for k, t in lost.items():
        src, dst = flows.get(k[0], (None, None))
        a_src, a_dst = addrs.get(src), addrs.get(dst)
        pending.setdefault((a_src, a_dst), []).append((t, k))
        pending.setdefault((None, a_dst), []).append((t, k))
    for v in pending.values():
        v.sort()
    no_route = set()
    for td, src, dst in drops:
        cand = pending.get((src, dst))
        if not cand:
            continue
        i = bisect.bisect_right(cand, (td, _LAST))
        while i > 0:
            i -= 1
            t, k = cand[i]
            if td - t > IN_FLIGHT_US:
                break
            if k not in no_route and td - t <= bounds.get(k[0], IN_FLIGHT_US):
                no_route.add(k)
                break

    handoff_lost = set(handoff_lost)
    out = {}
    for k, t in lost.items():
        src, dst = flows.get(k[0], (None, None))
        b = bounds.get(k[0], IN_FLIGHT_US)
        t1 = t + b
        if end_us is not None and t > end_us - b:
            out[k] = "in_flight_at_end"
            continue
        ts, td = through(src, t), through(dst, t)
        if any(n is not None and off.overlaps(n, t, t1) for n in (src, dst, ts, td)):
            out[k] = "node_off"
            continue
        split = False
        for p0, p1, part in partitions:
            if p0 <= t1 and t < p1:
                s = part.get(src, part.get(ts))
                d = part.get(dst, part.get(td))
                if s is not None and d is not None and s != d:
                    split = True
                    break
        if split:
            out[k] = "partition"
        elif k in no_route:
            out[k] = "no_route"
        elif k in handoff_lost:
            out[k] = "handoff"
        elif k in radio:
            out[k] = "radio"
        else:
            out[k] = "other"
    return out


def count_causes(causes):
    """{cause: count} over CAUSE_KEYS (zeros included) from attribute_losses()."""
    out = dict.fromkeys(CAUSE_KEYS, 0)
    for c in causes.values():
        out[c] += 1
    return out


def serving_changes(timeline):
    """Hand-offs from a serving-agent timeline [(t_us, mobile, agent or None)] in time order:
    a hand-off is a change from one agent to a different agent (losing service and binding
    again is not a hand-off). Returns [(t_us, mobile)]."""
    last = {}
    out = []
    for t, m, agent in timeline:
        prev = last.get(m)
        if agent is not None and prev is not None and agent != prev:
            out.append((t, m))
        if agent is not None:
            last[m] = agent
    return out


class Convergence:
    """Time from a binding change at an agent until every other on member of its region
    reflects it (docs/METRICS.md ``convergence_ms``): a new binding once the member received
    that agent's publication of it; an ended one once the member can no longer hold that
    agent's binding of the node: it received the agent's withdrawal, or a later binding of
    the node from another agent (which replaces it: published.Published.bind), or it never
    held the agent's binding (it is not waited for). A member's own local binding of the node
    counts as a later binding (it routes the node itself: local precedence)."""

    def __init__(self):
        self.pending = {}  # (origin, home, up) -> [t_us, set of member idx still missing]
        self.done = []  # convergence times, us
        self.superseded = 0
        self.nothing_to_do = 0  # ended bindings no member held any more
        self.holder = {}  # (member idx, home) -> origin of the last binding it received

    def change(self, t_us, origin, home, up, members):
        if not members:
            return
        if not up:
            members = [m for m in members if self.holder.get((m, home)) == origin]
            if not members:
                self.nothing_to_do += 1
                return
        key = (origin, home, up)
        if key in self.pending:
            self.superseded += 1
        self.pending[key] = [t_us, set(members)]

    def _reached(self, t_us, key, member):
        e = self.pending.get(key)
        if e is not None and member in e[1]:
            e[1].discard(member)
            if not e[1]:
                self.done.append(t_us - e[0])
                del self.pending[key]

    def bound(self, t_us, member, origin, home):
        """Member ``member`` (address ``origin``) made a local binding for ``home``: it routes
        the node itself now (local precedence, docs/REGION.md), whatever it held before."""
        prev = self.holder.get((member, home))
        self.holder[(member, home)] = origin
        if prev is not None and prev != origin and self.pending:
            self._reached(t_us, (prev, home, False), member)

    def received(self, t_us, member, origin, homes, withdrawals):
        holder = self.holder
        pend = self.pending
        for h in homes:
            prev = holder.get((member, h))
            holder[(member, h)] = origin
            if pend:
                self._reached(t_us, (origin, h, True), member)
                if prev is not None and prev != origin:
                    self._reached(t_us, (prev, h, False), member)  # replaced
        for h in withdrawals:
            if holder.get((member, h)) == origin:
                del holder[(member, h)]
            if pend:
                self._reached(t_us, (origin, h, False), member)


def decode_publication_homes(payload):
    """(origin, epoch, seq, [homes], [withdrawn]) from a publication UDP payload (layout in
    docs/PROTOCOL.md), or None when it is not one. No authentication: the caller knows the
    frame came from the air it simulates."""
    if len(payload) < 34 or payload[0] != 0x52:
        return None
    origin = bytes(payload[2:6])
    epoch = (payload[6] << 8) | payload[7]
    seq = (payload[8] << 8) | payload[9]
    nb, nw = payload[10], payload[11]
    off = 12
    if len(payload) < off + 6 * nb + 4 * nw:
        return None
    homes = [
        bytes(payload[off + 6 * i : off + 6 * i + 4])
        for i in range(nb)
        if payload[off + 6 * i + 4] or payload[off + 6 * i + 5]
    ]
    off += 6 * nb
    withdrawn = [bytes(payload[off + 4 * i : off + 4 * i + 4]) for i in range(nw)]
    return origin, epoch, seq, homes, withdrawn


def _dist(values_us):
    ms = [v / 1000.0 for v in values_us]
    return ms


class Collector:
    """Records what the metrics need while a world runs, then builds the summary.

    Serving agent of a mobile node: the agent that most recently logged ``binding_up`` for
    its home address; ``binding_down`` at that agent leaves it unserved. (Seen from the agents
    because they are what routes traffic; make-before-break means the new agent's binding_up
    comes before the old one's binding_down, which is exactly the moment traffic can switch.)
    """

    def __init__(self, world_nodes_by_addr=None):
        self.by_addr = world_nodes_by_addr or {}
        self.regions = {}  # agent addr -> [member idx]
        self.is_on = lambda idx: True  # the world replaces it: is node idx switched on?
        self.sent = {}  # (flow, seq) -> t_us
        self.deliv = {}  # (flow, seq) -> t_us (first delivery)
        self.duplicates = 0
        self.misdelivered = 0
        self.timeline = []  # (t_us, mobile id, agent addr or None)
        self.serving = {}  # mobile addr -> agent addr
        self.binding_changes = 0
        self.pub_origin = set()  # (origin, epoch, seq) transmitted by their origin
        self.pub_copies = set()  # sender, receiver, origin, epoch, seq of publication frames
        self.retransmissions = 0  # publication frames sent again on the same link
        self.acks = 0  # acknowledgement frames (docs/PROTOCOL.md "Acknowledgement")
        self.ack_entries = 0  # publications they acknowledged
        self.conv = Convergence()
        self.pub_cache = {}
        self.pub_heard = set()  # (node index, origin, epoch, seq) of publications received
        self.attack = dict.fromkeys(ATTACK_COUNTERS, 0)
        self.attack_kind = {}  # frame bytes -> (class, kind) (hosttools/sim/attacker.py KINDS)
        self.by_kind = {}  # attack kind -> [sent, accepted]
        self.answered = {}  # (node idx, "icmp" | "reg") -> times (us) of answers to the attacker
        self.accepted_log = []  # (t_us, node id, class, why) of accepted attack frames
        self.crashes = []  # one Crash per crash of the scenario's [crashes], in time order
        self.dead = {}  # link address (radio MAC, backbone) of a crashed agent -> its Crash
        self.cause_events = []  # (t_us, node id, name, fields) of CAUSE_EVENTS
        self.causes = {}  # (flow, seq) -> cause of each datagram never delivered (summary)

    # -- fed by the world --------------------------------------------------------------------

    def on_event(self, t_us, nd, name, fields):
        if name in CAUSE_EVENTS:
            self.cause_events.append((t_us, nd.id if nd is not None else None, name, fields))
        if name == "binding_up" or name == "binding_down":
            home = _aton(fields.get("home"))
            if home is None or nd is None:
                return
            self.binding_changes += 1
            up = name == "binding_up"
            members = self.regions.get(nd.addr)
            if members and up:
                self.conv.bound(t_us, nd.idx, nd.addr, home)
            if members:
                self.conv.change(
                    t_us, nd.addr, home, up, [m for m in members if m != nd.idx and self._on(m)]
                )
            mob = self.by_addr.get(home)
            mid = mob.id if mob is not None else fields.get("home")
            if up and self.crashes:
                for c in self.crashes:
                    if mid in c.nodes and mid not in c.rebound:
                        c.rebound[mid] = t_us
            if up:
                if self.serving.get(home) != nd.addr:
                    self.serving[home] = nd.addr
                    self.timeline.append((t_us, mid, nd.addr))
            elif self.serving.get(home) == nd.addr:
                self.serving[home] = None
                self.timeline.append((t_us, mid, None))
        elif name == "attack":
            cls = fields.get("kind")
            if cls + "_sent" in self.attack:
                self.attack[cls + "_sent"] += 1
            k = self.by_kind.setdefault(fields.get("attack", cls), [0, 0])
            k[0] += 1

    def on_crash(self, t_us, nd, on):
        """Agent nd crashed (``on`` False: the mobile nodes it served are affected) or came
        back."""
        if on:
            for c in self.crashes:
                if c.agent == nd.id and c.back_us is None:
                    c.back_us = t_us
            self.dead.pop(nd.mac, None)
            self.dead.pop(nd.bb, None)
            return
        nodes = []
        for home, agent in self.serving.items():
            if agent == nd.addr:
                mob = self.by_addr.get(home)
                if mob is not None:
                    nodes.append(mob.id)
        c = Crash(t_us, nd.id, sorted(nodes))
        self.crashes.append(c)
        self.dead[nd.mac] = c
        if nd.bb is not None:
            self.dead[nd.bb] = c

    def to_dead(self, t_us, nd, mac, frame):
        """Frame sent by nd to the link address ``mac`` of an agent that is down: an
        application datagram (tunnelled or not) for a node that has bound elsewhere since,
        from a sender other than a node still bound to the dead agent, went into the void."""
        c = self.dead[mac]
        if len(frame) < 20 or (frame[9] == 4 and len(frame) < 40):
            return
        off = 20 if frame[9] == 4 else 0  # IP-in-IP: the inner destination
        if (
            frame[off + 9] != 17
            or len(frame) < off + 24
            or frame[off + 22 : off + 24] != b"\x13\x88"
        ):
            return  # only application datagrams (UDP port 5000)
        dst = self.by_addr.get(bytes(frame[off + 16 : off + 20]))
        if dst is None or dst.id not in c.rebound:
            return
        if nd is not None and nd.id in c.nodes and nd.id not in c.rebound:
            return  # the sender itself has not noticed yet
        c.stale.append((t_us, dst.id, nd.id if nd is not None else None))

    def _on(self, idx):
        return self.is_on(idx)

    def on_frame(self, t_us, frame):
        """Every frame put on the air or the backbone."""
        if is_publication(frame) and len(frame) >= 40:
            if frame[28] == 0x41:  # an acknowledgement (docs/PROTOCOL.md)
                self.acks += 1
                self.ack_entries += frame[29]
                return
            if frame[28] != 0x52:  # not a publication (layout: docs/PROTOCOL.md)
                return
            if frame[12:16] == frame[30:34]:  # IPv4 source is the origin: it originated it
                self.pub_origin.add(
                    (bytes(frame[30:34]), frame[34], frame[35], frame[36], frame[37])
                )
            # a copy of (origin, epoch, seq) sent again by the same member to the same
            # neighbour: a retransmission (flooding sends each at most once per link)
            copy = bytes(frame[12:20]) + bytes(frame[30:38])
            if copy in self.pub_copies:
                self.retransmissions += 1
            else:
                self.pub_copies.add(copy)

    def on_rx(self, t_us, nd, frame):
        """A frame decoded by node nd (only publications matter here). A copy of a publication
        the node already received changes nothing: its core drops it (docs/REGION.md), so the
        convergence does not take it again either (a late copy would put back a binding that a
        newer publication had replaced)."""
        # a publication's header, after the IPv4 and UDP ones (not an acknowledgement)
        if nd.idx is None or not is_publication(frame) or not is_copy_candidate(frame, 28):
            return
        heard = (nd.idx << 64) | int.from_bytes(frame[30:38], "big")  # origin, epoch, seq
        if heard in self.pub_heard:
            return
        self.pub_heard.add(heard)
        payload = bytes(frame[28:])
        p = self.pub_cache.get(payload)
        if p is None:
            p = decode_publication_homes(payload)
            if len(self.pub_cache) > 4096:
                self.pub_cache.clear()
            self.pub_cache[payload] = p
        if p is not None:
            self.conv.received(t_us, nd.idx, p[0], p[3], p[4])

    def on_app_send(self, t_us, flow, seq):
        self.sent[(flow.index, seq)] = t_us

    def on_app_deliver(self, t_us, nd, flow, seq):
        key = (flow.index, seq)
        if nd.id != flow.dst:
            self.misdelivered += 1
        elif key in self.deliv:
            self.duplicates += 1
        elif key in self.sent:
            self.deliv[key] = t_us

    def note_attack_frame(self, frame, cls, kind=None):
        self.attack_kind[bytes(frame)] = (cls, kind or cls)

    def attack_probe(self, nd, frame=None):
        """The routing state of node nd that an attacker's frame could change, read before
        the node processes it (after_attack_rx compares): a region member's accepted
        publications, origins' positions and next hops; an agent's bindings and advertisement
        sequence; a proxy router's proxies; a correspondent's or home agent's remote bindings;
        a mobile node's serving agent MAC. Reading it changes nothing."""
        role = nd.role
        st = {}
        reg = getattr(role, "region", None)
        if reg is not None:
            o = reg.origins
            st["fwd"] = reg.forwarded
            st["origins"] = (tuple(o.epoch), tuple(o._top))
            st["hop"] = tuple(reg.backbone.hop)
        vis = getattr(role, "visitors", None)
        if vis is not None:
            st["bind"] = {k: (b[1], b[3]) for k, b in vis.bindings.items()}
            st["seq"] = role.beacon.seq
        prox = getattr(role, "proxies", None)
        if prox is not None:
            st["prox"] = frozenset(prox.bindings)
        cache = _remote_cache(nd)
        if cache is not None:
            st["remote"] = {k: (b[1], b[2]) for k, b in cache.bindings.items()}
        if nd.kind == "mobile":
            sv = role.serving
            st["serving"] = None if sv is None else bytes(sv.mac)
            st["agents"] = {k: bytes(a.mac) for k, a in role.agents.table.items()}
        return st

    def after_attack_rx(self, t_us, nd, frame, role, probe):
        """A node has just processed a frame from the attacker. It was accepted when the node
        logged a routing-state change about an address the frame carries (not counted for a
        relayed genuine frame: passing it on is the attack, its effect is the MAC check), or
        any state attack_probe read changed because of it, or its answers to the attacker's
        frames went over the rate limits, or one of its tables over its cap (docs/METRICS.md
        "The attacker's counters")."""
        ck = self.attack_kind.get(bytes(frame))
        if ck is None or getattr(nd, "sniffer", False):
            return  # (another attacker's frame)
        cls, kind = ck
        probe = probe or {}
        why = []
        out = role.out
        if cls != "relayed":
            addrs = _frame_addresses(frame)
            for i in range(out.n):
                if out.kind[i] == 2:
                    name, fields = out.data[i]
                    if name in STATE_EVENTS and any(
                        v in addrs for v in fields.values() if isinstance(v, str)
                    ):
                        why.append(name)
                        break
        reg = getattr(role, "region", None)
        if reg is not None and "fwd" in probe:
            o = reg.origins
            if reg.forwarded != probe["fwd"]:
                why.append("publication")
            if (tuple(o.epoch), tuple(o._top)) != probe["origins"]:
                why.append("origins_moved")
            if tuple(reg.backbone.hop) != probe["hop"]:
                why.append("routes_moved")
        vis = getattr(role, "visitors", None)
        if vis is not None and "bind" in probe:
            before = probe["bind"]
            now_b = {k: (b[1], b[3]) for k, b in vis.bindings.items()}
            if now_b != before:
                why.append("bindings_changed")
                for k, b in vis.bindings.items():
                    if before.get(k, (None,))[0] != b[1] and self._mac_of(b[0]) != b[1]:
                        why.append("mac_hijacks")
                        break
            if role.beacon.seq != probe["seq"]:
                why.append("sequence_moved")
            if len(vis.idents._last) > vis.capacity + 32:
                why.append("tables_over_cap")
        prox = getattr(role, "proxies", None)
        if prox is not None and "prox" in probe:
            if any(k not in probe["prox"] for k in prox.bindings):
                why.append("proxies_made")
            if len(prox.bindings) > prox.capacity:
                why.append("tables_over_cap")
        cache = _remote_cache(nd)
        if cache is not None and "remote" in probe:
            if {k: (b[1], b[2]) for k, b in cache.bindings.items()} != probe["remote"]:
                why.append("remote_moved")
            if len(cache.idents._last) > len(cache._spi_of) + 1:
                why.append("tables_over_cap")
        if nd.kind == "mobile" and "serving" in probe:
            sv = role.serving
            mac = None if sv is None else bytes(sv.mac)
            if mac is not None and mac != probe["serving"]:
                if self._mac_of(sv.addr) != mac:
                    why.append("mac_hijacks")
            before = probe["agents"]
            for k, a in role.agents.table.items():
                m = bytes(a.mac)
                if before.get(k) != m and self._mac_of(a.addr) != m:
                    why.append("agent_macs_planted")
                    break
        if len(frame) > 9 and frame[9] == 4:  # a tunnel: nothing may go on because of it
            for i in range(out.n):
                if out.kind[i] != 2:
                    why.append("tunnels_forwarded")
                    break
        if self._answers(t_us, nd, out):
            why.append("answers_over_limit")
        if why:
            self.attack[cls + "_accepted"] += 1
            self.by_kind.setdefault(kind, [0, 0])[1] += 1
            for w in set(why):
                if w in self.attack:
                    self.attack[w] += 1
            self.accepted_log.append((t_us, nd.id, cls, ",".join(why)))

    def _mac_of(self, addr):
        """The radio MAC of the node whose address is ``addr`` (its owner's), or None."""
        o = self.by_addr.get(bytes(addr))
        return None if o is None else o.mac

    def _answers(self, t_us, nd, out):
        """Records the answers (ICMP, registration replies) node nd just sent to an attacker's
        frame; True when in the last second it sent more of one sort than twice its documented
        burst (the rate limits count per second from the first answer, so two of their seconds
        overlap any one second)."""
        over = False
        for i in range(out.n):
            if out.kind[i] != 0:  # SEND
                continue
            d = out.data[i]
            if len(d) < 24:
                continue
            if d[9] == 1:
                sort = "icmp"
            elif d[9] == 17 and ((d[20] << 8) | d[21]) == 434:
                sort = "reg"
            else:
                continue
            times = self.answered.setdefault((nd.idx, sort), [])
            times.append(t_us)
            while times and times[0] <= t_us - 1000000:
                times.pop(0)
            if len(times) > 2 * ANSWER_BURST.get((nd.kind, sort), 8):
                over = True
        return over

    # -- the summary -------------------------------------------------------------------------

    def summary(self, flows, end_us, stats, wall_s, windows=(), recovery=(), relies=None):
        """summary.json's figures. windows: [(name, (from_s, to_s), flow indices or None)];
        recovery: [(name, at_s)]; relies: {node id: gateway node id} (attribute_losses)."""
        # an undelivered datagram sent within its flow's flight bound of the end may still be
        # on its way when the run stops: in flight, counted neither as sent nor as lost
        bounds = flight_bounds([f.index for f in flows], self.sent, self.deliv)
        tail = in_flight_at_end(self.sent, self.deliv, bounds, end_us)
        counted = {k: t for k, t in self.sent.items() if k not in tail}
        sent, delivered, ratio = delivery(counted, self.deliv)
        fl = {f.index: (f.src, f.dst, int(f.interval_ms * 1000)) for f in flows}
        per_flow = {}
        for (f, s), t in sorted(self.deliv.items(), key=lambda kv: kv[1]):
            per_flow.setdefault(f, []).append((t, s))
        handoffs = serving_changes(self.timeline)
        intr, gap_lost = handoff_gaps(handoffs, fl, per_flow, end_us, self.sent)
        lost = {k: t for k, t in self.sent.items() if k not in self.deliv}
        addrs = {nd.id: "%d.%d.%d.%d" % tuple(a) for a, nd in self.by_addr.items()}
        causes = attribute_losses(
            lost,
            {f.index: (f.src, f.dst) for f in flows},
            bounds,
            self.cause_events,
            addrs,
            gap_lost,
            relies,
            end_us,
        )
        self.causes = causes
        by_cause = count_causes(causes)
        intr_ms = [v / 1000.0 for v in intr]
        conv_ms = [v / 1000.0 for v in self.conv.done]
        n_pub = len(self.pub_origin)
        out = {
            "delivery_ratio": ratio,
            "sent": sent,
            "delivered": delivered,
            "in_flight": len(tail),
            "undelivered": len(lost),
            "lost_by_cause": by_cause,
            "duplicates": self.duplicates,
            "handoffs": len(handoffs),
            "interruption_ms": {
                "median": percentile(intr_ms, 50),
                "p95": percentile(intr_ms, 95),
                "max": max(intr_ms) if intr_ms else None,
                "count": len(intr_ms),
            },
            "lost_in_handoff": by_cause["handoff"],
            "control_frames": stats["control_frames"],
            "control_bytes": stats["control_bytes"],
            "publications": n_pub,
            "binding_changes": self.binding_changes,
            "publications_per_binding_change": (
                n_pub / self.binding_changes if self.binding_changes else None
            ),
            "retransmissions": self.retransmissions,
            "acks": self.acks,
            "ack_entries": self.ack_entries,
            "convergence_ms": {
                "median": percentile(conv_ms, 50),
                "p95": percentile(conv_ms, 95),
                "count": len(conv_ms),
                "unfinished": len(self.conv.pending),
                "not_held": self.conv.nothing_to_do,
            },
            **self.attack,
            "attacks": {
                k: {"sent": v[0], "accepted": v[1]} for k, v in sorted(self.by_kind.items())
            },
            "sim_s": end_us / 1e6,
            "wall_s": wall_s,
        }
        if self.crashes:
            fl2 = {f.index: (f.src, f.dst) for f in flows}
            rec, lost_c, never, stale, late, log = crash_figures(
                self.crashes, fl2, {k: self.sent[k] for k in counted}, self.deliv, end_us
            )
            rec_ms = [v / 1000.0 for v in rec]
            out["crash_recovery_ms"] = {
                "median": percentile(rec_ms, 50),
                "p95": percentile(rec_ms, 95),
                "max": max(rec_ms) if rec_ms else None,
                "count": len(rec_ms),
                "never": never,
            }
            out["crashes"] = len(self.crashes)
            out["crash_lost"] = lost_c
            out["crash_stale"] = stale
            out["crash_stale_after_recovery"] = late
            out["crash_log"] = log
        if windows:
            out["windows"] = {}
            for name, (t0, t1), only in windows:
                keys = {
                    k
                    for k, t in counted.items()
                    if t0 * 1e6 <= t < t1 * 1e6 and (only is None or k[0] in only)
                }
                n, d, r = delivery(keys, self.deliv)
                out["windows"][name] = {
                    "from_s": t0,
                    "to_s": t1,
                    "flows": only,
                    "sent": n,
                    "delivered": d,
                    "delivery_ratio": r,
                }
        if recovery:
            out["recovery_ms"] = {
                name: recovery_ms(counted, self.deliv, at) for name, at in recovery
            }
        return out


class Crash:
    """One crash of an agent: when, which, the mobile nodes it served then (by id), when each
    of them was bound by an agent again, the datagrams for them still sent to the dead agent
    after that ([(t_us, node id, sender id)]), and when the agent came back (None: never)."""

    __slots__ = ("t_us", "agent", "nodes", "rebound", "stale", "back_us")

    def __init__(self, t_us, agent, nodes):
        self.t_us = t_us
        self.agent = agent
        self.nodes = nodes
        self.rebound = {}
        self.stale = []
        self.back_us = None


def crash_figures(crashes, flows, sent, deliv, end_us):
    """Per crash and affected node M (bound to the agent when it crashed at t_c), over the
    flows to M: recovery = the first delivery to M of a datagram sent at or after t_c, minus
    t_c (never delivered again: end of the run - t_c, counted in `never`); lost = datagrams of
    the flows to or from M sent from t_c until that flow's first such delivery and never
    delivered; stale = datagrams for M that someone sent to the dead agent after M was bound
    again (``Crash.stale``), and those of them sent after M's recovery. Returns
    (recoveries_us, lost, never, stale, stale after recovery, per-crash records).

    crashes: [Crash]; flows: {flow: (src_id, dst_id)}; sent, deliv: {(flow, seq): t_us}."""
    after = {}  # flow -> [(send t_us, seq, delivered t_us or None)] in send order
    for (f, s), t in sent.items():
        after.setdefault(f, []).append((t, s, deliv.get((f, s))))
    for v in after.values():
        v.sort()
    sends = {f: [t for t, _s, _d in v] for f, v in after.items()}
    rec, lost_all, never, stale_all, late_all, log = [], 0, 0, 0, 0, []
    for c in crashes:
        nodes = {}
        back = {}  # node -> its recovery instant
        lost = 0
        counted = set()  # a flow between two affected nodes is counted once
        for m in c.nodes:
            first = None
            for f, (src, dst) in flows.items():
                if m not in (src, dst) or f not in after:
                    continue
                v = after[f]
                i = bisect.bisect_left(sends[f], c.t_us)
                j = i
                while j < len(v) and v[j][2] is None:
                    j += 1
                if f not in counted:
                    counted.add(f)
                    lost += j - i
                if dst == m:
                    got = min((d for _t, _s, d in v[i:] if d is not None), default=None)
                    if got is not None and (first is None or got < first):
                        first = got
            if not any(dst == m for _src, dst in flows.values()):
                continue  # nothing flows to M: no recovery to measure
            if first is None:
                never += 1
                first = end_us
            rec.append(first - c.t_us)
            back[m] = first
            nodes[m] = round((first - c.t_us) / 1000.0, 1)
        late = sum(1 for t, m, _by in c.stale if t >= back.get(m, end_us))
        stale_all += len(c.stale)
        late_all += late
        lost_all += lost
        log.append(
            {
                "t_s": c.t_us / 1e6,
                "agent": c.agent,
                "back_s": None if c.back_us is None else c.back_us / 1e6,
                "recovery_ms": nodes,
                "lost": lost,
                "stale": len(c.stale),
                "stale_after_recovery": late,
            }
        )
    return rec, lost_all, never, stale_all, late_all, log


def recovery_ms(sent, deliv, at_s, until_s=None):
    """From instant at_s, the time until delivery is complete again: the send time of the first
    datagram (sent at or after at_s) from which every later datagram was delivered, minus at_s.
    None when the run ends before that. `sent` leaves out the in-flight tail (Collector.summary:
    in_flight_at_end), which would otherwise make every run that ends mid-flight None."""
    items = sorted(
        (t, k)
        for k, t in sent.items()
        if t >= at_s * 1e6 and (until_s is None or t < until_s * 1e6)
    )
    first_ok = None
    for t, k in items:
        if k in deliv:
            if first_ok is None:
                first_ok = t
        else:
            first_ok = None
    if first_ok is None:
        return None
    return (first_ok - at_s * 1e6) / 1000.0


def _aton(text):
    if not isinstance(text, str):
        return None
    parts = text.split(".")
    if len(parts) != 4:
        return None
    try:
        return bytes(int(p) for p in parts)
    except ValueError:
        return None


def _frame_addresses(frame):
    """Dotted addresses a routing message speaks for: the IPv4 source, and for registrations
    the home address and care-of address, for publications the origin and the homes."""

    def dotted(b, off):
        return "%d.%d.%d.%d" % (b[off], b[off + 1], b[off + 2], b[off + 3])

    out = set()
    if len(frame) < 20:
        return out
    out.add(dotted(frame, 12))
    if frame[9] == 17 and len(frame) >= 28:
        dport = (frame[22] << 8) | frame[23]
        if dport == 434 and len(frame) >= 48:
            out.add(dotted(frame, 32))
            out.add(dotted(frame, 40))
        elif dport == PUB_PORT:
            p = decode_publication_homes(bytes(frame[28:]))
            if p is not None:
                out.update(dotted(h, 0) for h in p[3] + p[4])
                out.add(dotted(p[0], 0))
    return out

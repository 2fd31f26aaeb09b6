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

PUB_PORT = 4344


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


def delivery(sent, delivered):
    """(sent count, delivered count, ratio) for sets/dicts of (flow, seq)."""
    n = len(sent)
    d = sum(1 for k in delivered if k in sent)
    return n, d, (d / n if n else None)


def interruptions(handoffs, flows, deliveries, end_us):
    """Interruption per (hand-off, flow) and the datagrams lost around it.

    handoffs: [(t_us, mobile_id)]; flows: {flow: (src_id, dst_id, interval_us)};
    deliveries: {flow: sorted [(t_us, seq)]} (first delivery of each datagram);
    end_us: end of the run (a flow that never delivers again is interrupted until then).

    For a hand-off of mobile M at h and a flow from or to M: t_a = the last delivery at or
    before h, t_b = the first after h; interruption = max(0, t_b - t_a - interval); the
    datagrams lost in the hand-off are the sequence numbers between those two deliveries that
    were never delivered. Returns ([interruption_us ...], lost_count)."""
    by_node = {}
    for f, (src, dst, interval) in flows.items():
        by_node.setdefault(src, []).append(f)
        if dst != src:
            by_node.setdefault(dst, []).append(f)
    times = {f: [t for t, _ in d] for f, d in deliveries.items()}
    out = []
    lost = set()
    for h, m in handoffs:
        for f in by_node.get(m, ()):
            d = deliveries.get(f)
            if not d:
                continue
            ts = times[f]
            i = bisect.bisect_right(ts, h)
            if i == 0:
                continue  # the flow had not delivered anything yet
            t_a, s_a = d[i - 1]
            if i < len(d):
                t_b, s_b = d[i]
            else:
                t_b, s_b = end_us, None
            interval = flows[f][2]
            out.append(max(0, t_b - t_a - interval))
            got = {s for _, s in d[i - 1:i + 1]}
            hi = s_b if s_b is not None else s_a + 1
            for s in range(s_a + 1, hi):
                if s not in got:
                    lost.add((f, s))
    return out, len(lost)


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
    """Time from a binding change at an agent until every other on member of its region has
    received a publication from that agent carrying the change."""

    def __init__(self):
        self.pending = {}  # (origin, home, up) -> [t_us, set of member idx still missing]
        self.done = []  # convergence times, us
        self.superseded = 0

    def change(self, t_us, origin, home, up, members):
        if not members:
            return
        key = (origin, home, up)
        if key in self.pending:
            self.superseded += 1
        self.pending[key] = [t_us, set(members)]

    def received(self, t_us, member, origin, homes, withdrawals):
        pend = self.pending
        if not pend:
            return
        for h in homes:
            e = pend.get((origin, h, True))
            if e is not None and member in e[1]:
                e[1].discard(member)
                if not e[1]:
                    self.done.append(t_us - e[0])
                    del pend[(origin, h, True)]
        for h in withdrawals:
            e = pend.get((origin, h, False))
            if e is not None and member in e[1]:
                e[1].discard(member)
                if not e[1]:
                    self.done.append(t_us - e[0])
                    del pend[(origin, h, False)]


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
    homes = [bytes(payload[off + 6 * i: off + 6 * i + 4]) for i in range(nb)
             if payload[off + 6 * i + 4] or payload[off + 6 * i + 5]]
    off += 6 * nb
    withdrawn = [bytes(payload[off + 4 * i: off + 4 * i + 4]) for i in range(nw)]
    return origin, epoch, seq, homes, withdrawn


def is_publication(frame):
    return (len(frame) >= 28 and frame[9] == 17
            and ((frame[22] << 8) | frame[23]) == PUB_PORT)


def _dist(values_us):
    ms = [v / 1000.0 for v in values_us]
    return ms

"""A region member as an origin: its local bindings, published by flooding (docs/REGION.md
"Publication by flooding").

Changes are batched behind a gap that backs off (a rate limit with a leading edge, in the
manner of OSPF's exponential throttling, RFC 8405): a change after a quiet spell goes out at
once; while changes keep coming, two publications are ``gap`` apart, a gap that starts just
above the receivers' window for late parts and doubles with each busy publication up to the
hold-off, and starts again from there once a hold-off passed with no change. Each batch is
sent as one incremental publication; every ``republish`` ms, and first of all after a boot, a full
snapshot of every local binding goes out, with the withdrawals made since the last one. A batch
larger than a frame is split into parts with consecutive sequence numbers.
"""

from mobility import auth, ipv4, publication, ticks
from mobility.compat import const

# states
IDLE = const(0)  # not started: nothing scheduled
FIRST = const(1)  # started, nothing published yet: the first publication is a full snapshot
_RUNNING = const(2)  # published at least once: publications are a hold-off apart
_URGENT_BATCH_MS = const(200)  # an urgent change waits this long for others (Publisher.up)


class Publisher:
    """Publishes as member ``own`` (``epoch``: its boot counter) with the region ``key``,
    flooding through ``backbone`` (a reliable.Reliable: ``flood(now, payload, -1)``) and
    logging into ``out``."""

    def __init__(self, own, epoch, key, backbone, out, hold_off, republish, min_gap):
        self.own = own
        self.key = key
        self.backbone = backbone
        self.out = out
        self.hold_off = hold_off
        self.republish = republish
        # the shortest gap between two publications: just above the receivers' window for
        # late parts (dup_hold), so that a late part they accept belongs to the newest batch
        self.min_gap = min_gap if min_gap < hold_off else hold_off
        self.gap = self.min_gap  # the gap now: min_gap .. hold_off, doubled while busy
        self.state = IDLE
        self.epoch = epoch & 0xFFFF
        self.seq = 0
        self._local = {}  # addr_key -> [home, expiry ms, expiry as published]
        self._pending = {}  # addr_key -> home: changed since the last publication
        self._withdrawn = {}  # addr_key -> home: repeated in the next snapshot
        self._due = 0  # incremental publication due (when _pending is not empty)
        self._batch_at = 0  # when the first change of the pending batch was made
        self._snapshot_at = 0
        self._last_pub = 0
        self._first_at = 0  # when the first publication went out
        self._settled = False  # a hold-off has passed since then (kept: ticks wrap)
        self.originated = 0  # publication frames signed (read by tests and benchmarks)

    def start(self, now):
        """The first publication, a full snapshot (so the others recognise the new epoch), is
        due one hold-off from now."""
        self.state = FIRST
        self._snapshot_at = ticks.add(now, self.hold_off)

    def resync(self, now):
        """Another member (re)started and holds none of what we published: our full snapshot
        goes out now, or a hold-off after our last publication, instead of at the next period
        (a member that restarted after us would route our nodes' traffic away until then).
        Before our first publication nothing changes: that one is a full snapshot already."""
        if self.state != _RUNNING:
            return
        if not self._settled:
            # members that booted with us: what we published so far went out after they
            # listened (their first publication comes within a hold-off of ours)
            if ticks.diff(now, self._first_at) <= self.hold_off:
                return
            self._settled = True
        if ticks.diff(self._snapshot_at, now) > 0:
            self._snapshot_at = now
            self._space()  # still a hold-off after our last publication: one per hold-off

    # ---- the local bindings --------------------------------------------------------------

    def up(self, now, home, lifetime_ms, urgent=0, news=False):
        """A local binding was made or refreshed (``news``: a refresh the others do not know
        of, published as a new one). A new one is published after the hold-off
        (``urgent``, for a node that lost its agent, whom the others still route to that one,
        dead perhaps: this long after the last publication, just past the receivers' window
        for late parts, dup_hold < urgent <= min_gap, so the reason of _space holds); a
        refresh only when what the others hold would lapse before the next snapshot."""
        k = ipv4.addr_key(home, 0)
        expiry = ticks.add(now, lifetime_ms)
        e = self._local.get(k)
        if e is None or e[0] != home or news:
            self._local[k] = [bytes(home), expiry, now]
            self._withdrawn.pop(k, None)
            batch = not self._pending  # this change starts a batch
            self._mark(now, k, home)
            if urgent:
                # the nodes of a dead agent notice it at one instant (its last advertisement)
                # and bind again within some ms: one publication carries them
                due = ticks.add(now, _URGENT_BATCH_MS)
                if self.state == _RUNNING:
                    gap_end = ticks.add(self._last_pub, min(urgent, self.gap))
                    if ticks.diff(gap_end, due) > 0:
                        due = gap_end
                if batch or ticks.diff(due, self._due) < 0:
                    self._due = due
            return
        e[1] = expiry
        if ticks.diff(e[2], self._snapshot_at) < 0:
            self._mark(now, k, home)

    def down(self, now, home):
        """A local binding ended: its withdrawal is published after the hold-off."""
        k = ipv4.addr_key(home, 0)
        e = self._local.pop(k, None)
        if e is None:
            return
        self._withdrawn[k] = e[0]
        self._mark(now, k, e[0])

    def handed_over(self, home):
        """A local binding ended and another member is about to publish the node: nothing is
        sent now; the withdrawal rides on the next snapshot."""
        k = ipv4.addr_key(home, 0)
        e = self._local.pop(k, None)
        if e is not None:
            self._withdrawn[k] = e[0]

    def expire(self, now):
        """Withdraw the local bindings whose lifetime has run out (the owner normally ends
        them itself; an unrefreshed copy is withdrawn here too)."""
        for k in [k for k in self._local if ticks.diff(self._local[k][1], now) <= 0]:
            self.down(now, self._local[k][0])

    def _mark(self, now, k, home):
        # rate limit with a leading edge: a change a gap after the last publication goes out
        # at once (a single move is known region-wide within one flood); every change made
        # while the gap since the last publication runs joins one batch sent when it ends
        if not self._pending:
            self._due = now
            self._batch_at = now
            self._space()
        self._pending[k] = bytes(home)

    def _space(self):
        # two publications of one origin are at least a gap apart, so a late part that a
        # receiver still accepts (dup_hold < min_gap <= gap) always belongs to the newest batch
        if self.state == _RUNNING:
            earliest = ticks.add(self._last_pub, self.gap)
            if ticks.diff(self._due, earliest) < 0:
                self._due = earliest
            if ticks.diff(self._snapshot_at, earliest) < 0:
                self._snapshot_at = earliest

    # ---- timer ---------------------------------------------------------------------------

    def next_wake(self):
        """When the next publication is due (ticks ms); None before start."""
        if self.state == IDLE:
            return None
        t = self._snapshot_at
        if self._pending and ticks.diff(self._due, t) < 0:
            t = self._due
        return t

    def on_timer(self, now):
        if ticks.diff(now, self._snapshot_at) >= 0:
            self._publish(now, True)
        elif self._pending and ticks.diff(now, self._due) >= 0:
            self._publish(now, self.state == FIRST)

    def _publish(self, now, full):
        bindings = []
        withdrawals = []
        if full:
            for k in self._local:
                e = self._local[k]
                left = ticks.diff(e[1], now)
                if left > 0:
                    bindings.append((e[0], min((left + 999) // 1000, 0xFFFF)))
                    e[2] = e[1]
            for k in self._withdrawn:
                withdrawals.append(self._withdrawn[k])
            self._withdrawn = {}
        else:
            for k in self._pending:
                e = self._local.get(k)
                left = ticks.diff(e[1], now) if e is not None else 0
                if left > 0:
                    bindings.append((e[0], min((left + 999) // 1000, 0xFFFF)))
                    e[2] = e[1]
                else:
                    withdrawals.append(self._pending[k])
        if self._pending and self.state == _RUNNING:
            # the back-off: a batch begun within a hold-off of the last publication (changes
            # keep coming) doubles the gap, up to the hold-off; one begun after a quiet
            # hold-off starts from the shortest again
            if ticks.diff(self._batch_at, self._last_pub) < self.hold_off:
                g = self.gap * 2
                self.gap = g if g < self.hold_off else self.hold_off
            else:
                self.gap = self.min_gap
        self._pending = {}
        if not (full or bindings or withdrawals):
            return
        chunks = publication.split(bindings, withdrawals)  # an empty snapshot is one part
        last = len(chunks) - 1
        for part in range(len(chunks)):
            b, w = chunks[part]
            pub = publication.Publication(
                self.own,
                self.epoch,
                self.seq,
                full,
                b,
                w,
                auth.SPI_REGION,
                part if full else 0,
                part == last or not full,
            )
            payload = publication.encode_payload(pub, self.key)
            self.out.log(
                "publish",
                {
                    "epoch": self.epoch,
                    "seq": self.seq,
                    "full": full,
                    "bindings": len(b),
                    "withdrawals": len(w),
                },
            )
            self.seq = (self.seq + 1) & 0xFFFF
            self.originated += 1
            self.backbone.flood(now, payload, -1)
        self._last_pub = now
        if self.state == FIRST:
            self._first_at = now
        elif not self._settled and ticks.diff(now, self._first_at) > self.hold_off:
            self._settled = True
        self.state = _RUNNING
        if full:
            self._snapshot_at = ticks.add(now, self.republish)

"""What a region member has taken from each origin (docs/REGION.md "Acceptance").

Per origin (member index): the newest ``(epoch, seq)`` accepted (16-bit serials, RFC 1982
comparison), a duplicate set of one bit for each of the ``WINDOW`` sequence numbers below it
(late parts of the newest batch, accepted for ``dup_hold`` ms), and the full snapshot being
received, part by part. Plain lists indexed by member: nothing is allocated per publication.
"""

from mobility import auth, ticks

try:
    from micropython import const
except ImportError:

    def const(x):  # type: ignore[misc]
        return x


WINDOW = const(16)  # duplicate set: the 16 sequence numbers below the newest, one bit each

# what accept() made of a publication
REFUSED = const(0)  # seen already, too old, or a replay from an earlier epoch
TAKEN = const(1)  # new: the first from this origin, a newer sequence, or a late part
RESTARTED = const(2)  # new, of a newer epoch than the one held: the origin rebooted


class Origins:
    """The acceptance state of ``n`` origins; late parts are accepted for ``dup_hold`` ms."""

    def __init__(self, n, dup_hold):
        self.dup_hold = dup_hold
        self.epoch = [-1] * n  # -1: nothing accepted from this origin yet
        self._top = [0] * n
        self._bits = [0] * n  # bit i set: seq (top - 1 - i) was seen
        self._top_at = [0] * n
        self.was = -1  # the epoch held before the last RESTARTED
        self._run = {}  # origin -> [next part expected, homes no part mentioned yet]

    def stale(self, now, oi, epoch, seq):
        """True when accept would refuse (epoch, seq) from origin oi; changes nothing."""
        held = self.epoch[oi]
        if held < 0 or auth.serial_newer(epoch, held):
            return False
        if epoch != held:
            return True
        top = self._top[oi]
        if auth.serial_newer(seq, top):
            return False
        d = (top - seq) & 0xFFFF
        if d == 0 or d > WINDOW or ticks.diff(now, self._top_at[oi]) >= self.dup_hold:
            return True
        return bool(self._bits[oi] & (1 << (d - 1)))

    def accept(self, now, oi, epoch, seq):
        """Take (epoch, seq) from origin oi when it is new: TAKEN, or RESTARTED (``was`` then
        holds the old epoch; the caller forgets what the origin published before); REFUSED
        changes nothing."""
        held = self.epoch[oi]
        if held < 0 or auth.serial_newer(epoch, held):
            self.epoch[oi] = epoch
            self._top[oi] = seq
            self._bits[oi] = 0
            self._top_at[oi] = now
            if held < 0:
                return TAKEN
            self.was = held
            self._run.pop(oi, None)
            return RESTARTED
        if epoch != held:
            return REFUSED  # an older epoch: a replay from before the origin restarted
        top = self._top[oi]
        if auth.serial_newer(seq, top):
            shift = (seq - top) & 0xFFFF
            if shift > WINDOW:
                bits = 0
            else:
                bits = ((self._bits[oi] << shift) | (1 << (shift - 1))) & ((1 << WINDOW) - 1)
            self._bits[oi] = bits
            self._top[oi] = seq
            self._top_at[oi] = now
            return TAKEN
        d = (top - seq) & 0xFFFF
        if d == 0 or d > WINDOW or ticks.diff(now, self._top_at[oi]) >= self.dup_hold:
            return REFUSED
        bit = 1 << (d - 1)
        if self._bits[oi] & bit:
            return REFUSED
        self._bits[oi] |= bit  # a late part of the newest batch, seen for the first time
        return TAKEN

    # A full snapshot (parts 0..last, consecutive) replaces what is held for the origin:
    # bindings of the origin that no part mentions are removed after the last part. A run with
    # a missing or reordered part removes nothing (its stale entries expire instead), so a lost
    # frame never loses a still-valid binding.

    def snapshot_begin(self, oi, homes):
        """Part 0 of a full snapshot from origin oi arrived; ``homes`` (a set) are the ones the
        origin has in the table now. Returns that set: the homes no part has mentioned yet."""
        self._run[oi] = [1, homes]
        return homes

    def snapshot_part(self, oi, part):
        """Part ``part`` > 0 of a full snapshot from origin oi arrived: the set of its run's
        homes not mentioned yet, or None when the part does not follow the one before."""
        run = self._run.get(oi)
        if run is not None and run[0] == part:
            run[0] += 1
            return run[1]
        self._run.pop(oi, None)
        return None

    def snapshot_done(self, oi):
        """The last part of origin oi's snapshot was applied."""
        del self._run[oi]

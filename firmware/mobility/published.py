"""What a region member holds of the other origins' publications.

``Origins``: what it has taken from each origin (docs/REGION.md "Acceptance"). Per origin
(member index): the newest ``(epoch, seq)`` accepted (16-bit serials, RFC 1982 comparison), a
duplicate set of one bit for each of the ``_WINDOW`` sequence numbers below it (late parts of the
newest batch, accepted for ``dup_hold`` ms), the full snapshot being received, part by part,
and what bounds the trust in a jump (docs/REGION.md "Bounded trust in jumps": the position held
before an unconfirmed jump, when the origin was last heard). Plain lists indexed by member:
nothing is allocated per publication.

``BindingTable`` is one bytearray allocated at start-up, an open-addressing hash table of
7-byte slots: the home address and a 24-bit value. No object per binding and no allocation or
resizing afterwards, so 500 bindings take 4.7 KiB whatever the heap's fragmentation.
``Published`` is that table holding published bindings: the value packs the expiry in units
of 1024 ms (15 bits, wrapping every 9.3 hours: a published lifetime is held for 4 hours at
most, and every snapshot renews it) and the origin's member index (8 bits).
"""

from mobility import auth, ipv4, ticks
from mobility.compat import const

_WINDOW = const(16)  # duplicate set: the 16 sequence numbers below the newest, one bit each
EPOCH_JUMP = const(16)  # an origin's epoch is taken at most this far ahead of the one held
_SEQ_JUMP = const(2048)  # ... its sequence at most this far ahead (a new epoch's: from 0)

# what accept() made of a publication
REFUSED = const(0)  # seen already, too old, a replay from an earlier epoch, or too far ahead
_TAKEN = const(1)  # new: the first from this origin, a newer sequence, or a late part
RESTARTED = const(2)  # new, of a newer epoch than the one held: the origin rebooted
REVERTED = const(3)  # new on the line held before a jump: the jump is given up (it was forged)

# how far (epoch, seq) is ahead of a held (epoch, top): _ahead()
_BEHIND = const(0)  # not ahead: the same, older, or of an older epoch
_NEXT = const(1)  # the next sequence number
_JUMP = const(2)  # a newer sequence, more than one ahead (within _SEQ_JUMP)
_EPOCH = const(3)  # a newer epoch (within EPOCH_JUMP)
_FAR = const(4)  # ahead beyond the bounds: refused
# what _judge() makes of a publication besides those
_FIRST = const(5)  # nothing held (or held too long ago to judge by): taken as the first heard
_LATE = const(6)  # a late part of the newest batch
_REVERT = const(7)  # on the line held before an unconfirmed jump, same epoch
_REVERT_EPOCH = const(8)  # ... of a newer epoch than that line's
_REFUSE = const(9)


def _ahead(held, top, epoch, seq):
    if epoch != held:
        d = (epoch - held) & 0xFFFF
        if d >= 0x8000:
            return _BEHIND
        # an origin restarts at sequence 0: a new epoch heard while the old one is still
        # heard from (not silent) cannot be far into its sequence
        return _EPOCH if d <= EPOCH_JUMP and seq <= _SEQ_JUMP else _FAR
    d = (seq - top) & 0xFFFF
    if d == 0 or d >= 0x8000:
        return _BEHIND
    if d == 1:
        return _NEXT
    return _JUMP if d <= _SEQ_JUMP else _FAR


class Origins:
    """The acceptance state of ``n`` origins; late parts are accepted for ``dup_hold`` ms; what
    is held of an origin from which nothing was taken for ``silence`` ms no longer judges its
    publications (docs/REGION.md "Bounded trust in jumps")."""

    def __init__(self, n, dup_hold, silence):
        self.dup_hold = dup_hold
        self.silence = silence
        self.epoch = [-1] * n  # -1: nothing accepted from this origin yet
        self._top = [0] * n
        self._bits = [0] * n  # bit i set: seq (top - 1 - i) was seen
        self._top_at = [0] * n
        self._heard = [0] * n  # when a publication of this origin was last taken
        # the position held before the last jump (a newer epoch, or a sequence more than one
        # ahead), until the line continues from the jump (the next sequence number); -1: none
        self._alt_epoch = [-1] * n
        self._alt_top = [0] * n
        self.was = -1  # the epoch held before the last RESTARTED or REVERTED
        self._run = {}  # origin -> [next part expected, homes no part mentioned yet]

    def _judge(self, now, oi, epoch, seq):
        """What accept would do with (epoch, seq) from origin oi: one of _FIRST, _NEXT, _JUMP,
        _EPOCH, _LATE, _REVERT, _REVERT_EPOCH, or _REFUSE. Changes nothing."""
        held = self.epoch[oi]
        if held < 0 or ticks.diff(now, self._heard[oi]) >= self.silence:
            return _FIRST
        a = _ahead(held, self._top[oi], epoch, seq)
        if a == _FAR:
            return _REFUSE
        if a != _BEHIND:
            return a
        late = ticks.diff(now, self._top_at[oi]) < self.dup_hold
        if epoch == held and late:
            d = (self._top[oi] - seq) & 0xFFFF
            if 0 < d <= _WINDOW and not self._bits[oi] & (1 << (d - 1)):
                return _LATE  # a late part of the newest batch, seen for the first time
        if self._alt_epoch[oi] >= 0 and not late:
            # behind what is held, but ahead of what was held before a jump that nothing has
            # continued: the origin's own line goes on, and the jump was not its own
            a = _ahead(self._alt_epoch[oi], self._alt_top[oi], epoch, seq)
            if a == _NEXT or a == _JUMP:
                return _REVERT
            if a == _EPOCH and epoch != held:
                return _REVERT_EPOCH  # (of the jump's own epoch, it is just behind the jump)
        return _REFUSE

    def age(self, now):
        """Called now and then (every sweep): an origin silent for ``silence`` ms stays so
        across the ticks wrap-around (its time is held at the edge of the silence)."""
        edge = ticks.add(now, -self.silence)
        for oi in range(len(self._heard)):
            if self.epoch[oi] >= 0 and ticks.diff(now, self._heard[oi]) >= self.silence:
                self._heard[oi] = edge

    def stale(self, now, oi, epoch, seq):
        """True when accept would refuse (epoch, seq) from origin oi; changes nothing."""
        return self._judge(now, oi, epoch, seq) == _REFUSE

    def accept(self, now, oi, epoch, seq):
        """Take (epoch, seq) from origin oi when it is new: _TAKEN, RESTARTED (``was`` then holds
        the old epoch; the caller forgets what the origin published before) or REVERTED (a jump
        was given up for the origin's own line; ``was``: the epoch of the jump); REFUSED
        changes nothing."""
        j = self._judge(now, oi, epoch, seq)
        if j == _REFUSE:
            return REFUSED
        self._heard[oi] = now
        if j == _LATE:
            self._bits[oi] |= 1 << (((self._top[oi] - seq) & 0xFFFF) - 1)
            return _TAKEN
        held = self.epoch[oi]
        top = self._top[oi]
        if j == _NEXT or j == _JUMP:
            shift = (seq - top) & 0xFFFF
            if shift > _WINDOW:
                bits = 0
            else:
                bits = ((self._bits[oi] << shift) | (1 << (shift - 1))) & ((1 << _WINDOW) - 1)
            if j == _NEXT:
                self._alt_epoch[oi] = -1  # the line continues: the jump before was its own
            elif self._alt_epoch[oi] < 0:
                self._alt_epoch[oi] = held
                self._alt_top[oi] = top
            self._bits[oi] = bits
            self._top[oi] = seq
            self._top_at[oi] = now
            return _TAKEN
        if j == _EPOCH or (j == _FIRST and held >= 0):
            # a new epoch, or the first taken after a silence: tentative, like a jump
            if self._alt_epoch[oi] < 0:
                self._alt_epoch[oi] = held
                self._alt_top[oi] = top
        else:
            self._alt_epoch[oi] = -1  # the first heard, or the origin's own line again
        self.epoch[oi] = epoch
        self._top[oi] = seq
        self._bits[oi] = 0
        self._top_at[oi] = now
        self._run.pop(oi, None)
        self.was = held
        if j == _FIRST:
            return RESTARTED if held >= 0 and auth.serial_newer(epoch, held) else _TAKEN
        if j == _REVERT:
            return REVERTED
        return RESTARTED  # _EPOCH, _REVERT_EPOCH

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


# packed published binding: | used (1) | expiry units (15) | member index (8) |
_UNIT_SHIFT = const(10)  # 1024 ms
_UNITS_MASK = const(0x7FFF)  # (a divisor of the ticks period: the units wrap with the ticks)
_UNITS_HALF = const(0x4000)
_UNITS_HELD = const(14063)  # 4 hours: what is held of a longer lifetime (well within a half)
_ORIGIN_MASK = const(0xFF)
_EXP_SHIFT = const(8)
_USED = const(0x800000)
_SLOT = const(7)  # bytes: the address (4) and the value (3), big-endian


def _units_diff(a, b):
    """a - b in expiry units, signed, wrap-safe (the units wrap with the ticks period)."""
    d = (a - b) & _UNITS_MASK
    if d >= _UNITS_HALF:
        d -= _UNITS_MASK + 1
    return d


def _slot_hash(buf, off, size):
    k = ipv4.addr_key(buf, off)
    return (k ^ (k >> 10) ^ (k >> 20)) % size


def table_bytes(capacity):
    """The bytes of a BindingTable of ``capacity`` bindings: 7 per slot, and more than 4/3 as
    many slots (at most 3/4 full, one slot always empty)."""
    return _SLOT * (capacity + (capacity + 2) // 3 + 1)


class BindingTable:
    """Home address -> packed value (24 bits), in one preallocated bytearray.

    Open addressing with linear probing over 7-byte slots (address 4, value 3; value 0 =
    empty), at most 3/4 full; deletion shifts the following entries back (no tombstones), so
    lookups stay short however many bindings come and go. As many slots as that takes and no
    more (not the next power of two: for the default 512 bindings 684 slots, 4.7 KiB rather than
    7; it is the largest block a region member allocates).
    """

    def __init__(self, capacity, buf=None):
        self.capacity = capacity
        # ``buf``: the table's memory allocated beforehand (table_bytes(capacity) zero bytes: a
        # board's start takes it while its heap is still whole, region.reserve_table)
        n = table_bytes(capacity)
        if buf is None or len(buf) != n:
            buf = bytearray(n)
        self.buf = buf
        self.size = n // _SLOT
        self.n = 0

    def __len__(self):
        return self.n

    def value_at(self, i):
        b = self.buf
        p = i * _SLOT + 4
        return (b[p] << 16) | (b[p + 1] << 8) | b[p + 2]

    def _set_value(self, i, v):
        b = self.buf
        p = i * _SLOT + 4
        b[p] = v >> 16
        b[p + 1] = (v >> 8) & 0xFF
        b[p + 2] = v & 0xFF

    def find(self, a, off=0):
        """The slot holding the address at a[off:off+4], or -1 - (the empty slot where it would
        go). No allocation."""
        size = self.size
        i = _slot_hash(a, off, size)
        b = self.buf
        while True:
            p = i * _SLOT
            if not b[p + 4]:  # empty (a used value has _USED in its top byte)
                return -1 - i
            if (
                b[p] == a[off]
                and b[p + 1] == a[off + 1]
                and b[p + 2] == a[off + 2]
                and b[p + 3] == a[off + 3]
            ):
                return i
            i += 1
            if i == size:
                i = 0

    def get(self, a, off=0):
        """The value stored for the address, or 0."""
        i = self.find(a, off)
        return self.value_at(i) if i >= 0 else 0

    def put(self, a, value):
        """Store ``value`` (0..2**23-1) for address ``a``; False when the table is full."""
        i = self.find(a, 0)
        if i < 0:
            if self.n >= self.capacity:
                return False
            i = -1 - i
            p = i * _SLOT
            self.buf[p : p + 4] = a
            self.n += 1
        self._set_value(i, value | _USED)
        return True

    def address(self, i):
        p = i * _SLOT
        return bytes(self.buf[p : p + 4])

    def remove(self, i):
        """Empty slot ``i`` and shift back the entries that probed past it."""
        b = self.buf
        size = self.size
        self.n -= 1
        j = i
        while True:
            j += 1
            if j == size:
                j = 0
            q = j * _SLOT
            if not b[q + 4]:
                break
            h = _slot_hash(b, q, size)
            # the entry at j stays unless its home slot lies cyclically outside (i, j]
            if i <= j:
                stays = i < h <= j
            else:
                stays = h > i or h <= j
            if stays:
                continue
            p = i * _SLOT
            for x in range(_SLOT):
                b[p + x] = b[q + x]
            i = j
        p = i * _SLOT
        for x in range(_SLOT):
            b[p + x] = 0


class Published(BindingTable):
    """The published bindings: home address -> (expiry, member index of the origin)."""

    def bind(self, now, home, ms, oi, spare):
        """``home`` is bound at member ``oi`` until ``ms`` from now plus ``spare`` units (1024
        ms each: margin for the rounding down); replaces any binding of another origin (the
        node moved). False when the table is full. A lifetime beyond _UNITS_HELD (4 hours) is
        held that long: the units wrap every 9.3 hours, and the origin's snapshots renew it."""
        units = (ms >> _UNIT_SHIFT) + spare
        if units > _UNITS_HELD:
            units = _UNITS_HELD
        exp = ((now >> _UNIT_SHIFT) + units) & _UNITS_MASK
        return self.put(home, (exp << _EXP_SHIFT) | oi)

    def origin(self, now, buf, off=0):
        """The member index of the origin of the unexpired binding for the address at
        ``buf[off:off+4]``, or -1. No allocation (a forwarding-path lookup)."""
        v = self.get(buf, off)
        if not v:
            return -1
        if _units_diff((v >> _EXP_SHIFT) & _UNITS_MASK, (now >> _UNIT_SHIFT) & _UNITS_MASK) <= 0:
            return -1
        return v & _ORIGIN_MASK

    def outlasts(self, now, home, expiry):
        """True when the unexpired binding for ``home`` expires at least two units (about 2 s)
        after ``expiry`` (ticks ms)."""
        v = self.get(home, 0)
        if not v or self.origin(now, home, 0) < 0:
            return False
        d = _units_diff((v >> _EXP_SHIFT) & _UNITS_MASK, (expiry >> _UNIT_SHIFT) & _UNITS_MASK)
        return d >= 2

    def withdraw(self, home, oi):
        """Remove the binding for ``home`` when member ``oi`` published it (True); only its
        origin can withdraw a binding: when the node has moved, the old agent's withdrawal must
        not remove the new agent's binding."""
        i = self.find(home, 0)
        if i >= 0 and self.value_at(i) & _ORIGIN_MASK == oi:
            self.remove(i)
            return True
        return False

    def drop_origin(self, oi):
        """Remove every binding member ``oi`` published."""
        b = self.buf
        i = 0
        while i < self.size:
            # the low byte of a value is its origin; its top byte is non-zero when used
            if b[i * _SLOT + 6] == oi and b[i * _SLOT + 4]:
                self.remove(i)
                continue
            i += 1

    def origin_homes(self, oi):
        """The set of home addresses member ``oi`` published (allocates)."""
        b = self.buf
        found = set()
        for i in range(self.size):
            p = i * _SLOT
            if b[p + 6] == oi and b[p + 4]:  # origin byte, and the slot is used
                found.add(self.address(i))
        return found

    def sweep(self, now):
        """Remove the expired bindings; returns how many."""
        nu = (now >> _UNIT_SHIFT) & _UNITS_MASK
        b = self.buf
        size = self.size
        dead = 0
        i = 0
        while i < size:
            if not b[i * _SLOT + 4]:  # empty (a used value has _USED in its top byte)
                i += 1
                continue
            v = self.value_at(i)
            if _units_diff((v >> _EXP_SHIFT) & _UNITS_MASK, nu) <= 0:
                self.remove(i)  # an entry may shift back into slot i: look at it again
                dead += 1
                continue
            i += 1
        return dead

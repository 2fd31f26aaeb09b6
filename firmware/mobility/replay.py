"""Replay protection state (docs/PROTOCOL.md "Replay protection").

Call these only for messages whose authentication has been verified: a forged message must not
move a window. Keys (``home_key``, ``key``) are any hashable, e.g. ``ipv4.addr_key(buf, off)``.
State updates overwrite existing dict entries with small ints, so a steady stream of messages
allocates nothing here.
"""

from mobility.auth import serial_newer
from mobility.compat import const
from mobility.ticks import diff

# verdicts of AdvWindow.accept (a region's publications: published.Origins)
REPLAY = const(0)  # not newer than what was accepted: drop (and do not forward)
NEWER = const(1)  # newer, same boot of the sender
RESTARTED = const(2)  # first heard, or the sender restarted: replace what is held for it

ACCEPTED = const(0)
IDENT_MISMATCH = const(133)
_RATE_HELD = const(32)  # keys a RateLimit remembers
_ADV_HELD = const(32)  # agents whose advertisement replay state is kept (AdvWindow)
_ADV_HOLD_MS = const(3600000)  # ... for at most this long after their last accepted frame

_MASK32 = 0xFFFFFFFF


class IdentCheck:
    """Receiver side of the registration Identification (nonce 32 || counter 32).

    A request is accepted when its nonce is this receiver's boot nonce and its counter is
    newer than the last accepted counter from that home address by RFC 1982 serial arithmetic
    on 32 bits (counters start at 1; nothing held counts as 0). Otherwise the receiver answers
    code 133 with Identification ``reply_ident(home_key)``. Serial order bounds the trust in a
    jump: no counter, however large, puts the genuine sender's next one out of reach (it is
    either newer, or the 133 hands the sender the counter to continue above, which is newer).

    With ``size``, at most that many home addresses are held (None: no bound, as a remote
    binding cache whose peers are configured); a new one past that evicts one that
    ``keep(home_key)`` does not protect (the bound ones: a replayed request of an evicted
    address could otherwise bind it again; only authentic requests get this far).
    """

    def __init__(self, nonce, size=None):
        self.nonce = nonce & _MASK32
        self.size = size
        self._last = {}

    def check(self, home_key, ident):
        """True when ``ident`` would be accepted (no state changes: a check before the HMAC)."""
        if (ident >> 32) != self.nonce:
            return False
        return serial_newer(ident & _MASK32, self._last.get(home_key, 0), 32)

    def accept(self, home_key, ident, keep=None):
        """ACCEPTED (0, and the counter is recorded) or IDENT_MISMATCH (133)."""
        if not self.check(home_key, ident):
            return IDENT_MISMATCH
        last = self._last
        if self.size is not None and home_key not in last and len(last) >= self.size:
            # full: an address ``keep`` does not protect makes room (the first found)
            gone = None
            for k in last:
                if keep is None or not keep(k):
                    gone = k
                    break
            last.pop(k if gone is None else gone)
        last[home_key] = ident & _MASK32
        return ACCEPTED

    def reply_ident(self, home_key):
        """The Identification of a 133 reply: this nonce || the last accepted counter."""
        return (self.nonce << 32) | self._last.get(home_key, 0)

    def forget(self, home_key):
        self._last.pop(home_key, None)

    def __len__(self):
        return len(self._last)


class IdentCounter:
    """Sender side: one monotonic counter per node, the receiver's nonce per request."""

    def __init__(self, counter=0):
        self.counter = counter

    def next(self, nonce):
        """The Identification of the next request to a receiver whose nonce is ``nonce``."""
        self.counter = (self.counter + 1) & _MASK32
        return ((nonce & _MASK32) << 32) | self.counter

    def adopt(self, reply_ident):
        """After a 133 reply: continue above the receiver's last accepted counter (when it is
        newer than ours by serial order: a counter near 2**32 is continued past the wrap);
        returns the receiver's nonce to use for the retry."""
        last = reply_ident & _MASK32
        if serial_newer(last, self.counter, 32):
            self.counter = last
        return (reply_ident >> 32) & _MASK32


class AdvWindow:
    """Per-agent advertisement replay state: boot nonce and 16-bit serial sequence.

    The boot nonce carries the sender's boot counter (``epoch``, kept in flash, +1 per boot) in
    its high 16 bits and random bits below (node.py), so boots are ordered. accept() ->

    * NEWER when the nonce is the one held and the sequence is newer (RFC 1982);
    * RESTARTED when nothing is held for the agent, or its nonce changed and the epoch in it is
      serial-newer than the held one (it rebooted: any sequence, it restarts at 0 but may have
      advertised a while before we hear it);
    * REPLAY otherwise: an old sequence of this boot, or any frame of an earlier (or the same)
      epoch under another nonce.

    The state outlives the role's agent table: an agent forgotten by silence is still held
    here, so a recording of it replayed later is refused. The cache is bounded (``size``
    agents; when full, the one accepted longest ago makes room) and an entry not refreshed for
    ``hold_ms`` is dropped (16-bit sequences cannot be compared across more than half their
    space: at one advertisement every 110 ms that is an hour). Either way, the next frame from
    that agent is taken as the first heard: that is the residual risk (docs/CORE.md "Security
    rules"). ``now`` (ticks) may be None in tests that exercise the rules without time.
    """

    def __init__(self, size=_ADV_HELD, hold_ms=_ADV_HOLD_MS):
        self.size = size
        self.hold_ms = hold_ms
        self._seq = {}
        self._nonce = {}
        self._t = {}  # when last accepted (ticks): eviction order and the hold

    def accept(self, key, seq, nonce, now=None):
        # The steady state (same boot, next sequence) is one small call that allocates nothing:
        # MicroPython puts a call's frame on the heap above 11 slots (5 arguments here, no
        # locals, a value stack of 6), so everything else is in _other.
        if (
            nonce == self._nonce.get(key)
            and serial_newer(seq, self._seq[key])
            and self._fresh(key, now)
        ):
            self._seq[key] = seq
            if now is not None:
                self._t[key] = now
            return NEWER
        return self._other(key, seq, nonce, now)

    def _fresh(self, key, now):
        return now is None or diff(now, self._t[key]) <= self.hold_ms

    def _other(self, key, seq, nonce, now):
        held = self._nonce.get(key)
        if held is not None and not self._fresh(key, now):
            held = None  # too old to compare with: start again from what is heard now
        if held is None:
            if key not in self._seq and len(self._seq) >= self.size:
                self._evict(now)
            self._set(key, seq, nonce, now)
            return RESTARTED
        if nonce != held and serial_newer(nonce >> 16, held >> 16):
            self._set(key, seq, nonce, now)  # a later boot of the agent
            return RESTARTED
        return REPLAY  # an old sequence of this boot, or an earlier (or the same) epoch

    def _set(self, key, seq, nonce, now):
        self._seq[key] = seq
        self._nonce[key] = nonce
        self._t[key] = 0 if now is None else now

    def _evict(self, now):
        worst = None
        age = -1
        for k in self._t:
            a = 0 if now is None else diff(now, self._t[k])
            if a > age:
                worst, age = k, a
        self.forget(worst)

    def held(self, key):
        """(sequence, nonce) held for ``key``, or None."""
        s = self._seq.get(key)
        return None if s is None else (s, self._nonce[key])

    def forget(self, key):
        """Drop what is held for ``key`` (for tests and for an explicit reset only: forgetting
        re-opens the agent to replays of its old frames)."""
        self._seq.pop(key, None)
        self._nonce.pop(key, None)
        self._t.pop(key, None)

    def __len__(self):
        return len(self._seq)


class RateLimit:
    """A bound on the answers an outsider can trigger (docs/CORE.md "Security rules").

    ``allow(now, key)``: at most one answer per ``key`` per ``interval_ms`` and at most ``burst``
    answers a second in all. The per-key times are held for at most ``size`` keys: when the
    table is full, entries older than the gap make room; when none is that old the new key gets
    no answer (a flood of new keys costs the genuine ones at most one gap). Ticks wrap safely
    (an entry whose age no longer compares is dropped).
    """

    def __init__(self, interval_ms, burst, size=_RATE_HELD):
        self.interval_ms = interval_ms
        self.burst = burst
        self.size = size
        self._last = {}  # key -> when it was last answered (ticks)
        self._t = None  # start of the current second (ticks)
        self.n = 0  # answers in it

    def allow(self, now, key, keep=True):
        """True when an answer for ``key`` may go now (counted, unless ``keep`` is False: a
        check before the costly work)."""
        t = self._last
        gap = self.interval_ms
        last = t.get(key)
        if last is not None and 0 <= diff(now, last) < gap:
            return False
        if self._t is None or not 0 <= diff(now, self._t) < 1000:
            if keep:
                self._t = now
                self.n = 0
        elif self.n >= self.burst:
            return False
        if last is None and len(t) >= self.size:
            for k in list(t):  # full: entries older than the gap make room
                if not 0 <= diff(now, t[k]) < gap:
                    del t[k]
            if len(t) >= self.size:
                return False
        if keep:
            t[key] = now
            self.n += 1
        return True

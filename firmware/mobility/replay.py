"""Replay protection state (docs/PROTOCOL.md "Replay protection"): registrations'
identifications (IdentCheck, the receiver; the sender's counter is request.IdentCounter) and
the bound on answers (RateLimit). Advertisements: advreplay.py (a mobile node's); a region's
publications: published.Origins.

Call these only for messages whose authentication has been verified: a forged message must not
move a window. Keys (``home_key``, ``key``) are any hashable, e.g. ``ipv4.addr_key(buf, off)``.
State updates overwrite existing dict entries with small ints, so a steady stream of messages
allocates nothing here.
"""

from mobility.auth import serial_newer
from mobility.compat import const
from mobility.ticks import diff

ACCEPTED = const(0)
IDENT_MISMATCH = const(133)
_RATE_HELD = const(32)  # keys a RateLimit remembers

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

"""The replay window of the advertisements a mobile node hears (docs/PROTOCOL.md "Replay
protection"): per agent, its boot nonce and 16-bit serial sequence. Only the mobile node's
tables (agenttable.py, hosttable.py) hold one; the other roles never load it.

Call accept only for advertisements whose authentication has been verified: a forged one must
not move the window. State updates overwrite dict entries with small ints: a steady stream of
advertisements allocates nothing here.
"""

from mobility.auth import serial_newer
from mobility.compat import const
from mobility.ticks import diff

# verdicts of AdvWindow.accept
REPLAY = const(0)  # not newer than what was accepted: drop
NEWER = const(1)  # newer, same boot of the sender
RESTARTED = const(2)  # first heard, or the sender restarted: replace what is held for it

_ADV_HELD = const(32)  # agents whose advertisement replay state is kept
_ADV_HOLD_MS = const(3600000)  # ... for at most this long after their last accepted frame


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

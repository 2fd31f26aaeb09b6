"""Replay protection state (docs/PROTOCOL.md "Replay protection").

Call these only for messages whose authentication has been verified: a forged message must not
move a window. Keys (``home_key``, ``key``) are any hashable, e.g. ``ipv4.addr_key(buf, off)``.
State updates overwrite existing dict entries with small ints, so a steady stream of messages
allocates nothing here.
"""

from mobility.auth import serial_newer

try:
    from micropython import const
except ImportError:

    def const(x):  # type: ignore[misc]  # same behaviour as MicroPython's const
        return x


# verdicts of SeqWindow.accept and AdvWindow.accept
REPLAY = const(0)  # not newer than what was accepted: drop (and do not forward)
NEWER = const(1)  # newer, same boot of the sender
RESTARTED = const(2)  # first heard, or the sender restarted: replace what is held for it

ACCEPTED = const(0)
IDENT_MISMATCH = const(133)
REBOOT_SEQ = const(256)  # an agent's sequence numbers below this may follow a reboot

_MASK32 = 0xFFFFFFFF


class IdentCheck:
    """Receiver side of the registration Identification (nonce 32 || counter 32).

    A request is accepted when its nonce is this receiver's boot nonce and its counter is
    above the last accepted counter from that home address (counters start at 1). Otherwise the
    receiver answers code 133 with Identification ``reply_ident(home_key)``.
    """

    def __init__(self, nonce):
        self.nonce = nonce & _MASK32
        self._last = {}

    def accept(self, home_key, ident):
        """ACCEPTED (0, and the counter is recorded) or IDENT_MISMATCH (133)."""
        if (ident >> 32) != self.nonce:
            return IDENT_MISMATCH
        counter = ident & _MASK32
        if counter <= self._last.get(home_key, 0):
            return IDENT_MISMATCH
        self._last[home_key] = counter
        return ACCEPTED

    def reply_ident(self, home_key):
        """The Identification of a 133 reply: this nonce || the last accepted counter."""
        return (self.nonce << 32) | self._last.get(home_key, 0)

    def forget(self, home_key):
        self._last.pop(home_key, None)


class IdentCounter:
    """Sender side: one monotonic counter per node, the receiver's nonce per request."""

    def __init__(self, counter=0):
        self.counter = counter

    def next(self, nonce):
        """The Identification of the next request to a receiver whose nonce is ``nonce``."""
        self.counter = (self.counter + 1) & _MASK32
        return ((nonce & _MASK32) << 32) | self.counter

    def adopt(self, reply_ident):
        """After a 133 reply: continue above the receiver's last accepted counter; returns the
        receiver's nonce to use for the retry."""
        last = reply_ident & _MASK32
        if last > self.counter:
            self.counter = last
        return (reply_ident >> 32) & _MASK32


class SeqWindow:
    """Per-origin (epoch, sequence) of region publications, 16-bit serial arithmetic each.

    accept() -> RESTARTED when the epoch is newer than the one held (or the origin is new: the
    publication replaces what is held for it), NEWER when the epoch is equal and the sequence
    newer, REPLAY otherwise (a duplicate or a replay: drop it, never forward it).
    """

    def __init__(self):
        self._epoch = {}
        self._seq = {}

    def accept(self, key, epoch, seq):
        held = self._epoch.get(key)
        if held is None or serial_newer(epoch, held):
            self._epoch[key] = epoch
            self._seq[key] = seq
            return RESTARTED
        if epoch == held and serial_newer(seq, self._seq[key]):
            self._seq[key] = seq
            return NEWER
        return REPLAY

    def get(self, key):
        """(epoch, seq) last accepted from ``key``, or None."""
        e = self._epoch.get(key)
        return None if e is None else (e, self._seq[key])

    def forget(self, key):
        self._epoch.pop(key, None)
        self._seq.pop(key, None)

    def __len__(self):
        return len(self._epoch)


class AdvWindow:
    """Per-agent advertisement sequence (16-bit serial) with the boot-nonce reboot rule.

    accept() -> NEWER when the nonce is the one held and the sequence is newer; RESTARTED when
    the agent is new, or its nonce changed and its sequence is below 256 (it rebooted); REPLAY
    otherwise. A "reboot" back to the nonce that the last reboot replaced is refused: that is a
    replay of the agent's previous boot (recordings of older boots with a sequence below 256
    still pass; their effect is one 133 round trip at registration). An agent that rebooted while
    out of earshot is accepted again once the role has forgotten it (call forget() when its
    advertisement lifetime runs out).
    """

    def __init__(self):
        self._seq = {}
        self._nonce = {}
        self._previous = {}  # the nonce replaced by the last reboot

    def accept(self, key, seq, nonce):
        held = self._seq.get(key)
        if held is None:
            self._seq[key] = seq
            self._nonce[key] = nonce
            return RESTARTED
        current = self._nonce[key]
        if nonce != current and seq < REBOOT_SEQ:
            if nonce == self._previous.get(key):
                return REPLAY
            self._previous[key] = current
            self._seq[key] = seq
            self._nonce[key] = nonce
            return RESTARTED
        if nonce == self._nonce[key] and serial_newer(seq, held):
            self._seq[key] = seq
            return NEWER
        return REPLAY

    def forget(self, key):
        self._seq.pop(key, None)
        self._nonce.pop(key, None)
        self._previous.pop(key, None)

    def __len__(self):
        return len(self._seq)

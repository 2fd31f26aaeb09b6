"""Reliable flooding of publications: per-neighbour acknowledgement and retransmission with
back-off (docs/REGION.md "Reliable flooding"), in the manner of OSPF's (RFC 2328 section 13:
a retransmission list per neighbour, delayed acknowledgements batched).

Sender: every publication a member sends to a member neighbour (its own, or one it relays)
waits in a small pool of payload slots until that neighbour acknowledges it. Per neighbour a
bit mask says which slots it still owes and one timer resends them all, a back-off later each
round (_RTO_MS doubled up to _RTO_MAX_MS). A neighbour that acknowledges nothing for _ROUNDS
rounds (off, out of range) is given up: its list is emptied and nothing more is queued for it
until it is heard again (an acknowledgement or a publication from it); the next snapshot
repairs what it missed. The pool is _SLOTS payloads, preallocated; when none is free the
oldest is taken (its neighbours will get it with the next snapshot).

Receiver: every publication that comes from a neighbour over its own link is acknowledged,
new or a copy of one already taken (the copy may be a retransmission whose acknowledgement was
lost), but not one that fails its tag, nor a copy that is an implied acknowledgement (RFC 2328
section 13, step 7a: the neighbour sent us a publication we sent it and still wait for; both
have it, and neither sends an acknowledgement: in a mesh most copies cross like this, so only
the first copy each member takes is acknowledged). Acknowledgements wait _ACK_DELAY_MS per
neighbour and go out together in one frame signed with the region key
(publication.encode_ack), at once when _BATCH are waiting. An acknowledgement clears nothing
until its tag is checked; the tag is computed only when it names a publication the neighbour
still owes.
"""

from mobility import auth, ipv4, publication, ticks
from mobility.compat import const

_SLOTS = const(4)  # publications waiting for acknowledgements, at most
_RTO_MS = const(250)  # first retransmission this long after the send (5 x the ack delay)
_RTO_MAX_MS = const(8000)  # the back-off doubles up to this
_ROUNDS = const(6)  # retransmission rounds without an acknowledgement before giving up
_ACK_DELAY_MS = const(50)  # acknowledgements to one neighbour are batched this long
_BATCH = const(8)  # ... and at most this many (an acknowledgement holds up to ACK_MAX)
_ENTRY = const(8)  # publication.ACK_ENTRY
_AT = const(2)  # publication.ORIGIN_AT: the entry is origin, epoch, seq as in the payload


def _same(a, i, b, j, n=_ENTRY):
    """True when a[i:i+n] == b[j:j+n], without allocating."""
    for k in range(n):
        if a[i + k] != b[j + k]:
            return False
    return True


class Reliable:
    """Acknowledgement and retransmission of publications over ``backbone`` (its member
    neighbours), acknowledgements signed with the region ``key`` (raw) and checked with
    ``keys``; logs into ``out``."""

    def __init__(self, backbone, keys, key, out):
        self.backbone = backbone
        self.keys = keys
        self.key = key
        self.out = out
        n = len(backbone.addr)
        self._pay = [bytearray(publication.MAX_PAYLOAD) for _ in range(_SLOTS)]
        self._len = [0] * _SLOTS
        self._next = 0  # where the search for a slot starts: after the newest filled
        self._owed = [0] * n  # per peer: bit s set: it has not acknowledged slot s yet
        self._due = [0] * n  # its next retransmission round (when _owed)
        self._rto = [_RTO_MS] * n
        self._rounds = [0] * n  # rounds without an acknowledgement; > _ROUNDS: given up
        self._acks = [None] * n  # per member neighbour: entries it is to be acknowledged
        self._nacks = [0] * n
        self._ack_at = [0] * n
        for nb in range(n):
            if backbone.is_member[nb]:
                self._acks[nb] = bytearray(_BATCH * _ENTRY)
        # counters (tests, benchmarks; the simulator counts frames itself)
        self.retransmitted = 0  # publication frames sent again
        self.acks_sent = 0  # acknowledgement frames
        self.acked = 0  # waits cleared by an acknowledgement
        self.implied = 0  # waits cleared by a copy of the publication (implied acknowledgement)
        self.given_up = 0  # neighbours given up after _ROUNDS rounds
        self.evicted = 0  # slots taken while some neighbour still owed them
        self.superseded = 0  # waits dropped for a newer publication of the same origin

    def flood(self, now, payload, came_from):
        """Send publication ``payload`` to every member neighbour but ``came_from`` (-1: we
        are its origin) and wait for their acknowledgements."""
        bb = self.backbone
        for nb in range(len(bb.addr)):
            if nb != came_from and bb.is_member[nb]:
                self._send(nb, payload)
        # what waits of the same origin is superseded: retransmitted after this one it could
        # arrive after it, within the receivers' window for late parts, and be taken as part
        # of the newest batch (an older snapshot would remove newer bindings). Only the
        # earlier parts of the same full snapshot still wait. The next snapshot repairs.
        used = 0
        for o in self._owed:
            used |= o
        for s in range(_SLOTS):
            if used & (1 << s) and _same(self._pay[s], _AT, payload, _AT, 4):
                q = self._pay[s]
                d = (publication.seq_at(payload) - publication.seq_at(q)) & 0xFFFF
                if not (
                    payload[1] & q[1] & 0x80  # both full snapshots, of one epoch
                    and _same(q, 6, payload, 6, 2)
                    and 0 < d == (payload[1] & 0x3F) - (q[1] & 0x3F)  # its earlier parts
                ):
                    self._drop(s)
                    self.superseded += 1
        s = -1
        for nb in range(len(bb.addr)):
            if nb == came_from or not bb.is_member[nb] or self._rounds[nb] > _ROUNDS:
                continue
            if s < 0:
                s = self._slot(payload)
            if not self._owed[nb]:
                self._due[nb] = ticks.add(now, self._rto[nb])
            self._owed[nb] |= 1 << s

    def _send(self, nb, pub):
        """Send publication ``pub`` to member neighbour ``nb``, with the hop tag for it (each
        copy its own: the tag names both ends of the hop)."""
        bb = self.backbone
        bb.send(nb, publication.hop_packet(self.keys, bb.own, bb.addr[nb], pub))

    def _slot(self, payload):
        used = 0
        for o in self._owed:
            used |= o
        s = self._next
        for _ in range(_SLOTS):
            if not used & (1 << s):
                break
            s = (s + 1) % _SLOTS
        else:
            # none free: the oldest (the search starts after the newest) is given up
            self.evicted += 1
            self._drop(s)
        n = len(payload)
        memoryview(self._pay[s])[0:n] = payload
        self._len[s] = n
        self._next = (s + 1) % _SLOTS
        return s

    def _drop(self, s):
        m = ~(1 << s)
        for nb in range(len(self._owed)):
            self._owed[nb] &= m

    def _clear(self, now, nb, slots):
        """Neighbour ``nb`` has the publications of ``slots`` (a bit mask): it owes them no
        more, and its back-off starts again (it is alive)."""
        self._owed[nb] &= ~slots
        self._rto[nb] = _RTO_MS
        self._rounds[nb] = 0
        if self._owed[nb]:
            self._due[nb] = ticks.add(now, _RTO_MS)

    def copy_from(self, now, nb, buf, off, n):
        """Neighbour ``nb`` sent us a copy of a publication already taken, the ``n`` bytes of
        UDP payload at buf[off:] (the publication, then its hop tag).
        When it is one we sent to ``nb`` and still wait for, the copy is an implied
        acknowledgement (RFC 2328 section 13, step 7a: two members that flooded it to each
        other both have it): the wait is cleared and no acknowledgement is sent, since ``nb``
        takes our copy the same way. Only a copy byte for byte the one we keep clears it (we
        checked its tag when we took it; an unsigned look-alike clears nothing). Any other
        copy (a retransmission whose acknowledgement was lost) is acknowledged."""
        n -= publication.HOP_LEN  # (the hop tag differs per hop: the publication is compared)
        if n <= 0:
            return  # (a length no copy of ours has: nothing to clear or acknowledge)
        owed = self._owed[nb]
        if owed:
            p = off + _AT
            for s in range(_SLOTS):
                q = self._pay[s]
                if (
                    owed & (1 << s)
                    and self._len[s] == n
                    and _same(q, _AT, buf, p)
                    and _same(q, 0, buf, off, n)
                ):
                    self._clear(now, nb, 1 << s)
                    self.implied += 1
                    return
        self.ack_later(now, nb, buf, off)

    def ack_later(self, now, nb, buf, off):
        """Neighbour ``nb`` sent us the publication whose payload is at buf[off:]: acknowledge
        it within _ACK_DELAY_MS (with whatever else it sent meanwhile). It is alive: a
        neighbour given up is waited for again."""
        a = self._acks[nb]
        if a is None:
            return
        if self._rounds[nb] > _ROUNDS:
            self._rounds[nb] = 0
        n = self._nacks[nb]
        p = off + _AT
        for i in range(0, n * _ENTRY, _ENTRY):
            if _same(a, i, buf, p):
                return  # already waiting (a retransmission crossed our acknowledgement)
        if not n:
            self._ack_at[nb] = ticks.add(now, _ACK_DELAY_MS)
        i = n * _ENTRY
        for k in range(_ENTRY):
            a[i + k] = buf[p + k]
        self._nacks[nb] = n + 1
        if n + 1 >= _BATCH:
            self._send_ack(nb)

    def _send_ack(self, nb):
        bb = self.backbone
        payload = publication.encode_ack(bb.own, self._acks[nb], self._nacks[nb], self.key)
        self._nacks[nb] = 0
        bb.send(nb, publication.packet(bb.own, bb.addr[nb], payload))
        self.acks_sent += 1

    def on_ack(self, now, nb, payload):
        """An acknowledgement from member neighbour ``nb`` (over its own link): how many
        waits it cleared, or -1 when it is malformed or not from ``nb``, -2 when its tag is
        wrong (a forgery: nothing is cleared)."""
        n = publication.ack_count(payload)
        a = self.backbone.addr[nb]
        if not n or a[0] != payload[2] or a[1] != payload[3] or a[2] != payload[4]:
            return -1
        if a[3] != payload[5]:
            return -1
        owed = self._owed[nb]
        hit = 0
        for i in range(n):
            e = 6 + _ENTRY * i
            for s in range(_SLOTS):
                if owed & (1 << s) and _same(payload, e, self._pay[s], _AT):
                    hit |= 1 << s
        if not hit:
            return 0  # nothing it owes (a late or repeated acknowledgement): no tag computed
        body = len(payload) - auth.TAG_LEN
        mv = memoryview(payload)
        if not self.keys.check(auth.SPI_REGION, mv[body:], mv[0:body]):
            return -2
        self._clear(now, nb, hit)
        c = 0
        while hit:
            c += hit & 1
            hit >>= 1
        self.acked += c
        return c

    def next_wake(self, t):
        """The sooner of ``t`` (ticks ms or None) and our next deadline."""
        for nb in range(len(self._owed)):
            if self._owed[nb] and (t is None or ticks.diff(self._due[nb], t) < 0):
                t = self._due[nb]
            if self._nacks[nb] and (t is None or ticks.diff(self._ack_at[nb], t) < 0):
                t = self._ack_at[nb]
        return t

    def on_timer(self, now):
        """Send the acknowledgements and the retransmission rounds that are due."""
        bb = self.backbone
        for nb in range(len(self._owed)):
            if self._nacks[nb] and ticks.diff(now, self._ack_at[nb]) >= 0:
                self._send_ack(nb)
            owed = self._owed[nb]
            if not owed or ticks.diff(now, self._due[nb]) < 0:
                continue
            self._rounds[nb] += 1
            if self._rounds[nb] > _ROUNDS:
                self._owed[nb] = 0
                self.given_up += 1
                self.out.log("region_gave_up", {"peer": ipv4.ntoa(bb.addr[nb])})
                continue
            for s in range(_SLOTS):
                if owed & (1 << s):
                    self._send(nb, memoryview(self._pay[s])[0 : self._len[s]])
                    self.retransmitted += 1
            rto = self._rto[nb] * 2
            self._rto[nb] = rto if rto < _RTO_MAX_MS else _RTO_MAX_MS
            self._due[nb] = ticks.add(now, self._rto[nb])

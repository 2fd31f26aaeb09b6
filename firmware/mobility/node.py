"""What every role shares: configuration, keys, the action buffer, the log, time helpers,
application datagrams and the check of a solicitation (answered by an agent's beacon, cell.py,
or by a host reply, hostreply.py).

A role is built from a plain config dict (keys documented in docs/CORE.md), a ``rand(bits)``
callable (seedable randomness: jitter, boot nonce) and the current time ``now`` (ticks ms).
"""

from mobility import ipv4, replay, ticks
from mobility.actions import IF_RADIO, Actions
from mobility.compat import const
from mobility.errors import DecodeError, FrameTooLarge
from mobility.replay import RateLimit

# answers to solicitations (host replies: hostreply.py, an agent's: cell.py): at most one per
# solicitor per gap, at most BURST in all per window, and none to a challenge seen lately
_ANSWER_BURST = const(8)
_HOST_REPLY_GAP_MS = const(500)
_CHALLENGES_HELD = const(16)
# an application datagram whose unicast failed (no link-layer ACK after the MAC's retries) is
# held and sent again by the route of that moment (docs/CORE.md "Sent again"): at most ``hold``
# (config, default _HOLD; 0: none, the Mobile IPv4 baseline) held at once, each sent again at
# most _HOLD_TRIES times; the first wait is _HOLD_MS plus a random part of as much again
# (longer than a fast fade lasts at walking speed, ~40 ms at 2.4 GHz, and out of step with a
# hidden sender's periodic traffic), each next one 4 times longer (a node handing off has
# registered elsewhere by the last, 1-2 s after the first failure)
_HOLD = const(4)
_HOLD_TRIES = const(3)
_HOLD_MS = const(50)
_HOLD_GROWTH = const(2)  # each wait 1 << _HOLD_GROWTH times the one before
# copies whose quiet slot another datagram took, remembered (IP identification, source address,
# tries) so that a failure of theirs that comes back later still counts its tries
_TAKEN = const(8)
_TAKEN_LEN = const(7)
NEVER = None  # a deadline that is not set


def parse_addr(value, what="address"):
    """'10.0.0.1' or 4 bytes -> 4 bytes; ValueError with the offending value otherwise."""
    if isinstance(value, str):
        return ipv4.aton(value)
    if isinstance(value, (bytes, bytearray)) and len(value) == 4:
        return bytes(value)
    raise ValueError("%s must be 'a.b.c.d' or 4 bytes, not %r" % (what, value))


def fmt_mac(mac):
    return "%02x%02x%02x%02x%02x%02x" % (mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])


def soonest(now, a, b):
    """The earlier of two deadlines (ticks; None = not set), relative to now."""
    if a is None:
        return b
    if b is None:
        return a
    # ticks.diff(a, now) <= ticks.diff(b, now), inline (the scheduling hot path): adding HALF
    # maps the signed distances -HALF..HALF-1 onto 0..MASK in order
    if ((a - now + ticks.HALF) & ticks.MASK) <= ((b - now + ticks.HALF) & ticks.MASK):
        return a
    return b


def due(now, deadline):
    """True when the deadline is set and has come."""
    return deadline is not None and ticks.diff(now, deadline) >= 0


class Node:
    """Base of every role: never used alone."""

    def __init__(self, config, rand, now):
        from mobility import settings  # config reading, boot-time: start.py drops it

        settings.require(config, ("node_id", "address", "keys"))
        # (the config dict is not kept: on a board its keys as hex text alone are kilobytes)
        self.node_id = settings.cfg_int(config, "node_id", 0, 0, 0xFFFF)
        self.address = parse_addr(config["address"])
        self.key = ipv4.addr_key(self.address, 0)
        self.keys = settings.parse_keys(config["keys"])
        self.cell_key = settings.cell_key(self.keys)
        # this node's link address on its radio (the agent: on its cell interface); the
        # driver sets it from the radio, a harness after building the role (role.mac = ...).
        # Registrations name it inside their signed data (docs/PROTOCOL.md "Registration").
        mac = config.get("mac")
        self.mac = None if mac is None else settings.parse_mac(mac)
        # solicitations answered: rate limit, and the challenges answered lately (a replayed
        # solicitation repeats its challenge: dropped before its tag is checked)
        self.answers = RateLimit(_HOST_REPLY_GAP_MS, _ANSWER_BURST)
        self._seen = [0] * _CHALLENGES_HELD
        self._seen_at = 0
        self.rand = rand
        self.out = Actions(settings.cfg_int(config, "actions", 16, 1, 1024))
        # boot counter (kept in flash by the firmware, +1 per boot): it orders this node's
        # boots, so a receiver can refuse frames recorded during an earlier one
        self.epoch = settings.cfg_int(config, "epoch", 0, 0, 0xFFFF)
        # boot nonce = epoch (16) || random (16): replay protection of registrations sent to
        # us, and (in advertisements) the reboot order (docs/PROTOCOL.md "Replay protection")
        self.nonce = (self.epoch << 16) | rand(16)
        self._ip_ident = rand(16)
        # datagrams held after a failed unicast, each [frame or None, when, tries, armed];
        # again_at: the first of their times (None: none held)
        n = settings.cfg_int(config, "hold", _HOLD, 0, 64)
        self._held = [[None, 0, 0, False] for _ in range(n)]
        self._taken = bytearray(_TAKEN * _TAKEN_LEN if n else 0)  # ring; tries 0: unused
        self._taken_at = 0
        self.again_at = None
        self._wake = now

    # --- the sans-I/O interface ---

    def next_wake(self):
        return self._wake

    def on_link_failure(self, now, iface, mac, frame=None):
        pass

    def forward_in_cell(self, frame):
        """The binding a datagram is forwarded to at once, without on_frame (an agent's hot
        path, Agent.forward_in_cell); other roles have none."""
        return None

    def uplink(self):
        """The radio neighbour this node reaches the backbone through, as (MAC, its address or
        None), or None: the driver sends the node's log there (a mobile node's serving agent,
        a host's gateway). Backbone nodes have none: they reach the collector themselves."""
        return None

    # --- datagrams sent again ---

    def _hold(self, now, iface, frame):
        """The unicast of ``frame`` on ``iface`` failed. An application datagram (UDP to
        APP_PORT: control messages have retries of their own) on the radio is held, a copy
        (the driver's buffer may be reused), and sent again by ``_send_again`` after a fade's
        time; a copy sent again that fails again (the same bytes) is held again, until it was
        sent _HOLD_TRIES times. One failing when every slot is taken is given up at once."""
        if iface != IF_RADIO or frame is None or not self._held:
            return  # (hold 0, the baseline: a datagram is sent once and that is all)
        free = None  # a free slot, else a quiet one
        for h in self._held:
            if h[0] is None:
                if free is None or free[0] is not None:
                    free = h
                continue
            if h[1] is None and free is None:
                free = h
            if h[0] == frame:
                if h[2] >= _HOLD_TRIES:
                    pkt = h[0]  # (our copy: the driver may reuse frame's buffer)
                    h[0] = None
                    self._gave_up(now, pkt)
                else:
                    h[3] = True
                    h[1] = ticks.add(now, self._hold_wait(h[2]))
                self._held_next(now)
                return
        if (
            not ipv4.plain(frame)
            or frame[ipv4.PROTO_AT] != ipv4.PROTO_UDP
            or len(frame) < ipv4.HEADER_LEN + ipv4.UDP_LEN
            or (frame[22] << 8 | frame[23]) != ipv4.APP_PORT
        ):
            return
        tries = self._taken_tries(frame)
        if free is None or tries >= _HOLD_TRIES:
            self._gave_up(now, bytearray(frame))
            return
        if free[0] is not None:
            self._remember_taken(free[0], free[2])
        free[0] = bytearray(frame)
        free[2] = tries
        free[3] = True
        free[1] = ticks.add(now, self._hold_wait(tries))
        self._held_next(now)

    def _remember_taken(self, pkt, tries):
        """A quiet slot's copy ``pkt``, sent ``tries`` times again, gives its slot up: in a
        busy channel its failure may still come back (city seed 20: a datagram's late failure
        came back after its slot was taken, was held as new with its tries at 0, and the
        datagram went round, sent six times and never given up)."""
        t = self._taken
        i = self._taken_at
        t[i : i + 2] = pkt[ipv4.IDENT_AT : ipv4.IDENT_AT + 2]
        t[i + 2 : i + 6] = pkt[ipv4.SRC_AT : ipv4.SRC_AT + 4]
        t[i + 6] = tries
        self._taken_at = (i + _TAKEN_LEN) % len(t)

    def _taken_tries(self, frame):
        """The tries of a remembered copy of ``frame`` (forgotten now), or 0. (A failure's
        path, not the forwarding one: the slices may allocate.)"""
        t = self._taken
        ident = frame[ipv4.IDENT_AT : ipv4.IDENT_AT + 2]
        src = frame[ipv4.SRC_AT : ipv4.SRC_AT + 4]
        for i in range(0, len(t), _TAKEN_LEN):
            if t[i + 6] and t[i : i + 2] == ident and t[i + 2 : i + 6] == src:
                tries = t[i + 6]
                t[i + 6] = 0
                return tries
        return 0

    def _hold_wait(self, sent):
        """How long a datagram sent again ``sent`` times waits before the next send."""
        wait = _HOLD_MS << (sent * _HOLD_GROWTH)
        return wait + self.rand(16) % wait

    def _again(self, now):
        """again_at has come: send the held datagrams that are due again; a slot whose copy
        was sent and did not fail within _HOLD_MS (it got through, or went another way) goes
        quiet (``when`` None): free for the next datagram, but until then a failure of that
        copy that comes back later (a busy channel: the frame waited in the transmit queue)
        is still recognised and counted with the tries already made. Freed at once, such a
        failure was held as a new datagram with its tries at 0, and a datagram to a node
        that had gone was sent again and again until its TTL ran out (city seed 2: 429
        datagrams sent 5 to 30 times)."""
        for h in self._held:
            if h[0] is not None and h[1] is not None and due(now, h[1]):
                if h[3]:
                    h[3] = False
                    h[2] += 1
                    h[1] = ticks.add(now, _HOLD_MS)
                    self._send_again(now, h[0])
                else:
                    h[1] = None
        self._held_next(now)

    def _held_next(self, now):
        t = None
        for h in self._held:
            if h[0] is not None and h[1] is not None:
                t = soonest(now, t, h[1])
        self.again_at = t

    def _send_again(self, now, pkt):
        """Send a held datagram again by the route of this moment (the role's)."""

    def _gave_up(self, now, pkt):
        """A held datagram failed on the radio every time it was sent (the role may have
        another way for it: an agent's is the node's home agent)."""

    # --- helpers ---

    def log(self, name, fields):
        self.out.log(name, fields)

    def decode(self, frame, src_mac):
        """The decoded IPv4 header, or None (a malformed frame is logged and dropped)."""
        try:
            return ipv4.decode(frame)
        except DecodeError as exc:
            self.log("drop", {"reason": "malformed", "mac": fmt_mac(src_mac), "error": str(exc)})
            return None

    def datagram(self, dst, payload):
        """An application datagram (IPv4/UDP to APP_PORT) from this node to ``dst``."""
        self._ip_ident = (self._ip_ident + 1) & 0xFFFF
        try:
            pkt = ipv4.udp(
                self.address, dst, ipv4.APP_PORT, ipv4.APP_PORT, payload, ident=self._ip_ident
            )
        except FrameTooLarge:
            self.log("drop", {"reason": "mtu", "dst": ipv4.ntoa(dst), "size": len(payload)})
            raise
        return pkt

    def check_solicitation(self, sol, src_mac, now=None):
        """True for an authentic solicitation from someone else that may be answered now;
        logs a rejection otherwise. Cheap checks first: a challenge answered lately (a replay),
        then the rate limit (``now`` given: this node's ``answers``), then the tag."""
        if sol.src == self.address:
            return False
        c = sol.challenge & 0x3FFFFFFF  # (a small int on a board: no allocation)
        if c and c in self._seen:
            self.reject("solicitation", "replay", sol.src, src_mac)
            return False
        if now is not None and not self.answers.allow(now, ipv4.addr_key(sol.src, 0), False):
            return False  # rate limit: the solicitor asks again later
        if not sol.verify(self.keys):
            self.reject("solicitation", "auth", sol.src, src_mac)
            return False
        if now is not None:
            self.answers.allow(now, ipv4.addr_key(sol.src, 0))
        if c:
            self._seen[self._seen_at] = c
            self._seen_at = (self._seen_at + 1) % _CHALLENGES_HELD
        return True

    def reject(self, msg, reason, src, mac):
        self.log(
            "reject",
            {
                "msg": msg,
                "reason": reason,
                "src": ipv4.ntoa(src) if src else None,
                "mac": fmt_mac(mac),
            },
        )


__all__ = ["Node", "IF_RADIO", "replay"]

"""An agent passes the log frames of the radio-only boards it serves on to the collector
(sans-I/O: ``check`` says yes or no, the caller sends).

A frame is passed on only when it is authentic (the sender's log key, derived from the fleet's
log secret that agents hold), newer than what this agent already passed for that board (boot,
then frame number: a replay or a retried copy is dropped), and within the board's share of the
relay's rate (``rate`` frames a second per board, ``total`` for all). Cheap checks come before
the HMAC. The per-board table holds ``max_nodes`` entries; when full, the one heard from least
recently makes room; a frame that fails its check never gets an entry. Every refusal is counted
by reason for the stats event.
"""

import struct

from fieldlog import wire
from mobility import auth, ticks
from mobility.compat import const

DEFAULT_RATE = const(20)  # frames a second per board
_DEFAULT_BURST = const(20)
_DEFAULT_TOTAL = const(100)  # frames a second for all boards
_DEFAULT_MAX_NODES = const(16)


def node_key(secret, purpose, node_id):
    """Board ``node_id``'s key for ``purpose`` (wire.PURPOSE_LOG), derived from the fleet secret:
    what provision writes on the board, what the collector and the relaying agents derive."""
    return auth.hmac_sha256(secret, purpose + struct.pack(">H", node_id))[:16]


def log_ids(msg):
    """(node, boot, frame) of a LOG frame, without its entries; ValueError if it is none."""
    if len(msg) < wire.LOG_HEAD + wire.TAG or msg[0] != wire.LOG:
        raise ValueError("not a log")
    return struct.unpack_from(">HHI", msg, 2)


class Relay:
    def __init__(
        self,
        secret,
        rate=DEFAULT_RATE,
        burst=_DEFAULT_BURST,
        total=_DEFAULT_TOTAL,
        max_nodes=_DEFAULT_MAX_NODES,
        now=0,
    ):
        self.secret = secret
        self.rate = rate
        self.burst = burst
        self.total = total
        self.max_nodes = max_nodes
        # node -> [key, boot, last frame passed (-1: none), tokens (1/1000 frame), at, MAC of
        # the last frame passed (where an update for that board goes: fieldlog/backbone.py)]
        self.nodes = {}
        self.all_tokens = total * 1000
        self.all_at = now
        self.passed = 0
        self.refused = {"malformed": 0, "auth": 0, "replay": 0, "rate": 0}

    def _refuse(self, reason):
        self.refused[reason] += 1
        return False

    def check(self, now, msg, mac=None):
        """True when the LOG frame ``msg`` (the UDP payload), heard from ``mac``, is to be
        passed on."""
        try:
            node, boot, frame = log_ids(msg)
        except ValueError:
            return self._refuse("malformed")
        e = self.nodes.get(node)
        if e is not None and not self._newer(e, boot, frame):
            return self._refuse("replay")  # before the HMAC: a copy costs no hashing
        key = e[0] if e is not None else node_key(self.secret, wire.PURPOSE_LOG, node)
        if not wire.verify(key, msg):
            return self._refuse("auth")  # an outsider's frame adds no entry
        if e is None:
            if len(self.nodes) >= self.max_nodes:
                oldest = None
                for k in self.nodes:
                    if oldest is None or ticks.diff(self.nodes[k][4], self.nodes[oldest][4]) < 0:
                        oldest = k
                del self.nodes[oldest]
            e = self.nodes[node] = [key, boot, -1, self.burst * 1000, now, None]
        # the board's share, then the relay's
        d = ticks.diff(now, e[4])
        if d > 0:
            e[3] = min(self.burst * 1000, e[3] + d * self.rate)
        e[4] = now
        d = ticks.diff(now, self.all_at)
        if d > 0:
            self.all_tokens = min(self.total * 1000, self.all_tokens + d * self.total)
            self.all_at = now
        if e[3] < 1000 or self.all_tokens < 1000:
            return self._refuse("rate")
        e[3] -= 1000
        self.all_tokens -= 1000
        e[1] = boot
        e[2] = frame
        if mac is not None:
            e[5] = bytes(mac)
        self.passed += 1
        return True

    @staticmethod
    def _newer(e, boot, frame):
        if e[2] < 0:
            return True
        if boot != e[1]:
            return auth.serial_newer(boot, e[1])
        return frame > e[2]

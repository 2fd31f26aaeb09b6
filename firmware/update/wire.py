"""Update messages on the field port (UDP 4345, types 0x10-0x1F): the laptop's `roam ... --ota`
talks to a board's update service (docs/PROTOCOL.md "Update service").

Every message but RELAY is ``type(1) flags(1) node(2) session(4) counter(4) body tag(16)``;
the tag is HMAC-SHA256-128 (mobility.auth) over everything before it, under the board's update
key (SPI 0x400), derived from the fleet's update secret for that one board (purpose ``U``).
Only the laptop holds the secret: a board with cell, region or log keys cannot update another.

* ``HELLO`` (laptop -> board) opens a session: ``session`` 0, ``counter`` the laptop's nonce.
* ``STATUS`` (board -> laptop): ``session`` the new session's number (random), ``counter`` the
  nonce echoed (a fresh answer, not a replay); body: the status as JSON.
* Commands (laptop -> board) carry the session and a counter above the last one the board
  took in it: a replayed or old-session command is dropped unanswered and changes nothing.
  ``BEGIN kind(1) files(1) set(16)``, ``FILE index(1) size(4) sha256(32) path``,
  ``DATA index(1) offset(4) bytes``, ``COMMIT``, ``RESET``.
* ``ACK`` (board -> laptop) ``code(1) value(4) [text]``, its counter the command's.
* ``RELAY`` (laptop -> agent, no tag) ``type flags node(2) address(4) message``: the agent sends
  ``message`` to radio-only board ``node`` by ESP-NOW (the agent cannot read or forge it), and
  passes that board's STATUS and ACK back.

Both sides use this module: the board's service and the laptop's client (hosttools/ota).
"""

import struct

from mobility import auth
from mobility.compat import const

HELLO = const(0x10)
STATUS = const(0x11)
BEGIN = const(0x12)
FILE = const(0x13)
DATA = const(0x14)
COMMIT = const(0x15)
RESET = const(0x16)
ACK = const(0x17)
RELAY = const(0x1F)
FIRST = const(0x10)  # the update types: FIRST..RELAY
HEAD = const(12)
TAG = const(16)
_RELAY_HEAD = const(8)
SPI_UPDATE = const(0x400)
PURPOSE_UPDATE = b"U"
SET_LEN = const(16)

KIND_FIRMWARE = const(1)
KIND_CONFIG = const(2)

# ACK codes
OK = const(0)
BUSY = const(1)  # the last change is still on probation: try again after its health mark
BAD = const(2)  # a command that makes no sense here (index, size, path, kind)
MISMATCH = const(3)  # a file's bytes do not hash to what FILE said: its part is dropped
NO_SPACE = const(4)
MISSING = const(5)  # COMMIT with files not complete
BAD_CONFIG = const(6)  # the config does not validate on the board
OFFSET = const(7)  # DATA not at the end of what the board has: value = what it has
NO_BEGIN = const(8)  # FILE, DATA or COMMIT before a BEGIN in this session

# the largest body of a DATA frame: in one UDP datagram (backbone), in one ESP-NOW frame
# after IPv4 and UDP headers (250 - 28 = 222 bytes for the whole message)
DATA_UDP = const(512)  # (a board allocates what it receives: smaller blocks fragment less)
DATA_RADIO = const(222 - HEAD - 5 - TAG)


def head(msg):
    """(type, node, session, counter); ValueError when too short."""
    if len(msg) < HEAD + TAG:
        raise ValueError("update message too short")
    t, _, node, session, counter = struct.unpack_from(">BBHII", msg, 0)
    return t, node, session, counter


def sign(key, t, node, session, counter, body=b""):
    """A whole message (allocated: update traffic is not the hot path)."""
    m = struct.pack(">BBHII", t, 0, node, session, counter) + bytes(body)
    return m + auth.tag(key, m)


def verify(key, msg):
    """True when msg's tag is right under ``key``; never raises."""
    n = len(msg) - TAG
    if key is None or n < HEAD:
        return False
    m = memoryview(msg)
    return auth.equal(auth.tag(key, m[:n]), m[n:])


def body(msg):
    return memoryview(msg)[HEAD : len(msg) - TAG]


def ack(key, node, session, counter, code, value=0, text=""):
    return sign(key, ACK, node, session, counter, struct.pack(">BI", code, value) + text.encode())


def relay(node, address, msg):
    """The RELAY around ``msg`` for radio-only board ``node`` at ``address`` (4 bytes)."""
    return struct.pack(">BBH", RELAY, 0, node) + bytes(address) + bytes(msg)


def set_hash(files):
    """The hash of a set of files [(path, sha256 hex)]: what STATUS and BEGIN name."""
    import hashlib

    h = hashlib.sha256()
    for p, d in sorted(files):
        h.update(("%s %s\n" % (p, d)).encode())
    return h.digest()[:SET_LEN]


# STATUS body: the running firmware's set, the previous one's, the config's hash and the last
# rollback's "from" (8 bytes each: the first half of a set hash), boot number, uptime (s),
# the .mpy version MicroPython loads, the last command counter of this session, then the
# active and previous slot, what is pending, its tries, what the last rollback undid and
# after how many tries (one byte each), and the size of the board's romfs partition in KiB (0:
# none; a firmware set then goes as one romfs image, update/stage.py). 52 bytes: one ESP-NOW
# frame with room to spare.
STATUS_FMT = ">8s8s8s8sHIHIBBBBBBH"
SLOT_NAMES = ("root", "a", "b")
PENDING_NAMES = (None, "fw", "cfg")
WHAT_NAMES = (None, "firmware", "config")
NONE = const(255)


def _code(names, v):
    return names.index(v) if v in names else NONE


def _hex8(v):
    return bytes(int(v[i : i + 2], 16) for i in range(0, 16, 2)) if v else bytes(8)


def pack_status(st, cfg_hash, boot, uptime_s, mpy, counter, rom_kb=0):
    """The STATUS body from slots' state ``st`` and what the driver knows."""
    rb = st.get("rollback") or {}
    return struct.pack(
        STATUS_FMT,
        _hex8(st.get("set")),
        _hex8(st.get("prev_set")),
        bytes(cfg_hash[:8]),
        _hex8(rb.get("from")),
        boot & 0xFFFF,
        uptime_s,
        mpy & 0xFFFF,
        counter,
        _code(SLOT_NAMES, st.get("active")),
        _code(SLOT_NAMES, st.get("previous")),
        _code(PENDING_NAMES, st.get("pending")),
        st.get("tries", 0) & 0xFF,
        _code(WHAT_NAMES, rb.get("what")),
        rb.get("tries", 0) & 0xFF,
        min(rom_kb, 0xFFFF),
    )


def unpack_status(b):
    """The STATUS body as a dict (hashes as hex, None where there is none)."""
    (fw, prev, cfg, rb_from, boot, up, mpy, ctr, slot, pslot, pend, tries, what, rbt, rom) = (
        struct.unpack(STATUS_FMT, bytes(b[: struct.calcsize(STATUS_FMT)]))
    )

    def hx(v):
        return None if v == bytes(8) else "".join("%02x" % c for c in v)

    def name(names, v):
        return names[v] if v < len(names) else None

    return {
        "fw": hx(fw),
        "previous_fw": hx(prev),
        "config": hx(cfg),
        "boot": boot,
        "uptime_s": up,
        "mpy": mpy,
        "counter": ctr,
        "slot": name(SLOT_NAMES, slot),
        "previous_slot": name(SLOT_NAMES, pslot),
        "pending": name(PENDING_NAMES, pend),
        "tries": tries,
        "romfs_kb": rom,
        "rollback": (
            {"what": name(WHAT_NAMES, what), "from": hx(rb_from), "tries": rbt}
            if what in (1, 2)
            else None
        ),
    }

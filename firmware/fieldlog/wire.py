"""Field-service messages on UDP port 4345: a board's log lines to the laptop's collector, and
the collector's request to send the stored log again (docs/PROTOCOL.md "Field service").

Every message is ``type(1) flags(1) node(2) ...body... tag(16)``; the tag is HMAC-SHA256-128
(mobility.auth) over everything before it, under a key of the one board the message is from or
for (``node``). A board holds only its own key, derived from the fleet's log secret by
:func:`node_key`; the laptop, and the agents that relay, hold the secret.

* ``LOG`` (board -> collector) ``boot(2) frame(4) file(4) off(4)`` then bytes ``off..`` of the
  board's flash log file ``file``, as they are on flash: whole lines ending in a newline, each
  carrying its own boot and sequence number (its JSON ``b`` and ``s``). ``FLAG_CONT``: the bytes
  start inside a line (the rest of a line cut at the end of the frame before); ``FLAG_MORE``:
  they end inside one (a line too long for one frame). ``frame`` numbers the sender's frames in
  its boot ``boot`` (a retried frame keeps its number).
* ``REWIND`` (collector -> backbone board) ``counter(4)``: send the whole stored log again
  (``roam logs --pull`` over Wi-Fi). A board takes it only with a counter above the last one it
  took in this boot; it logs ``log_rewind`` with the counter and streams its ring from the
  oldest line, so that line arrives after everything before it.

Who encodes and decodes what: every board encodes LOG (this module); the relay reads a LOG
frame's ids (fieldlog/relay.py); a backbone board checks REWIND (fieldlog/backbone.py); the
collector decodes LOG and builds REWIND (fieldlog/reader.py).
"""

import struct

from mobility import auth

try:
    from micropython import const
except ImportError:

    def const(x):  # type: ignore[misc]
        return x


FIELD_PORT = const(4345)
LOG = const(1)
REWIND = const(2)
FLAG_CONT = const(1)
FLAG_MORE = const(2)
TAG = const(16)
LOG_HEAD = const(18)
PURPOSE_LOG = b"L"
SPI_LOG = const(0x300)  # a board's own log key
SPI_LOG_SECRET = const(0x301)  # the fleet's log secret (agents: they check what they relay)


FieldError = ValueError  # a malformed field message (a class of its own would cost heap)


def node_key(secret, purpose, node_id):
    """Board ``node_id``'s key for ``purpose``, derived from the fleet secret."""
    return auth.hmac_sha256(secret, purpose + struct.pack(">H", node_id))[:16]


def verify(key, msg):
    """True when msg's tag is right under ``key``; never raises."""
    n = len(msg) - TAG
    if key is None or n < 4:
        return False
    m = memoryview(msg)
    return auth.equal(auth.tag(key, m[:n]), m[n:])


def sign_log(buf, key, node, boot, frame, flags, num, off, n):
    """Make ``buf[:LOG_HEAD + n + TAG]`` a signed LOG frame around the ``n`` log bytes already at
    ``buf[LOG_HEAD:]`` (in place: the stream builds its frames in one preallocated buffer)."""
    struct.pack_into(">BBHHIII", buf, 0, LOG, flags, node, boot, frame, num, off)
    end = LOG_HEAD + n
    m = memoryview(buf)
    m[end : end + TAG] = auth.tag(key, m[:end])
    return end + TAG


def encode_log(key, node, boot, frame, flags, num, off, data):
    """A signed LOG frame carrying ``data`` (bytes of the log file ``num`` from ``off``)."""
    buf = bytearray(LOG_HEAD + len(data) + TAG)
    buf[LOG_HEAD : LOG_HEAD + len(data)] = data
    sign_log(buf, key, node, boot, frame, flags, num, off, len(data))
    return bytes(buf)

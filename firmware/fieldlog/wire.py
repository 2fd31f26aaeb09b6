"""Field-service messages on UDP port 4345: a board's log lines to the laptop's collector, and
the collector's request to send the stored log again (docs/PROTOCOL.md "Field service").

Every message is ``type(1) flags(1) node(2) ...body... tag(16)``; the tag is HMAC-SHA256-128
(mobility.auth) over everything before it, under a key of the one board the message is from or
for (``node``). A board holds only its own key, derived from the fleet's log secret by
:func:`fieldlog.relay.node_key`; the laptop, and the agents that relay, hold the secret.

* ``LOG`` (board -> collector) ``boot(2) frame(4) file(4) off(4)`` then bytes ``off..`` of the
  board's flash log file ``file``, as they are on flash: whole lines ending in a newline, each
  carrying its own boot and sequence number (its JSON ``b`` and ``s``). ``FLAG_CONT``: the bytes
  start inside a line (the rest of a line cut at the end of the frame before); ``FLAG_MORE``:
  they end inside one (a line too long for one frame). ``frame`` numbers the sender's frames in
  its boot ``boot`` (a retried frame keeps its number).
* ``REWIND`` (collector -> backbone board) ``counter(4)``: send the whole stored log again
  (``roam logs --pull`` over Wi-Fi). A board takes it only with a counter above the last one it
  took in this boot, and not while it is sending its log again already; it logs
  ``log_rewind`` with the counter and streams its ring from the oldest line, so that line
  arrives after everything before it. The collector sends a REWIND with a new counter every
  2 s until that line comes (a REWIND can be lost): the counter in it names the one taken.

Who encodes and decodes what: every board builds LOG frames in place (``sign_log``, this
module: what every board loads, so no more); the relay reads a LOG frame's ids and derives keys
(fieldlog/relay.py); a backbone board checks REWIND (fieldlog/backbone.py); the collector
decodes LOG and builds REWIND, tests build LOG frames whole (fieldlog/reader.py).
"""

import struct

from mobility import auth
from mobility.compat import const

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


def is_field(msg):
    """A radio frame that is IPv4/UDP to port 4345 (0x10F9), without IP options: another
    board's log, for the driver to take out before the protocol core sees it (a few byte
    compares on the forwarding path)."""
    return len(msg) > 28 and msg[0] == 0x45 and msg[9] == 17 and msg[22] == 0x10 and msg[23] == 0xF9


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

"""The simulator's sharing of decodings and verdicts between the cores of one process.

One advertisement reaches some twenty mobile cores in the simulator's process. Decoding it
(`ipv4.decode`, `advert.decode_icmp`) and checking its tag (`auth.Keys.check`) are pure
functions of the frame's bytes (and, for the check, of the key), so the first receiver does the
work and the others get its result. The core knows nothing of this: it has one decode path,
the one a board runs, and `install()` puts these wrappers in its modules' places (the module
attributes its callers look up: `ipv4.decode(...)`, `advert._verify`, `Keys.check`), and
CPython's faster checksum sum in place of the board's loop. `run.run` installs them before it
builds a world; `uninstall()` puts the core's own functions back (tests compare both).

A shared decoded message is read-only: its class becomes a subclass whose `__setattr__` raises,
so a core that changed one would fail loudly instead of changing another node's view. Each
cache holds at most MEMO_MAX entries and is cleared when full; errors (malformed frames) are
never cached, so every node still logs its own drop. Every core still makes every decision
itself (replay windows, rankings, bindings): only the parsing is shared.
docs/SIMULATOR.md "Performance".
"""

from mobility import advert, auth, ipv4
from mobility.errors import DecodeError

MEMO_MAX = 4096

# the core's own functions, as they were before install() (names, not a dict: per frame)
_plain_decode = ipv4.decode
_plain_sum = ipv4._sum
_plain_decode_icmp = advert.decode_icmp
_plain_verify = advert._verify
_plain_check = auth.Keys.check
_BUFFERS = (bytes, bytearray, memoryview)


def _read_only(self, name, value):
    raise AttributeError("a shared decoded message is read-only (set %s)" % name)


def frozen(cls):
    """A read-only subclass of ``cls`` with the same name."""
    return type(cls.__name__, (cls,), {"__setattr__": _read_only})


_SharedHeader = frozen(ipv4.Header)
_SHARED_ICMP = {
    advert.Advertisement: frozen(advert.Advertisement),
    advert.Solicitation: frozen(advert.Solicitation),
}
_FROZEN_ICMP = tuple(_SHARED_ICMP.values())

_headers: dict = {}  # frame bytes -> shared Header
_icmp: dict = {}  # (proto, src, dst, payload) -> shared Advertisement/Solicitation
_verdicts: dict = {}  # (key, shared message) -> verified
_checks: dict = {}  # (padded key's first block, tag, message bytes) -> verified


def sum_bigint(buf, start, end, s=0):
    """ipv4._sum up to a multiple of 0xFFFF, which the fold does not see: 2**16 = 1 (mod
    0xFFFF), so the bytes read as one big-endian integer are congruent to the sum of their
    16-bit words. One C call instead of a loop (on a board, a big integer on the heap for every
    checksum). A non-zero sum never becomes 0 (0xFFFF stands for it), so the fold gives the same
    ones' complement sum."""
    n = int.from_bytes(memoryview(buf)[start:end], "big")
    if (end - start) & 1:
        n <<= 8
    r = n % 0xFFFF
    if r == 0 and n:
        r = 0xFFFF
    return s + r


def decode(buf):
    """ipv4.decode, shared between receivers of the same bytes."""
    if not isinstance(buf, _BUFFERS):
        raise DecodeError("not bytes", type(buf).__name__)  # as ipv4.decode
    key = bytes(buf)
    h = _headers.get(key)
    if h is None:
        h = _plain_decode(buf)
        h.__class__ = _SharedHeader
        if len(_headers) >= MEMO_MAX:
            _headers.clear()
        _headers[key] = h
    return h


def decode_icmp(header, into=None):
    """advert.decode_icmp, shared: keyed by what decoding reads. ``into`` (an agent's own pair
    of messages to fill in, for a board's heap) is not used: the shared message is read-only
    and its reader, as with its own pair, keeps nothing of it past the next decode."""
    p = header.payload
    if type(p) is not bytes or type(header.src) is not bytes or type(header.dst) is not bytes:
        return _plain_decode_icmp(header)
    key = (header.proto, header.src, header.dst, p)
    msg = _icmp.get(key)
    if msg is None:
        msg = _plain_decode_icmp(header)
        msg.__class__ = _SHARED_ICMP[type(msg)]
        if len(_icmp) >= MEMO_MAX:
            _icmp.clear()
        _icmp[key] = msg
    return msg


def verify(msg, keys, spi):
    """advert._verify: a shared message's verdict under a key is kept with it, so the twenty
    receivers of a broadcast look it up instead of hashing its bytes each (a different key,
    another node's or the attacker's, computes its own; the dictionary holds the message, so an
    identity is never reused)."""
    if type(msg) not in _FROZEN_ICMP:
        return _plain_verify(msg, keys, spi)
    if msg._icmp is None or msg.tag is None or msg.spi != spi:
        return False
    key = keys.get(spi)
    if key is None:
        return False
    k = (key, msg)
    ok = _verdicts.get(k)
    if ok is None:
        ok = advert._check(msg, keys, spi)
        if len(_verdicts) >= MEMO_MAX:
            _verdicts.clear()
        _verdicts[k] = ok
    return ok


def check(self, spi, received, a, b=None, c=None, d=None):
    """auth.Keys.check: the same bytes under the same key give the same answer in every node."""
    p = self._pads_of(spi)
    if p is None or received is None:
        return False
    k = (p[0], bytes(received), b"".join([x for x in (a, b, c, d) if x is not None]))
    ok = _checks.get(k)
    if ok is None:
        ok = auth.equal(auth.mac(p, a, b, c, d)[: auth.TAG_LEN], received)
        if len(_checks) >= MEMO_MAX:
            _checks.clear()
        _checks[k] = ok
    return ok


# (owner, attribute, the core's own, the shared one): what install() and uninstall() swap
_PLACES = (
    (ipv4, "decode", _plain_decode, decode),
    (ipv4, "_sum", _plain_sum, sum_bigint),
    (advert, "decode_icmp", _plain_decode_icmp, decode_icmp),
    (advert, "_verify", _plain_verify, verify),
    (auth.Keys, "check", _plain_check, check),
)


def install():
    """Put the sharing wrappers in the core's places (idempotent)."""
    for owner, name, _plain, shared in _PLACES:
        setattr(owner, name, shared)


def uninstall():
    """The core's own functions back, the caches emptied."""
    for owner, name, plain, _shared in _PLACES:
        setattr(owner, name, plain)
    for cache in (_headers, _icmp, _verdicts, _checks):
        cache.clear()


def installed():
    return ipv4.decode is decode

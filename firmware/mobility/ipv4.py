"""IPv4 header (RFC 791, 20 bytes, no options), its checksum, UDP (RFC 768), and the in-place
helpers of the forwarding hot path.

Every frame on the air is one complete IPv4 packet of at most MAX_FRAME (250) bytes.
Decoders accept bytes, bytearray or memoryview and raise only ``DecodeError``.
"""

import struct

from mobility.compat import const
from mobility.errors import MAX_FRAME, DecodeError, check_frame, check_uint

PROTO_ICMP = const(1)
PROTO_IPIP = const(4)
PROTO_UDP = const(17)
APP_PORT = const(5000)  # application datagrams between nodes
REG_PORT = const(434)  # Mobile IP registration
PUB_PORT = const(4344)  # region publication
HEADER_LEN = const(20)
UDP_LEN = const(8)
_DEFAULT_TTL = const(64)
_FLAG_DF = const(0x4000)
BCAST_ADDR = b"\xff\xff\xff\xff"
ANY_ADDR = b"\x00\x00\x00\x00"

_BUFFERS = (bytes, bytearray, memoryview)


def _sum(buf, start, end, s=0):
    """Unfolded sum of the big-endian 16-bit words of buf[start:end] (odd tail padded with 0).

    Allocates nothing on MicroPython (small ints only). (The simulator puts a faster one for
    CPython in its place: hosttools/sim/sharing.py.)"""
    last = end - 1
    for i in range(start, last, 2):
        s += (buf[i] << 8) | buf[i + 1]
    if (end - start) & 1:
        s += buf[last] << 8
    return s


def _fold(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def checksum(buf, start=0, end=None):
    """The Internet checksum (ones' complement of the ones' complement sum) of buf[start:end].

    Over a region that contains a correct checksum field the result is 0.
    """
    if end is None:
        end = len(buf)
    return ~_fold(_sum(buf, start, end)) & 0xFFFF


def check_addr(addr, what="address"):
    """Raise ValueError unless ``addr`` is a 4-byte address."""
    if not isinstance(addr, _BUFFERS) or len(addr) != 4:
        raise ValueError("%s must be 4 bytes, not %r" % (what, addr))


def aton(text):
    """'10.0.0.1' -> b'\\x0a\\x00\\x00\\x01' (ValueError on anything else)."""
    parts = text.split(".")
    good = len(parts) == 4
    out = bytearray(4)
    for i in range(4 if good else 0):
        p = parts[i]
        if not p or len(p) > 3 or not p.isdigit() or int(p) > 255:
            good = False  # (one raise: each copy of the message would be a heap string)
            break
        out[i] = int(p)
    if not good:
        raise ValueError("not an IPv4 address: %r" % (text,))
    return bytes(out)


def ntoa(addr):
    """b'\\x0a\\x00\\x00\\x01' -> '10.0.0.1'."""
    return "%d.%d.%d.%d" % (addr[0], addr[1], addr[2], addr[3])


def addr_key(buf, off):
    """The low 30 bits of the address at buf[off:off+4] as an int: a route-table key that stays a
    small int on a 32-bit board and is computed without allocating (no slice)."""
    return ((buf[off] & 0x3F) << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]


def dec_ttl(buf):
    """Decrement the TTL of the IPv4 header at the start of the bytearray ``buf`` in place and
    patch the header checksum incrementally (RFC 1624 eqn. 3), without allocating.

    Returns False, leaving ``buf`` unchanged, when the TTL is 0 or 1 (the packet must not be
    forwarded).
    """
    ttl = buf[8]
    if ttl <= 1:
        return False
    buf[8] = ttl - 1
    # HC' = ~(~HC + ~m + m'), m the 16-bit word holding TTL and protocol before, m' = m - 0x100
    # after: ~m + m' is 0xFFFF - 0x100 = 0xFEFF whatever m is, and one fold carries it all
    # (~HC + 0xFEFF <= 0x1FEFE), so neither the word nor a second fold is needed per datagram
    s = (~((buf[10] << 8) | buf[11]) & 0xFFFF) + 0xFEFF
    s = ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF
    buf[10] = s >> 8
    buf[11] = s & 0xFF
    return True


class Header:
    """A decoded IPv4 packet: the header fields and the payload (a copy, as bytes)."""

    def __init__(self, src, dst, proto, ttl, ident, length, payload):
        self.src = src
        self.dst = dst
        self.proto = proto
        self.ttl = ttl
        self.ident = ident
        self.length = length  # total length (header + payload)
        self.payload = payload


def encode(src, dst, proto, payload, ttl=_DEFAULT_TTL, ident=0):
    """A complete IPv4 packet (bytes) around ``payload``; FrameTooLarge above MAX_FRAME."""
    check_addr(src, "src")
    check_addr(dst, "dst")
    check_uint(proto, 8, "protocol")
    check_uint(ttl, 8, "TTL")
    check_uint(ident, 16, "ident")
    total = HEADER_LEN + len(payload)
    check_frame(total, "IPv4")
    buf = bytearray(total)
    struct.pack_into(">BBHHHBBH", buf, 0, 0x45, 0, total, ident, _FLAG_DF, ttl, proto, 0)
    buf[12:16] = src
    buf[16:20] = dst
    c = checksum(buf, 0, HEADER_LEN)
    buf[10] = c >> 8
    buf[11] = c & 0xFF
    buf[HEADER_LEN:] = payload
    return bytes(buf)


def decode(buf):
    """Parse and check an IPv4 packet; returns a Header. Raises only DecodeError.

    Checks: version 4 and IHL 5 (options refused), total length within the buffer and the frame
    limit (trailing bytes are ignored), header checksum, not a fragment.
    """
    if not isinstance(buf, _BUFFERS):
        raise DecodeError("not bytes", type(buf).__name__)
    n = len(buf)
    if n < HEADER_LEN:
        raise DecodeError("ip short", n)
    if buf[0] != 0x45:
        raise DecodeError("ip ihl", buf[0])  # version 4, IHL 5 (no options) expected
    total = (buf[2] << 8) | buf[3]
    if total < HEADER_LEN or total > n:
        raise DecodeError("ip length", total, n)
    if total > MAX_FRAME:
        raise DecodeError("ip big", total)
    if ((buf[6] << 8) | buf[7]) & 0x3FFF:
        raise DecodeError("ip frag")
    if _fold(_sum(buf, 0, HEADER_LEN)) != 0xFFFF:
        raise DecodeError("ip sum")
    return Header(
        bytes(buf[12:16]),
        bytes(buf[16:20]),
        buf[9],
        buf[8],
        (buf[4] << 8) | buf[5],
        total,
        bytes(buf[HEADER_LEN:total]),
    )


def _pseudo_sum(src, dst, proto, length):
    # eight bytes: word by word is cheaper than a call per address on either port
    return (
        ((src[0] << 8) | src[1])
        + ((src[2] << 8) | src[3])
        + ((dst[0] << 8) | dst[1])
        + ((dst[2] << 8) | dst[3])
        + proto
        + length
    )


def udp(src, dst, sport, dport, payload, ttl=_DEFAULT_TTL, ident=0):
    """A complete IPv4/UDP packet (bytes), UDP checksum computed with the pseudo header;
    ``ident``: the IPv4 identification (a sender's own datagrams: one per datagram, so a
    datagram is known by its source and identification, RFC 6864)."""
    check_addr(src, "src")
    check_addr(dst, "dst")
    check_uint(sport, 16, "sport")
    check_uint(dport, 16, "dport")
    length = UDP_LEN + len(payload)
    check_frame(HEADER_LEN + length, "UDP")
    seg = bytearray(length)
    struct.pack_into(">HHHH", seg, 0, sport, dport, length, 0)
    seg[UDP_LEN:] = payload
    c = ~_fold(_sum(seg, 0, length, _pseudo_sum(src, dst, PROTO_UDP, length))) & 0xFFFF
    if c == 0:
        c = 0xFFFF  # RFC 768: a computed 0 is sent as all ones (0 means "no checksum")
    seg[6] = c >> 8
    seg[7] = c & 0xFF
    return encode(src, dst, PROTO_UDP, seg, ttl, ident)


def udp_head(buf, src, dst, sport, dport, n):
    """Write the 28-byte IPv4 and UDP headers of an ``n``-byte UDP payload at ``buf[28:]`` in
    place (no allocation: a board's log frames are built in one preallocated buffer). The UDP
    checksum is 0, "not computed" (RFC 768): the payload carries its own HMAC tag."""
    total = HEADER_LEN + UDP_LEN + n
    struct.pack_into(">BBHHHBBH", buf, 0, 0x45, 0, total, 0, _FLAG_DF, _DEFAULT_TTL, PROTO_UDP, 0)
    buf[12:16] = src
    buf[16:20] = dst
    c = checksum(buf, 0, HEADER_LEN)
    buf[10] = c >> 8
    buf[11] = c & 0xFF
    struct.pack_into(">HHHH", buf, HEADER_LEN, sport, dport, UDP_LEN + n, 0)
    return total


def decode_udp(header):
    """(sport, dport, payload bytes) of a decoded IPv4 packet carrying UDP. Raises DecodeError
    unless the protocol is UDP, the UDP length equals the IPv4 payload length and the checksum
    (when not 0, "not computed") is right."""
    if header.proto != PROTO_UDP:
        raise DecodeError("not udp", header.proto)
    seg = header.payload
    n = len(seg)
    if n < UDP_LEN:
        raise DecodeError("udp short", n)
    length = (seg[4] << 8) | seg[5]
    if length != n:
        raise DecodeError("udp length", length, n)
    if (seg[6] | seg[7]) and _fold(
        _sum(seg, 0, n, _pseudo_sum(header.src, header.dst, PROTO_UDP, n))
    ) != 0xFFFF:
        raise DecodeError("udp sum")
    return ((seg[0] << 8) | seg[1], (seg[2] << 8) | seg[3], seg[UDP_LEN:])


# ---- fields of a packet read in place, before (or instead of) decoding it -------------------
# Offsets in the 20-byte header, the only one the protocol sends (IHL 5; decode refuses
# options). A per-frame path reads a field through these without slicing or allocating.
IDENT_AT = const(4)
PROTO_AT = const(9)
SRC_AT = const(12)
DST_AT = const(16)


def plain(buf):
    """True when ``buf`` holds at least a 20-byte header that starts like one (version 4,
    IHL 5), so its fields can be read at the offsets above. Nothing else is checked: lengths,
    checksum and the rest are decode's."""
    return len(buf) >= HEADER_LEN and buf[0] == 0x45

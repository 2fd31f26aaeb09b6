"""Region publication (project-defined, UDP port 4344): an agent's local bindings flooded to
the members of its mobility region.

The origin signs the publication; forwarders re-send it byte for byte (only the IPv4/UDP headers
and the hop tag change per hop), so the origin's tag stays valid end to end. Every copy ends with
a hop tag (extension 155) that the member sending it computes for the neighbour it sends to:
the next hop toward an origin is learned from a copy, and an IP source and link address are not
evidence of who sent it. Layout and the multi-part snapshot rule: docs/PROTOCOL.md "Region
publication".
"""

import struct

from mobility import auth, ipv4
from mobility.compat import const
from mobility.errors import MAX_FRAME, DecodeError, check_frame
from mobility.errors import check_uint as _u

_MSG_PUBLICATION = const(0x52)  # 'R'
MSG_ACK = const(0x41)  # 'A': acknowledgement of publications, same port (PROTOCOL.md)
ACK_ENTRY = const(8)  # an acknowledged publication: origin (4), epoch (2), seq (2)
ACK_MAX = const(16)  # entries in one acknowledgement at most
_ACK_HEAD = const(6)  # type, count, the acknowledging member's address
_FLAG_FULL = const(0x80)  # full snapshot: replaces what is held for the origin
_FLAG_LAST = const(0x40)  # last part of a full snapshot
_PART_MASK = const(0x3F)  # part index of a full snapshot
MAX_PARTS = const(64)
EXT_AUTH = const(151)
_EXT_HOP = const(155)  # the per-hop tag that ends every copy on the wire
HOP_LEN = const(10)  # type, length 8, the first 8 bytes of HMAC(region key, src || dst || pub)
_HOP_TAG = const(8)
_PUB_TTL = const(1)  # one hop: every member re-sends to its own neighbours

_HEAD = const(12)
_AUTH_LEN = const(22)
_BINDING_LEN = const(6)
_WITHDRAWAL_LEN = const(4)
# room for entries in one frame: 250 - 20 (IPv4) - 8 (UDP) - 12 - 22 - 10 = 178 bytes
ROOM = MAX_FRAME - ipv4.HEADER_LEN - ipv4.UDP_LEN - _HEAD - _AUTH_LEN - HOP_LEN
MAX_PAYLOAD = MAX_FRAME - ipv4.HEADER_LEN - ipv4.UDP_LEN - HOP_LEN  # a publication, unwrapped
# read in place (raw packets and payloads, before decoding): where the fields are
PAYLOAD_AT = const(28)  # the payload in its IPv4/UDP packet: 20 + 8 bytes of headers
ORIGIN_AT = const(2)  # in the payload: the origin's address (4 bytes)
_DPORT_AT = const(22)  # in the packet: the UDP destination port, big-endian
_PORT_HI = const(0x10)  # ipv4.PUB_PORT, 4344
_PORT_LO = const(0xF8)


class Publication:
    """One publication (or one part of a multi-part full snapshot).

    bindings: list of (home address, remaining lifetime in seconds); withdrawals: list of home
    addresses. ``part``/``last`` only mean something when ``full`` is set (see PROTOCOL.md).
    """

    def __init__(
        self,
        origin=None,
        epoch=0,
        seq=0,
        full=False,
        bindings=None,
        withdrawals=None,
        spi=auth.SPI_REGION,
        part=0,
        last=True,
    ):
        self.origin = origin
        self.epoch = epoch  # origin's boot counter, 16-bit serial
        self.seq = seq  # 16-bit serial, reset at boot
        self.full = full
        self.bindings = [] if bindings is None else bindings
        self.withdrawals = [] if withdrawals is None else withdrawals
        self.spi = spi  # None after decoding a publication without authentication
        self.part = part
        self.last = last
        self.tag = None
        self._payload = None  # the received payload, for verify()

    def verify(self, keys, spi=auth.SPI_REGION):
        """True when the publication carries a valid tag under ``spi`` (default: the region key).
        Never raises."""
        p = self._payload
        if p is None or self.tag is None or self.spi != spi:
            return False
        return keys.check(spi, self.tag, memoryview(p)[0 : len(p) - auth.TAG_LEN])


def encode_payload(pub, key):
    """The signed UDP payload of ``pub`` (bytes), forwarded byte for byte by region members.

    key None leaves out the authentication (only for tests of what is rejected). FrameTooLarge
    when the packet around it would exceed one frame (use split() first).
    """
    ipv4.check_addr(pub.origin, "origin")
    nb = len(pub.bindings)
    nw = len(pub.withdrawals)
    size = _HEAD + _BINDING_LEN * nb + _WITHDRAWAL_LEN * nw + (0 if key is None else _AUTH_LEN)
    check_frame(ipv4.HEADER_LEN + ipv4.UDP_LEN + size + HOP_LEN, "publication")
    if pub.full:
        _u(pub.part, 6, "part")
        flags = _FLAG_FULL | pub.part | (_FLAG_LAST if pub.last else 0)
    else:
        if pub.part != 0:
            raise ValueError("part", pub.part)  # only a full snapshot has parts
        flags = 0
    buf = bytearray(size)
    buf[0] = _MSG_PUBLICATION
    buf[1] = flags
    buf[2:6] = pub.origin
    struct.pack_into(">HHBB", buf, 6, _u(pub.epoch, 16, "epoch"), _u(pub.seq, 16, "seq"), nb, nw)
    off = _HEAD
    for entry in pub.bindings:
        home, lifetime = entry
        ipv4.check_addr(home, "home")
        buf[off : off + 4] = home
        struct.pack_into(">H", buf, off + 4, _u(lifetime, 16, "lifetime"))
        off += _BINDING_LEN
    for home in pub.withdrawals:
        ipv4.check_addr(home, "withdrawn")
        buf[off : off + 4] = home
        off += _WITHDRAWAL_LEN
    if key is not None:
        buf[off] = EXT_AUTH
        buf[off + 1] = 20
        struct.pack_into(">I", buf, off + 2, _u(pub.spi, 32, "spi"))
        buf[off + 6 :] = auth.tag(key, memoryview(buf)[0 : off + 6])
    return bytes(buf)


def encode_ack(own, entries, n, key):
    """The UDP payload by which member ``own`` acknowledges ``n`` publications: ``entries``
    holds n x ACK_ENTRY bytes, each a publication's origin, epoch and sequence as they are at
    its payload[ORIGIN_AT:ORIGIN_AT + 8]. Signed with the region ``key`` (raw bytes)."""
    body = _ACK_HEAD + ACK_ENTRY * n
    buf = bytearray(body + _AUTH_LEN)
    buf[0] = MSG_ACK
    buf[1] = n
    buf[2:6] = own
    buf[_ACK_HEAD:body] = memoryview(entries)[0 : ACK_ENTRY * n]
    buf[body] = EXT_AUTH
    buf[body + 1] = 20
    struct.pack_into(">I", buf, body + 2, auth.SPI_REGION)
    buf[body + 6 :] = auth.tag(key, memoryview(buf)[0 : body + 6])
    return bytes(buf)


def ack_count(payload):
    """The number of publications the acknowledgement ``payload`` names when its layout is
    right (type, 1..ACK_MAX entries, exactly that long, an authentication extension under the
    region SPI), else 0. The tag is not checked here; the entries are at _ACK_HEAD +
    ACK_ENTRY * i."""
    n = payload[1] if len(payload) > 1 and payload[0] == MSG_ACK else 0
    body = _ACK_HEAD + ACK_ENTRY * n
    if (
        not 0 < n <= ACK_MAX
        or len(payload) != body + _AUTH_LEN
        or payload[body] != EXT_AUTH
        or payload[body + 1] != 20
        or payload[body + 2] | payload[body + 3] | payload[body + 5]  # auth.SPI_REGION:
        or payload[body + 4] != 2  # 0x00000200
    ):
        return 0
    return n


def packet(src, dst, payload):
    """The IPv4/UDP packet (port 4344 to 4344, TTL 1) carrying ``payload`` (an
    acknowledgement, or a publication with its hop tag: hop_packet) from region member ``src``
    to neighbour ``dst``."""
    return ipv4.udp(src, dst, ipv4.PUB_PORT, ipv4.PUB_PORT, payload, _PUB_TTL)


def hop_packet(keys, src, dst, pub):
    """The packet carrying publication ``pub`` (its signed payload) from member ``src`` to
    neighbour ``dst``, ended by the hop tag for that hop (``keys``: the region key's)."""
    n = len(pub)
    buf = bytearray(n + HOP_LEN)
    buf[0:n] = pub
    buf[n] = _EXT_HOP
    buf[n + 1] = _HOP_TAG
    buf[n + 2 :] = memoryview(keys.tag(auth.SPI_REGION, src, dst, pub))[0:_HOP_TAG]
    return packet(src, dst, buf)


def hop_checked(keys, payload, src, dst):
    """The length of the publication in UDP ``payload`` when the payload ends with a hop tag
    that member ``src`` computed for us, ``dst``; -1 when it does not (one HMAC)."""
    n = len(payload) - HOP_LEN
    if n < _HEAD or payload[n] != _EXT_HOP or payload[n + 1] != _HOP_TAG:
        return -1
    mv = memoryview(payload)
    got = keys.tag(auth.SPI_REGION, src, dst, mv[0:n])
    if got is None or not auth.equal(memoryview(got)[0:_HOP_TAG], mv[n + 2 :]):
        return -1
    return n


def is_publication(pkt):
    """True when the IPv4 packet ``pkt`` is a publication as far as its headers say: IHL 5,
    UDP, destination port 4344, and at least the 28 bytes of the two headers (a UDP datagram
    has its whole 8-byte header, and the payload starts at PAYLOAD_AT). Read in place, without
    allocating; nothing is decoded or verified. Such a packet travels one hop, never in a
    tunnel."""
    return (
        len(pkt) >= PAYLOAD_AT
        and pkt[0] == 0x45
        and pkt[ipv4.PROTO_AT] == ipv4.PROTO_UDP
        and pkt[_DPORT_AT] == _PORT_HI
        and pkt[_DPORT_AT + 1] == _PORT_LO
    )


def is_copy_candidate(payload, off=0):
    """True when the payload at ``off`` is long enough and typed as a publication, so that its
    origin (at off + ORIGIN_AT), epoch (epoch_at) and sequence (seq_at) can be read before
    decoding it all."""
    return len(payload) >= off + _HEAD and payload[off] == _MSG_PUBLICATION


def epoch_at(payload, off=0):
    """The origin's epoch in the publication payload at ``off`` (is_copy_candidate first)."""
    return (payload[off + 6] << 8) | payload[off + 7]


def seq_at(payload, off=0):
    """The sequence number in the publication payload at ``off`` (is_copy_candidate first)."""
    return (payload[off + 8] << 8) | payload[off + 9]


def decode_publication(payload):
    """The Publication in a UDP payload (from ipv4.decode_udp on port 4344).

    The length must be exactly what the counts say, with or without the authentication
    (without: spi None, never verifies), and with or without the hop tag that ends a copy on
    the wire (hop_packet; region members check it with hop_checked first). Does not verify.
    Raises only DecodeError.
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise DecodeError("not bytes", type(payload).__name__)
    p = payload
    n = len(p)
    if n < _HEAD:
        raise DecodeError("pub short", n)
    if n > MAX_PAYLOAD + HOP_LEN:
        raise DecodeError("pub big", n)
    if p[0] != _MSG_PUBLICATION:
        raise DecodeError("pub type", p[0])
    flags = p[1]
    full = bool(flags & _FLAG_FULL)
    if not full and flags:
        raise DecodeError("pub flags", flags)  # part flags without F
    nb = p[10]
    nw = p[11]
    body = _HEAD + _BINDING_LEN * nb + _WITHDRAWAL_LEN * nw
    if n == body + _AUTH_LEN + HOP_LEN and p[n - HOP_LEN] == _EXT_HOP:
        if p[n - HOP_LEN + 1] != _HOP_TAG:
            raise DecodeError("pub hop")  # a bad hop tag header
        n -= HOP_LEN  # (the hop tag is not part of what the origin signed)
    if n == body:
        spi = None
    elif n == body + _AUTH_LEN:
        if p[body] != EXT_AUTH or p[body + 1] != 20:
            raise DecodeError("pub auth")  # a bad authentication extension header
        spi = (p[body + 2] << 24) | (p[body + 3] << 16) | (p[body + 4] << 8) | p[body + 5]
    else:
        raise DecodeError("pub length", n, nb, nw)  # bytes for so many entries
    bindings = []
    off = _HEAD
    for _ in range(nb):
        bindings.append((bytes(p[off : off + 4]), (p[off + 4] << 8) | p[off + 5]))
        off += _BINDING_LEN
    withdrawals = []
    for _ in range(nw):
        withdrawals.append(bytes(p[off : off + 4]))
        off += _WITHDRAWAL_LEN
    pub = Publication(
        bytes(p[ORIGIN_AT : ORIGIN_AT + 4]),
        epoch_at(p),
        seq_at(p),
        full,
        bindings,
        withdrawals,
        spi,
        flags & _PART_MASK if full else 0,
        bool(flags & _FLAG_LAST) if full else True,
    )
    if spi is not None:
        pub._payload = bytes(p[0:n])
        pub.tag = pub._payload[n - auth.TAG_LEN :]
    return pub


def split(bindings, withdrawals):
    """Cut a batch into chunks [(bindings, withdrawals), ...] that each fit one frame (29
    bindings, or 44 withdrawals, or a mix within ROOM bytes). An empty batch gives one empty
    chunk (a full snapshot of nothing is meaningful)."""
    chunks = []
    bi = 0
    wi = 0
    nb = len(bindings)
    nw = len(withdrawals)
    while True:
        room = ROOM
        cb = []
        cw = []
        while bi < nb and room >= _BINDING_LEN:
            cb.append(bindings[bi])
            bi += 1
            room -= _BINDING_LEN
        while wi < nw and room >= _WITHDRAWAL_LEN:
            cw.append(withdrawals[wi])
            wi += 1
            room -= _WITHDRAWAL_LEN
        chunks.append((cb, cw))
        if bi >= nb and wi >= nw:
            return chunks

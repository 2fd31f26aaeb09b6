"""Agent advertisement, host reply and solicitation: ICMP router advertisement (type 9) and
router solicitation (type 10) with the Mobile IPv4 agent advertisement extension (type 16) and
the roam extensions 150 (agent info), 152 (requested service level) and 151 (authentication).

Layouts: docs/PROTOCOL.md "Agent advertisement" and "Solicitation". The tag covers the ICMP
message from its type byte through the SPI, computed with the ICMP checksum field as 0; the ICMP
checksum is computed last, over everything including the tag.
"""

import struct

from mobility import auth, ipv4
from mobility.compat import const
from mobility.errors import DecodeError
from mobility.errors import check_uint as _u

ICMP_ADVERT = const(9)
ICMP_SOLICIT = const(10)
_EXT_PAD = const(0)  # one-byte padding extension (RFC 5944)
_EXT_MOBILITY = const(16)  # RFC 5944 mobility agent advertisement extension
_EXT_PREFIX_LENGTHS = const(19)  # RFC 5944 2.1.2 prefix-lengths extension (known, not used)
_EXT_INFO = const(150)  # roam agent info
EXT_AUTH = const(151)  # roam authentication
EXT_SOLICIT = const(152)  # roam requested service level

# RFC 5944 agent advertisement flags
FLAG_R = const(0x80)  # registration required
FLAG_B = const(0x40)  # busy
_FLAG_H = const(0x20)  # home agent
FLAG_F = const(0x10)  # foreign agent
FLAG_M = const(0x08)
FLAG_G = const(0x04)
FLAG_T = const(0x01)  # reverse tunnelling

# services offered (agent info extension)
SVC_ROUTING = const(0x01)
SVC_REVERSE = const(0x02)
SVC_REGION = const(0x04)
SVC_HOST = const(0x08)  # host-to-host contact only (a host reply)

OUTAGE_NONE = const(0xFFFF)  # outage_in: no outage planned

# requested service level (solicitation), downgraded from ROUTING to HOST
LEVEL_ROUTING = const(2)
LEVEL_HOST = const(1)

_ADV_TTL = const(1)
_RA_LEN = const(16)  # RFC 1256 header with one address entry
AUTH_EXT_LEN = const(22)


_NO_MAC = bytes(6)  # an agent that does not know its MAC (a harness): no link address signed


def relayed(adv, mac):
    """True when ``adv`` names its sender's MAC and frame source ``mac`` is another: a copy
    that a third station sent on (issue 15, finding 1: a relay between a node and an agent)."""
    return adv.mac is not None and adv.mac != mac


def _mac(m):
    if len(m) != 6:
        raise ValueError("mac", len(m))  # 6 bytes
    return m


class Advertisement:
    """An agent advertisement (or, with ``is_host_reply``, a host's answer to a host-to-host
    solicitation: no mobility extension, services SVC_HOST)."""

    def __init__(
        self,
        src=None,
        dst=ipv4.BCAST_ADDR,
        adv_lifetime=0,
        seq=0,
        reg_lifetime=0,
        flags=0,
        coa=None,
        services=0,
        capacity=0,
        load=0,
        outage_in=OUTAGE_NONE,
        outage_for=0,
        nonce=0,
        spi=auth.SPI_CELL,
        is_host_reply=False,
        challenge=0,
        mac=None,
    ):
        self.src = src
        self.dst = dst
        self.adv_lifetime = adv_lifetime  # seconds
        self.seq = seq  # 16-bit serial (replay protection)
        self.reg_lifetime = reg_lifetime  # seconds, longest local binding granted
        self.flags = flags
        self.coa = coa  # care-of address; None: the agent's address (src)
        self.services = services
        self.capacity = capacity
        self.load = load
        self.outage_in = outage_in  # seconds until a planned outage, OUTAGE_NONE: none
        self.outage_for = outage_for  # seconds the outage lasts
        self.nonce = nonce  # the agent's boot nonce (32 bits)
        self.spi = spi  # None after decoding a message without authentication
        self.is_host_reply = is_host_reply
        # an answer to a solicitation echoes its challenge (in the signed preference field of
        # the router address entry), which proves it fresh; 0 in broadcast advertisements
        self.challenge = challenge
        # the sender's link address, signed with the rest (None: not known to the sender): a
        # copy of it from another MAC was relayed, and is not taken (docs/CORE.md)
        self.mac = mac
        self.tag = None
        self._icmp = None  # the received ICMP message, for verify()
        self._tag_off = 0

    def verify(self, keys, spi=auth.SPI_CELL):
        """True when the message carries a valid tag under ``spi`` (default: the cell key)."""
        return _verify(self, keys, spi)


class Solicitation:
    """A router solicitation asking for a service level (LEVEL_ROUTING, then LEVEL_HOST)."""

    def __init__(
        self,
        src=None,
        level=LEVEL_ROUTING,
        attempt=0,
        spi=auth.SPI_CELL,
        dst=ipv4.BCAST_ADDR,
        challenge=0,
    ):
        self.src = src
        self.level = level
        self.attempt = attempt  # 0..255, saturating
        self.spi = spi
        self.dst = dst
        self.challenge = challenge  # 32 bits in the reserved word; answers echo it
        self.tag = None
        self._icmp = None
        self._tag_off = 0

    def verify(self, keys, spi=auth.SPI_CELL):
        """True when the message carries a valid tag under ``spi`` (default: the cell key)."""
        return _verify(self, keys, spi)


def _verify(msg, keys, spi):
    if msg._icmp is None or msg.tag is None or msg.spi != spi:
        return False
    return _check(msg, keys, spi)


def _check(msg, keys, spi):
    icmp = msg._icmp
    mv = memoryview(icmp)
    # the IPv4 source is covered too: a replayed message under another source never verifies
    return keys.check(spi, msg.tag, msg.src, mv[0:2], b"\x00\x00", mv[4 : msg._tag_off])


def finish(buf, key, spi, auth_off, src, dst):
    """Write the auth extension at ``auth_off`` (unless key is None), then the ICMP checksum,
    and wrap the message in its IPv4 header."""
    if key is not None:
        _u(spi, 32, "spi")
        buf[auth_off] = EXT_AUTH
        buf[auth_off + 1] = 20
        struct.pack_into(">I", buf, auth_off + 2, spi)
        # covers the IPv4 source address, then the ICMP message through the SPI
        t = auth.tag(key, src, memoryview(buf)[0 : auth_off + 6])
        buf[auth_off + 6 : auth_off + 22] = t
    c = ipv4.checksum(buf)
    buf[2] = c >> 8
    buf[3] = c & 0xFF
    return ipv4.encode(src, dst, ipv4.PROTO_ICMP, buf, _ADV_TTL)


def encode_advertisement(adv, key):
    """The IPv4 packet of ``adv`` signed with ``key`` (raw key bytes for adv.spi); key None
    leaves out the authentication extension (only for tests of what receivers reject)."""
    ipv4.check_addr(adv.src, "src")
    coa = adv.src if adv.coa is None else adv.coa
    ipv4.check_addr(coa, "coa")
    n = _RA_LEN + (0 if adv.is_host_reply else 12) + 19 + (0 if key is None else AUTH_EXT_LEN)
    buf = bytearray(n)
    buf[0] = ICMP_ADVERT
    buf[4] = 1  # one router address
    buf[5] = 2  # address entry size in 32-bit words
    struct.pack_into(">H", buf, 6, _u(adv.adv_lifetime, 16, "adv_lifetime"))
    buf[8:12] = adv.src  # router address
    struct.pack_into(">I", buf, 12, _u(adv.challenge, 32, "challenge"))  # preference level
    off = _RA_LEN
    if not adv.is_host_reply:
        struct.pack_into(
            ">BBHHBB",
            buf,
            off,
            _EXT_MOBILITY,
            10,
            _u(adv.seq, 16, "seq"),
            _u(adv.reg_lifetime, 16, "reg_lifetime"),
            _u(adv.flags, 8, "flags"),
            0,
        )
        buf[off + 8 : off + 12] = coa
        off += 12
    struct.pack_into(
        ">BBBBBHHI",
        buf,
        off,
        _EXT_INFO,
        17,
        _u(adv.services, 8, "services"),
        _u(adv.capacity, 8, "capacity"),
        _u(adv.load, 8, "load"),
        _u(adv.outage_in, 16, "outage_in"),
        _u(adv.outage_for, 16, "outage_for"),
        _u(adv.nonce, 32, "nonce"),
    )
    if adv.mac is not None:
        buf[off + 13 : off + 19] = _mac(adv.mac)
    off += 19
    dst = adv.dst
    ipv4.check_addr(dst, "dst")
    return finish(buf, key, adv.spi, off, adv.src, dst)


def _auth_ext(msg, p, off, end):
    if end - off != 22:
        raise DecodeError("icmp auth", end - off - 2)  # length 20 expected
    if end != len(p):
        raise DecodeError("icmp last")  # the auth extension is not the last
    msg.spi = (p[off + 2] << 24) | (p[off + 3] << 16) | (p[off + 4] << 8) | p[off + 5]
    msg.tag = p[off + 6 : end]
    msg._tag_off = off + 6


def decode_icmp(header, into=None):
    """The Advertisement or Solicitation in a decoded IPv4 packet (see ipv4.decode).

    Checks the ICMP checksum and every length; does not verify authentication (msg.verify does).
    A message without the auth extension decodes with spi None and never verifies.
    Raises only DecodeError. ``into``: an (Advertisement, Solicitation) pair filled in anew
    instead of new messages (an agent's: a message of 17 attributes is the largest block it
    would allocate per frame); the caller keeps nothing of one past the next decode.
    """
    if header.proto != ipv4.PROTO_ICMP:
        raise DecodeError("not icmp", header.proto)
    p = header.payload
    n = len(p)
    if n < 8:
        raise DecodeError("icmp short", n)
    if ipv4.checksum(p) != 0:
        raise DecodeError("icmp sum")
    kind = p[0]
    if kind == ICMP_ADVERT:
        if p[1] not in (0, 16):
            raise DecodeError("adv code", p[1])
        count = p[4]
        size = p[5]
        if count and size < 2:
            raise DecodeError("adv addrs", count, size)  # addresses of < 2 words
        off = 8 + 4 * count * size
        if off > n:
            raise DecodeError("adv addrs", count, size)  # the list runs past the message
        # The agent is the IPv4 source (covered by the tag). RFC 5944 2.1 lets an agent list
        # no router address, or others than its source: both are accepted; the challenge
        # is the preference of the first entry, when there is one.
        if into is None:
            msg = Advertisement(header.src, header.dst, (p[6] << 8) | p[7], spi=None)
        else:
            msg = into[0]
            Advertisement.__init__(msg, header.src, header.dst, (p[6] << 8) | p[7], spi=None)
        msg.is_host_reply = True  # until a mobility extension is found
        if count:
            msg.challenge = int.from_bytes(p[12:16], "big")  # preference of the first entry
        msg.outage_in = OUTAGE_NONE
    elif kind == ICMP_SOLICIT:
        if p[1] != 0:
            raise DecodeError("sol code", p[1])
        if into is None:
            msg = Solicitation(header.src, LEVEL_ROUTING, 0, None, header.dst)
        else:
            msg = into[1]
            Solicitation.__init__(msg, header.src, LEVEL_ROUTING, 0, None, header.dst)
        msg.challenge = int.from_bytes(p[4:8], "big")
        off = 8
    else:
        raise DecodeError("icmp type", kind)  # neither advertisement nor solicitation
    seen = 0  # bit per known extension: 1 mobility, 2 info, 4 solicit, 8 auth
    while off < n:
        t = p[off]
        if t == _EXT_PAD:
            off += 1
            continue
        if off + 2 > n:
            raise DecodeError("icmp ext", off)  # a truncated extension header at off
        end = off + 2 + p[off + 1]
        if end > n:
            raise DecodeError("icmp ext", off, t)  # extension t runs past the message
        length = end - off - 2
        if t == EXT_AUTH:
            _auth_ext(msg, p, off, end)
        elif kind == ICMP_ADVERT and t == _EXT_MOBILITY:
            if seen & 1:
                raise DecodeError("adv twice", t)  # two mobility extensions
            seen |= 1
            if length < 6 or (length - 6) & 3:
                raise DecodeError("adv ext", t, length)  # the mobility extension's length
            msg.is_host_reply = False
            msg.seq = (p[off + 2] << 8) | p[off + 3]
            msg.reg_lifetime = (p[off + 4] << 8) | p[off + 5]
            msg.flags = p[off + 6]
            msg.coa = p[off + 8 : off + 12] if length >= 10 else None
        elif kind == ICMP_ADVERT and t == _EXT_INFO:
            if seen & 2:
                raise DecodeError("adv twice", t)  # two agent-info extensions
            seen |= 2
            if length != 17:
                raise DecodeError("adv ext", t, length)  # the agent-info extension's length
            msg.services = p[off + 2]
            msg.capacity = p[off + 3]
            msg.load = p[off + 4]
            msg.outage_in = (p[off + 5] << 8) | p[off + 6]
            msg.outage_for = (p[off + 7] << 8) | p[off + 8]
            msg.nonce = int.from_bytes(p[off + 9 : off + 13], "big")
            m = bytes(p[off + 13 : off + 19])
            msg.mac = None if m == _NO_MAC else m
        elif kind == ICMP_SOLICIT and t == EXT_SOLICIT:
            if seen & 4:
                raise DecodeError("sol twice", t)  # two service-level extensions
            seen |= 4
            if length != 2:
                raise DecodeError("sol ext", t, length)  # the service-level extension's length
            msg.level = p[off + 2]
            msg.attempt = p[off + 3]
        elif t < 128 and not (kind == ICMP_ADVERT and t == _EXT_PREFIX_LENGTHS):
            # RFC 5944 2.1: an unknown extension 0..127 discards the message; 128..255 skipped
            raise DecodeError("icmp ext", off, t)  # an unknown extension below 128
        off = end
    if msg.tag is not None:
        msg._icmp = p
    return msg

"""Mobile IPv4 registration request (type 1) and reply (type 3) on UDP 434 (RFC 5944 §3.3-3.4),
used for local bindings (with the agent) and remote bindings (home agent, correspondents,
proxy bindings), each followed by one authentication extension:

* type 33 mobile-foreign: a local binding, signed with the cell key (SPI_CELL);
* type 32 mobile-home: a remote binding, signed with the node's home key (auth.spi_home(n)), or
  for a proxy binding made by a region router, with the region key (SPI_REGION).

The tag is HMAC-SHA256-128 over the UDP payload from the type byte through the SPI.
Identification (64 bits) = receiver's boot nonce (32) || sender's counter (32); see replay.py.
"""

import struct

from mobility import auth, ipv4
from mobility.compat import const
from mobility.errors import DecodeError
from mobility.errors import check_uint as _u

TYPE_REQUEST = const(1)
_TYPE_REPLY = const(3)
EXT_MH_AUTH = const(32)  # mobile-home authentication (remote binding)
EXT_MF_AUTH = const(33)  # mobile-foreign authentication (local binding)
# roam link extension (project-defined, skippable): the link-layer addresses a local binding
# uses, inside the signed data: node MAC (6) || agent MAC (6), then in a request the sequence
# of the agent's newest advertisement the node took (2: the agent's challenge echoed, RFC 4721
# in spirit: a request is fresh only for a few advertisements), in a reply the request's
# identification (8)
EXT_LINK = const(153)
_LINK_REQ = const(14)
_LINK_REP = const(20)

# request flags
FLAG_S = const(0x80)  # simultaneous bindings (make-before-break)
FLAG_B = const(0x40)
_FLAG_D = const(0x20)
FLAG_M = const(0x10)
FLAG_G = const(0x08)
FLAG_T = const(0x02)

# reply codes
ACCEPTED = const(0)
_FA_UNSPECIFIED = const(64)
FA_NO_RESOURCES = const(66)  # agent full
_FA_AUTH_FAILED = const(67)
_FA_LIFETIME_TOO_LONG = const(69)
FA_POORLY_FORMED = const(70)
HA_UNSPECIFIED = const(128)
HA_NO_RESOURCES = const(130)
_HA_AUTH_FAILED = const(131)
IDENT_MISMATCH = const(133)

REQ_LEN = const(24)
_REP_LEN = const(20)
AUTH_EXT_LEN = const(22)
_REG_TTL = const(64)


class _Registration:
    def _init_auth(self):
        self.tag = None
        self._payload = None  # the received UDP payload, for verify()
        self._tag_off = 0

    def verify(self, keys, spi=None):
        """True when the message carries a valid tag. With ``spi`` the SPI must be that one;
        without, the usual one for the extension type: SPI_CELL under type 33, a home key or
        SPI_REGION (proxy binding) under type 32. ``keys`` may instead be the padded blocks of
        one key (auth.pads: a node's binding key the agent derived). Never raises."""
        if self._payload is None or self.tag is None:
            return False
        if isinstance(keys, tuple):
            got = auth.mac(keys, memoryview(self._payload)[0 : self._tag_off])
            return auth.equal(memoryview(got)[0 : auth.TAG_LEN], self.tag)
        if spi is None:
            if self.ext_type == EXT_MF_AUTH:
                ok = self.spi == auth.SPI_NODE
            else:
                ok = self.spi == auth.SPI_REGION or auth.is_home_spi(self.spi)
        else:
            ok = self.spi == spi
        if not ok:
            return False
        return keys.check(self.spi, self.tag, memoryview(self._payload)[0 : self._tag_off])


class RegRequest(_Registration):
    def __init__(
        self,
        src=None,
        dst=None,
        flags=0,
        lifetime=0,
        home=None,
        home_agent=ipv4.ANY_ADDR,
        coa=None,
        ident=0,
        ext_type=EXT_MF_AUTH,
        spi=auth.SPI_NODE,
        node_mac=None,
        agent_mac=None,
        agent_seq=0,
    ):
        self.src = src
        self.dst = dst
        self.flags = flags
        self.lifetime = lifetime  # seconds, 0 = deregistration
        self.home = home
        self.home_agent = home_agent
        self.coa = coa  # the agent holding the local binding
        self.ident = ident  # 64 bits
        self.ext_type = ext_type  # EXT_MF_AUTH (local) or EXT_MH_AUTH (remote); None: no auth
        self.spi = spi
        # the link extension (a local binding): the node's MAC and the agent MAC it addressed;
        # None: none (remote bindings)
        self.node_mac = node_mac
        self.agent_mac = agent_mac
        # the sequence of the agent's newest advertisement the node took: the agent takes the
        # request only while that is recent (cell.Beacon.fresh)
        self.agent_seq = agent_seq
        self.sport = ipv4.REG_PORT  # the UDP source port (a reply goes back to it)
        self._init_auth()


class RegReply(_Registration):
    def __init__(
        self,
        src=None,
        dst=None,
        code=ACCEPTED,
        lifetime=0,
        home=None,
        home_agent=ipv4.ANY_ADDR,
        ident=0,
        ext_type=EXT_MF_AUTH,
        spi=auth.SPI_NODE,
        node_mac=None,
        agent_mac=None,
        req_ident=0,
    ):
        self.src = src
        self.dst = dst
        self.code = code
        self.lifetime = lifetime  # seconds granted
        self.home = home
        self.home_agent = home_agent
        self.ident = ident
        self.ext_type = ext_type
        self.spi = spi
        # the link extension of a local binding's reply: the MACs the request named and its
        # identification (a 133 carries the agent's counter in ``ident``: this says which
        # request it refused); node_mac None: none
        self.node_mac = node_mac
        self.agent_mac = agent_mac
        self.req_ident = req_ident
        self.dport = ipv4.REG_PORT  # the UDP destination port (the request's source port)
        self._init_auth()


def link_ext(msg, buf, off, reply):
    """Write the link extension at ``off`` (none without ``node_mac``); the offset after it.
    With ``buf`` None: only that offset."""
    if msg.node_mac is None:
        return off
    n = _LINK_REP if reply else _LINK_REQ
    if buf is not None:
        buf[off] = EXT_LINK
        buf[off + 1] = n
        if len(msg.node_mac) != 6 or msg.agent_mac is None or len(msg.agent_mac) != 6:
            raise ValueError("node_mac")
        buf[off + 2 : off + 8] = msg.node_mac
        buf[off + 8 : off + 14] = msg.agent_mac
        if reply:
            buf[off + 14 : off + 22] = _u(msg.req_ident, 64, "req_ident").to_bytes(8, "big")
        else:
            struct.pack_into(">H", buf, off + 14, _u(msg.agent_seq, 16, "agent_seq"))
    return off + 2 + n


def finish(msg, buf, fixed, key, dport=ipv4.REG_PORT):
    if key is not None:
        if msg.ext_type not in (EXT_MH_AUTH, EXT_MF_AUTH):
            raise ValueError("ext_type", msg.ext_type)  # 32 or 33
        buf[fixed] = msg.ext_type
        buf[fixed + 1] = 20
        struct.pack_into(">I", buf, fixed + 2, _u(msg.spi, 32, "spi"))
        if isinstance(key, tuple):  # padded blocks (auth.pads): a key derived per message
            buf[fixed + 6 :] = auth.mac(key, memoryview(buf)[0 : fixed + 6])[0 : auth.TAG_LEN]
        else:
            buf[fixed + 6 :] = auth.tag(key, memoryview(buf)[0 : fixed + 6])
    ipv4.check_addr(msg.src, "src")
    ipv4.check_addr(msg.dst, "dst")
    return ipv4.udp(msg.src, msg.dst, ipv4.REG_PORT, dport, buf, _REG_TTL)


def common(buf, msg):
    ipv4.check_addr(msg.home, "home")
    ipv4.check_addr(msg.home_agent, "home_agent")
    buf[4:8] = msg.home
    buf[8:12] = msg.home_agent


def encode_reply(rep, key):
    """The IPv4/UDP packet of ``rep`` signed with ``key`` (raw bytes, or padded blocks from
    auth.pads); key None: no authentication."""
    n = link_ext(rep, None, _REP_LEN, True)
    buf = bytearray(n + (0 if key is None else AUTH_EXT_LEN))
    buf[0] = _TYPE_REPLY
    buf[1] = _u(rep.code, 8, "code")
    struct.pack_into(">H", buf, 2, _u(rep.lifetime, 16, "lifetime"))
    common(buf, rep)
    buf[12:20] = _u(rep.ident, 64, "ident").to_bytes(8, "big")
    return finish(rep, buf, link_ext(rep, buf, _REP_LEN, True), key, rep.dport)


def decode_registration(header, into=None):
    """The RegRequest or RegReply in a decoded IPv4 packet (UDP to port 434).

    Checks the UDP length and checksum and every extension length; the authentication
    extension, when present, must be the last. Without it, ext_type and spi are None and the
    message never verifies. An unknown extension of type 0..127 makes the message malformed
    (RFC 5944 3.6.1.3, 3.8.3.1); 128..255 are skipped. Does not verify authentication. Raises
    only DecodeError. ``into``: a (RegRequest, RegReply) pair filled in anew instead of new
    messages (an agent's, as advert.decode_icmp's); the caller keeps nothing of one past the
    next decode.
    """
    sport, dport, p = ipv4.decode_udp(header)
    if dport != ipv4.REG_PORT:
        raise DecodeError("reg port", dport)  # 434 expected
    n = len(p)
    if n < 1:
        raise DecodeError("reg empty")
    kind = p[0]
    if kind == TYPE_REQUEST:
        if n < REQ_LEN:
            raise DecodeError("reg short", kind, n)  # a request: at least 24 bytes
        if into is None:
            msg = RegRequest(header.src, header.dst, p[1], (p[2] << 8) | p[3])
        else:
            msg = into[0]
            RegRequest.__init__(msg, header.src, header.dst, p[1], (p[2] << 8) | p[3])
        msg.coa = p[12:16]
        msg.sport = sport
        fixed = REQ_LEN
    elif kind == _TYPE_REPLY:
        if n < _REP_LEN:
            raise DecodeError("reg short", kind, n)  # a reply: at least 20 bytes
        if into is None:
            msg = RegReply(header.src, header.dst, p[1], (p[2] << 8) | p[3])
        else:
            msg = into[1]
            RegReply.__init__(msg, header.src, header.dst, p[1], (p[2] << 8) | p[3])
        msg.dport = dport
        fixed = _REP_LEN
    else:
        raise DecodeError("reg type", kind)
    msg.home = p[4:8]
    msg.home_agent = p[8:12]
    msg.ident = int.from_bytes(p[fixed - 8 : fixed], "big")
    msg.ext_type = None
    msg.spi = None
    off = fixed
    while off < n:
        if off + 2 > n:
            raise DecodeError("reg ext", off)  # a truncated extension header at off
        t = p[off]
        end = off + 2 + p[off + 1]
        if end > n:
            raise DecodeError("reg ext", off, t)  # extension t runs past the message
        if t == EXT_MH_AUTH or t == EXT_MF_AUTH:
            if end - off != AUTH_EXT_LEN:
                raise DecodeError("reg auth", end - off - 2)  # length 20 expected
            if end != n:
                raise DecodeError("reg last")  # the auth extension is not the last
            msg.ext_type = t
            msg.spi = (p[off + 2] << 24) | (p[off + 3] << 16) | (p[off + 4] << 8) | p[off + 5]
            msg.tag = p[off + 6 : end]
            msg._tag_off = off + 6
            msg._payload = p
        elif t == EXT_LINK:
            if msg.node_mac is not None:
                raise DecodeError("reg ext", off, t)
            want = _LINK_REQ if kind == TYPE_REQUEST else _LINK_REP
            if end - off - 2 != want:
                raise DecodeError("reg ext", off, t)
            msg.node_mac = p[off + 2 : off + 8]
            msg.agent_mac = p[off + 8 : off + 14]
            if kind == _TYPE_REPLY:
                msg.req_ident = int.from_bytes(p[off + 14 : off + 22], "big")
            else:
                msg.agent_seq = (p[off + 14] << 8) | p[off + 15]
        elif t < 128:
            raise DecodeError("reg ext", off, t)
        off = end
    return msg

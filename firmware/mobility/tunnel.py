"""IP-in-IP tunnel (RFC 2003): an outer IPv4 header, protocol 4, around the inner packet.

The outer packet must fit one frame too, so the largest packet that can be tunnelled is
MAX_FRAME - 20 = 230 bytes; a larger one is refused (FrameTooLarge), never truncated.
The entry decrements the inner TTL itself (ipv4.dec_ttl) before encapsulating, as a router would.
"""

from mobility import ipv4
from mobility.compat import const
from mobility.errors import DecodeError, check_frame

TUNNEL_TTL = const(64)
_MAX_INNER = const(230)


def encapsulate(src, dst, inner, ttl=TUNNEL_TTL):
    """The outer IPv4 packet (bytes) from tunnel entry ``src`` to the care-of agent ``dst``."""
    if len(inner) < ipv4.HEADER_LEN or inner[0] >> 4 != 4:
        raise ValueError("inner", len(inner))  # not an IPv4 packet
    check_frame(ipv4.HEADER_LEN + len(inner), "tunnel")
    return ipv4.encode(src, dst, ipv4.PROTO_IPIP, inner, ttl)


def decapsulate(header):
    """The inner packet (bytes) of a decoded IP-in-IP packet; the caller decodes it with
    ipv4.decode, which checks it fully. Raises only DecodeError. A tunnel inside a tunnel is
    refused: no entry of this protocol nests them, and each level of a nested one would be
    one more backbone send for a single frame."""
    if header.proto != ipv4.PROTO_IPIP:
        raise DecodeError("not ipip", header.proto)
    inner = header.payload
    if len(inner) < ipv4.HEADER_LEN or inner[0] != 0x45:
        raise DecodeError("ipip inner", len(inner))  # not an IPv4 packet
    if inner[ipv4.PROTO_AT] == ipv4.PROTO_IPIP:
        raise DecodeError("ipip twice")  # a tunnel in a tunnel
    return inner

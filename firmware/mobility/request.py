"""The sending side of a registration: the request's encoding (registration.py holds the
messages and what every side decodes) and the counter its Identification carries. A mobile node
(exchange.py) and a correspondent (remoteclient.py) send requests; an agent and a home agent
only answer them, and on a board every byte of code is heap, so they do not load this.
"""

import struct

from mobility import ipv4, registration
from mobility.auth import serial_newer
from mobility.errors import check_uint

_MASK32 = 0xFFFFFFFF


def make_ident(nonce, counter):
    """The 64-bit Identification: receiver's nonce || sender's counter."""
    return ((nonce & _MASK32) << 32) | (counter & _MASK32)


def encode_request(req, key):
    """The IPv4/UDP packet of ``req`` signed with ``key`` (raw bytes of the key of req.spi);
    key None leaves out the authentication extension (only for tests of what is rejected)."""
    n = registration.link_ext(req, None, registration.REQ_LEN, False)
    buf = bytearray(n + (0 if key is None else registration.AUTH_EXT_LEN))
    buf[0] = registration.TYPE_REQUEST
    buf[1] = check_uint(req.flags, 8, "flags")
    struct.pack_into(">H", buf, 2, check_uint(req.lifetime, 16, "lifetime"))
    registration.common(buf, req)
    ipv4.check_addr(req.coa, "coa")
    buf[12:16] = req.coa
    buf[16:24] = check_uint(req.ident, 64, "ident").to_bytes(8, "big")
    return registration.finish(
        req, buf, registration.link_ext(req, buf, registration.REQ_LEN, False), key
    )


class IdentCounter:
    """Sender side: one monotonic counter per node, the receiver's nonce per request."""

    def __init__(self, counter=0):
        self.counter = counter

    def next(self, nonce):
        """The Identification of the next request to a receiver whose nonce is ``nonce``."""
        self.counter = (self.counter + 1) & _MASK32
        return make_ident(nonce, self.counter)

    def adopt(self, reply_ident):
        """After a 133 reply: continue above the receiver's last accepted counter (when it is
        newer than ours by serial order: a counter near 2**32 is continued past the wrap);
        returns the receiver's nonce to use for the retry."""
        last = reply_ident & _MASK32
        if serial_newer(last, self.counter, 32):
            self.counter = last
        return (reply_ident >> 32) & _MASK32

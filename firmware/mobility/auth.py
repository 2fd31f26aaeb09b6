"""Authentication of routing-state messages: HMAC-SHA256 truncated to 128 bits, keys by SPI.

MicroPython has no ``hmac`` module, so the RFC 2104 construction is written out over
``hashlib.sha256``. Its sha256 objects cannot be copied, so what can be precomputed per key is
the two padded 64-byte blocks (key XOR ipad, key XOR opad); the ``Keys`` table builds them once
per key so that verifying a message costs two hash runs and no key preparation.

The tag is the first 16 bytes of the HMAC (HMAC-SHA-256-128, as RFC 4868): forging one takes
2**128 tries on average, and the shorter tag keeps a registration well inside one 250-byte frame.
"""

import hashlib

from mobility.compat import const

SPI_CELL = const(0x100)  # cell key: advertisements, solicitations, local bindings
SPI_NODE = const(0x101)  # a mobile node's own binding key K_X: its local bindings (only X)
SPI_NODE_SECRET = const(0x102)  # infrastructure's binding secret: agents derive every K_X
SPI_REGION = const(0x200)  # region key: publications, proxy bindings
_SPI_HOME_BASE = const(0x10000)  # home key of node n: _SPI_HOME_BASE + n (remote bindings)
_SPI_HOME_LAST = const(0x1FFFF)
TAG_LEN = const(16)
_BLOCK = const(64)  # SHA-256 block size

_sha256 = hashlib.sha256


def spi_home(node_id):
    """The SPI of node ``node_id``'s home key."""
    if not 0 <= node_id <= _SPI_HOME_LAST - _SPI_HOME_BASE:
        raise ValueError("node_id", node_id)  # 0..65535
    return _SPI_HOME_BASE + node_id


def is_home_spi(spi):
    return _SPI_HOME_BASE <= spi <= _SPI_HOME_LAST


def pads(key):
    """The RFC 2104 padded key blocks ``(key ^ ipad, key ^ opad)``, 64 bytes each."""
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise ValueError("key", type(key).__name__)  # bytes
    key = bytes(key)
    if not key:
        raise ValueError("key", 0)  # empty
    if len(key) > _BLOCK:  # RFC 2104: a long key is hashed first
        key = _sha256(key).digest()
    inner = bytearray(_BLOCK)
    outer = bytearray(_BLOCK)
    n = len(key)
    for i in range(_BLOCK):
        k = key[i] if i < n else 0
        inner[i] = k ^ 0x36
        outer[i] = k ^ 0x5C
    return (bytes(inner), bytes(outer))


def mac(padded, a, b=None, c=None, d=None):
    """HMAC-SHA256 (32 bytes) with precomputed ``padded`` blocks over the concatenation a|b|c|d.

    Several parts let a verifier cover a message with a zeroed checksum without copying it.
    """
    h = _sha256(padded[0])
    h.update(a)
    if b is not None:
        h.update(b)
    if c is not None:
        h.update(c)
    if d is not None:
        h.update(d)
    h2 = _sha256(padded[1])
    h2.update(h.digest())
    return h2.digest()


# Encoders are called with raw key bytes; keep the padded blocks of the last few keys.
_cache: dict = {}
_CACHE_MAX = const(8)


def _pads_cached(key):
    k = bytes(key)
    p = _cache.get(k)
    if p is None:
        p = pads(k)
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[k] = p
    return p


def hmac_sha256(key, data):
    """HMAC-SHA256 of ``data`` under ``key`` (RFC 2104), 32 bytes."""
    return mac(pads(key), data)


def node_key(secret, home):
    """K_X, the binding key of home address ``home`` (4 bytes): HMAC-SHA256(secret, "B" ||
    home)[:16]. Only X and the infrastructure (which holds ``secret``) have it, so a binding
    for X is made only by X (docs/PROTOCOL.md "Authentication")."""
    return hmac_sha256(secret, b"B" + bytes(home))[:TAG_LEN]


def tag(key, data, more=None):
    """The 16-byte tag (HMAC-SHA256-128) of ``data`` (then ``more``) under raw ``key`` bytes."""
    return mac(_pads_cached(key), data, more)[:TAG_LEN]


def equal(a, b):
    """Compare two tags without stopping at the first difference (accumulated XOR)."""
    if a is None or b is None or len(a) != len(b):
        return False
    acc = 0
    for i in range(len(a)):
        acc |= a[i] ^ b[i]
    return acc == 0


def serial_newer(a, b, bits=16):
    """RFC 1982 serial-number arithmetic: True when ``a`` is newer than ``b``.

    Exactly half the space apart is undefined in RFC 1982; it counts as not newer here.
    """
    d = (a - b) & ((1 << bits) - 1)
    return 0 < d < (1 << (bits - 1))


class Keys:
    """The node's key table, SPI -> key, with the padded blocks prepared once per key."""

    def __init__(self, table=None):
        self._keys = {}
        self._pads = {}
        if table:
            for spi in table:
                self.set(spi, table[spi])

    def set(self, spi, key):
        if not isinstance(spi, int) or not 0 <= spi <= 0xFFFFFFFF:
            raise ValueError("spi", spi)  # a 32-bit unsigned int
        p = pads(key)  # validates the key
        # The padded blocks (two of 64 bytes, some 210 bytes of a board's heap with their
        # objects) are kept for the keys every frame uses; a home key is used once per
        # registration of its node, so a home agent with 50 nodes pads them when it needs them
        # (11 KB less at 32 bits; bench/role_memory32.py), and so is an agent's binding secret
        # (its K_X of the node: some 0.6 ms of a board's time a registration)
        if not is_home_spi(spi) and spi != SPI_NODE_SECRET:
            self._pads[spi] = p
        self._keys[spi] = bytes(key)

    def remove(self, spi):
        self._keys.pop(spi, None)
        self._pads.pop(spi, None)

    def get(self, spi):
        """The raw key for ``spi``, or None."""
        return self._keys.get(spi)

    def __contains__(self, spi):
        return spi in self._keys

    def __len__(self):
        return len(self._keys)

    def _pads_of(self, spi):
        p = self._pads.get(spi)
        if p is None:
            k = self._keys.get(spi)
            if k is not None:
                p = pads(k)
        return p

    def tag(self, spi, a, b=None, c=None, d=None):
        """The 16-byte tag of a|b|c|d under the key of ``spi``, or None without that key."""
        p = self._pads_of(spi)
        if p is None:
            return None
        return mac(p, a, b, c, d)[:TAG_LEN]

    def check(self, spi, received, a, b=None, c=None, d=None):
        """True when ``received`` is the tag of a|b|c|d under the key of ``spi``; never raises."""
        p = self._pads_of(spi)
        if p is None or received is None:
            return False
        return equal(mac(p, a, b, c, d)[:TAG_LEN], received)

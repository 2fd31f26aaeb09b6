"""Mutation fuzzer of the wire decoders; runs unchanged on MicroPython and CPython.

    micropython bench/fuzz_wire_mpy.py [--count N] [--seed S] [--quiet]
    python3     bench/fuzz_wire_mpy.py [--count N] [--seed S] [--quiet]

It builds one valid frame of every message type with the real encoders, then feeds N mutated
frames to the decoders: the generic receive path (ipv4.decode, then the decoder the protocol or
port selects, then msg.verify(keys), and the inner packet of a tunnel likewise), and every other
decoder directly on the same input. The contract under test (docs/DESIGN.md): a decoder raises
only DecodeError, whatever the bytes, and verify() returns a bool and never raises. Anything
else is counted as unexpected and reported with the input's hex.

Mutations (one to three stacked): bit flips, byte sets (random and boundary values),
truncation, extension, insertion, deletion, length-field tampering (IPv4/UDP lengths, ICMP
extension lengths, publication counts, ...) and splicing with another template. Most
mutated frames get their IPv4/ICMP/UDP checksums repaired so that they reach past the checksum
checks into the message decoders; a "payload" mode mutates only the message and re-wraps it with
the real encoders. A small xorshift32 generator makes a run reproducible from its seed on both
interpreters. The last line printed is one JSON object (bench/fuzz_wire.py parses it).
"""

import binascii
import io
import json
import sys

# firmware/ and the repository on the path, wherever the script is started from (no os.path on
# MicroPython)
_parts = __file__.replace("\\", "/").split("/")
_root = "/".join(_parts[:-2]) or "."
for _dir in ("/firmware", ""):
    if _root + _dir not in sys.path:
        sys.path.insert(0, _root + _dir)

from bench import wire_mpy as msgs  # noqa: E402
from bench.wire_mpy import AGENT, AGENT2, HOME_AGENT, MOBILE, PEER  # noqa: E402
from mobility import advert, auth, ipv4, publication, registration, request, solicit, tunnel  # noqa: E402
from mobility.errors import DecodeError  # noqa: E402

IMPL = sys.implementation.name
MAX_REPORTED = 10  # unexpected exceptions printed in full (all are counted)

CELL_KEY = b"cell-key-0123456789abcdef"
REGION_KEY = b"region-key-0123456789abcdef"
HOME_KEY = b"home-key-of-node-7-0123456789"
HOME_SPI = auth.spi_home(7)
# (the node's binding key, SPI_NODE, is the cell key's bytes here: the fuzz is about decoding)
KEYS = auth.Keys(
    {
        auth.SPI_CELL: CELL_KEY,
        auth.SPI_NODE: CELL_KEY,
        auth.SPI_REGION: REGION_KEY,
        HOME_SPI: HOME_KEY,
    }
)


class XorShift32:
    """Marsaglia's xorshift32: tiny, fast, identical on every interpreter."""

    def __init__(self, seed):
        self.x = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1

    def u32(self):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x

    def below(self, n):
        return self.u32() % n

    def bytes(self, n):
        out = bytearray(n)
        for i in range(n):
            out[i] = self.u32() & 0xFF
        return out


# ---------------------------------------------------------------- templates


def templates():
    """(name, frame) for one valid frame of every message type, built by the real encoders."""
    out = []
    adv = msgs.advertisement(41, 8, 3, 0x12345678, outage_in=120, outage_for=60)
    out.append(("advertisement", advert.encode_advertisement(adv, CELL_KEY)))
    host = advert.Advertisement(
        src=PEER, dst=MOBILE, adv_lifetime=10, services=advert.SVC_HOST, is_host_reply=True
    )
    out.append(("host_reply", advert.encode_advertisement(host, CELL_KEY)))
    for level, attempt in ((advert.LEVEL_ROUTING, 0), (advert.LEVEL_HOST, 3)):
        sol = advert.Solicitation(src=MOBILE, level=level, attempt=attempt)
        out.append(("solicitation_%d" % level, solicit.encode_solicitation(sol, CELL_KEY)))
    local = msgs.local_request((0x12345678 << 32) | 5)
    out.append(("request_local", request.encode_request(local, CELL_KEY)))
    remote = msgs.remote_request(600, (0x9ABCDEF0 << 32) | 77, HOME_SPI)
    out.append(("request_remote", request.encode_request(remote, HOME_KEY)))
    for code, ext, spi, key in (
        (0, registration.EXT_MF_AUTH, auth.SPI_NODE, CELL_KEY),
        (66, registration.EXT_MF_AUTH, auth.SPI_NODE, CELL_KEY),
        (133, registration.EXT_MH_AUTH, HOME_SPI, HOME_KEY),
    ):
        rep = msgs.reply(AGENT, code, 300 if code == 0 else 0, (0x12345678 << 32) | 5, ext, spi)
        out.append(("reply_%d" % code, registration.encode_reply(rep, key)))
    pub = publication.Publication(
        origin=AGENT,
        epoch=3,
        seq=65535,
        full=True,
        bindings=[(MOBILE, 300), (PEER, 1)],
        withdrawals=[bytes((10, 1, 0, 8))],
        spi=auth.SPI_REGION,
    )
    out.append(("publication", msgs.publication_frame(pub, AGENT2, REGION_KEY)))
    many = publication.Publication(
        origin=AGENT2,
        epoch=65535,
        seq=0,
        full=False,
        bindings=[(bytes((10, 2, i, 1)), i * 100) for i in range(29)],
        withdrawals=[],
        spi=auth.SPI_REGION,
    )
    out.append(("publication_full_frame", msgs.publication_frame(many, AGENT, REGION_KEY)))
    app = ipv4.udp(PEER, MOBILE, ipv4.APP_PORT, ipv4.APP_PORT, b"hello, roaming node")
    out.append(("app_datagram", app))
    out.append(("tunnel", tunnel.encapsulate(HOME_AGENT, AGENT, app)))
    out.append(("tunnel_registration", tunnel.encapsulate(AGENT2, AGENT, out[4][1])))
    return out


def _length_offsets(frame):
    """Byte offsets of every length/count field of a valid template frame (for tampering):
    (offset, width) with width 1 or 2."""
    offs = [(0, 1), (2, 2)]  # version/IHL, total length
    proto = frame[9]
    if proto == ipv4.PROTO_IPIP:
        return offs + [(20 + o, w) for (o, w) in _length_offsets(frame[20:])]
    if proto == ipv4.PROTO_UDP:
        offs.append((24, 2))
        dport = (frame[22] << 8) | frame[23]
        if dport == ipv4.REG_PORT:
            ext = 28 + (24 if frame[28] == 1 else 20)
            offs.append((ext + 1, 1))
        elif dport == ipv4.PUB_PORT:
            offs += [(38, 1), (39, 1)]
            offs.append((len(frame) - 21, 1))
        return offs
    if proto == ipv4.PROTO_ICMP:
        off = 28
        if frame[20] == advert.ICMP_ADVERT:
            offs += [(24, 1), (25, 1)]
            off = 36
        while off + 1 < len(frame):
            offs.append((off + 1, 1))
            off += 2 + frame[off + 1]
    return offs


# ---------------------------------------------------------------- checksum repair


def _csum(buf, start, end, s=0):
    for i in range(start, end - 1, 2):
        s += (buf[i] << 8) | buf[i + 1]
    if (end - start) & 1:
        s += buf[end - 1] << 8
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def repair(buf):
    """Recompute the IPv4 header checksum and, by protocol, the ICMP or UDP checksum of a
    (mutated) frame in place, as far as its own length fields allow. Never raises."""
    n = len(buf)
    if n < 20:
        return
    buf[10] = buf[11] = 0
    c = _csum(buf, 0, 20)
    buf[10] = c >> 8
    buf[11] = c & 0xFF
    total = (buf[2] << 8) | buf[3]
    end = total if 20 <= total <= n else n
    proto = buf[9]
    if proto == 1 and end >= 24:
        buf[22] = buf[23] = 0
        c = _csum(buf, 20, end)
        buf[22] = c >> 8
        buf[23] = c & 0xFF
    elif proto == 17 and end >= 28:
        buf[26] = buf[27] = 0
        length = end - 20
        pseudo = ((buf[12] << 8) | buf[13]) + ((buf[14] << 8) | buf[15])
        pseudo += ((buf[16] << 8) | buf[17]) + ((buf[18] << 8) | buf[19]) + 17 + length
        c = _csum(buf, 20, end, pseudo) or 0xFFFF
        buf[26] = c >> 8
        buf[27] = c & 0xFF


# ---------------------------------------------------------------- mutations

_BOUNDARY = (0, 1, 0x7F, 0x80, 0xFE, 0xFF)


def mutate(rng, buf, tmpl, others):
    """One mutation of bytearray ``buf`` (returns the new bytearray)."""
    n = len(buf)
    op = rng.below(9)
    if op == 0 and n:  # bit flips
        for _ in range(1 + rng.below(4)):
            i = rng.below(n)
            buf[i] ^= 1 << rng.below(8)
        return buf
    if op == 1 and n:  # byte sets
        for _ in range(1 + rng.below(3)):
            i = rng.below(n)
            buf[i] = _BOUNDARY[rng.below(6)] if rng.below(2) else rng.u32() & 0xFF
        return buf
    if op == 2:  # truncation
        return buf[: rng.below(n + 1)]
    if op == 3:  # extension
        return buf + rng.bytes(1 + rng.below(40))
    if op == 4:  # insertion
        i = rng.below(n + 1)
        return buf[:i] + rng.bytes(1 + rng.below(8)) + buf[i:]
    if op == 5 and n:  # deletion
        i = rng.below(n)
        return buf[:i] + buf[i + 1 + rng.below(8) :]
    if op == 6 or op == 7:  # length-field tampering
        offs = tmpl[2]
        off, width = offs[rng.below(len(offs))]
        if off + width > n:
            return buf
        old = buf[off] if width == 1 else (buf[off] << 8) | buf[off + 1]
        r = rng.below(6)
        if r == 0:
            v = old + 1
        elif r == 1:
            v = old - 1
        elif r == 2:
            v = 0
        elif r == 3:
            v = 0xFFFF
        elif r == 4:
            v = old + 4 * (1 + rng.below(8))
        else:
            v = rng.u32()
        if width == 1:
            buf[off] = v & 0xFF
        else:
            buf[off] = (v >> 8) & 0xFF
            buf[off + 1] = v & 0xFF
        return buf
    # splicing: a prefix of this frame with a suffix of another template
    other = others[rng.below(len(others))][1]
    return buf[: rng.below(n + 1)] + other[rng.below(len(other) + 1) :]


# ---------------------------------------------------------------- the decoders under test


class Stats:
    def __init__(self):
        self.frames = 0
        self.decoded = 0  # frames a message decoder accepted on the generic path
        self.verified = 0  # of those, verify(keys) returned True
        self.decode_errors = 0  # DecodeError on the generic path (the expected rejection)
        self.unexpected = 0
        self.failures = []
        self.slowest_us = 0

    def fail(self, where, exc, data):
        self.unexpected += 1
        if len(self.failures) < MAX_REPORTED:
            self.failures.append(
                {
                    "where": where,
                    "exc": "%s: %s" % (type(exc).__name__, exc),
                    "at": _raised_at(exc),
                    "hex": binascii.hexlify(bytes(data)).decode(),
                }
            )


def _raised_at(exc):
    """The innermost 'File ..., line ...' of the exception's traceback (both interpreters)."""
    try:
        if hasattr(sys, "print_exception"):  # MicroPython
            buf = io.StringIO()
            sys.print_exception(exc, buf)
            text = buf.getvalue()
        else:
            import traceback  # type: ignore[import-not-found]  # CPython only

            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        lines = [ln.strip() for ln in text.split("\n") if ln.strip().startswith("File ")]
        return lines[-1] if lines else ""
    except Exception:
        return ""


def _verify(stats, msg, where, data, count=True):
    try:
        ok = msg.verify(KEYS)
    except Exception as e:  # verify must never raise, not even DecodeError
        stats.fail(where + ".verify", e, data)
        return
    if ok is True:
        if count:
            stats.verified += 1
    elif ok is not False:
        stats.fail(where + ".verify", TypeError("verify returned %r, not a bool" % (ok,)), data)


def dispatch(stats, h, data, depth):
    """The receive path of a node after ipv4.decode: the decoder the protocol or port selects,
    then verification; a tunnel's inner packet goes round again."""
    if h.proto == ipv4.PROTO_ICMP:
        msg = advert.decode_icmp(h)
        stats.decoded += 1
        _verify(stats, msg, "advert", data)
    elif h.proto == ipv4.PROTO_UDP:
        sport, dport, payload = ipv4.decode_udp(h)
        if dport == ipv4.REG_PORT:
            msg = registration.decode_registration(h)
            stats.decoded += 1
            _verify(stats, msg, "registration", data)
        elif dport == ipv4.PUB_PORT:
            msg = publication.decode_publication(payload)
            stats.decoded += 1
            _verify(stats, msg, "publication", data)
    elif h.proto == ipv4.PROTO_IPIP:
        inner = tunnel.decapsulate(h)
        if depth == 0:
            dispatch(stats, ipv4.decode(inner), data, 1)


def direct(stats, data, h):
    """Every decoder on the same input, whatever the protocol says."""
    try:
        publication.decode_publication(data)
    except DecodeError:
        pass
    except Exception as e:
        stats.fail("publication.decode_publication(frame)", e, data)
    if h is None:
        return
    for name, fn in (
        ("advert.decode_icmp", advert.decode_icmp),
        ("registration.decode_registration", registration.decode_registration),
        ("tunnel.decapsulate", tunnel.decapsulate),
        ("ipv4.decode_udp", ipv4.decode_udp),
    ):
        try:
            msg = fn(h)
            if hasattr(msg, "verify"):
                _verify(stats, msg, name, data, False)
        except DecodeError:
            pass
        except Exception as e:
            stats.fail(name, e, data)
    try:
        msg = publication.decode_publication(h.payload)
        _verify(stats, msg, "publication(payload)", data, False)
    except DecodeError:
        pass
    except Exception as e:
        stats.fail("publication.decode_publication(payload)", e, data)


def feed(stats, data):
    stats.frames += 1
    t0 = msgs.now_us()
    h = None
    try:
        h = ipv4.decode(data)
        dispatch(stats, h, data, 0)
    except DecodeError:
        stats.decode_errors += 1
    except Exception as e:
        stats.fail("ipv4.decode" if h is None else "receive path", e, data)
    direct(stats, data, h)
    us = int(msgs.us_since(t0))
    if us > stats.slowest_us:
        stats.slowest_us = us


def _rewrap(rng, tmpl, stats):
    """Payload mode: mutate only the message, then wrap it with the real IPv4/UDP encoders."""
    frame = tmpl[1]
    proto = frame[9]
    src = frame[12:16]
    dst = frame[16:20]
    if proto == ipv4.PROTO_UDP:
        body = bytearray(frame[28:])
    else:
        body = bytearray(frame[20:])
    for _ in range(1 + rng.below(3)):
        body = mutate(rng, body, (None, None, [(0, 1), (1, 1), (2, 2)]), _TEMPLATES)
    body = body[:222]  # keep the packet within one frame: the encoders refuse more
    if proto == ipv4.PROTO_UDP:
        sport = (frame[20] << 8) | frame[21]
        dport = (frame[22] << 8) | frame[23]
        return ipv4.udp(src, dst, sport, dport, bytes(body), frame[8])
    if proto == ipv4.PROTO_ICMP and len(body) >= 4 and rng.below(4):
        body[2] = body[3] = 0
        c = _csum(body, 0, len(body))
        body[2] = c >> 8
        body[3] = c & 0xFF
    return ipv4.encode(src, dst, proto, bytes(body), frame[8])


_TEMPLATES: list = []
_UNSIGNED = ("app_datagram", "tunnel")  # carry no authentication


def run(count, seed, progress=None):
    """Feed ``count`` mutated frames; returns the Stats."""
    rng = XorShift32(seed)
    stats = Stats()
    if not _TEMPLATES:
        for name, frame in templates():
            _TEMPLATES.append((name, frame, _length_offsets(frame)))
    # the unmutated templates must decode and verify, or the fuzzer tests nothing
    check = Stats()
    for name, frame, _offs in _TEMPLATES:
        before = check.verified
        feed(check, frame)
        if check.decode_errors or (name not in _UNSIGNED and check.verified == before):
            check.fail("template " + name, ValueError("valid template rejected"), frame)
    stats.unexpected = check.unexpected
    stats.failures = check.failures
    kinds = (bytes, bytearray, memoryview)
    t_count = len(_TEMPLATES)
    for i in range(count):
        tmpl = _TEMPLATES[rng.below(t_count)]
        if rng.below(5) == 0:
            data = _rewrap(rng, tmpl, stats)
        else:
            data = bytearray(tmpl[1])
            for _ in range(1 + rng.below(3)):
                data = mutate(rng, data, tmpl, _TEMPLATES)
            if rng.below(4):
                repair(data)
        kind = kinds[i % 3]
        feed(stats, data if kind is bytearray else kind(data))
        if progress is not None and i and i % progress == 0:
            print("  %d frames, %d unexpected" % (i, stats.unexpected))
    return stats


def main(argv):
    count = 100000
    seed = 1
    quiet = False
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--count" and i + 1 < len(argv):
            count = int(argv[i + 1])
            i += 1
        elif a == "--seed" and i + 1 < len(argv):
            seed = int(argv[i + 1])
            i += 1
        elif a == "--quiet":
            quiet = True
        else:
            print("usage: fuzz_wire_mpy.py [--count N] [--seed S] [--quiet]")
            sys.exit(2)
        i += 1
    t0 = msgs.now_us()
    stats = run(count, seed, None if quiet else max(count // 10, 1))
    seconds = msgs.us_since(t0) / 1000000
    for f in stats.failures:
        print(
            "UNEXPECTED in %s: %s\n  at %s\n  input: %s" % (f["where"], f["exc"], f["at"], f["hex"])
        )
    print(
        json.dumps(
            {
                "impl": IMPL,
                "seed": seed,
                "frames": stats.frames,
                "seconds": seconds,
                "frames_per_s": stats.frames / seconds if seconds > 0 else 0,
                "decoded": stats.decoded,
                "verified": stats.verified,
                "decode_errors": stats.decode_errors,
                "unexpected": stats.unexpected,
                "slowest_frame_us": stats.slowest_us,
                "failures": stats.failures,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv)

"""Cost of encoding and decoding each message type; runs unchanged on MicroPython and CPython.

    micropython bench/wire_cost_mpy.py [--iterations N]
    python3     bench/wire_cost_mpy.py [--iterations N]

For every message type: microseconds per encode (with signing), per decode (ipv4.decode + the
message decoder, as the receive path does it), per verify, and, on MicroPython, the bytes the
heap hands out per decode. The last line printed is one JSON object (bench/wire_cost.py reads it).

Allocation is measured with ``micropython.mem_total()``: this unix build has MICROPY_MEM_STATS,
so it is the running total of bytes requested from the heap (m_malloc/m_realloc), exact to the
byte, cumulative (frees and garbage collections do not change it) and independent of the GC's
16-byte block rounding. As a cross-check, ``gc.mem_alloc()`` is read around the same decodes with
the GC disabled: that is the heap left consumed, in whole 16-byte blocks. It is lower than the
requested bytes because growing an instance's attribute table reallocates it and frees the old
one at once (a decoded message sets some fifteen attributes). Both are for this
64-bit build; on a 32-bit ESP32 objects are smaller (4-byte pointers) and a 32-bit value of 2**30
or more (a nonce, an Identification half) is a big int, which allocates there but not here.
"""

import json
import sys

_parts = __file__.replace("\\", "/").split("/")
_root = "/".join(_parts[:-2]) or "."
for _dir in ("/firmware", ""):
    if _root + _dir not in sys.path:
        sys.path.insert(0, _root + _dir)

import gc  # noqa: E402

from bench import wire_mpy as msgs  # noqa: E402
from bench.wire_mpy import AGENT, AGENT2, HOME_AGENT, MOBILE, PEER  # noqa: E402
from mobility import advert, auth, ipv4, publication, registration, request, solicit, tunnel  # noqa: E402

try:
    import micropython

    _mem_total = micropython.mem_total  # type: ignore[attr-defined]  # unix port with mem stats
except (ImportError, AttributeError):  # CPython (or a build without MICROPY_MEM_STATS)
    _mem_total = None


CELL_KEY = b"bench cell key 0123456789abcdef"
REGION_KEY = b"bench region key 0123456789abcdef"
HOME_SPI = auth.spi_home(7)
HOME_KEY = b"bench home key of node 7"
# (the node's binding key, SPI_NODE, is the cell key's bytes here: same cost)
KEYS = auth.Keys(
    {
        auth.SPI_CELL: CELL_KEY,
        auth.SPI_NODE: CELL_KEY,
        auth.SPI_REGION: REGION_KEY,
        HOME_SPI: HOME_KEY,
    }
)


def _decode_icmp(frame):
    return advert.decode_icmp(ipv4.decode(frame))


def _decode_registration(frame):
    return registration.decode_registration(ipv4.decode(frame))


def _decode_publication(frame):
    return publication.decode_publication(ipv4.decode_udp(ipv4.decode(frame))[2])


def _decode_tunnel(frame):
    return ipv4.decode(tunnel.decapsulate(ipv4.decode(frame)))


def _decode_datagram(frame):
    return ipv4.decode_udp(ipv4.decode(frame))


def cases():
    """[(name, encode(), decode(frame), verifies)] for every message type."""
    # no reverse tunnels offered, no outage announced
    services = advert.SVC_ROUTING | advert.SVC_REGION
    adv = msgs.advertisement(
        41, 8, 3, 0x12345678, flags=advert.FLAG_R | advert.FLAG_F, services=services
    )
    reply = advert.Advertisement(
        src=PEER, dst=MOBILE, adv_lifetime=10, services=advert.SVC_HOST, is_host_reply=True
    )
    sol = advert.Solicitation(src=MOBILE, level=advert.LEVEL_ROUTING)
    ident = request.make_ident(0x12345678, 5)
    req = msgs.local_request(ident)
    rep = msgs.reply(HOME_AGENT, registration.IDENT_MISMATCH, 0, ident, msgs.EXT_MH_AUTH, HOME_SPI)
    pub = publication.Publication(
        origin=AGENT,
        epoch=3,
        seq=9,
        bindings=[(MOBILE, 300), (PEER, 200)],
        withdrawals=[bytes((10, 1, 0, 8))],
    )
    big = publication.Publication(
        origin=AGENT,
        epoch=3,
        seq=10,
        full=True,
        bindings=[(bytes((10, 2, i, 1)), 60 + i) for i in range(29)],
    )
    payload = b"x" * 64
    app = ipv4.udp(PEER, MOBILE, ipv4.APP_PORT, ipv4.APP_PORT, payload)
    return [
        ("advertisement", lambda: advert.encode_advertisement(adv, CELL_KEY), _decode_icmp, True),
        ("host_reply", lambda: advert.encode_advertisement(reply, CELL_KEY), _decode_icmp, True),
        ("solicitation", lambda: solicit.encode_solicitation(sol, CELL_KEY), _decode_icmp, True),
        (
            "registration_request",
            lambda: request.encode_request(req, CELL_KEY),
            _decode_registration,
            True,
        ),
        (
            "registration_reply",
            lambda: registration.encode_reply(rep, HOME_KEY),
            _decode_registration,
            True,
        ),
        (
            "publication",
            lambda: msgs.publication_frame(pub, AGENT2, REGION_KEY),
            _decode_publication,
            True,
        ),
        (
            "publication_29_bindings",
            lambda: msgs.publication_frame(big, AGENT2, REGION_KEY),
            _decode_publication,
            True,
        ),
        (
            "app_datagram_64B",
            lambda: ipv4.udp(PEER, MOBILE, ipv4.APP_PORT, ipv4.APP_PORT, payload),
            _decode_datagram,
            False,
        ),
        ("tunnel_64B", lambda: tunnel.encapsulate(HOME_AGENT, AGENT, app), _decode_tunnel, False),
    ]


def _per_op_us(fn, arg, n, rounds=5):
    """Microseconds per fn(arg): the best of ``rounds`` means over n calls each, minus the cost
    of the loop itself. The best round is the cost of the code; the others add the machine's
    noise (another process, a collection that happened to fall in the round)."""
    best = None
    for _ in range(rounds):
        gc.collect()
        t0 = msgs.now_us()
        for _ in range(n):
            fn(arg)
        t = msgs.us_since(t0)
        t0 = msgs.now_us()
        for _ in range(n):
            _noop(arg)
        t -= msgs.us_since(t0)
        if best is None or t < best:
            best = t
    return best / n


def _noop(arg):
    return arg


def _call(fn):
    return fn()


def _alloc_per_op(fn, arg, n):
    """(bytes requested per fn(arg) from mem_total, heap bytes consumed per call from
    gc.mem_alloc with the GC off), each net of an empty loop; (None, None) without mem_total."""
    if _mem_total is None:
        return None, None
    fn(arg)  # warm up: first-call allocations (caches) are not the steady state
    gc.collect()
    gc.disable()
    try:
        base_total = _mem_total()
        base_heap = gc.mem_alloc()
        for _ in range(n):
            _noop(arg)
        empty_total = _mem_total() - base_total
        empty_heap = gc.mem_alloc() - base_heap
        m0 = _mem_total()
        h0 = gc.mem_alloc()
        for _ in range(n):
            fn(arg)
        total = _mem_total() - m0 - empty_total
        heap = gc.mem_alloc() - h0 - empty_heap
    finally:
        gc.enable()
    return total / n, heap / n


def measure(iterations):
    results = {}
    for name, encode, decode, verifies in cases():
        frame = encode()
        msg = decode(frame)
        if verifies and not msg.verify(KEYS):
            raise SystemExit("bench case %s does not verify" % name)
        enc = _per_op_us(_call, encode, iterations)
        dec = _per_op_us(decode, frame, iterations)
        r = {
            "frame_bytes": len(frame),
            "encode_us": enc,
            "decode_us": dec,
            "encode_decode_us": enc + dec,
        }
        if verifies:
            r["verify_us"] = _per_op_us(msg.verify, KEYS, iterations)
        alloc, heap = _alloc_per_op(decode, frame, 10)
        if alloc is not None:
            r["decode_alloc_bytes"] = alloc
            r["decode_heap_bytes"] = heap
            if verifies:
                r["verify_alloc_bytes"] = _alloc_per_op(msg.verify, KEYS, 10)[0]
        results[name] = r
    return results


def main(argv):
    iterations = 1000
    if len(argv) == 3 and argv[1] == "--iterations":
        iterations = int(argv[2])
    elif len(argv) != 1:
        print("usage: wire_cost_mpy.py [--iterations N]")
        sys.exit(2)
    results = measure(iterations)
    for name in results:
        r = results[name]
        print(
            "%-24s %3d B  encode %7.1f us  decode %7.1f us  alloc/decode %s B"
            % (
                name,
                r["frame_bytes"],
                r["encode_us"],
                r["decode_us"],
                "%.0f" % r["decode_alloc_bytes"] if "decode_alloc_bytes" in r else "-",
            )
        )
    print(
        json.dumps({"impl": sys.implementation.name, "iterations": iterations, "results": results})
    )


if __name__ == "__main__":
    main(sys.argv)

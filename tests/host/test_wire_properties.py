"""Hypothesis properties of the wire layer (CPython).

* every message type: encode -> decode gives back the same fields, and a signed message verifies
  under its key;
* decoding arbitrary bytes, arbitrary payloads inside valid IPv4/UDP/ICMP framing (so the inner
  decoders are reached), and mutated valid packets with repaired checksums raises nothing but
  DecodeError; verify() on whatever decodes never raises.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobility import advert, auth, ipv4, publication, registration, request, solicit, tunnel
from mobility.errors import DecodeError
from mobility.reprs import fields

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

addr = st.binary(min_size=4, max_size=4)
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, (1 << 64) - 1)
key_bytes = st.binary(min_size=1, max_size=100)


def assert_verifies(msg, key, spi):
    keys = auth.Keys({spi: key})
    assert msg.verify(keys, spi)
    assert not msg.verify(auth.Keys({spi: key + b"x"}), spi)


def assert_round_trip(msg, decode, wire, key):
    """``wire`` (``msg`` signed with ``key``) decodes to a message of msg's class with the same
    fields, which verifies under that key (and under no other)."""
    got = decode(wire)
    assert isinstance(got, type(msg))
    assert fields(got) == fields(msg)
    assert_verifies(got, key, msg.spi)


def decode_icmp(frame):
    return advert.decode_icmp(ipv4.decode(frame))


def decode_registration(frame):
    return registration.decode_registration(ipv4.decode(frame))


# --- round trips ---


@SETTINGS
@given(src=addr, dst=addr, proto=u8, ttl=u8, ident=u16, payload=st.binary(max_size=230))
def test_ipv4_round_trip(src, dst, proto, ttl, ident, payload):
    pkt = ipv4.encode(src, dst, proto, payload, ttl=ttl, ident=ident)
    h = ipv4.decode(pkt)
    assert (h.src, h.dst, h.proto, h.ttl, h.ident, h.length, h.payload) == (
        src,
        dst,
        proto,
        ttl,
        ident,
        len(pkt),
        payload,
    )


@SETTINGS
@given(src=addr, dst=addr, sport=u16, dport=u16, payload=st.binary(max_size=222), ttl=u8)
def test_udp_round_trip(src, dst, sport, dport, payload, ttl):
    h = ipv4.decode(ipv4.udp(src, dst, sport, dport, payload, ttl))
    assert ipv4.decode_udp(h) == (sport, dport, payload)
    assert h.ttl == ttl


@SETTINGS
@given(src=addr, dst=addr, isrc=addr, idst=addr, payload=st.binary(max_size=210), ttl=u8)
def test_tunnel_round_trip(src, dst, isrc, idst, payload, ttl):
    inner = ipv4.encode(isrc, idst, 17, payload)
    h = ipv4.decode(tunnel.encapsulate(src, dst, inner, ttl))
    assert (h.src, h.dst, h.ttl) == (src, dst, ttl)
    assert tunnel.decapsulate(h) == inner


@st.composite
def advertisements(draw):
    host = draw(st.booleans())
    return advert.Advertisement(
        src=draw(addr),
        dst=draw(addr),
        adv_lifetime=draw(u16),
        seq=0 if host else draw(u16),
        reg_lifetime=0 if host else draw(u16),
        flags=0 if host else draw(u8),
        coa=None if host else draw(addr),
        services=draw(u8),
        capacity=draw(u8),
        load=draw(u8),
        outage_in=draw(u16),
        outage_for=draw(u16),
        nonce=draw(u32),
        spi=draw(u32),
        is_host_reply=host,
    )


@SETTINGS
@given(adv=advertisements(), key=key_bytes)
def test_advertisement_round_trip(adv, key):
    assert_round_trip(adv, decode_icmp, advert.encode_advertisement(adv, key), key)


# Solicitation(src, level, attempt, spi, dst)
solicitations = st.builds(advert.Solicitation, addr, u8, u8, u32, addr)


@SETTINGS
@given(sol=solicitations, key=key_bytes)
def test_solicitation_round_trip(sol, key):
    assert_round_trip(sol, decode_icmp, solicit.encode_solicitation(sol, key), key)


ext_types = st.sampled_from([registration.EXT_MF_AUTH, registration.EXT_MH_AUTH])
# RegRequest(src, dst, flags, lifetime, home, home_agent, coa, ident, ext_type, spi)
requests = st.builds(
    registration.RegRequest, addr, addr, u8, u16, addr, addr, addr, u64, ext_types, u32
)
# RegReply(src, dst, code, lifetime, home, home_agent, ident, ext_type, spi)
replies = st.builds(registration.RegReply, addr, addr, u8, u16, addr, addr, u64, ext_types, u32)


@SETTINGS
@given(req=requests, key=key_bytes)
def test_request_round_trip(req, key):
    assert_round_trip(req, decode_registration, request.encode_request(req, key), key)


@SETTINGS
@given(rep=replies, key=key_bytes)
def test_reply_round_trip(rep, key):
    assert_round_trip(rep, decode_registration, registration.encode_reply(rep, key), key)


@st.composite
def publications(draw):
    full = draw(st.booleans())
    nb = draw(st.integers(0, publication.ROOM // 6))
    nw = draw(st.integers(0, (publication.ROOM - 6 * nb) // 4))
    return publication.Publication(
        origin=draw(addr),
        epoch=draw(u16),
        seq=draw(u16),
        full=full,
        bindings=draw(st.lists(st.tuples(addr, u16), min_size=nb, max_size=nb)),
        withdrawals=draw(st.lists(addr, min_size=nw, max_size=nw)),
        spi=draw(u32),
        part=draw(st.integers(0, 63)) if full else 0,
        last=draw(st.booleans()) if full else True,
    )


@SETTINGS
@given(pub=publications(), key=key_bytes, src=addr, dst=addr)
def test_publication_round_trip(pub, key, src, dst):
    payload = publication.encode_payload(pub, key)
    keys = auth.Keys({auth.SPI_REGION: key})
    h = ipv4.decode(publication.hop_packet(keys, src, dst, payload))
    sport, dport, got_payload = ipv4.decode_udp(h)
    assert (sport, dport) == (4344, 4344)
    assert publication.hop_checked(keys, got_payload, src, dst) == len(payload)
    assert_round_trip(pub, publication.decode_publication, got_payload, key)


@SETTINGS
@given(
    bindings=st.lists(st.tuples(addr, u16), max_size=120),
    withdrawals=st.lists(addr, max_size=120),
)
def test_split_chunks_fit_and_keep_order(bindings, withdrawals):
    chunks = publication.split(bindings, withdrawals)
    got_b, got_w = [], []
    for cb, cw in chunks:
        pub = publication.Publication(b"\x0a\x00\x00\x01", 1, 1, False, cb, cw)
        publication.packet(
            b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", publication.encode_payload(pub, b"k")
        )
        got_b += cb
        got_w += cw
    assert (got_b, got_w) == (bindings, withdrawals)


# --- decoding arbitrary bytes ---

KEYS = auth.Keys({auth.SPI_CELL: b"cell", auth.SPI_REGION: b"region", auth.spi_home(1): b"home"})


def decode_everything(buf):
    """Run every decoder that could see ``buf``; return how deep it got. Only DecodeError may
    escape from the decoders; verify() must not raise at all."""
    depth = 0
    for decoder in (publication.decode_publication,):
        try:
            decoder(buf).verify(KEYS)
            depth = 1
        except DecodeError:
            pass
    try:
        h = ipv4.decode(buf)
    except DecodeError:
        return depth
    depth = 2
    for decoder in (advert.decode_icmp, registration.decode_registration, tunnel.decapsulate):
        try:
            msg = decoder(h)
            if hasattr(msg, "verify"):
                msg.verify(KEYS)
            depth = 3
        except DecodeError:
            pass
    try:
        publication.decode_publication(ipv4.decode_udp(h)[2]).verify(KEYS)
        depth = 3
    except DecodeError:
        pass
    return depth


buffers = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(bytearray),
    st.binary(max_size=300).map(memoryview),
)


@SETTINGS
@given(buf=buffers)
def test_arbitrary_bytes_raise_only_decode_error(buf):
    decode_everything(buf)


@SETTINGS
@given(
    src=addr, dst=addr, proto=st.sampled_from([1, 4, 17, 0, 255]), payload=st.binary(max_size=230)
)
def test_arbitrary_payload_in_valid_ipv4(src, dst, proto, payload):
    decode_everything(ipv4.encode(src, dst, proto, payload))


def _icmp_with_checksum(body):
    icmp = bytearray(body)
    if len(icmp) >= 4:
        icmp[2] = icmp[3] = 0
        c = ipv4.checksum(icmp)
        icmp[2] = c >> 8
        icmp[3] = c & 0xFF
    return icmp


@SETTINGS
@given(
    kind=st.sampled_from([9, 10]),
    body=st.binary(max_size=200),
    ext=st.lists(
        st.tuples(st.sampled_from([0, 16, 19, 150, 151, 152, 200]), st.binary(max_size=30)),
        max_size=6,
    ),
)
def test_arbitrary_icmp_extensions(kind, body, ext):
    raw = bytearray([kind, 0, 0, 0]) + body[:12]
    for t, data in ext:
        raw += bytes([t, len(data)]) + data
    decode_everything(
        ipv4.encode(b"\x0a\x00\x00\x01", ipv4.BCAST_ADDR, 1, _icmp_with_checksum(raw[:230]), 1)
    )


@SETTINGS
@given(
    port=st.sampled_from([434, 4344, 5000]),
    body=st.binary(max_size=222),
    kind=st.sampled_from([1, 3, 0x52]),
)
def test_arbitrary_udp_payload(port, body, kind):
    payload = bytes([kind]) + body[:221]
    decode_everything(ipv4.udp(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", port, port, payload))


def _valid_packets():
    a, b = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
    adv = advert.Advertisement(
        a, seq=9, reg_lifetime=60, flags=0x90, services=5, capacity=4, nonce=77
    )
    req = registration.RegRequest(b, a, 0, 60, b, ipv4.ANY_ADDR, a, request.make_ident(1, 2))
    pub = publication.Publication(a, 1, 2, True, [(b, 30), (a, 40)], [b"\x0a\x00\x00\x03"])
    return [
        advert.encode_advertisement(adv, b"cell"),
        solicit.encode_solicitation(advert.Solicitation(b, 1, 0), b"cell"),
        request.encode_request(req, b"cell"),
        registration.encode_reply(registration.RegReply(a, b, 0, 60, b), b"cell"),
        publication.packet(a, b, publication.encode_payload(pub, b"region")),
        tunnel.encapsulate(a, b, ipv4.udp(b, a, 5000, 5000, b"data")),
    ]


VALID = _valid_packets()


def _repair(buf):
    """Recompute the IPv4 header checksum and the ICMP or UDP checksum of a mutated packet, so
    that the mutation reaches the message decoders."""
    if len(buf) < 20:
        return buf
    total = min(len(buf), (buf[2] << 8) | buf[3])
    buf[10] = buf[11] = 0
    c = ipv4.checksum(buf, 0, 20)
    buf[10] = c >> 8
    buf[11] = c & 0xFF
    if buf[9] == 1 and total >= 24:
        buf[22] = buf[23] = 0
        c = ipv4.checksum(buf, 20, total)
        buf[22] = c >> 8
        buf[23] = c & 0xFF
    elif buf[9] == 17 and total >= 28:
        buf[26] = buf[27] = 0  # "no checksum" is accepted
    return buf


@SETTINGS
@given(
    which=st.integers(0, len(VALID) - 1),
    edits=st.lists(st.tuples(st.integers(0, 300), u8), min_size=1, max_size=8),
    cut=st.integers(0, 260),
    repair=st.booleans(),
)
def test_mutated_valid_packets(which, edits, cut, repair):
    buf = bytearray(VALID[which])
    for pos, value in edits:
        if pos < len(buf):
            buf[pos] = value
    buf = buf[:cut] if cut < len(buf) else buf
    if repair:
        _repair(buf)
    decode_everything(buf)
    decode_everything(memoryview(bytes(buf)))


def test_the_mutation_strategy_reaches_message_decoders():
    # a property run that never gets past the checksums would prove little
    deep = 0
    for pkt in VALID:
        for i in range(20, len(pkt)):
            buf = bytearray(pkt)
            buf[i] ^= 0x5A
            if decode_everything(_repair(buf)) == 3:
                deep += 1
    assert deep > 100

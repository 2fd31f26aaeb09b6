import unittest

from wirecheck import assert_round_trip, bit_flips

from mobility import advert, auth, ipv4, solicit
from mobility.errors import DecodeError

AGENT = b"\x0a\x00\x00\x01"
AGENT_MAC = b"\x02\x00\x00\x00\x00\x0a"
NODE = b"\x0a\x00\x01\x07"
CELL_KEY = b"cell key for the tests"
KEYS = auth.Keys({auth.SPI_CELL: CELL_KEY, auth.SPI_REGION: b"region key"})


def sample():
    return advert.Advertisement(
        AGENT,
        ipv4.BCAST_ADDR,
        adv_lifetime=30,
        seq=0x1234,
        reg_lifetime=600,
        flags=advert.FLAG_R | advert.FLAG_F | advert.FLAG_T,
        coa=AGENT,
        services=advert.SVC_ROUTING | advert.SVC_REGION,
        capacity=12,
        load=3,
        outage_in=120,
        outage_for=60,
        nonce=0xCAFEF00D,
        mac=AGENT_MAC,
    )


def decode(pkt):
    return advert.decode_icmp(ipv4.decode(pkt))


class TestAdvertisement(unittest.TestCase):
    def test_round_trip_and_size(self):
        adv = sample()
        pkt = advert.encode_advertisement(adv, CELL_KEY)
        assert_round_trip(self, adv, pkt, decode, KEYS, 89)
        h = ipv4.decode(pkt)
        self.assertEqual(h.ttl, 1)
        self.assertEqual(h.proto, ipv4.PROTO_ICMP)

    def test_layout(self):
        pkt = advert.encode_advertisement(sample(), CELL_KEY)
        icmp = pkt[20:]
        self.assertEqual(icmp[0:2], b"\x09\x00")
        self.assertEqual(icmp[4:8], b"\x01\x02\x00\x1e")
        self.assertEqual(icmp[8:12], AGENT)
        self.assertEqual(icmp[16:18], b"\x10\x0a")
        self.assertEqual(icmp[18:20], b"\x12\x34")
        self.assertEqual(icmp[22], 0x91)
        self.assertEqual(icmp[28:30], b"\x96\x11")
        self.assertEqual(icmp[37:41], b"\xca\xfe\xf0\x0d")
        self.assertEqual(icmp[41:47], AGENT_MAC)  # the sender's MAC, signed
        self.assertEqual(icmp[47:49], b"\x97\x14")
        self.assertEqual(icmp[49:53], b"\x00\x00\x01\x00")
        self.assertEqual(ipv4.checksum(icmp), 0)
        # tag: over the IPv4 source, then type..SPI with the checksum field zeroed
        signed = bytearray(icmp[:53])
        signed[2] = signed[3] = 0
        self.assertEqual(icmp[53:69], auth.tag(CELL_KEY, pkt[12:16], signed))

    def test_host_reply(self):
        rep = advert.Advertisement(
            NODE, AGENT, adv_lifetime=10, services=advert.SVC_HOST, is_host_reply=True, nonce=5
        )
        pkt = advert.encode_advertisement(rep, CELL_KEY)
        self.assertEqual(len(pkt), 89 - 12)
        got = decode(pkt)
        self.assertTrue(got.is_host_reply)
        self.assertEqual(got.services, advert.SVC_HOST)
        self.assertEqual(got.dst, AGENT)
        self.assertIsNone(got.coa)
        self.assertTrue(got.verify(KEYS))

    def test_verify_rejects_wrong_key_and_spi(self):
        got = decode(advert.encode_advertisement(sample(), b"another key"))
        self.assertFalse(got.verify(KEYS))
        adv = sample()
        adv.spi = auth.SPI_REGION
        got = decode(advert.encode_advertisement(adv, b"region key"))
        self.assertFalse(got.verify(KEYS))  # region key is not accepted for advertisements
        self.assertTrue(got.verify(KEYS, auth.SPI_REGION))

    def test_unsigned_decodes_but_never_verifies(self):
        got = decode(advert.encode_advertisement(sample(), None))
        self.assertIsNone(got.spi)
        self.assertFalse(got.verify(KEYS))

    def test_tampering_detected(self):
        pkt = advert.encode_advertisement(sample(), CELL_KEY)
        for i in range(20, len(pkt)):
            if i in (22, 23):  # the ICMP checksum itself
                continue
            buf = bytearray(pkt)
            buf[i] ^= 0x01
            # fix the ICMP checksum so that decoding reaches the tag check
            buf[22] = buf[23] = 0
            c = ipv4.checksum(buf, 20)
            buf[22] = c >> 8
            buf[23] = c & 0xFF
            try:
                msg = decode(buf)
            except DecodeError:
                continue
            self.assertFalse(msg.verify(KEYS), "flip at %d verified" % i)

    def test_bad_icmp_checksum(self):
        buf = bytearray(advert.encode_advertisement(sample(), CELL_KEY))
        buf[40] ^= 0xFF
        with self.assertRaises(DecodeError):
            decode(buf)

    def test_value_ranges(self):
        for name, value in (("seq", 1 << 16), ("capacity", 256), ("nonce", 1 << 32), ("flags", -1)):
            adv = sample()
            setattr(adv, name, value)
            with self.assertRaises(ValueError):
                advert.encode_advertisement(adv, CELL_KEY)


def with_source(pkt, src):
    """``pkt`` with its IPv4 source replaced and the header checksum repaired (what an attacker
    replaying a captured frame under another address would send)."""
    b = bytearray(pkt)
    b[12:16] = src
    b[10] = b[11] = 0
    c = ipv4.checksum(b, 0, 20)
    b[10] = c >> 8
    b[11] = c & 0xFF
    return bytes(b)


class TestSourceIsSigned(unittest.TestCase):
    def test_advertisement_under_another_source_never_verifies(self):
        # (RFC 5944 lets the router address differ from the source: it decodes, as the source)
        pkt = with_source(advert.encode_advertisement(sample(), CELL_KEY), ipv4.aton("10.0.0.66"))
        got = decode(pkt)
        self.assertEqual(got.src, ipv4.aton("10.0.0.66"))
        self.assertFalse(got.verify(KEYS))

    def test_solicitation_under_another_source_never_verifies(self):
        sol = advert.Solicitation(ipv4.aton("10.0.1.7"), advert.LEVEL_HOST, 3)
        pkt = solicit.encode_solicitation(sol, CELL_KEY)
        self.assertTrue(decode(pkt).verify(KEYS))
        moved = decode(with_source(pkt, ipv4.aton("10.0.1.8")))
        self.assertFalse(moved.verify(KEYS))


def icmp_packet(src, body):
    """An IPv4 packet carrying the ICMP message ``body`` (its checksum filled in)."""
    body = bytearray(body)
    body[2:4] = b"\x00\x00"
    c = ipv4.checksum(body)
    body[2] = c >> 8
    body[3] = c & 0xFF
    return ipv4.encode(src, ipv4.BCAST_ADDR, ipv4.PROTO_ICMP, bytes(body), 1)


class TestRfc5944Interop(unittest.TestCase):
    def body(self):
        return bytearray(advert.encode_advertisement(sample(), None)[20:])

    def test_no_router_address(self):
        # Num Addrs = 0 (RFC 5944 2.1): the agent is the source; no challenge
        b = self.body()
        body = b[0:4] + b"\x00\x02" + b[6:8] + b[16:]
        got = decode(icmp_packet(AGENT, body))
        self.assertEqual(got.src, AGENT)
        self.assertEqual(got.challenge, 0)
        self.assertFalse(got.is_host_reply)

    def test_router_address_other_than_the_source(self):
        b = self.body()
        b[8:12] = b"\x0a\x00\x00\x63"
        got = decode(icmp_packet(AGENT, b))
        self.assertEqual(got.src, AGENT)

    def test_unknown_extensions(self):
        # 0..127 unknown: the advertisement is discarded; 128..255: skipped (19 is known)
        for t, ok in ((5, False), (100, False), (19, True), (140, True), (255, True)):
            body = self.body() + bytes((t, 3, 0, 0, 0))
            if ok:
                self.assertEqual(decode(icmp_packet(AGENT, body)).src, AGENT)
            else:
                with self.assertRaises(DecodeError):
                    decode(icmp_packet(AGENT, body))


class TestSolicitation(unittest.TestCase):
    def test_round_trip(self):
        for level in (advert.LEVEL_ROUTING, advert.LEVEL_HOST):
            sol = advert.Solicitation(NODE, level, 7)
            pkt = solicit.encode_solicitation(sol, CELL_KEY)
            assert_round_trip(self, sol, pkt, decode, KEYS, 20 + 8 + 4 + 22)
        self.assertFalse(decode(solicit.encode_solicitation(sol, b"x")).verify(KEYS))

    def test_layout(self):
        pkt = solicit.encode_solicitation(advert.Solicitation(NODE, 2, 255), CELL_KEY)
        self.assertEqual(pkt[20:22], b"\x0a\x00")
        self.assertEqual(pkt[24:28], b"\x00\x00\x00\x00")
        self.assertEqual(pkt[28:32], b"\x98\x02\x02\xff")
        self.assertEqual(pkt[32:34], b"\x97\x14")


class TestMalformed(unittest.TestCase):
    def packets(self):
        return (
            advert.encode_advertisement(sample(), CELL_KEY),
            solicit.encode_solicitation(advert.Solicitation(NODE, 1, 1), CELL_KEY),
        )

    def test_every_truncation_is_a_decode_error(self):
        for pkt in self.packets():
            for n in range(len(pkt)):
                buf = bytearray(pkt[:n])
                if n >= 20:  # keep the IPv4 header consistent so the ICMP part is reached
                    buf[2:4] = n.to_bytes(2, "big")
                    buf[10] = buf[11] = 0
                    c = ipv4.checksum(buf, 0, 20)
                    buf[10] = c >> 8
                    buf[11] = c & 0xFF
                with self.assertRaises(DecodeError):
                    decode(buf)

    def test_every_bit_flip_decodes_or_raises_decode_error(self):
        for pkt in self.packets():
            for _i, _bit, buf in bit_flips(pkt):
                try:
                    decode(buf)
                except DecodeError:
                    pass

    def test_extension_must_fit(self):
        # an unknown extension whose length runs past the end
        icmp = bytearray(b"\x0a\x00\x00\x00\x00\x00\x00\x00\x99\x10\x00")
        c = ipv4.checksum(icmp)
        icmp[2] = c >> 8
        icmp[3] = c & 0xFF
        with self.assertRaises(DecodeError):
            decode(ipv4.encode(NODE, ipv4.BCAST_ADDR, 1, icmp, 1))

    def test_wrong_type_and_protocol(self):
        icmp = bytearray(b"\x08\x00\x00\x00\x00\x00\x00\x00")  # echo request
        c = ipv4.checksum(icmp)
        icmp[2] = c >> 8
        icmp[3] = c & 0xFF
        with self.assertRaises(DecodeError):
            decode(ipv4.encode(NODE, AGENT, 1, icmp))
        with self.assertRaises(DecodeError):
            decode(ipv4.udp(NODE, AGENT, 1, 2, bytes(icmp)))

import unittest

from mobility import ipv4
from mobility.errors import MAX_FRAME, DecodeError, FrameTooLarge

A = b"\x0a\x00\x00\x01"
B = b"\x0a\x00\x00\x02"


def full_checksum_ok(buf):
    return ipv4.checksum(buf, 0, 20) == 0


class TestChecksum(unittest.TestCase):
    def test_rfc1071_example(self):
        # RFC 1071 section 3 example: words 0001 f203 f4f5 f6f7 sum to 0xddf2 (folded)
        data = b"\x00\x01\xf2\x03\xf4\xf5\xf6\xf7"
        self.assertEqual(ipv4.checksum(data), (~0xDDF2) & 0xFFFF)

    def test_odd_length_pads_with_zero(self):
        self.assertEqual(ipv4.checksum(b"\x12\x34\x56"), ipv4.checksum(b"\x12\x34\x56\x00"))

    def test_region(self):
        data = b"\xff\xff\x12\x34\xff"
        self.assertEqual(ipv4.checksum(data, 2, 4), (~0x1234) & 0xFFFF)


class TestChecksumSum(unittest.TestCase):
    def test_checksum_uses_a_correct_sum(self):
        buf = bytearray(ipv4.udp(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 1, 2, b"xyz"))
        self.assertEqual(ipv4.checksum(buf, 0, 20), 0)
        buf[10] = buf[11] = 0
        self.assertNotEqual(ipv4.checksum(buf, 0, 20), 0)


class TestHeader(unittest.TestCase):
    def test_round_trip(self):
        pkt = ipv4.encode(A, B, ipv4.PROTO_UDP, b"payload", ttl=9, ident=0x1234)
        self.assertIsInstance(pkt, bytes)
        self.assertEqual(len(pkt), 27)
        self.assertEqual(pkt[0], 0x45)
        self.assertTrue(full_checksum_ok(pkt))
        h = ipv4.decode(pkt)
        self.assertEqual(
            (h.src, h.dst, h.proto, h.ttl, h.ident, h.length), (A, B, 17, 9, 0x1234, 27)
        )
        self.assertEqual(h.payload, b"payload")
        self.assertIsInstance(h.payload, bytes)

    def test_decode_accepts_bytearray_and_memoryview(self):
        pkt = ipv4.encode(A, B, 1, b"xy")
        for buf in (bytearray(pkt), memoryview(pkt), memoryview(bytearray(pkt))):
            self.assertEqual(ipv4.decode(buf).payload, b"xy")

    def test_trailing_bytes_ignored(self):
        pkt = ipv4.encode(A, B, 1, b"xy") + b"junk"
        self.assertEqual(ipv4.decode(pkt).payload, b"xy")

    def test_frame_limit(self):
        ipv4.encode(A, B, 1, bytes(MAX_FRAME - 20))
        with self.assertRaises(FrameTooLarge):
            ipv4.encode(A, B, 1, bytes(MAX_FRAME - 19))
        self.assertTrue(issubclass(FrameTooLarge, ValueError))

    def test_frame_too_large_message_names_sizes(self):
        try:
            ipv4.encode(A, B, 1, bytes(240))
        except FrameTooLarge as exc:
            text = str(exc)
            self.assertIn("260", text)
            self.assertIn("250", text)
        else:
            self.fail("no FrameTooLarge")

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            ipv4.encode(b"\x01\x02\x03", B, 1, b"")
        with self.assertRaises(ValueError):
            ipv4.encode(A, B, 256, b"")
        with self.assertRaises(ValueError):
            ipv4.encode(A, B, 1, b"", ttl=-1)

    def test_decode_refusals(self):
        good = bytearray(ipv4.encode(A, B, 1, b"abcd"))
        cases = []
        cases.append(b"")
        cases.append(bytes(good[:19]))
        v6 = bytearray(good)
        v6[0] = 0x65
        cases.append(v6)
        opts = bytearray(good)
        opts[0] = 0x46
        cases.append(opts)
        short_total = bytearray(good)
        short_total[3] = 19
        cases.append(short_total)
        long_total = bytearray(good)
        long_total[3] = len(good) + 1
        cases.append(long_total)
        bad_sum = bytearray(good)
        bad_sum[11] ^= 1
        cases.append(bad_sum)
        for buf in cases:
            with self.assertRaises(DecodeError):
                ipv4.decode(buf)

    def test_fragments_refused(self):
        for flags in (0x2000, 0x0001, 0x6001):
            buf = bytearray(ipv4.encode(A, B, 1, b"abcd"))
            buf[6] = flags >> 8
            buf[7] = flags & 0xFF
            buf[10] = buf[11] = 0
            c = ipv4.checksum(buf, 0, 20)
            buf[10] = c >> 8
            buf[11] = c & 0xFF
            with self.assertRaises(DecodeError):
                ipv4.decode(buf)

    def test_not_a_buffer(self):
        for thing in (None, "E" * 30, 5, [0x45] * 20):
            with self.assertRaises(DecodeError):
                ipv4.decode(thing)

    def test_aton_ntoa(self):
        self.assertEqual(ipv4.aton("10.0.0.1"), A)
        self.assertEqual(ipv4.ntoa(A), "10.0.0.1")
        for bad in ("10.0.0", "10.0.0.256", "a.b.c.d", "1..2.3", "1.2.3.4.5"):
            with self.assertRaises(ValueError):
                ipv4.aton(bad)


class TestUdp(unittest.TestCase):
    def test_round_trip(self):
        pkt = ipv4.udp(A, B, 1234, ipv4.APP_PORT, b"hello")
        h = ipv4.decode(pkt)
        self.assertEqual(h.proto, ipv4.PROTO_UDP)
        self.assertEqual(ipv4.decode_udp(h), (1234, 5000, b"hello"))

    def test_checksum_verified(self):
        pkt = bytearray(ipv4.udp(A, B, 1, 2, b"hello"))
        pkt[-1] ^= 0x40
        with self.assertRaises(DecodeError):
            ipv4.decode_udp(ipv4.decode(pkt))

    def test_zero_checksum_means_not_computed(self):
        pkt = bytearray(ipv4.udp(A, B, 1, 2, b"hello"))
        pkt[26] = pkt[27] = 0
        self.assertEqual(ipv4.decode_udp(ipv4.decode(pkt))[2], b"hello")

    def test_length_must_match(self):
        for delta in (-1, 1, -8):
            pkt = bytearray(ipv4.udp(A, B, 1, 2, b"hello"))
            pkt[24:26] = (13 + delta).to_bytes(2, "big")
            pkt[26] = pkt[27] = 0
            with self.assertRaises(DecodeError):
                ipv4.decode_udp(ipv4.decode(pkt))

    def test_short_and_wrong_protocol(self):
        with self.assertRaises(DecodeError):
            ipv4.decode_udp(ipv4.decode(ipv4.encode(A, B, 17, b"1234567")))
        with self.assertRaises(DecodeError):
            ipv4.decode_udp(ipv4.decode(ipv4.encode(A, B, 1, b"12345678")))

    def test_frame_limit(self):
        ipv4.udp(A, B, 1, 2, bytes(MAX_FRAME - 28))
        with self.assertRaises(FrameTooLarge):
            ipv4.udp(A, B, 1, 2, bytes(MAX_FRAME - 27))


class TestHotPath(unittest.TestCase):
    def test_addr_key(self):
        buf = b"\x00" * 12 + b"\xc0\xa8\x01\x02" + b"\xff\x01\x02\x03"
        self.assertEqual(ipv4.addr_key(buf, 12), (0x00 << 24) | 0xA80102)
        self.assertEqual(ipv4.addr_key(buf, 16), 0x3F010203)
        self.assertLess(ipv4.addr_key(b"\xff\xff\xff\xff", 0), 1 << 30)

    def test_dec_ttl_matches_full_recompute(self):
        payload = b"x" * 3
        for ttl in (2, 3, 64, 128, 255):
            for proto in (0, 1, 4, 17, 255):
                for ident in (0, 1, 0x1234, 0xFFFF, 0x8000):
                    for src in (A, b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"):
                        buf = bytearray(ipv4.encode(src, B, proto, payload, ttl=ttl, ident=ident))
                        self.assertTrue(ipv4.dec_ttl(buf))
                        expect = ipv4.encode(src, B, proto, payload, ttl=ttl - 1, ident=ident)
                        self.assertEqual(bytes(buf), expect)
                        self.assertTrue(full_checksum_ok(buf))

    def test_dec_ttl_is_rfc1624_eqn3_for_every_checksum(self):
        # any checksum, a corrupted one too (it must stay as wrong as it was): HC' = ~(~HC + ~m
        # + m'), m the word of TTL and protocol before, m' after, in one's complement sums
        def eqn3(hc, m):
            s = (~hc & 0xFFFF) + (~m & 0xFFFF) + (m - 0x100)
            while s >> 16:
                s = (s & 0xFFFF) + (s >> 16)
            return ~s & 0xFFFF

        buf = bytearray(ipv4.encode(A, B, 17, b"", ttl=64))
        for ttl, proto in ((2, 0), (64, 17), (255, 255)):
            m = ttl << 8 | proto
            for hc in range(0x10000):
                buf[8], buf[9], buf[10], buf[11] = ttl, proto, hc >> 8, hc & 0xFF
                ipv4.dec_ttl(buf)
                self.assertEqual(buf[10] << 8 | buf[11], eqn3(hc, m))

    def test_dec_ttl_refuses_at_one_and_zero(self):
        for ttl in (0, 1):
            pkt = ipv4.encode(A, B, 17, b"", ttl=ttl)
            buf = bytearray(pkt)
            self.assertFalse(ipv4.dec_ttl(buf))
            self.assertEqual(bytes(buf), pkt)

    def test_dec_ttl_down_to_one(self):
        buf = bytearray(ipv4.encode(A, B, 17, b"abc", ttl=255))
        count = 0
        while ipv4.dec_ttl(buf):
            count += 1
            self.assertEqual(ipv4.decode(buf).ttl, 255 - count)
        self.assertEqual(count, 254)

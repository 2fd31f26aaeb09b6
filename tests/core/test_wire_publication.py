import unittest

from wirecheck import assert_round_trip, bit_flips

from mobility import auth, ipv4
from mobility import publication as pubm
from mobility.errors import DecodeError, FrameTooLarge

ORIGIN = b"\x0a\x00\x00\x01"
NEIGHBOUR = b"\x0a\x00\x00\x02"
REGION_KEY = b"region key for the tests"
KEYS = auth.Keys({auth.SPI_REGION: REGION_KEY, auth.SPI_CELL: b"cell"})


def home(i):
    return bytes((10, 0, 1 + (i >> 8), i & 0xFF))


class TestPublication(unittest.TestCase):
    def test_round_trip(self):
        pub = pubm.Publication(ORIGIN, 7, 65535, False, [(home(1), 300), (home(2), 0)], [home(3)])
        payload = pubm.encode_payload(pub, REGION_KEY)
        assert_round_trip(self, pub, payload, pubm.decode_publication, KEYS, 12 + 12 + 4 + 22)

    def test_packet(self):
        payload = pubm.encode_payload(pubm.Publication(ORIGIN, 1, 2), REGION_KEY)
        pkt = pubm.packet(NEIGHBOUR, b"\x0a\x00\x00\x03", payload)
        h = ipv4.decode(pkt)
        self.assertEqual(h.ttl, 1)
        sport, dport, got = ipv4.decode_udp(h)
        self.assertEqual((sport, dport), (4344, 4344))
        self.assertEqual(got, payload)  # forwarded byte for byte: the tag still verifies
        self.assertTrue(pubm.decode_publication(got).verify(KEYS))

    def test_read_in_place(self):
        pub = pubm.Publication(ORIGIN, 0x1234, 0xABCD, False, [(home(1), 60)], [])
        payload = pubm.encode_payload(pub, REGION_KEY)
        pkt = pubm.packet(NEIGHBOUR, b"\x0a\x00\x00\x03", payload)
        self.assertTrue(pubm.is_publication(pkt))
        at = pubm.PAYLOAD_AT
        self.assertEqual(bytes(pkt[at:]), payload)
        self.assertTrue(pubm.is_copy_candidate(pkt, at))
        o = at + pubm.ORIGIN_AT
        self.assertEqual(bytes(pkt[o : o + 4]), ORIGIN)
        self.assertEqual((pubm.epoch_at(pkt, at), pubm.seq_at(pkt, at)), (0x1234, 0xABCD))
        # the two headers whole (28 bytes), IHL 5, UDP, destination port 4344
        self.assertTrue(pubm.is_publication(pkt[:28]))
        self.assertFalse(pubm.is_publication(pkt[:27]))
        self.assertFalse(pubm.is_publication(b"\x46" + pkt[1:]))
        self.assertFalse(pubm.is_publication(pkt[:9] + b"\x04" + pkt[10:]))
        self.assertFalse(pubm.is_publication(pkt[:23] + b"\xf9" + pkt[24:]))
        app = ipv4.udp(NEIGHBOUR, ORIGIN, ipv4.PUB_PORT, ipv4.APP_PORT, b"x")
        self.assertFalse(pubm.is_publication(app))  # only the destination port counts

    def test_layout(self):
        pub = pubm.Publication(
            ORIGIN, 0x0102, 0x0304, True, [(home(5), 0x0A0B)], [home(6)], part=3, last=True
        )
        p = pubm.encode_payload(pub, REGION_KEY)
        self.assertEqual(p[0], 0x52)
        self.assertEqual(p[1], 0x80 | 0x40 | 3)
        self.assertEqual(p[2:6], ORIGIN)
        self.assertEqual(p[6:12], b"\x01\x02\x03\x04\x01\x01")
        self.assertEqual(p[12:18], home(5) + b"\x0a\x0b")
        self.assertEqual(p[18:22], home(6))
        self.assertEqual(p[22:28], b"\x97\x14\x00\x00\x02\x00")
        self.assertEqual(p[28:], auth.tag(REGION_KEY, p[:28]))

    def test_snapshot_parts(self):
        for part, last in ((0, False), (5, False), (63, True)):
            pub = pubm.Publication(ORIGIN, 1, 1, True, [], [], part=part, last=last)
            got = pubm.decode_publication(pubm.encode_payload(pub, REGION_KEY))
            self.assertEqual((got.full, got.part, got.last), (True, part, last))
        with self.assertRaises(ValueError):
            pubm.encode_payload(pubm.Publication(ORIGIN, 1, 1, True, part=64), REGION_KEY)
        with self.assertRaises(ValueError):
            pubm.encode_payload(pubm.Publication(ORIGIN, 1, 1, False, part=1), REGION_KEY)

    def test_capacity_per_frame(self):
        # with the hop tag every copy carries: 29 bindings or 44 withdrawals in one frame
        b29 = [(home(i), i) for i in range(29)]
        pkt = pubm.hop_packet(
            KEYS,
            ORIGIN,
            NEIGHBOUR,
            pubm.encode_payload(pubm.Publication(ORIGIN, 1, 1, True, b29), REGION_KEY),
        )
        self.assertEqual(len(pkt), 250 - 4)
        w44 = [home(i) for i in range(44)]
        pubm.encode_payload(pubm.Publication(ORIGIN, 1, 1, False, [], w44), REGION_KEY)
        with self.assertRaises(FrameTooLarge):
            pubm.encode_payload(
                pubm.Publication(ORIGIN, 1, 1, True, b29 + [(home(99), 1)]), REGION_KEY
            )
        with self.assertRaises(FrameTooLarge):
            pubm.encode_payload(
                pubm.Publication(ORIGIN, 1, 1, False, [], w44 + [home(99)]), REGION_KEY
            )

    def test_hop_tag(self):
        # a copy ends with a tag for its hop: the same publication sent 1 -> 2 does not check
        # as 3 -> 2 or 1 -> 3; the publication decodes and verifies with or without it
        payload = pubm.encode_payload(
            pubm.Publication(ORIGIN, 1, 2, False, [(home(1), 9)]), REGION_KEY
        )
        a, b, c = ipv4.aton("10.0.0.1"), ipv4.aton("10.0.0.2"), ipv4.aton("10.0.0.3")
        pkt = pubm.hop_packet(KEYS, a, b, payload)
        wire = ipv4.decode_udp(ipv4.decode(pkt))[2]
        self.assertEqual(len(wire), len(payload) + pubm.HOP_LEN)
        self.assertEqual(bytes(wire[: len(payload)]), payload)
        self.assertEqual(pubm.hop_checked(KEYS, wire, a, b), len(payload))
        self.assertEqual(pubm.hop_checked(KEYS, wire, c, b), -1)
        self.assertEqual(pubm.hop_checked(KEYS, wire, a, c), -1)
        self.assertEqual(pubm.hop_checked(KEYS, payload, a, b), -1)  # none at all
        other = auth.Keys({auth.SPI_REGION: b"another region's key"})
        self.assertEqual(pubm.hop_checked(other, wire, a, b), -1)
        got = pubm.decode_publication(wire)
        self.assertTrue(got.verify(KEYS))
        self.assertEqual(got.bindings, [(home(1), 9)])

    def test_split(self):
        self.assertEqual(pubm.split([], []), [([], [])])
        b = [(home(i), 60) for i in range(70)]
        w = [home(200 + i) for i in range(50)]
        chunks = pubm.split(b, w)
        joined_b = []
        joined_w = []
        for cb, cw in chunks:
            joined_b.extend(cb)
            joined_w.extend(cw)
            payload = pubm.encode_payload(pubm.Publication(ORIGIN, 1, 1, False, cb, cw), REGION_KEY)
            self.assertLessEqual(len(pubm.packet(ORIGIN, NEIGHBOUR, payload)), 250)
        self.assertEqual(joined_b, b)
        self.assertEqual(joined_w, w)
        self.assertEqual(len(chunks[0][0]), 29)

    def test_unsigned_and_wrong_keys(self):
        pub = pubm.Publication(ORIGIN, 1, 1, False, [(home(1), 5)])
        got = pubm.decode_publication(pubm.encode_payload(pub, None))
        self.assertIsNone(got.spi)
        self.assertFalse(got.verify(KEYS))
        self.assertFalse(pubm.decode_publication(pubm.encode_payload(pub, b"wrong")).verify(KEYS))
        pub.spi = auth.SPI_CELL
        got = pubm.decode_publication(pubm.encode_payload(pub, b"cell"))
        self.assertFalse(got.verify(KEYS))  # only the region key signs publications
        self.assertTrue(got.verify(KEYS, auth.SPI_CELL))


class TestMalformed(unittest.TestCase):
    def sample(self):
        pub = pubm.Publication(ORIGIN, 3, 4, False, [(home(1), 5), (home(2), 6)], [home(3)])
        return pubm.encode_payload(pub, REGION_KEY)

    def test_truncations_and_extensions(self):
        p = self.sample()
        for n in range(len(p) + 5):
            buf = (p + b"12345")[:n]
            if n in (len(p), len(p) - 22):
                continue
            with self.assertRaises(DecodeError):
                pubm.decode_publication(buf)

    def test_bit_flips(self):
        for i, bit, buf in bit_flips(self.sample()):
            try:
                msg = pubm.decode_publication(memoryview(buf))
            except DecodeError:
                continue
            self.assertFalse(msg.verify(KEYS), "flip %d.%d verified" % (i, bit))

    def test_counts_must_match(self):
        p = bytearray(self.sample())
        p[10] = 255
        with self.assertRaises(DecodeError):
            pubm.decode_publication(p)

    def test_flags_without_full(self):
        p = bytearray(self.sample())
        p[1] = 0x40
        with self.assertRaises(DecodeError):
            pubm.decode_publication(p)

    def test_not_a_buffer(self):
        with self.assertRaises(DecodeError):
            pubm.decode_publication(None)

import binascii
import unittest

from mobility import auth


def h(text):
    return binascii.unhexlify(text)


# RFC 4231 HMAC-SHA-256 test vectors (cases 1, 2, 3, 6, 7)
VECTORS = (
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        b"\xaa" * 20,
        b"\xdd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data."
        b" The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
)


class TestHmac(unittest.TestCase):
    def test_rfc4231_vectors(self):
        for key, data, expect in VECTORS:
            self.assertEqual(auth.hmac_sha256(key, data), h(expect))
            self.assertEqual(auth.tag(key, data), h(expect)[:16])

    def test_exactly_block_size_key_not_hashed(self):
        key = bytes(range(64))
        p = auth.pads(key)
        self.assertEqual(p[0][0], 0 ^ 0x36)
        self.assertEqual(p[1][63], 63 ^ 0x5C)

    def test_tag_length(self):
        self.assertEqual(auth.TAG_LEN, 16)
        self.assertEqual(len(auth.tag(b"k", b"")), 16)

    def test_keys_table_matches_plain_tag(self):
        keys = auth.Keys({auth.SPI_CELL: b"cell", auth.SPI_REGION: b"region"})
        data = b"some message bytes"
        t = keys.tag(auth.SPI_CELL, data[:5], data[5:9], data[9:])
        self.assertEqual(t, auth.tag(b"cell", data))
        self.assertTrue(keys.check(auth.SPI_CELL, t, data))
        self.assertFalse(keys.check(auth.SPI_REGION, t, data))
        self.assertFalse(keys.check(0x999, t, data))
        self.assertFalse(keys.check(auth.SPI_CELL, None, data))
        self.assertIsNone(keys.tag(0x999, data))
        self.assertEqual(keys.get(auth.SPI_REGION), b"region")
        self.assertIsNone(keys.get(0x999))
        self.assertIn(auth.SPI_CELL, keys)
        self.assertEqual(len(keys), 2)
        keys.remove(auth.SPI_CELL)
        self.assertIsNone(keys.get(auth.SPI_CELL))
        self.assertFalse(keys.check(auth.SPI_CELL, t, data))

    def test_bad_keys_refused(self):
        with self.assertRaises(ValueError):
            auth.Keys({auth.SPI_CELL: b""})
        with self.assertRaises(ValueError):
            auth.Keys({auth.SPI_CELL: "text"})
        with self.assertRaises(ValueError):
            auth.Keys({-1: b"k"})
        with self.assertRaises(ValueError):
            auth.Keys({1 << 32: b"k"})

    def test_equal(self):
        self.assertTrue(auth.equal(b"abc", b"abc"))
        self.assertFalse(auth.equal(b"abc", b"abd"))
        self.assertFalse(auth.equal(b"abc", b"ab"))
        self.assertFalse(auth.equal(None, b"ab"))
        self.assertTrue(auth.equal(memoryview(b"abc"), bytearray(b"abc")))

    def test_spis(self):
        self.assertEqual(auth.SPI_CELL, 0x100)
        self.assertEqual(auth.SPI_REGION, 0x200)
        self.assertEqual(auth.spi_home(7), 0x10007)
        self.assertTrue(auth.is_home_spi(auth.spi_home(0)))
        self.assertTrue(auth.is_home_spi(auth.spi_home(65535)))
        self.assertFalse(auth.is_home_spi(auth.SPI_REGION))
        with self.assertRaises(ValueError):
            auth.spi_home(65536)


class TestSerial(unittest.TestCase):
    def test_rfc1982(self):
        self.assertTrue(auth.serial_newer(1, 0))
        self.assertFalse(auth.serial_newer(0, 1))
        self.assertFalse(auth.serial_newer(5, 5))
        self.assertTrue(auth.serial_newer(0, 0xFFFF))  # across the wrap
        self.assertTrue(auth.serial_newer(10, 0xFFF0))
        self.assertFalse(auth.serial_newer(0xFFF0, 10))
        self.assertTrue(auth.serial_newer(0x7FFF, 0))
        self.assertFalse(auth.serial_newer(0x8000, 0))  # exactly half: undefined, not newer
        self.assertFalse(auth.serial_newer(0, 0x8000))
        self.assertTrue(auth.serial_newer(3, 250, bits=8))

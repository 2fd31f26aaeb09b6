"""What the wire tests check of every message type (runs on MicroPython and CPython)."""

from mobility.reprs import fields


def assert_round_trip(test, msg, wire, decode, keys, size):
    """``wire`` (``msg`` encoded) is ``size`` bytes long, and ``decode`` makes of it a message
    of msg's class with the same fields, which verifies under ``keys``; returns that message."""
    test.assertEqual(len(wire), size)
    got = decode(wire)
    test.assertIsInstance(got, type(msg))
    test.assertEqual(fields(got), fields(msg))
    test.assertTrue(got.verify(keys))
    return got


def bit_flips(wire):
    """(byte, bit, a copy of ``wire`` with that one bit flipped), for every bit of it."""
    for i in range(len(wire)):
        for bit in range(8):
            buf = bytearray(wire)
            buf[i] ^= 1 << bit
            yield i, bit, buf

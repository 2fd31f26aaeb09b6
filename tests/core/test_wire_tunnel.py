import unittest

from mobility import ipv4, tunnel
from mobility.errors import DecodeError, FrameTooLarge

ENTRY = b"\x0a\x00\x00\x09"
AGENT = b"\x0a\x00\x00\x01"
NODE = b"\x0a\x00\x01\x07"
PEER = b"\x0a\x00\x02\x01"


class TestTunnel(unittest.TestCase):
    def test_round_trip(self):
        inner = ipv4.udp(PEER, NODE, 5000, 5000, b"hello")
        pkt = tunnel.encapsulate(ENTRY, AGENT, inner)
        self.assertEqual(len(pkt), len(inner) + 20)
        h = ipv4.decode(pkt)
        self.assertEqual((h.src, h.dst, h.proto, h.ttl), (ENTRY, AGENT, 4, 64))
        out = tunnel.decapsulate(h)
        self.assertEqual(out, inner)
        self.assertEqual(ipv4.decode_udp(ipv4.decode(out))[2], b"hello")

    def test_mtu(self):
        inner = ipv4.udp(PEER, NODE, 5000, 5000, bytes(230 - 28))
        self.assertEqual(len(tunnel.encapsulate(ENTRY, AGENT, inner)), 250)
        inner = ipv4.udp(PEER, NODE, 5000, 5000, bytes(231 - 28))
        with self.assertRaises(FrameTooLarge):
            tunnel.encapsulate(ENTRY, AGENT, inner)

    def test_inner_must_be_ipv4(self):
        with self.assertRaises(ValueError):
            tunnel.encapsulate(ENTRY, AGENT, b"short")
        with self.assertRaises(DecodeError):
            tunnel.decapsulate(ipv4.decode(ipv4.encode(ENTRY, AGENT, 4, bytes(20))))
        with self.assertRaises(DecodeError):
            tunnel.decapsulate(ipv4.decode(ipv4.encode(ENTRY, AGENT, 4, b"\x45")))

    def test_wrong_protocol(self):
        inner = ipv4.udp(PEER, NODE, 5000, 5000, b"x")
        with self.assertRaises(DecodeError):
            tunnel.decapsulate(ipv4.decode(ipv4.encode(ENTRY, AGENT, 17, inner)))

import unittest

from wirecheck import assert_round_trip, bit_flips, fields

from mobility import auth, ipv4
from mobility import registration as reg
from mobility import request as sender  # (the sending side; request() below builds one)
from mobility.errors import DecodeError

AGENT = b"\x0a\x00\x00\x01"
HOME_AGENT = b"\x0a\x00\x00\x09"
NODE = b"\x0a\x00\x01\x07"
CELL_KEY = b"cell key for the tests"
NODE_KEY = b"binding key of node 7"  # K_X (SPI_NODE): local bindings
HOME_KEY = b"home key of node 7"
KEYS = auth.Keys(
    {
        auth.SPI_CELL: CELL_KEY,
        auth.SPI_NODE: NODE_KEY,
        auth.spi_home(7): HOME_KEY,
        auth.SPI_REGION: b"region",
    }
)
NODE_MAC = b"\x02\x00\x00\x00\x00\x07"
AGENT_MAC = b"\x02\x00\x00\x00\x00\x01"


def request(**kw):
    req = reg.RegRequest(
        NODE, AGENT, reg.FLAG_S, 300, NODE, ipv4.ANY_ADDR, AGENT, sender.make_ident(0xA1B2C3D4, 42)
    )
    for name in kw:
        setattr(req, name, kw[name])
    return req


def decode(pkt):
    return reg.decode_registration(ipv4.decode(pkt))


class TestRequest(unittest.TestCase):
    def test_round_trip_local_binding(self):
        req = request()
        pkt = sender.encode_request(req, NODE_KEY)
        got = assert_round_trip(self, req, pkt, decode, KEYS, 74)
        self.assertEqual(ipv4.decode_udp(ipv4.decode(pkt))[:2], (434, 434))
        self.assertEqual(got.ident >> 32, 0xA1B2C3D4)  # the receiver's nonce || our counter
        self.assertEqual(got.ident & 0xFFFFFFFF, 42)

    def test_round_trip_remote_binding(self):
        req = request(
            dst=HOME_AGENT, home_agent=HOME_AGENT, ext_type=reg.EXT_MH_AUTH, spi=auth.spi_home(7)
        )
        got = decode(sender.encode_request(req, HOME_KEY))
        self.assertEqual(fields(got), fields(req))
        self.assertTrue(got.verify(KEYS))
        self.assertTrue(got.verify(KEYS, auth.spi_home(7)))
        self.assertFalse(got.verify(KEYS, auth.spi_home(8)))

    def test_layout(self):
        pkt = sender.encode_request(request(), NODE_KEY)
        p = pkt[28:]
        self.assertEqual(p[0:4], b"\x01\x80\x01\x2c")
        self.assertEqual(p[4:8], NODE)
        self.assertEqual(p[8:12], ipv4.ANY_ADDR)
        self.assertEqual(p[12:16], AGENT)
        self.assertEqual(p[16:24], b"\xa1\xb2\xc3\xd4\x00\x00\x00\x2a")
        self.assertEqual(p[24:30], b"\x21\x14\x00\x00\x01\x01")
        self.assertEqual(p[30:46], auth.tag(NODE_KEY, p[:30]))

    def test_link_extension(self):
        # a local binding's request names the node's MAC, the agent MAC it addresses and the
        # agent's advertisement sequence it echoes, inside the signed data:
        # 20 + 8 + 24 + 16 + 22 = 90 bytes
        req = request(node_mac=NODE_MAC, agent_mac=AGENT_MAC, agent_seq=0xABCD)
        pkt = sender.encode_request(req, NODE_KEY)
        got = assert_round_trip(self, req, pkt, decode, KEYS, 90)
        p = pkt[28:]
        self.assertEqual(p[24:40], b"\x99\x0e" + NODE_MAC + AGENT_MAC + b"\xab\xcd")
        self.assertEqual(got.node_mac, NODE_MAC)
        self.assertEqual(got.agent_mac, AGENT_MAC)
        self.assertEqual(got.agent_seq, 0xABCD)
        # another MAC in the signed data does not verify
        bad = bytearray(pkt)
        bad[28 + 30] ^= 1
        h = ipv4.decode(ipv4.udp(NODE, AGENT, 434, 434, bytes(bad[28:])))
        self.assertFalse(reg.decode_registration(h).verify(KEYS))

    def test_unknown_extensions(self):
        # RFC 5944 3.6.1.3: an unknown extension 0..127 discards the message, 128..255 skipped
        base = sender.encode_request(request(), None)[28:]
        for t, ok in ((5, False), (127, False), (130, True), (200, True)):
            h = ipv4.decode(ipv4.udp(NODE, AGENT, 434, 434, base + bytes((t, 2, 0, 0))))
            if ok:
                self.assertEqual(reg.decode_registration(h).ident, request().ident)
            else:
                with self.assertRaises(DecodeError):
                    reg.decode_registration(h)

    def test_spi_rules(self):
        # cell SPI under a mobile-home extension, home SPI under a mobile-foreign one: refused
        got = decode(
            sender.encode_request(request(ext_type=reg.EXT_MH_AUTH, spi=auth.SPI_CELL), CELL_KEY)
        )
        self.assertFalse(got.verify(KEYS))
        got = decode(sender.encode_request(request(spi=auth.spi_home(7)), HOME_KEY))
        self.assertFalse(got.verify(KEYS))
        # the cell key no longer makes a local binding: only the node's own key does
        got = decode(sender.encode_request(request(spi=auth.SPI_CELL), CELL_KEY))
        self.assertFalse(got.verify(KEYS))
        # proxy binding: region key under type 32
        got = decode(
            sender.encode_request(request(ext_type=reg.EXT_MH_AUTH, spi=auth.SPI_REGION), b"region")
        )
        self.assertTrue(got.verify(KEYS))

    def test_unsigned(self):
        got = decode(sender.encode_request(request(), None))
        self.assertIsNone(got.ext_type)
        self.assertIsNone(got.spi)
        self.assertFalse(got.verify(KEYS))

    def test_value_ranges(self):
        for name, value in (
            ("lifetime", 1 << 16),
            ("ident", 1 << 64),
            ("flags", 256),
            ("ext_type", 34),
        ):
            with self.assertRaises(ValueError):
                sender.encode_request(request(**{name: value}), CELL_KEY)
        with self.assertRaises(ValueError):
            sender.encode_request(request(coa=None), CELL_KEY)


class TestReply(unittest.TestCase):
    def test_round_trip(self):
        for code in (reg.ACCEPTED, reg.FA_NO_RESOURCES, reg.IDENT_MISMATCH):
            rep = reg.RegReply(AGENT, NODE, code, 120, NODE, ipv4.ANY_ADDR, sender.make_ident(1, 2))
            assert_round_trip(self, rep, reg.encode_reply(rep, NODE_KEY), decode, KEYS, 70)
            # with the link extension: both MACs and the request's identification, 92 bytes
            rep.node_mac, rep.agent_mac, rep.req_ident = (
                NODE_MAC,
                AGENT_MAC,
                sender.make_ident(1, 9),
            )
            assert_round_trip(self, rep, reg.encode_reply(rep, NODE_KEY), decode, KEYS, 92)

    def test_reply_port(self):
        # RFC 5944 3.7.4: the reply goes to the request's source port
        rep = reg.RegReply(AGENT, NODE, 0, 1, NODE)
        rep.dport = 434
        self.assertEqual(ipv4.decode_udp(ipv4.decode(reg.encode_reply(rep, NODE_KEY)))[1], 434)
        h = ipv4.decode(
            ipv4.udp(NODE, AGENT, 4000, 434, sender.encode_request(request(), None)[28:])
        )
        self.assertEqual(reg.decode_registration(h).sport, 4000)

    def test_layout(self):
        rep = reg.RegReply(AGENT, NODE, 133, 0, NODE, HOME_AGENT, 0x0102030405060708)
        p = reg.encode_reply(rep, CELL_KEY)[28:]
        self.assertEqual(p[0:4], b"\x03\x85\x00\x00")
        self.assertEqual(p[12:20], b"\x01\x02\x03\x04\x05\x06\x07\x08")
        self.assertEqual(p[20:22], b"\x21\x14")


class TestMalformed(unittest.TestCase):
    def packets(self):
        return (
            sender.encode_request(request(), CELL_KEY),
            reg.encode_reply(reg.RegReply(AGENT, NODE, 0, 1, NODE), CELL_KEY),
        )

    def test_truncations(self):
        for pkt in self.packets():
            for n in range(28, len(pkt)):
                # rebuild a consistent IPv4/UDP frame around a truncated payload
                payload = pkt[28:n]
                h = ipv4.decode(ipv4.udp(NODE, AGENT, 434, 434, payload))
                try:
                    msg = reg.decode_registration(h)
                except DecodeError:
                    continue
                # a cut exactly before the auth extension decodes as unsigned
                self.assertIsNone(msg.spi)
                self.assertFalse(msg.verify(KEYS))

    def test_bit_flips(self):
        for pkt in self.packets():
            for i, bit, buf in bit_flips(pkt):
                try:
                    decode(buf)  # the checksums catch single flips; never another error
                except DecodeError:
                    continue
                self.fail("flip %d.%d decoded" % (i, bit))

    def test_signed_region_tampering(self):
        pkt = sender.encode_request(request(), CELL_KEY)
        for i in range(28, len(pkt)):
            payload = bytearray(pkt[28:])
            payload[i - 28] ^= 0x10
            try:
                msg = reg.decode_registration(ipv4.decode(ipv4.udp(NODE, AGENT, 434, 434, payload)))
            except DecodeError:
                continue
            self.assertFalse(msg.verify(KEYS), "flip at %d verified" % i)

    def test_wrong_port_and_type(self):
        payload = sender.encode_request(request(), CELL_KEY)[28:]
        with self.assertRaises(DecodeError):
            reg.decode_registration(ipv4.decode(ipv4.udp(NODE, AGENT, 434, 435, payload)))
        bad = bytearray(payload)
        bad[0] = 2
        with self.assertRaises(DecodeError):
            reg.decode_registration(ipv4.decode(ipv4.udp(NODE, AGENT, 434, 434, bad)))

    def test_auth_not_last(self):
        payload = sender.encode_request(request(), CELL_KEY)[28:] + b"\x86\x00"
        with self.assertRaises(DecodeError):
            reg.decode_registration(ipv4.decode(ipv4.udp(NODE, AGENT, 434, 434, payload)))

    def test_unknown_extension_skipped(self):
        fixed = sender.encode_request(request(), None)[28:]
        msg = reg.decode_registration(
            ipv4.decode(ipv4.udp(NODE, AGENT, 434, 434, fixed + b"\x86\x02ab"))
        )
        self.assertEqual(msg.lifetime, 300)

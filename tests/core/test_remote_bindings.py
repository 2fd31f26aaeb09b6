"""Remote bindings: the sender (RemoteClient) against the home agent's cache (RemoteCache),
the nonce handshake, refresh, expiry, failure, and forged or replayed requests and replies."""

import unittest

from backbone import CELL_KEY, Backbone, Rand, link_mac, node_config

from mobility import actions, auth, ipv4, registration, request, tunnel
from mobility.home import HomeAgent
from mobility.remoteclient import BOUND, FAILED, PENDING, RemoteClient

HOME_KEY = b"home key of node 7 0123456789abc"
MN_HOME = ipv4.aton("10.9.0.7")
HA = "10.0.0.50"
COA = ipv4.aton("10.0.0.1")
COA2 = ipv4.aton("10.0.0.2")
SPI = auth.spi_home(7)


class Client:
    """The mobile node's side, as the mobile role runs it: a RemoteClient whose requests go out
    on the backbone to the home agent's link address."""

    def __init__(self, home=MN_HOME, spi=SPI, key=HOME_KEY):
        self.address = home
        self.out = actions.Actions()
        keys = auth.Keys({auth.SPI_CELL: CELL_KEY, spi: key})
        self.remote = RemoteClient(home, keys, spi, self.out, self.route, ipv4.aton(HA))

    def route(self, addr):
        return (actions.IF_BACKBONE, link_mac(addr))

    def next_wake(self):
        return self.remote.next_wake()

    def on_timer(self, now):
        self.remote.on_timer(now)

    def on_frame(self, now, iface, mac, rssi, frame):
        h = ipv4.decode(frame)
        if h.proto == ipv4.PROTO_UDP:
            msg = registration.decode_registration(h)
            self.remote.on_reply(now, msg)
        else:
            self.tunnelled = frame


def build():
    bb = Backbone()
    ha_cfg = node_config(
        50,
        HA,
        mobiles={"10.9.0.7": 7},
        links=[
            {"addr": "10.9.0.7", "iface": 1, "mac": link_mac(MN_HOME)},
            {"addr": "10.0.0.1", "iface": 1, "mac": link_mac(COA)},
        ],
    )
    ha_cfg["keys"][SPI] = HOME_KEY
    ha = bb.add("ha", HomeAgent(ha_cfg, Rand(50), 0))
    mn = bb.add("mn", Client())
    bb.add("coa", Client(), link_mac(COA))
    bb.connect("ha", "mn")
    bb.connect("ha", "coa")
    return bb, ha, mn


class Handshake(unittest.TestCase):
    def test_first_request_learns_the_nonce_then_binds(self):
        bb, ha, mn = build()
        mn.remote.bind(0, ipv4.aton(HA), MN_HOME, COA, 60)
        bb.settle()
        self.assertEqual(mn.remote.state(ipv4.aton(HA), MN_HOME), BOUND)
        self.assertEqual(ha.cache.care_of(bb.now, MN_HOME), COA)
        # one 133 round (the node did not know the home agent's boot nonce), then accepted
        codes = [
            registration.decode_registration(ipv4.decode(f)).code
            for s, d, f in bb.frames
            if s == "ha"
        ]
        self.assertEqual(codes, [registration.IDENT_MISMATCH, registration.ACCEPTED])

    def test_home_agent_tunnels_to_the_care_of_agent(self):
        bb, ha, mn = build()
        mn.remote.bind(0, ipv4.aton(HA), MN_HOME, COA, 60)
        bb.settle()
        dgram = ipv4.udp(ipv4.aton("10.5.0.1"), MN_HOME, 5000, 5000, b"via home")
        ha.on_frame(bb.now, actions.IF_BACKBONE, link_mac("10.5.0.1"), 0, dgram)
        bb.settle()
        h = ipv4.decode(bb.roles["coa"].tunnelled)
        self.assertEqual((h.src, h.dst, h.proto), (ipv4.aton(HA), COA, ipv4.PROTO_IPIP))
        self.assertEqual(ipv4.decode(tunnel.decapsulate(h)).payload[8:], b"via home")
        self.assertEqual(ha.tunnelled, 1)

    def test_refresh_at_half_lifetime_and_hand_off(self):
        bb, ha, mn = build()
        mn.remote.bind(0, ipv4.aton(HA), MN_HOME, COA, 20)
        bb.run(15000)  # refreshed at 10 s
        self.assertEqual(ha.cache.care_of(bb.now, MN_HOME), COA)
        bb.run(15000)
        self.assertEqual(ha.cache.care_of(bb.now, MN_HOME), COA)
        mn.remote.bind(bb.now, ipv4.aton(HA), MN_HOME, COA2, 20)  # moved to another agent
        bb.settle()
        self.assertEqual(ha.cache.care_of(bb.now, MN_HOME), COA2)

    def test_expires_without_refresh(self):
        bb, ha, mn = build()
        mn.remote.bind(0, ipv4.aton(HA), MN_HOME, COA, 20)
        bb.settle()
        bb.cut("ha", "mn")
        bb.run(25000)
        self.assertIsNone(ha.cache.care_of(bb.now, MN_HOME))
        self.assertEqual(len(ha.cache.bindings), 0)
        self.assertGreater(bb.event_count("remote_down", "ha"), 0)

    def test_unreachable_home_agent_fails_and_is_logged(self):
        bb, ha, mn = build()
        bb.cut("ha", "mn")
        mn.remote.bind(0, ipv4.aton(HA), MN_HOME, COA, 60)
        self.assertEqual(mn.remote.state(ipv4.aton(HA), MN_HOME), PENDING)
        bb.run(20000)
        self.assertEqual(mn.remote.state(ipv4.aton(HA), MN_HOME), FAILED)
        self.assertEqual(bb.event_count("remote_failed", "mn"), 1)
        bb.connect("ha", "mn")
        bb.run(40000)  # tried again after the back-off
        self.assertEqual(mn.remote.state(ipv4.aton(HA), MN_HOME), BOUND)


class ManyMobileNodes(unittest.TestCase):
    def test_home_agent_holds_a_binding_for_each_of_its_mobile_nodes(self):
        # more mobile nodes than a correspondent's default cache (64): a home agent makes room
        # for every node it serves, none is refused with code 130
        n = 100
        bb = Backbone()
        homes = {"10.9.1.%d" % k: 100 + k for k in range(1, n + 1)}
        links = [{"addr": h, "iface": 1, "mac": link_mac(h)} for h in homes]
        links.append({"addr": "10.0.0.1", "iface": 1, "mac": link_mac(COA)})
        cfg = node_config(50, HA, mobiles=homes, links=links)
        for h in homes:
            cfg["keys"][auth.spi_home(homes[h])] = HOME_KEY + h.encode()
        ha = bb.add("ha", HomeAgent(cfg, Rand(50), 0))
        clients = []
        for h in homes:
            spi = auth.spi_home(homes[h])
            c = bb.add(h, Client(ipv4.aton(h), spi, HOME_KEY + h.encode()))
            bb.connect("ha", h)
            clients.append(c)
        for c in clients:
            c.remote.bind(bb.now, ipv4.aton(HA), c.address, COA, 60)
        bb.settle()
        for c in clients:
            self.assertEqual(c.remote.state(ipv4.aton(HA), c.address), BOUND)
            self.assertEqual(ha.cache.care_of(bb.now, c.address), COA)
        self.assertEqual(len(ha.cache.bindings), n)


class ForgedAndReplayed(unittest.TestCase):
    def setUp(self):
        self.bb, self.ha, self.mn = build()
        self.mn.remote.bind(0, ipv4.aton(HA), MN_HOME, COA, 60)
        self.bb.settle()
        self.bb.run(1000)

    def inject(self, pkt):
        before = (
            dict((k, list(v)) for k, v in self.ha.cache.bindings.items()),
            self.ha.cache.accepted,
        )
        self.ha.on_frame(self.bb.now, actions.IF_BACKBONE, link_mac(MN_HOME), 0, pkt)
        self.bb.settle()
        after = (
            dict((k, list(v)) for k, v in self.ha.cache.bindings.items()),
            self.ha.cache.accepted,
        )
        self.assertEqual(before, after)
        self.assertEqual(self.ha.cache.care_of(self.bb.now, MN_HOME), COA)

    def request(self, key, spi=SPI, counter=1000, home=MN_HOME, ext=registration.EXT_MH_AUTH):
        ident = request.make_ident(self.ha.nonce, counter)
        req = registration.RegRequest(
            home, ipv4.aton(HA), 0, 60, home, ipv4.aton(HA), COA2, ident, ext, spi
        )
        return request.encode_request(req, key)

    def test_wrong_key(self):
        self.inject(self.request(b"guessed key 0123456789abcdef0123"))

    def test_no_authentication(self):
        self.inject(self.request(None))

    def test_cell_key_is_not_a_home_key(self):
        self.inject(self.request(CELL_KEY, auth.SPI_CELL, ext=registration.EXT_MF_AUTH))

    def test_region_key_without_proxy_acceptance(self):
        from backbone import REGION_KEY

        self.inject(self.request(REGION_KEY, auth.SPI_REGION))

    def test_another_nodes_key_for_this_home(self):
        other = auth.spi_home(8)
        self.ha.keys.set(other, b"home key of node 8 0123456789abc")
        self.inject(self.request(b"home key of node 8 0123456789abc", other))

    def test_replayed_request(self):
        sent = [f for s, d, f in self.bb.frames if s == "mn"]
        self.assertEqual(len(sent), 2)
        self.inject(sent[-1])  # the accepted one, again
        self.inject(sent[0])  # the first one (stale nonce)

    def test_stale_nonce(self):
        ident = request.make_ident(self.ha.nonce ^ 1, 5000)
        req = registration.RegRequest(
            MN_HOME,
            ipv4.aton(HA),
            0,
            60,
            MN_HOME,
            ipv4.aton(HA),
            COA2,
            ident,
            registration.EXT_MH_AUTH,
            SPI,
        )
        self.inject(request.encode_request(req, HOME_KEY))

    def test_replayed_reply_changes_nothing_at_the_node(self):
        replies = [f for s, d, f in self.bb.frames if s == "ha"]
        self.mn.remote.bind(self.bb.now, ipv4.aton(HA), MN_HOME, COA2, 60)  # a new request out
        self.assertEqual(self.mn.remote.state(ipv4.aton(HA), MN_HOME), PENDING)
        self.mn.on_frame(self.bb.now, 1, link_mac(HA), 0, replies[-1])  # old "accepted"
        self.assertEqual(self.mn.remote.state(ipv4.aton(HA), MN_HOME), PENDING)

    def test_control_a_genuine_new_request_changes_the_binding(self):
        pkt = self.request(HOME_KEY, counter=1000)
        self.ha.on_frame(self.bb.now, actions.IF_BACKBONE, link_mac(MN_HOME), 0, pkt)
        self.assertEqual(self.ha.cache.care_of(self.bb.now, MN_HOME), COA2)


if __name__ == "__main__":
    unittest.main()

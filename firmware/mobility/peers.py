"""A mobile node's remote bindings (core II, docs/REGION.md): with its home agent, and with the
correspondents that hold its home key once they talk to it (route optimisation; not in the
Mobile IPv4 baseline). Each says where the node is now: the care-of agent serving it. The local
binding stands whatever they answer; the requests (remoteclient.py) leave through the
serving agent, like every datagram (``route``, set by the owner).
"""

from mobility import auth, ipv4
from mobility.compat import const
from mobility.node import parse_addr
from mobility.remoteclient import RemoteClient

_DEFAULT_LIFETIME_S = const(120)

# a correspondent: [address, heard from it (bool)]
_C_ADDR = const(0)
_C_HEARD = const(1)


class Peers:
    """``client``: the RemoteClient (its ``src`` is the node's home address), or None when the
    node holds no home key (then it keeps no remote binding)."""

    def __init__(self, config, node, home_agent, route):
        from mobility import settings

        self.lifetime_s = settings.cfg_int(
            config, "remote_lifetime_s", _DEFAULT_LIFETIME_S, 1, 65535
        )
        self.correspondents = {}  # addr_key -> [address, heard from it]
        for c in config.get("correspondents") or ():
            a = parse_addr(c, "correspondent")
            self.correspondents[ipv4.addr_key(a, 0)] = [a, False]
        self.roam = node.roam
        self.client = None
        spi = auth.spi_home(node.node_id)
        if spi in node.keys:
            self.client = RemoteClient(node.address, node.keys, spi, node.out, route, home_agent)

    def moved(self, now, coa):
        """Locally bound (or handed off) to agent ``coa``: tell the home agent, and the
        correspondents that talk to us."""
        client = self.client
        if client is None:
            return
        if client.home_agent != ipv4.ANY_ADDR:
            client.bind(now, client.home_agent, client.src, coa, self.lifetime_s)
        if self.roam:
            for k in self.correspondents:
                c = self.correspondents[k]
                if c[_C_HEARD]:
                    client.bind(now, c[_C_ADDR], client.src, coa, self.lifetime_s)

    def heard(self, now, src, serving):
        """A datagram from ``src``: when it is a correspondent, bind with it, so that it tunnels
        straight to our agent (``serving``, None while unbound)."""
        c = self.correspondents.get(ipv4.addr_key(src, 0))
        client = self.client
        if c is None or c[_C_ADDR] != src or not self.roam or client is None:
            return
        if not c[_C_HEARD]:
            c[_C_HEARD] = True
            client.out.log("correspondent", {"peer": ipv4.ntoa(src)})
        if serving is not None:
            client.bind(now, src, client.src, serving.addr, self.lifetime_s)

    def on_reply(self, now, rep):
        if self.client is not None:
            self.client.on_reply(now, rep)

    def on_timer(self, now):
        if self.client is not None:
            self.client.on_timer(now)

    def next_wake(self):
        return None if self.client is None else self.client.next_wake()

"""The backbone as a node beside a region sees it (a home agent, a correspondent on the Wi-Fi
backbone): the peers it reaches directly and a gateway for the rest. (A region member has
backbone.py: members, neighbours, next hops; neither role loads the other's.)

Addresses are looked up by ``ipv4.addr_key`` in a dict, then compared in full.
"""

from mobility import ipv4


class Links:
    """The backbone peers of a node that is not a region member (a home agent, a correspondent
    on the Wi-Fi backbone): ``links`` [{"addr", "iface", "mac"}] it reaches directly, and an
    optional ``gateway`` (the address of one of them, usually a region member) for every other
    destination."""

    def __init__(self, links=None, gateway=None):
        from mobility import settings

        self._peers = {}
        for n in links or ():
            if not isinstance(n, dict):
                raise ValueError("links: each entry is a dict {addr, iface, mac}")
            a = settings.region_addr(n.get("addr"), "link addr")
            iface = n.get("iface", 1)
            if iface not in (0, 1):
                raise ValueError("links: iface must be 0 or 1, not %r" % (iface,))
            self._peers[ipv4.addr_key(a, 0)] = (
                a,
                (iface, settings.parse_link(n.get("mac"), "link mac")),
            )
        self.gateway = None
        if gateway is not None:
            g = self._peers.get(ipv4.addr_key(settings.region_addr(gateway, "gateway"), 0))
            if g is None:
                raise ValueError("links: the gateway %r is not one of the links" % (gateway,))
            self.gateway = g[1]

    def route(self, addr):
        """(iface, mac) toward ``addr``: the peer itself, else the gateway; None without."""
        p = self._peers.get(ipv4.addr_key(addr, 0))
        if p is not None and p[0] == addr:
            return p[1]
        return self.gateway

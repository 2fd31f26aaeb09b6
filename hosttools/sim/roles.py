"""Building the protocol core's roles for the simulated nodes.

Every node gets the config dict its role documents (docs/CORE.md, docs/REGION.md): node id,
address, keys, and the role's own settings, from (lowest to highest precedence) the core's
defaults, the scenario's ``[role_config.<role>]`` table, and the node's ``config`` table. The
simulator fills in what a person would provision on a board: addresses, MACs, keys, the region
(members, neighbours with their backbone link addresses, backbone hosts), the home agent, the
gateway of a correspondent, the boot counter (epoch) and the policy.

Policy "mip4" (the plain Mobile IPv4 baseline): agents publish nothing (no region), nodes make
no correspondent bindings, mobile nodes detect movement lazily (policy "mip4" of the mobile
role), and correspondents send through the home agent.
"""

import hashlib
import random

from hosttools import corebuild
from hosttools.sim.world import IF_BACKBONE, IF_RADIO

# the core is imported as on a board, `from mobility import ...`: from firmware/ (on sys.path),
# or compiled when hosttools.sim chose its build (hosttools/corebuild.py)
FIRMWARE_DIR = corebuild.FIRMWARE_DIR

SPI_CELL = 0x100
SPI_REGION = 0x200


def spi_home(node_id):
    return 0x10000 + node_id


class RoleFactory:
    def __init__(self, policy="roam"):
        self.policy = policy

    # Addresses by node index (node id = index + 1): fixed nodes in 10.0.0.0/16; a mobile
    # node's home address in its home agent's home network 10.<64 + k>.0.0/16 (k = the home
    # agent's rank), which the region routes to that home agent.
    def address(self, spec):
        n = spec.index + 1
        net = 0
        if spec.role == "mobile" and spec.home_agent is not None:
            net = 64 + self._home_rank(spec.home_agent)
        return bytes((10, net, (n >> 8) & 0xFF, n & 0xFF))

    def _home_rank(self, ha_id):
        if not hasattr(self, "_ranks"):
            self._ranks = {}
        if ha_id not in self._ranks:
            self._ranks[ha_id] = len(self._ranks)
        return self._ranks[ha_id]

    def prepare(self, world):
        self.world = world
        sc = world.sc
        seed = b"roam-sim-keys"
        self.cell_key = hashlib.sha256(seed + b"cell").digest()[:16]
        self.region_keys = {
            r.id: hashlib.sha256(seed + b"region" + r.id.encode()).digest()[:16] for r in sc.regions
        }
        # the home agent and the correspondents of a mobile node share its home key
        self.home_key = {}
        for spec in sc.nodes:
            if spec.role == "mobile":
                self.home_key[spec.index + 1] = hashlib.sha256(
                    seed + b"home" + spec.id.encode()
                ).digest()[:16]
        self.regions = {r.id: r for r in sc.regions}
        by_id = sc.by_id
        nodes = world.nodes
        self.bb_hosts = [nd for nd in nodes if nd.bb is not None and nd.kind in ("home", "host")]
        # region membership for the metrics (convergence)
        for r in sc.regions:
            idx = [by_id[m].index for m in r.members]
            for m in r.members:
                world.col and world.col.regions.__setitem__(nodes[by_id[m].index].addr, idx)

    def _ntoa(self, a):
        return "%d.%d.%d.%d" % tuple(a)

    def _link(self, nd):
        return nd.bb

    def home_routes(self):
        w = self.world
        out = []
        for spec in w.sc.nodes:
            if spec.role == "home":
                net = 64 + self._home_rank(spec.id)
                out.append(
                    {"dst": "10.%d.0.0/16" % net, "via": self._ntoa(w.nodes[spec.index].addr)}
                )
        return out

    def region_config(self, nd):
        if nd.region is None:
            return None
        w = self.world
        r = self.regions[nd.region]
        by_id = w.sc.by_id
        nbrs = []
        for a, b in r.links:
            other = b if a == nd.id else (a if b == nd.id else None)
            if other is not None:
                o = w.nodes[by_id[other].index]
                nbrs.append({"addr": self._ntoa(o.addr), "iface": IF_BACKBONE, "mac": o.bb})
        hosts = [
            {"addr": self._ntoa(h.addr), "iface": IF_BACKBONE, "mac": h.bb} for h in self.bb_hosts
        ]
        cfg = {
            "name": r.id,
            "members": [self._ntoa(w.nodes[by_id[m].index].addr) for m in r.members],
            "neighbours": nbrs,
            "hosts": hosts,
            "routes": self.home_routes(),
            "policy": self.policy,
        }
        cfg.update(w.sc.region_settings)
        return cfg

    def base(self, nd):
        w = self.world
        cfg = {
            "node_id": nd.idx + 1,
            "address": self._ntoa(nd.addr),
            "keys": {SPI_CELL: self.cell_key},
            # the boot counter a board keeps in flash (firmware/config.py next_epoch): every
            # role's boot nonce starts with it, so a node powered on again is a restart
            "epoch": nd.boot & 0xFFFF,
        }
        cfg.update(w.sc.role_config.get(nd.kind, {}))
        own = dict(nd.spec.config)
        cfg.update(own)
        return cfg

    def make(self, world, nd, now):
        r = random.Random((world.seed << 20) ^ (nd.idx << 4) ^ nd.boot)
        rand = r.getrandbits
        cfg = self.base(nd)
        kind = nd.kind
        if kind == "agent":
            from mobility.agent import Agent

            reg = self.region_config(nd)
            if reg is not None:
                cfg["keys"][SPI_REGION] = self.region_keys[nd.region]
                cfg["region"] = reg
                cfg["epoch"] = nd.boot
            return Agent(cfg, rand, now)
        if kind == "mobile":
            from mobility.mobile import MobileNode

            cfg["keys"][spi_home(nd.idx + 1)] = self.home_key[nd.idx + 1]
            cfg["policy"] = self.policy
            if nd.spec.home_agent is not None:
                ha = world.nodes[world.sc.by_id[nd.spec.home_agent].index]
                cfg["home_agent"] = self._ntoa(ha.addr)
            return MobileNode(cfg, rand, now)
        if kind == "host":
            from mobility.host import Host

            gw = cfg.get("gateway")
            if isinstance(gw, str) and gw in world.sc.by_id:
                g = world.nodes[world.sc.by_id[gw].index]
                if nd.bb is not None and g.bb is not None:
                    cfg["gateway"] = g.bb
                    cfg["gateway_iface"] = IF_BACKBONE
                else:
                    cfg["gateway"] = g.mac
                    cfg["gateway_iface"] = IF_RADIO
            # a correspondent holds the home keys of the mobile nodes (it accepts their
            # bindings, unless the policy is the baseline) and, on the backbone, reaches every
            # agent directly (tunnels to a care-of agent need no gateway)
            peers = {}
            for spec in world.sc.nodes:
                if spec.role == "mobile":
                    n = spec.index + 1
                    cfg["keys"][spi_home(n)] = self.home_key[n]
                    peers[self._ntoa(world.nodes[spec.index].addr)] = n
            if self.policy != "mip4":
                cfg["peers"] = peers
            if nd.bb is not None:
                cfg["links"] = [
                    {"addr": self._ntoa(o.addr), "iface": IF_BACKBONE, "mac": o.bb}
                    for o in world.nodes
                    if o.bb is not None and o is not nd and o.kind in ("agent", "router")
                ]
            return Host(cfg, rand, now)
        if kind == "router":
            from mobility.router import Router

            cfg["keys"][SPI_REGION] = self.region_keys[nd.region]
            cfg["region"] = self.region_config(nd)
            cfg["epoch"] = nd.boot
            if self.policy == "mip4":
                cfg["policy"] = "mip4"
            return Router(cfg, rand, now)
        if kind == "home":
            from mobility.home import HomeAgent

            mobiles = {}
            for spec in world.sc.nodes:
                if spec.role == "mobile" and spec.home_agent == nd.id:
                    n = spec.index + 1
                    cfg["keys"][spi_home(n)] = self.home_key[n]
                    mobiles[self._ntoa(world.nodes[spec.index].addr)] = n
            cfg["mobiles"] = mobiles
            # the home agent reaches every agent and router over the backbone (tunnels go
            # straight to the care-of agent)
            cfg["links"] = [
                {"addr": self._ntoa(o.addr), "iface": IF_BACKBONE, "mac": o.bb}
                for o in world.nodes
                if o.bb is not None and o is not nd and o.kind in ("agent", "router")
            ]
            return HomeAgent(cfg, rand, now)
        if kind == "attacker":
            from hosttools.sim.attacker import Attacker

            return Attacker(cfg, rand, now, world, nd)
        raise ValueError("no role %r" % kind)

"""The field a scenario describes, as a person would set it up: every node's identity, where it
is over time, and the config its role runs with.

One layout serves every user of a scenario: the simulator (world.py places the nodes and gives
them their MACs and addresses, roles.py builds each role from ``config``), the lab
(hosttools/lab.py: each virtual board's config.json from ``board_config``, the fleet file, the
boards' positions from ``Positions``). So a node is the same node in a simulated run, on a
virtual board and in the fleet file the lab writes. It reads the scenario (scenario.py) and the
movement models (movement.py) and nothing of the simulator's own machinery (world, cores).

What each node gets (docs/SIMULATOR.md "Nodes and their configs"):

* node id = index + 1 (the index in the whole scenario, for a part of one: ``sc.part_of``, as
  `roam lab up --nodes` makes); address 10.0.<id> for a fixed node, 10.<64 + k>.<id> for a
  mobile node whose home agent is the k-th one (its home network, which the region routes to
  that home agent); radio MAC 02:52:4d:<index, 24 bits>; on the backbone, the link address
  <address><UDP port 4344>; the scenario's channel unless the node names its own;
* keys derived from fixed seeds: the cell key, one key per region, one home key per mobile node
  (its home agent and the correspondents hold it too);
* the role's config (docs/CORE.md, docs/REGION.md): from (lowest to highest precedence) the
  core's defaults, the scenario's ``[role_config.<role>]`` table and the node's ``config``
  table, plus what a person would provision: region (members, neighbours with their backbone
  link addresses, backbone hosts, routes to the home networks), home agent, gateway of a
  correspondent, boot counter (epoch) and policy.

Policy "mip4" (the plain Mobile IPv4 baseline): agents publish nothing (no region), nodes make
no correspondent bindings, mobile nodes detect movement lazily (policy "mip4" of the mobile
role), correspondents send through the home agent, and no node sends a datagram again after a
failed unicast (``hold`` 0).
"""

import hashlib
import random
import threading

from hosttools import radio as radio_mod
from hosttools.sim import movement

# the protocol core's constants, from the core itself (hosttools.sim puts it on sys.path)
from mobility.actions import IF_BACKBONE, IF_RADIO
from mobility.auth import (
    SPI_CELL,
    SPI_NODE,
    SPI_NODE_SECRET,
    SPI_REGION,
    node_key,
    spi_home,
)

MAC_PREFIX = b"\x02\x52\x4d"  # locally administered, "RM"
BACKBONE_PORT = 4344  # a board's backbone UDP port (firmware/link_wifi.py PORT)
HOME_NET_BASE = 64  # the k-th home agent's home network is 10.<64 + k>.0.0/16
KEY_SEED = b"roam-sim-keys"


def ntoa(addr):
    return "%d.%d.%d.%d" % tuple(addr)


def mac_text(mac):
    """6 bytes as 'aa:bb:cc:dd:ee:ff'."""
    return ":".join("%02x" % x for x in mac)


class FieldNode:
    """One node of the field: who it is and how the others reach it."""

    __slots__ = ("index", "spec", "id", "role", "node_id", "addr", "mac", "bb", "channel", "region")

    def __init__(self, spec, addr, channel, number=None):
        # index: the node's place in this scenario; number: what its id, MAC and movement are
        # made from, the same index unless the scenario is part of another (`roam lab up --nodes`:
        # a node keeps the id and address it has in the whole scenario)
        self.index = spec.index
        i = spec.index if number is None else number
        self.spec = spec
        self.id = spec.id
        self.role = spec.role
        self.node_id = i + 1
        self.addr = addr
        self.mac = MAC_PREFIX + bytes(((i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF))
        self.bb = addr + BACKBONE_PORT.to_bytes(2, "big") if spec.backbone else None
        self.channel = spec.channel or channel
        self.region = spec.region


class Layout:
    """The field of the checked Scenario ``sc``; ``seed`` picks the random movement."""

    def __init__(self, sc, seed=1):
        self.sc = sc
        self.seed = int(seed)
        channel = int(radio_mod.check_config(sc.radio)["channel"])
        # home agents in the order their home networks are numbered: those of mobile nodes
        # first (as the mobile nodes come), then the others
        self.home_rank = {}
        for spec in sc.nodes:
            if spec.role == "mobile" and spec.home_agent is not None:
                self.home_rank.setdefault(spec.home_agent, len(self.home_rank))
        for spec in sc.nodes:
            if spec.role == "home":
                self.home_rank.setdefault(spec.id, len(self.home_rank))
        whole = getattr(sc, "part_of", None)  # the whole scenario this one is a part of
        if whole is not None:
            full = Layout(whole, seed)
            self.home_rank = full.home_rank  # the home networks as numbered in the whole
            base = full.by_id
            self.nodes = [
                FieldNode(spec, base[spec.id].addr, channel, base[spec.id].index)
                for spec in sc.nodes
            ]
        else:
            self.nodes = [FieldNode(spec, self._address(spec), channel) for spec in sc.nodes]
        self.by_id = {fn.id: fn for fn in self.nodes}
        self.cell_key = hashlib.sha256(KEY_SEED + b"cell").digest()[:16]
        # the infrastructure's binding secret: agents hold it, a mobile node only the key
        # derived from it for its own address (K_X: only X makes a binding for X)
        self.binding_secret = hashlib.sha256(KEY_SEED + b"binding").digest()[:16]
        self.region_keys = {
            r.id: hashlib.sha256(KEY_SEED + b"region" + r.id.encode()).digest()[:16]
            for r in sc.regions
        }
        # the home agent and the correspondents of a mobile node share its home key
        self.home_key = {
            fn.node_id: hashlib.sha256(KEY_SEED + b"home" + fn.id.encode()).digest()[:16]
            for fn in self.nodes
            if fn.role == "mobile"
        }
        self.regions = {r.id: r for r in sc.regions}
        self.bb_hosts = [
            fn for fn in self.nodes if fn.bb is not None and fn.role in ("home", "host")
        ]

    def _address(self, spec):
        n = spec.index + 1
        net = 0
        if spec.role == "mobile" and spec.home_agent is not None:
            net = HOME_NET_BASE + self.home_rank[spec.home_agent]
        return bytes((10, net, (n >> 8) & 0xFF, n & 0xFF))

    # -- where the nodes are -------------------------------------------------------------------

    def legs(self, i):
        """Node i's movement: a generator of legs (movement.py), seeded by the layout's seed."""
        spec = self.sc.nodes[i]
        k = self.nodes[i].node_id - 1  # the node's number: the same movement in a part
        return movement.legs_for(
            spec.mobility, spec.pos, random.Random(self.seed * 31 + k), self.sc.base_dir
        )

    # -- the roles' configs --------------------------------------------------------------------

    def _links(self, fn):
        """Every agent and router on the backbone but fn, as a config's ``links``."""
        return [
            {"addr": ntoa(o.addr), "iface": IF_BACKBONE, "mac": o.bb}
            for o in self.nodes
            if o.bb is not None and o is not fn and o.role in ("agent", "router")
        ]

    def home_routes(self):
        return [
            {"dst": "10.%d.0.0/16" % (HOME_NET_BASE + self.home_rank[fn.id]), "via": ntoa(fn.addr)}
            for fn in self.nodes
            if fn.role == "home"
        ]

    def region_config(self, fn, policy="roam"):
        if fn.region is None:
            return None
        r = self.regions[fn.region]
        by_id = self.by_id
        nbrs = []
        for a, b in r.links:
            other = b if a == fn.id else (a if b == fn.id else None)
            if other is not None:
                o = by_id[other]
                nbrs.append({"addr": ntoa(o.addr), "iface": IF_BACKBONE, "mac": o.bb})
        hosts = [{"addr": ntoa(h.addr), "iface": IF_BACKBONE, "mac": h.bb} for h in self.bb_hosts]
        cfg = {
            "name": r.id,
            "members": [ntoa(by_id[m].addr) for m in r.members],
            "neighbours": nbrs,
            "hosts": hosts,
            "routes": self.home_routes(),
            "policy": policy,
        }
        cfg.update(self.sc.region_settings)
        return cfg

    def config(self, i, boot=0, policy="roam"):
        """The config node i's role is built from in its boot number ``boot`` (a new dict)."""
        fn = self.nodes[i]
        sc = self.sc
        cfg = {
            "node_id": fn.node_id,
            "address": ntoa(fn.addr),
            "keys": {SPI_CELL: self.cell_key},
            # the radio's MAC (a board's driver sets it from its radio): registrations sign it
            "mac": fn.mac,
            # the boot counter a board keeps in flash (firmware/config.py next_epoch): every
            # role's boot nonce starts with it, so a node powered on again is a restart
            "epoch": boot & 0xFFFF,
        }
        if policy == "mip4":
            cfg["hold"] = 0  # Mobile IPv4 sends a datagram once (docs/CORE.md "Sent again")
        cfg.update(sc.role_config.get(fn.role, {}))
        cfg.update(dict(fn.spec.config))
        role = fn.role
        if role == "agent":
            cfg["keys"][SPI_NODE_SECRET] = self.binding_secret
            reg = self.region_config(fn, policy)
            if reg is not None:
                cfg["keys"][SPI_REGION] = self.region_keys[fn.region]
                cfg["region"] = reg
                cfg["epoch"] = boot
        elif role == "mobile":
            cfg["keys"][SPI_NODE] = node_key(self.binding_secret, fn.addr)
            cfg["keys"][spi_home(fn.node_id)] = self.home_key[fn.node_id]
            cfg["policy"] = policy
            if fn.spec.home_agent is not None:
                cfg["home_agent"] = ntoa(self.by_id[fn.spec.home_agent].addr)
        elif role == "host":
            gw = cfg.get("gateway")
            if isinstance(gw, str) and gw in self.by_id:
                g = self.by_id[gw]
                if fn.bb is not None and g.bb is not None:
                    cfg["gateway"] = g.bb
                    cfg["gateway_iface"] = IF_BACKBONE
                else:
                    cfg["gateway"] = g.mac
                    cfg["gateway_iface"] = IF_RADIO
            # a correspondent holds the home keys of the mobile nodes (it accepts their
            # bindings, unless the policy is the baseline) and, on the backbone, reaches every
            # agent directly (tunnels to a care-of agent need no gateway)
            peers = {}
            for o in self.nodes:
                if o.role == "mobile":
                    cfg["keys"][spi_home(o.node_id)] = self.home_key[o.node_id]
                    peers[ntoa(o.addr)] = o.node_id
            if policy != "mip4":
                cfg["peers"] = peers
                # a correspondent that accepts proxy bindings (docs/REGION.md) holds the key
                # of its gateway's region: the region's routers sign them with it
                g = self.by_id.get(gw) if isinstance(gw, str) else None
                if cfg.get("accept_proxy") and g is not None and g.region is not None:
                    cfg["keys"][SPI_REGION] = self.region_keys[g.region]
            if fn.bb is not None:
                cfg["links"] = self._links(fn)
        elif role == "router":
            cfg["keys"][SPI_REGION] = self.region_keys[fn.region]
            cfg["region"] = self.region_config(fn, policy)
            cfg["epoch"] = boot
            if policy == "mip4":
                cfg["policy"] = "mip4"
        elif role == "home":
            mobiles = {}
            for o in self.nodes:
                if o.role == "mobile" and o.spec.home_agent == fn.id:
                    cfg["keys"][spi_home(o.node_id)] = self.home_key[o.node_id]
                    mobiles[ntoa(o.addr)] = o.node_id
            cfg["mobiles"] = mobiles
            # the home agent reaches every agent and router over the backbone (tunnels go
            # straight to the care-of agent)
            cfg["links"] = self._links(fn)
        return cfg

    def board_config(self, i, ssid=None, collector=None):
        """Node i's config.json on a board: its role's config (JSON: bytes as hex, a 6-byte
        link address as 'aa:bb:..', which the core reads both), its role and channel; on the
        backbone, how it joins the access point ``ssid`` (its static address and port: its
        backbone link address) and the ``collector`` of its log; the application traffic it
        sends (the scenario's flows from it). Without an epoch: a board counts its own boots
        (a fixed epoch would make every reboot look like a replay of the boot before)."""
        fn = self.nodes[i]
        cfg = _jsonable(self.config(i))
        cfg.pop("epoch", None)
        cfg.pop("mac", None)  # the board's driver takes it from its radio
        cfg["role"] = fn.role
        cfg["channel"] = int(fn.channel)
        if fn.bb is not None and ssid is not None:
            cfg["wifi"] = {"ssid": ssid, "ip": ntoa(fn.bb[:4]), "port": (fn.bb[4] << 8) | fn.bb[5]}
            if collector is not None:
                cfg["collector"] = collector
        flows = [
            {
                "to": ntoa(self.by_id[f.dst].addr),
                "every_ms": max(1, int(round(f.interval_ms))),
                "size": int(f.size),
                "start_ms": int(round(f.start_s * 1000)),
                "stop_ms": int(round(f.stop_s * 1000)),
            }
            for f in self.sc.flows
            if f.src == fn.id
        ]
        if flows:
            cfg["flows"] = flows
        return cfg


def _jsonable(v):
    """A role config value as config.json holds it: bytes -> hex ('aa:bb:..' for 6-byte link
    addresses, which the core's parse_mac and parse_link both read), dict keys -> str."""
    if isinstance(v, (bytes, bytearray)):
        return mac_text(bytes(v)) if len(v) == 6 else bytes(v).hex()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


class Positions:
    """Where the layout's nodes are at scenario time t (seconds), in real time: t only grows
    per node; safe to ask from several threads (the lab's air and its scenario clock)."""

    def __init__(self, layout):
        self.legs = {}
        self.cur = {}
        for fn in layout.nodes:
            gen = layout.legs(fn.index)
            self.legs[fn.id] = gen
            self.cur[fn.id] = next(gen)
        self.lock = threading.Lock()

    def at(self, name, t):
        """(x, y) of node ``name`` at t, or None for a name not in the layout."""
        with self.lock:
            leg = self.cur.get(name)
            if leg is None:
                return None
            while t >= leg[3]:
                nxt = next(self.legs[name], None)
                if nxt is None:
                    break
                leg = self.cur[name] = nxt
            t0, x0, y0, t1, x1, y1 = leg
            if t1 <= t0 or t <= t0:
                return (x0, y0)
            f = min(1.0, (t - t0) / (t1 - t0))
            return (x0 + (x1 - x0) * f, y0 + (y1 - y0) * f)

"""Scenario files: TOML describing the field, the nodes, their movement, traffic and faults.

The format is documented in docs/SIMULATOR.md. Loading expands node groups and flow sets into
plain lists, checks every field, and raises ScenarioError with the file name and the offending
entry: a bad file gets one clear line, never a traceback from deep inside a run.
"""

import fnmatch
import os
import random
import tomllib

from hosttools import firmware
from hosttools.sim import claims, movement

BUILTIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")
# the roles a board runs (firmware/config.py), and the simulator's attacker (attacker.py)
ROLES = firmware.roles() + ("attacker",)
BACKBONE_ROLES = ("agent", "home", "router", "attacker")
FAULT_KINDS = ("node_off", "node_on", "backbone_cut", "backbone_heal", "partition", "heal")
DEFAULT_PROCESSING_MS = 2.0
MIN_PROCESSING_MS = 0.01

TOP_KEYS = (
    "name",
    "description",
    "duration_s",
    "radio",
    "backbone",
    "role_config",
    "node",
    "group",
    "region",
    "flow",
    "flow_set",
    "fault",
    "claims",
    "region_settings",
    "processing_ms",
    "crashes",
)
CRASH_KEYS = ("nodes", "count", "between_s", "down_s", "gap_s", "stay_off")


class ScenarioError(ValueError):
    pass


class UnknownScenario(ScenarioError):
    """The name given is neither a file nor a built-in scenario (a bad argument, not a bad file)."""


def builtin_names():
    return sorted(f[:-5] for f in os.listdir(BUILTIN_DIR) if f.endswith(".toml"))


def builtin_path(name):
    return os.path.join(BUILTIN_DIR, name + ".toml")


def resolve(name_or_path):
    """A built-in scenario name or a path to a TOML file -> the file's path."""
    if os.path.exists(name_or_path):
        return name_or_path
    p = builtin_path(name_or_path)
    if os.path.exists(p):
        return p
    raise UnknownScenario(
        "no scenario %r: not a file, and the built-ins are %s"
        % (name_or_path, ", ".join(builtin_names()))
    )


def describe(path):
    """(name, description) of a scenario file, for `roam sim scenarios`."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    return data.get("name", os.path.basename(path)[:-5]), data.get("description", "")


class Node:
    __slots__ = (
        "id",
        "role",
        "pos",
        "mobility",
        "home_agent",
        "region",
        "channel",
        "backbone",
        "config",
        "index",
    )

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


class Flow:
    __slots__ = ("src", "dst", "interval_ms", "size", "start_s", "stop_s", "index")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


class Region:
    __slots__ = ("id", "members", "links")

    def __init__(self, id, members, links):
        self.id = id
        self.members = members
        self.links = links


class Scenario:
    """A checked, expanded scenario."""

    def __init__(self):
        self.name = ""
        self.description = ""
        self.duration_s = 0.0
        self.radio = {}
        self.backbone = {"latency_ms": 2.0, "jitter_ms": 1.0}
        # a board's time from an input (frame, timer, datagram) to its answer on the air
        # (hosttools.sim.cores); also the simulator's lookahead between processes
        self.processing_ms = DEFAULT_PROCESSING_MS
        self.role_config = {}
        self.region_settings = {}  # hold-off, republish period...: merged into every region dict
        self.nodes = []
        self.by_id = {}
        self.regions = []
        self.flows = []
        self.faults = []
        self.crashes = None  # [crashes] (crash_schedule draws them per seed) or None
        self.claims = {}
        self.base_dir = "."


def _err(where, msg):
    raise ScenarioError("%s: %s" % (where, msg))


def _num(where, v, name, lo=None):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        _err(where, "%s must be a number, got %r" % (name, v))
    if lo is not None and v < lo:
        _err(where, "%s must be >= %s, got %r" % (name, lo, v))
    return v


def _check_keys(where, table, known):
    if not isinstance(table, dict):
        _err(where, "must be a table, got %r" % (table,))
    extra = sorted(set(table) - set(known))
    if extra:
        _err(where, "unknown key(s) %s (known: %s)" % (", ".join(extra), ", ".join(known)))


NODE_KEYS = (
    "id",
    "role",
    "pos",
    "mobility",
    "home_agent",
    "region",
    "channel",
    "backbone",
    "config",
)
GROUP_KEYS = (
    "prefix",
    "count",
    "role",
    "placement",
    "mobility",
    "home_agent",
    "region",
    "region_blocks",
    "channel",
    "backbone",
    "config",
)


def load(path, duration_s=None, overrides=None):
    """Load and check the scenario file `path` (or a built-in name).

    `duration_s` replaces the file's duration (short CI variants); `overrides` is a dict merged
    into the raw TOML data before checking (tests use it to shrink a scenario)."""
    path = resolve(path)
    where = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError("%s: not valid TOML: %s" % (where, e)) from None
    if overrides:
        data.update(overrides)
    if duration_s is not None:
        data["duration_s"] = duration_s
    return from_dict(data, where, os.path.dirname(os.path.abspath(path)))


def from_dict(data, where="scenario", base_dir="."):
    _check_keys(where, data, TOP_KEYS)
    sc = Scenario()
    sc.base_dir = base_dir
    sc.name = data.get("name", where)
    sc.description = data.get("description", "")
    if "duration_s" not in data:
        _err(where, "duration_s is missing")
    sc.duration_s = float(_num(where, data["duration_s"], "duration_s", 0.001))
    # imported here, not at the top: the radio model brings numpy, and `roam --help` lists
    # `roam sim` through this module without loading a scenario
    from hosttools import radio as radio_mod

    try:
        radio_mod.check_config(data.get("radio", {}))
    except radio_mod.RadioConfigError as e:
        _err(where + " [radio]", str(e))
    sc.radio = data.get("radio", {})
    if "processing_ms" in data:
        sc.processing_ms = float(
            _num(where, data["processing_ms"], "processing_ms", MIN_PROCESSING_MS)
        )
    bb = data.get("backbone", {})
    _check_keys(where + " [backbone]", bb, ("latency_ms", "jitter_ms"))
    for k, v in bb.items():
        sc.backbone[k] = float(_num(where + " [backbone]", v, k, 0))
    rc = data.get("role_config", {})
    _check_keys(where + " [role_config]", rc, ROLES)
    sc.role_config = rc
    rs = data.get("region_settings", {})
    _check_keys(
        where + " [region_settings]",
        rs,
        ("hold_off_ms", "republish_ms", "dup_hold_ms", "max_published"),
    )
    sc.region_settings = rs
    sc.claims = data.get("claims", {})
    if not isinstance(sc.claims, dict):
        _err(where, "[claims] must be a table")
    for wname, win in sc.claims.get("windows", {}).items():
        w = "%s claims window %r" % (where, wname)
        if not isinstance(win, dict) or "range" not in win:
            _err(w, "must be { range = [from_s, to_s], flows = [indices] }")
        r = win["range"]
        if not isinstance(r, list) or len(r) != 2 or _num(w, r[0], "from") > _num(w, r[1], "to"):
            _err(w, "range must be [from_s, to_s] with from <= to")
    instants = sc.claims.get("recovery_after_s", {})
    if not isinstance(instants, dict):
        _err(where, "[claims] recovery_after_s must be a table { name = seconds }")
    for iname, t in instants.items():
        _num("%s claims recovery_after_s" % where, t, iname, 0)
    try:
        claims.parse(sc.claims)
    except claims.ClaimError as e:
        _err(where + " [claims]", str(e))
    rng = random.Random(0x5CE7A410)  # placement and pairing are part of the scenario, not the run

    raw_nodes = []
    for i, n in enumerate(data.get("node", [])):
        w = "%s node #%d" % (where, i + 1)
        _check_keys(w, n, NODE_KEYS)
        raw_nodes.append((w, dict(n)))
    for gi, g in enumerate(data.get("group", [])):
        w = "%s group #%d" % (where, gi + 1)
        _check_keys(w, g, GROUP_KEYS)
        raw_nodes.extend(_expand_group(w, g, rng))

    for w, n in raw_nodes:
        if "id" not in n or not isinstance(n["id"], str) or not n["id"]:
            _err(w, "id must be a non-empty string")
        w = "%s node %r" % (where, n["id"])
        if n["id"] in sc.by_id:
            _err(w, "duplicate node id")
        role = n.get("role")
        if role not in ROLES:
            _err(w, "role must be one of %s, got %r" % (", ".join(ROLES), role))
        pos = n.get("pos")
        if pos is not None:
            if not isinstance(pos, list) or len(pos) != 2:
                _err(w, "pos must be [x, y]")
            pos = (float(_num(w, pos[0], "pos x")), float(_num(w, pos[1], "pos y")))
        mob = n.get("mobility")
        if mob is None and pos is None:
            _err(w, "needs pos = [x, y] or a mobility table")
        if mob is not None:
            if not isinstance(mob, dict):
                _err(w, "mobility must be a table")
            try:  # check it now; the world builds the generator again with its own seed
                movement.legs_for(mob, pos, random.Random(0), base_dir)
            except movement.MovementError as e:
                _err(w, str(e))
        ch = n.get("channel", None)
        if ch is not None and (not isinstance(ch, int) or not 1 <= ch <= 14):
            _err(w, "channel must be 1..14")
        cfg = n.get("config", {})
        if not isinstance(cfg, dict):
            _err(w, "config must be a table")
        if role == "attacker" and "attacks" in cfg:
            from hosttools.sim.attacker import check_kinds

            try:
                check_kinds(cfg["attacks"])
            except ValueError as e:
                _err(w, str(e))
        node = Node(
            id=n["id"],
            role=role,
            pos=pos,
            mobility=mob,
            home_agent=n.get("home_agent"),
            region=n.get("region"),
            channel=ch,
            backbone=bool(n.get("backbone", role in BACKBONE_ROLES)),
            config=cfg,
            index=len(sc.nodes),
        )
        sc.nodes.append(node)
        sc.by_id[node.id] = node
    if not sc.nodes:
        _err(where, "no nodes")
    if len(sc.nodes) > 60000:
        _err(where, "too many nodes (%d > 60000)" % len(sc.nodes))
    for node in sc.nodes:
        w = "%s node %r" % (where, node.id)
        if node.home_agent is not None:
            ha = sc.by_id.get(node.home_agent)
            if ha is None or ha.role != "home":
                _err(w, "home_agent %r is not a node with role home" % (node.home_agent,))
        if node.region is not None and node.role not in ("agent", "router"):
            _err(w, "only agents and routers are region members")

    _load_regions(sc, data, where)
    _load_flows(sc, data, where, rng)
    _load_faults(sc, data, where)
    _load_crashes(sc, data, where)
    return sc


def _expand_group(w, g, rng):
    for k in ("prefix", "count", "role"):
        if k not in g:
            _err(w, "%s is missing" % k)
    count = int(_num(w, g["count"], "count", 1))
    placement = g.get("placement", {"kind": "random"})
    kind = placement.get("kind")
    positions = []
    if kind == "grid":
        _check_keys(w + " placement", placement, ("kind", "origin", "spacing", "cols"))
        ox, oy = placement.get("origin", [0, 0])
        sp = float(_num(w, placement.get("spacing", 100), "spacing", 0.001))
        cols = int(_num(w, placement.get("cols", max(1, int(count**0.5))), "cols", 1))
        positions = [(ox + (i % cols) * sp, oy + (i // cols) * sp) for i in range(count)]
    elif kind == "random":
        _check_keys(w + " placement", placement, ("kind", "area"))
        area = placement.get("area")
        if not isinstance(area, list) or len(area) != 4:
            _err(w, "random placement needs area = [x0, y0, x1, y1]")
        positions = [
            (rng.uniform(area[0], area[2]), rng.uniform(area[1], area[3])) for _ in range(count)
        ]
    else:
        _err(w, "placement kind must be grid or random, got %r" % (kind,))
    has = g.get("home_agent")
    if isinstance(has, str):
        has = [has]
    blocks = g.get("region_blocks")
    width = len(str(count))
    out = []
    for i in range(count):
        n = {
            "id": "%s%0*d" % (g["prefix"], width, i + 1),
            "role": g["role"],
            "pos": list(positions[i]),
        }
        for k in ("mobility", "channel", "backbone", "config", "region"):
            if k in g:
                n[k] = g[k]
        if has:
            n["home_agent"] = has[i % len(has)]
        if blocks is not None:
            # grid agents split into regions of bx x by agents: "<region>-<col>-<row>"
            if kind != "grid" or not isinstance(blocks, list) or len(blocks) != 2:
                _err(w, "region_blocks = [bx, by] needs a grid placement")
            cols = int(placement.get("cols", max(1, int(count**0.5))))
            n["region"] = "%s-%d-%d" % (
                g.get("region", "r"),
                (i % cols) // blocks[0],
                (i // cols) // blocks[1],
            )
        out.append((w, n))
    return out


def _load_regions(sc, data, where):
    declared = {}
    for i, r in enumerate(data.get("region", [])):
        w = "%s region #%d" % (where, i + 1)
        _check_keys(w, r, ("id", "members", "topology", "links", "neighbours"))
        if "id" not in r:
            _err(w, "id is missing")
        declared[r["id"]] = r
    members = {}
    for n in sc.nodes:
        if n.region is not None:
            members.setdefault(n.region, []).append(n.id)
    for rid, r in declared.items():
        for m in r.get("members", []):
            node = sc.by_id.get(m)
            if node is None or node.role not in ("agent", "router"):
                _err("%s region %r" % (where, rid), "member %r is not an agent or router" % m)
            if node.region not in (None, rid):
                _err("%s region %r" % (where, rid), "%r is already in region %r" % (m, node.region))
            node.region = rid
            if m not in members.setdefault(rid, []):
                members[rid].append(m)
    for rid in sorted(members):
        r = declared.get(rid, {})
        w = "%s region %r" % (where, rid)
        ids = members[rid]
        topo = r.get("topology", "links" if "links" in r else "nearest")
        links = set()
        if topo == "links":
            for pair in r.get("links", []):
                if not isinstance(pair, list) or len(pair) != 2 or not all(p in ids for p in pair):
                    _err(w, "link %r must name two members of the region" % (pair,))
                links.add(tuple(sorted(pair)))
        elif topo == "mesh":
            links = {(a, b) for a in ids for b in ids if a < b}
        elif topo == "nearest":
            k = int(r.get("neighbours", 4))
            links = _nearest_links(sc, ids, k)
        else:
            _err(w, "topology must be links, mesh or nearest, got %r" % topo)
        sc.regions.append(Region(rid, ids, sorted(links)))


def _nearest_links(sc, ids, k):
    """Link each member to its k nearest members (by position), made symmetric; then join any
    disconnected parts by their closest pair so the region is one flooding domain."""
    pos = {i: sc.by_id[i].pos or (0.0, 0.0) for i in ids}

    def d2(a, b):
        return (pos[a][0] - pos[b][0]) ** 2 + (pos[a][1] - pos[b][1]) ** 2

    links = set()
    for a in ids:
        near = sorted((d2(a, b), b) for b in ids if b != a)[:k]
        for _, b in near:
            links.add(tuple(sorted((a, b))))
    parent = {i: i for i in ids}

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in links:
        parent[find(a)] = find(b)
    while len({find(i) for i in ids}) > 1:
        root = find(ids[0])
        inside = [i for i in ids if find(i) == root]
        outside = [i for i in ids if find(i) != root]
        _, a, b = min((d2(a, b), a, b) for a in inside for b in outside)
        links.add(tuple(sorted((a, b))))
        parent[find(a)] = find(b)
    return links


def _match(sc, pattern, w):
    ids = [n.id for n in sc.nodes if fnmatch.fnmatchcase(n.id, pattern)]
    if not ids:
        _err(w, "%r matches no node" % pattern)
    return ids


FLOW_KEYS = ("src", "dst", "interval_ms", "size", "start_s", "stop_s")


def _flow(sc, w, f, src, dst):
    interval = float(_num(w, f.get("interval_ms", 100), "interval_ms", 1))
    size = int(_num(w, f.get("size", 32), "size", 8))
    if size > 200:
        _err(w, "size %d is too large: a datagram must fit an ESP-NOW frame (200 max)" % size)
    start = float(_num(w, f.get("start_s", 5), "start_s", 0))
    stop = float(_num(w, f.get("stop_s", sc.duration_s), "stop_s", 0))
    if src == dst:
        _err(w, "a flow from %r to itself" % src)
    for nid in (src, dst):
        if sc.by_id[nid].role not in ("mobile", "host", "home"):
            _err(w, "flow end %r must be a mobile node, host or home agent" % nid)
    sc.flows.append(
        Flow(
            src=src,
            dst=dst,
            interval_ms=interval,
            size=size,
            start_s=start,
            stop_s=stop,
            index=len(sc.flows),
        )
    )


def _load_flows(sc, data, where, rng):
    for i, f in enumerate(data.get("flow", [])):
        w = "%s flow #%d" % (where, i + 1)
        _check_keys(w, f, FLOW_KEYS)
        for k in ("src", "dst"):
            if f.get(k) not in sc.by_id:
                _err(w, "%s %r is not a node" % (k, f.get(k)))
        _flow(sc, w, f, f["src"], f["dst"])
    for i, f in enumerate(data.get("flow_set", [])):
        w = "%s flow_set #%d" % (where, i + 1)
        _check_keys(w, f, FLOW_KEYS + ("count", "pairing"))
        srcs = _match(sc, f.get("src", ""), w)
        dsts = _match(sc, f.get("dst", ""), w)
        pairing = f.get("pairing", "all")
        sub = {k: v for k, v in f.items() if k not in ("count", "pairing")}
        if pairing == "all":  # every src to every dst
            for s in srcs:
                for d in dsts:
                    if s != d:
                        _flow(sc, w, sub, s, d)
        elif pairing == "random":
            count = int(_num(w, f.get("count", 1), "count", 1))
            for _ in range(count):
                s = rng.choice(srcs)
                d = rng.choice([x for x in dsts if x != s] or dsts)
                _flow(sc, w, sub, s, d)
        else:
            _err(w, "pairing must be all or random")


def _load_faults(sc, data, where):
    for i, f in enumerate(data.get("fault", [])):
        w = "%s fault #%d" % (where, i + 1)
        _check_keys(w, f, ("at_s", "kind", "nodes", "groups"))
        if f.get("kind") not in FAULT_KINDS:
            _err(w, "kind must be one of %s, got %r" % (", ".join(FAULT_KINDS), f.get("kind")))
        at = float(_num(w, f.get("at_s"), "at_s", 0))
        kind = f["kind"]
        nodes = []
        for pat in f.get("nodes", []):
            nodes.extend(_match(sc, pat, w))
        groups = []
        if kind == "partition":
            gs = f.get("groups")
            if not isinstance(gs, list) or len(gs) < 2:
                _err(w, "partition needs groups = [[ids...], [ids...]]")
            for g in gs:
                ids = []
                for pat in g:
                    ids.extend(_match(sc, pat, w))
                groups.append(ids)
        elif kind != "heal" and not nodes:
            _err(w, "%s needs nodes = [...]" % kind)
        sc.faults.append((at, kind, nodes, groups))
    sc.faults.sort(key=lambda x: x[0])


def _span(w, v, name, lo=0):
    if not isinstance(v, list) or len(v) != 2:
        _err(w, "%s must be [from, to]" % name)
    a, b = float(_num(w, v[0], name, lo)), float(_num(w, v[1], name, lo))
    if a > b:
        _err(w, "%s must be [from, to] with from <= to" % name)
    return a, b


def _load_crashes(sc, data, where):
    c = data.get("crashes")
    if c is None:
        return
    w = where + " [crashes]"
    _check_keys(w, c, CRASH_KEYS)
    ids = []
    for pat in c.get("nodes", []):
        ids.extend(i for i in _match(sc, pat, w) if i not in ids)
    if not ids:
        _err(w, "nodes = [...] names no node")
    sc.crashes = {
        "nodes": ids,
        "count": int(_num(w, c.get("count", 1), "count", 1)),
        "between_s": _span(w, c.get("between_s", [0, sc.duration_s]), "between_s"),
        "down_s": _span(w, c.get("down_s", [10, 30]), "down_s", 0.001),
        "gap_s": _span(w, c.get("gap_s", [10, 30]), "gap_s"),
        "stay_off": bool(c.get("stay_off", False)),
    }


def crash_schedule(sc, seed):
    """The crashes of a run of `sc` with `seed`: [(off_s, node id, on_s or None)] in time order.
    One crash at a time: the first at a moment drawn in the first `gap_s` of `between_s`, each
    node off for a time drawn from `down_s`, the next crash a time drawn from `gap_s` after it
    came back, never the node that crashed last, none after `between_s` ends; with `stay_off`
    the last one never comes back. A stream of its own (the seed's other draws are unchanged)."""
    c = sc.crashes
    if not c:
        return []
    rng = random.Random(int(seed) * 7919 + 23)
    t0, t1 = c["between_s"]
    t = t0 + rng.uniform(*c["gap_s"])
    out = []
    prev = None
    for _ in range(c["count"]):
        if t > t1:
            break
        nid = rng.choice([i for i in c["nodes"] if i != prev] or c["nodes"])
        on = t + rng.uniform(*c["down_s"])
        out.append((round(t, 3), nid, round(on, 3)))
        prev = nid
        t = on + rng.uniform(*c["gap_s"])
    if out and c["stay_off"]:
        out[-1] = (out[-1][0], out[-1][1], None)
    return out

"""`roam lab`: a field of virtual boards on this PC, one per node of a scenario.

``roam lab up SCENARIO`` starts a daemon (``python -m hosttools.lab serve``) that runs the air
(hosttools/air.py: ESP-NOW frames and the Wi-Fi backbone's UDP, the simulator's radio model,
a pcap) and one virtual board per scenario node (hosttools/vboard.py), each behind its own
pseudo terminal, and writes:

* ``<lab dir>/state.json``: the daemon's pid, the scenario, and each board's name, role, node
  id, address, MAC and pty (``roam lab status`` reads it, ``roam lab down`` removes it);
* a fleet file and a keys file (default ``<lab dir>/fleet.toml`` and ``keys.toml``) in the
  format of hosttools/fleet.py, so that ``roam deploy / provision / logs / test --fleet`` work
  on the virtual boards as on real ones. The boards' identities, configs and positions come
  from the field's layout (hosttools/sim/layout.py), the simulator's too, so a node is the same
  node in the lab as in a simulated run; the lab uses none of the simulator's machinery
  (its world, its core hosts);
* ``<lab dir>/console/<board>.log``: everything each board printed (a copy; the pty carries
  the same bytes to whoever opens it).

The scenario clock (node movement, faults) stands at 0 until ``roam lab start``, which presses
every board's reset button and starts the clock: the boards boot their firmware together as the
walk begins. ``--speed K`` runs the scenario K times faster (movement, faults, flow start/stop
times, and the timers that follow movement: advertisement interval, re-ranking, hand-off
dwell); ``--nodes a,b,c`` keeps only those nodes (a shortened field).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from hosttools.errors import RoamError, RoamUsageError
from hosttools.paths import PACKAGE_DIR, checkout

DEFAULT_DIR = Path("out") / "lab"
STATE = "state.json"
SSID = "roam-backbone"  # the access point every backbone node joins
# the laptop on that access point: `roam field` joins the lab's air at this address
COLLECTOR = "10.77.0.2:4345"
CONTROL = "control.sock"  # the daemon's control socket (unplug, plug, start, power)
# The lab's boards: ESP32-S3s. With the virtual board's heap calibrated at 32 bits
# (boards/heap64.json, bench/role_memory32.py) the firmware deployed into a board's romfs fits an
# ESP32's 110 KiB with 47 % to spare, but a version an over-the-air update staged runs from the
# filesystem, where an agent does not fit an ESP32 (docs/LAB.md "Heap"), and the lab updates
# its boards over the air. Back to "esp32" once over-the-air updates go to a romfs too.
BOARD_TYPE = "esp32s3"


def board_types(spec: str) -> dict[str, str]:
    """`roam lab up --board`: one type for every board ("esp32c3"), or a type and types by role
    ("esp32,agent=esp32c3,router=esp32c3": the agents and the router C3s, the others plain
    ESP32s). {role: type}, the others' type under "". RoamUsageError on a malformed spec, an
    unknown role or board type."""
    from hosttools.fleet import ROLES, load_board_type

    out: dict[str, str] = {}
    for part in [p.strip() for p in spec.split(",")]:
        role, eq, name = part.rpartition("=")
        role = role.strip() if eq else ""
        name = name.strip()
        if eq and role not in ROLES:
            raise RoamUsageError("--board: %r is not a role (roles: %s)" % (role, ", ".join(ROLES)))
        if role in out or not name:
            raise RoamUsageError(
                "--board: %r is not TYPE or TYPE,ROLE=TYPE,... (each role once)" % spec
            )
        try:
            load_board_type(name)
        except RoamError as e:
            raise RoamUsageError(str(e)) from None
        out[role] = name
    out.setdefault("", BOARD_TYPE)
    return out


def type_of(types: dict[str, str], role: str) -> str:
    """A board's type by its role (board_types)."""
    return types.get(role, types[""])


# -- the scenario, shortened and sped up -------------------------------------------------------


def _scale_mobility(mob: dict[str, Any], k: float, where: str) -> dict[str, Any]:
    m = dict(mob)
    kind = m.get("kind", "static")
    if kind == "trace":
        raise RoamUsageError("%s: --speed cannot scale a trace file's movement" % where)
    sp = m.get("speed")
    if isinstance(sp, (int, float)):
        m["speed"] = sp * k
    elif isinstance(sp, list):
        m["speed"] = [v * k for v in sp]
    elif kind in ("waypoints",) and sp is None:
        m["speed"] = 1.4 * k  # the documented default walking speed
    ps = m.get("pause_s")
    if isinstance(ps, (int, float)):
        m["pause_s"] = ps / k
    elif isinstance(ps, list):
        m["pause_s"] = [v / k for v in ps]
    if isinstance(m.get("start_s"), (int, float)):
        m["start_s"] = m["start_s"] / k
    return m


def shape(data: dict[str, Any], nodes: list[str] | None, speed: float) -> dict[str, Any]:
    """The raw scenario with only `nodes` kept and its clock sped up `speed` times."""
    d = dict(data)
    d.pop("claims", None)  # the simulator's pass/fail figures: not checked in the lab
    if nodes:
        keep = set(nodes)
        if d.get("group"):
            raise RoamUsageError("--nodes works on scenarios made of [[node]] entries (no groups)")
        have = {n.get("id") for n in d.get("node", [])}
        missing = sorted(keep - have)
        if missing:
            raise RoamUsageError(
                "--nodes: no node %r in the scenario (it has %s)"
                % (missing[0], ", ".join(sorted(str(h) for h in have)))
            )
        for n in d.get("node", []):
            ha = n.get("home_agent")
            if n.get("id") in keep and ha is not None and ha not in keep:
                raise RoamUsageError(
                    "--nodes: %s's home agent %r is not among them: add it (--nodes %s)"
                    % (n["id"], ha, ",".join([*nodes, str(ha)]))
                )
        d["node"] = [n for n in d.get("node", []) if n.get("id") in keep]
        regions = []
        for r in d.get("region", []):
            r = dict(r)
            if "members" in r:
                r["members"] = [m for m in r["members"] if m in keep]
            if "links" in r:
                r["links"] = [p for p in r["links"] if all(x in keep for x in p)]
            regions.append(r)
        d["region"] = regions
        d["flow"] = [f for f in d.get("flow", []) if f.get("src") in keep and f.get("dst") in keep]
        faults = []
        for f in d.get("fault", []):
            f = dict(f)
            if "nodes" in f:
                f["nodes"] = [n for n in f["nodes"] if n in keep]
                if not f["nodes"] and f.get("kind") not in ("heal", "partition"):
                    continue
            if "groups" in f:
                f["groups"] = [[n for n in g if n in keep] for g in f["groups"]]
            faults.append(f)
        d["fault"] = faults
    if speed != 1.0:
        k = float(speed)
        d["duration_s"] = float(d.get("duration_s", 60)) / k
        d["node"] = [
            dict(n, mobility=_scale_mobility(n["mobility"], k, "node %r" % n.get("id")))
            if isinstance(n.get("mobility"), dict)
            else n
            for n in d.get("node", [])
        ]
        d["group"] = [
            dict(g, mobility=_scale_mobility(g["mobility"], k, "group %r" % g.get("prefix")))
            if isinstance(g.get("mobility"), dict)
            else g
            for g in d.get("group", [])
        ]
        for key in ("flow", "flow_set"):
            out = []
            for f in d.get(key, []):
                f = dict(f)
                for t in ("start_s", "stop_s"):
                    if isinstance(f.get(t), (int, float)):
                        f[t] = f[t] / k
                out.append(f)
            d[key] = out
        d["fault"] = [dict(f, at_s=f["at_s"] / k) if "at_s" in f else f for f in d.get("fault", [])]
    return d


def load_scenario(name: str, nodes: list[str] | None = None, speed: float = 1.0):
    """A checked scenario (the simulator's loader) from a built-in name or a TOML path."""
    from hosttools.sim import scenario as sc_mod

    if speed <= 0:
        raise RoamUsageError("--speed must be positive, got %g" % speed)
    try:
        path = sc_mod.resolve(name)
        with open(path, "rb") as f:
            data = tomllib.load(f)
        whole = None
        if nodes:
            # the nodes kept keep the ids and addresses they have in the whole scenario
            whole = sc_mod.from_dict(
                shape(data, None, speed),
                os.path.basename(path),
                os.path.dirname(os.path.abspath(path)),
            )
        data = shape(data, nodes, speed)
        sc = sc_mod.from_dict(data, os.path.basename(path), os.path.dirname(os.path.abspath(path)))
        sc.part_of = whole
    except sc_mod.UnknownScenario as e:
        raise RoamUsageError(str(e)) from None
    except sc_mod.ScenarioError as e:
        raise RoamError(str(e)) from None
    except tomllib.TOMLDecodeError as e:
        raise RoamError("%s: not valid TOML: %s" % (name, e)) from None
    except OSError as e:
        raise RoamError("cannot read scenario %s: %s" % (name, e.strerror)) from None
    for n in sc.nodes:
        if n.role == "attacker":
            raise RoamError(
                "scenario %s: node %r is an attacker, which only the simulator runs"
                % (sc.name, n.id)
            )
    return sc


# -- the boards' configs: the field's layout, as the simulator lays it out ---------------------


class NodeConfig:
    """One node of the lab: identity, radio MAC and its config.json."""

    def __init__(self, fn, mac: str, config: dict[str, Any]):
        self.name = fn.id
        self.role = fn.role
        self.mac = mac
        self.config = config
        self.node_id = fn.node_id
        self.address = config["address"]


def speed_up(cfg: dict[str, Any], role: str, k: float) -> None:
    """A field K times faster: the timers that follow movement run K times faster too (an
    agent's advertisement interval, a mobile node's re-ranking period and hand-off dwell), so a
    node hands off at the same place as at walking speed. Values the scenario set are scaled."""
    from mobility import agent, agenttable, ranking

    if role == "agent":
        v = cfg.get("adv_interval_ms", agent.DEFAULT_ADV_INTERVAL_MS)
        cfg["adv_interval_ms"] = max(20, int(round(v / k)))
    elif role == "mobile":
        v = cfg.get("rerank_ms", agenttable.DEFAULT_RERANK_MS)
        cfg["rerank_ms"] = max(10, int(round(v / k)))
        rank = dict(cfg.get("rank") or {})
        rank["dwell_ms"] = int(round(rank.get("dwell_ms", ranking.DEFAULTS["dwell_ms"]) / k))
        cfg["rank"] = rank


def build_configs(sc, seed: int = 1, speed: float = 1.0) -> list[NodeConfig]:
    """config.json for every node: the field's layout (hosttools/sim/layout.py) gives each the
    config its role gets in a simulated run of the scenario, with its role, channel and flows,
    on the lab's access point with the laptop as its collector; for a sped-up field, faster
    mobility timers (speed_up)."""
    from hosttools.sim.layout import Layout, mac_text

    layout = Layout(sc, seed)
    out = []
    for fn in layout.nodes:
        cfg = layout.board_config(fn.index, SSID, COLLECTOR)
        if speed != 1.0:
            speed_up(cfg, fn.role, speed)
        out.append(NodeConfig(fn, mac_text(fn.mac), cfg))
    return out


def positions(sc, seed: int = 1):
    """Where the scenario's nodes are at scenario time t: ``.at(name, t)`` (the field's layout
    moves them as a simulated run does)."""
    from hosttools.sim.layout import Layout, Positions

    return Positions(Layout(sc, seed))


# -- fleet and keys files (hosttools/fleet.py's format) ----------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return (
            "{"
            + ", ".join("%s = %s" % (json.dumps(str(k)), _toml_value(x)) for k, x in v.items())
            + "}"
        )
    raise TypeError("cannot write %r to TOML" % (v,))


def fleet_text(
    nodes: list[NodeConfig],
    ports: dict[str, str],
    air: str | None = None,
    positions: dict[str, tuple[float, float]] | None = None,
    board: str = BOARD_TYPE,
) -> str:
    types = board_types(board)
    lines = [
        "# Written by `roam lab up`: the lab's virtual boards as a fleet (hosttools/fleet.py).",
        "# Keys are in the keys file next to it. Ports are links to the boards' pseudo",
        "# terminals (they stay put when a board is unplugged and plugged again).",
        "",
    ]
    if air:
        lines += [
            "[field]",
            "# the laptop joins the lab's access point through its air (roam field)",
            "collector = %s" % _toml_value(COLLECTOR),
            "air = %s" % _toml_value(air),
            "ssid = %s" % _toml_value(SSID),
            "",
        ]
    for n in nodes:
        lines.append("[[board]]")
        head: dict[str, Any] = {
            "name": n.name,
            "port": ports[n.name],
            "board": type_of(types, n.role),
            "role": n.role,
            "node_id": n.node_id,
            "address": n.address,
        }
        if positions and n.name in positions and n.role != "mobile":
            head["pos"] = [round(positions[n.name][0], 1), round(positions[n.name][1], 1)]
        for k, v in head.items():
            lines.append("%s = %s" % (k, _toml_value(v)))
        for k, v in n.config.items():
            # the collector comes from [field] (roam provision fills it in for backbone boards)
            if k in ("keys", "role", "node_id", "address", "name") or (air and k == "collector"):
                continue
            lines.append("%s = %s" % (json.dumps(k), _toml_value(v)))
        lines.append("")
    return "\n".join(lines)


def keys_text(nodes: list[NodeConfig], secrets: dict[str, str] | None = None) -> str:
    lines = ["# Written by `roam lab up`: every lab board's keys, by SPI (never printed).", ""]
    if secrets:
        lines.append("[default]")
        if "log" in secrets:
            lines += [
                "# the fleet's log secret: every board signs its log with a key derived from it",
                "log = %s" % json.dumps(secrets["log"]),
            ]
        if "update" in secrets:
            lines += [
                "# the fleet's update secret: only the laptop holds it; each board holds a key",
                "# derived from it for itself alone (roam deploy/provision/reset --ota)",
                "update = %s" % json.dumps(secrets["update"]),
            ]
        lines.append("")
    for n in nodes:
        lines.append("[node.%s]" % json.dumps(n.name))
        for spi, key in sorted(n.config["keys"].items(), key=lambda kv: int(kv[0])):
            lines.append("%s = %s" % (json.dumps(str(spi)), json.dumps(key)))
        lines.append("")
    return "\n".join(lines)


def _atomic_write(path: Path, text: str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # a temporary file of this thread's own: the daemon's threads write the state concurrently
    tmp = path.with_name("%s.%d.tmp" % (path.name, threading.get_ident()))
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_config(root: Path, cfg: dict[str, Any]) -> None:
    """config.json straight onto a board's filesystem (tmp + rename: atomic)."""
    _atomic_write(root / "config.json", json.dumps(cfg, sort_keys=True))


# -- the daemon ---------------------------------------------------------------------------------


class ConsoleLog:
    """Everything a board prints, kept twice: raw in ``console/<board>.log`` and line by line
    with the host time in ``console/<board>.jsonl`` (the format of `roam logs`, so the console
    directory is itself a log directory: the reference a field test's collected logs are
    measured against). It records whether or not the board's USB cable is plugged in."""

    def __init__(self, d: Path, name: str) -> None:
        self.raw = open(d / (name + ".log"), "ab")
        self.lines = open(d / (name + ".jsonl"), "a", encoding="utf-8")
        self.pending = b""
        self.n = 0
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        t = time.time()
        with self.lock:
            self.raw.write(data)
            buf = self.pending + data
            *done, self.pending = buf.split(b"\n")
            for raw in done:
                text = raw.decode("utf-8", "replace").rstrip("\r")
                if not text:
                    continue
                self.n += 1
                rec: dict[str, Any] = {"host": round(t, 6), "n": self.n}
                obj = None
                if text.startswith('{"t":'):
                    try:
                        obj = json.loads(text)
                    except ValueError:
                        obj = None
                if isinstance(obj, dict):
                    rec["json"] = obj
                else:
                    rec["text"] = text
                self.lines.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        with self.lock:
            self.raw.flush()
            self.lines.flush()

    def close(self) -> None:
        with self.lock:
            self.raw.close()
            self.lines.close()


class LabDaemon:
    def __init__(
        self,
        lab_dir: Path,
        sc,
        nodes: list[NodeConfig],
        heap_kb: int | None,
        seed: int,
        board: str = BOARD_TYPE,
        romfs_kb: int | None = None,
    ):
        from hosttools.air import Air
        from hosttools.vboard import BoardHost, VirtualBoard

        self.dir = lab_dir
        self.sc = sc
        self.nodes = nodes
        self.board = board
        types = board_types(board)
        self.mover = positions(sc, seed)
        self.t0: float | None = None  # the scenario clock: None until `roam lab start`
        self.air = Air(
            radio_cfg=sc.radio,
            seed=seed,
            pcap=str(lab_dir / "air.pcap"),
            rx_pcap=str(lab_dir / "air-rx.pcap"),
            mover=self._position,
        )
        # the access point sits on the scenario's channel: the backbone nodes' radios follow it
        self.air.add_access_point(SSID, channel=self.air.radio.channel)
        self.host = BoardHost()
        self.boards = {}
        self.consoles = {}
        (lab_dir / "console").mkdir(parents=True, exist_ok=True)
        (lab_dir / "tty").mkdir(parents=True, exist_ok=True)
        for n in nodes:
            x, y = self.mover.at(n.name, 0.0) or (0.0, 0.0)
            self.air.set_position(n.name, x, y)
            root = lab_dir / "boards" / n.name
            root.mkdir(parents=True, exist_ok=True)
            b = VirtualBoard(
                root,
                mac=n.mac,
                name=n.name,
                air=self.air.address,
                chip=type_of(types, n.role),
                heap_kb=heap_kb,
                romfs_kb=romfs_kb,
                side_log=lab_dir / "console" / (n.name + ".side.log"),
                link=lab_dir / "tty" / n.name,
            )
            con = ConsoleLog(lab_dir / "console", n.name)
            self.consoles[n.name] = con
            b.on_output = con.write
            self.boards[n.name] = b
        self.faults = list(sc.faults)
        self.stop = threading.Event()
        self.state_lock = threading.Lock()
        self.start_request = threading.Event()
        _atomic_write(
            lab_dir / "console" / "logs.json",
            json.dumps(
                {
                    "kind": "roam-lab-console",
                    "started": time.time(),
                    "stopped": None,
                    "boards": {
                        n.name: {"node": n.node_id, "addr": n.address, "role": n.role}
                        for n in nodes
                    },
                }
            ),
        )

    def _position(self, name: str, _t_air: float):
        t = 0.0 if self.t0 is None else time.monotonic() - self.t0
        return self.mover.at(name, t)

    def state(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "scenario": self.sc.name,
            "started": time.time(),
            "clock_started": None
            if self.t0 is None
            else time.time() - (time.monotonic() - self.t0),
            "air": self.air.address,
            "board": self.board,
            "pcap": str(self.dir / "air.pcap"),
            "rx_pcap": str(self.dir / "air-rx.pcap"),
            "boards": [
                {
                    "name": n.name,
                    "role": n.role,
                    "board": self.boards[n.name].chip,  # its type (boards/<type>.toml)
                    "heap_kb": self.boards[n.name].heap_kb,  # its MicroPython heap
                    "node_id": n.node_id,
                    "address": n.address,
                    "mac": n.mac,
                    "pty": self.boards[n.name].pty if self.boards[n.name].plugged else None,
                    "plugged": self.boards[n.name].plugged,
                    "link": str(self.dir / "tty" / n.name),
                    "root": str(self.boards[n.name].root),
                    "console": str(self.dir / "console" / (n.name + ".log")),
                    "alive": self.boards[n.name].proc is not None,
                    "booted": self.boards[n.name].booted,
                    "resets": self.boards[n.name].resets,
                }
                for n in self.nodes
            ],
        }

    def write_state(self) -> None:
        with self.state_lock:  # the last state taken is the last written
            _atomic_write(self.dir / STATE, json.dumps(self.state(), indent=1))

    def _apply(self, kind: str, names: list[str], groups: list[list[str]]) -> None:
        if kind == "node_off":
            for n in names:
                self.air.radio_off(n, True)
                self.boards[n].power_off()
        elif kind == "node_on":
            for n in names:
                self.air.radio_off(n, False)
                self.boards[n].power_on()
        elif kind == "backbone_cut":
            for n in names:
                self.air.cut_backbone(n, True)
        elif kind == "backbone_heal":
            for n in names:
                self.air.cut_backbone(n, False)
        elif kind == "partition":
            self.air.set_partition(groups)
        elif kind == "heal":
            self.air.set_partition([])
        self._note({"fault": kind, "nodes": names, "groups": groups})

    def _note(self, rec: dict[str, Any]) -> None:
        rec["t"] = round(time.monotonic() - self.t0, 3) if self.t0 is not None else 0.0
        rec["wall"] = round(time.time(), 3)
        with open(self.dir / "events.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")

    def _scenario_loop(self) -> None:
        pending = []
        last_state = 0.0
        while not self.stop.is_set():
            if self.start_request.is_set():
                self.start_request.clear()
                self.t0 = time.monotonic()
                pending = list(self.faults)
                for b in self.boards.values():
                    b.reset()  # the reset button
                self._note({"clock": "start"})
                self.write_state()
            if self.t0 is not None:
                now = time.monotonic() - self.t0
                while pending and pending[0][0] <= now:
                    _at, kind, names, groups = pending.pop(0)
                    self._apply(kind, names, groups)
            for con in self.consoles.values():
                try:
                    con.flush()
                except ValueError:
                    pass  # closed: the lab is going down
            if time.monotonic() - last_state >= 1.0:
                last_state = time.monotonic()
                self.write_state()
            self.stop.wait(0.1)

    def serve(self) -> None:
        self.air.start()
        for b in self.boards.values():
            self.host.add(b)
        self.write_state()
        signal.signal(signal.SIGTERM, lambda *_: self._shutdown())
        signal.signal(signal.SIGINT, lambda *_: self._shutdown())
        t = threading.Thread(target=self._scenario_loop, name="scenario", daemon=True)
        t.start()
        ctl = threading.Thread(target=self._control_loop, name="control", daemon=True)
        ctl.start()
        print("lab ready: %d boards" % len(self.boards), flush=True)
        try:
            self.host.serve_forever()
        finally:
            self.stop.set()
            t.join(timeout=2)
            self.host.close()
            self.air.stop()
            for con in self.consoles.values():
                con.close()
            self._close_console_meta()
            try:
                (self.dir / STATE).unlink()
            except FileNotFoundError:
                pass
            print("lab down", flush=True)

    def _close_console_meta(self) -> None:
        p = self.dir / "console" / "logs.json"
        try:
            meta = json.loads(p.read_text())
            meta["stopped"] = time.time()
            _atomic_write(p, json.dumps(meta))
        except (OSError, ValueError):
            pass

    def _shutdown(self) -> None:
        self.host.stopping = True

    # -- the control socket: `roam lab start / unplug / plug / power` ------------------------

    def _control_loop(self) -> None:
        import socket

        path = self.dir / CONTROL
        path.unlink(missing_ok=True)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(str(path))
        srv.listen(8)
        srv.settimeout(0.2)
        try:
            while not self.stop.is_set():
                try:
                    conn, _ = srv.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.settimeout(5)
                    try:
                        req = json.loads(conn.makefile("r").readline())
                    except (ValueError, OSError) as e:
                        ans = {"ok": False, "error": "bad request: %s" % e}
                    else:
                        try:
                            ans = self.control(req)
                        except Exception as e:  # noqa: BLE001 - the client gets the reason
                            ans = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
                    try:
                        conn.sendall((json.dumps(ans) + "\n").encode())
                    except OSError:
                        pass
        finally:
            srv.close()
            path.unlink(missing_ok=True)

    def control(self, req: dict[str, Any]) -> dict[str, Any]:
        cmd = req.get("cmd")
        names = req.get("boards") or list(self.boards)
        unknown = [n for n in names if n not in self.boards]
        if unknown:
            return {"ok": False, "error": "no board %r in the lab" % unknown[0]}
        if cmd == "start":
            self.start_request.set()
        elif cmd == "unplug":
            for n in names:
                self.boards[n].unplug()
        elif cmd == "plug":
            for n in names:
                self.boards[n].plug()
        elif cmd == "power_off":
            for n in names:
                self.air.radio_off(n, True)
                self.boards[n].power_off()
        elif cmd == "power_on":
            for n in names:
                self.air.radio_off(n, False)
                self.boards[n].power_on()
        elif cmd in ("air_cut", "air_heal"):
            # the board keeps running, its radio hears and reaches nothing (ESP-NOW and Wi-Fi)
            for n in names:
                self.air.radio_off(n, cmd == "air_cut")
        else:
            return {"ok": False, "error": "unknown command %r" % cmd}
        self._note({"control": cmd, "boards": names})
        self.write_state()
        return {"ok": True, "boards": names}


# -- the client side: up / status / start / down ------------------------------------------------


def lab_dir(path: str | None) -> Path:
    return Path(path or os.environ.get("ROAM_LAB_DIR") or DEFAULT_DIR)


def no_lab(d: Path) -> str:
    """No lab is up in d: said with the absolute path, and how to find one started elsewhere
    (the default out/lab is relative to the directory a command runs in)."""
    hint = (
        "roam lab up SCENARIO, or name the lab's directory: --dir DIR or $ROAM_LAB_DIR"
        if not d.is_absolute()
        else "roam lab up SCENARIO"
    )
    return "no lab is up in %s (%s)" % (d.absolute(), hint)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (our own child not yet reaped) is not alive
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def read_state(d: Path) -> dict[str, Any] | None:
    """The running lab's state, or None (a state left by a dead daemon is removed)."""
    p = d / STATE
    try:
        st = json.loads(p.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise RoamError("%s is damaged: remove it (is a lab running?)" % p) from None
    if not isinstance(st.get("pid"), int) or not _alive(st["pid"]):
        _kill_group(st.get("pid"))
        p.unlink(missing_ok=True)
        return None
    return st


def running_boards(d: Path | None = None) -> list[dict[str, Any]]:
    """The virtual boards of the lab running in `d` (default: $ROAM_LAB_DIR or out/lab), for
    `roam devices`: port (the pty), name, chip (the lab's board type's), role. [] when no lab
    is up there."""
    st = read_state(lab_dir(None) if d is None else d)
    if st is None:
        return []
    from hosttools.fleet import load_board_type

    types = board_types(st.get("board", BOARD_TYPE))
    return [
        {
            "port": b["link"],
            "name": b["name"],
            "chip": load_board_type(b.get("board") or type_of(types, b["role"])).chip,
            "role": b["role"],
        }
        for b in st.get("boards", [])
        if b.get("plugged", True)
    ]


def _kill_group(pid: Any) -> None:
    """SIGKILL the daemon's process group (it leads its own session: its boards are in it)."""
    if not isinstance(pid, int) or pid <= 1:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def default_heap_kb(board_type: str = BOARD_TYPE) -> int:
    from hosttools.vboard import VBoardError, board_heap_kb

    try:
        return board_heap_kb(board_type)
    except VBoardError as e:
        raise RoamError(str(e)) from None


def _daemon_env() -> dict[str, str]:
    """The daemon's environment: this one, and from a checkout that is not installed, the
    checkout on PYTHONPATH first (so that the daemon imports this very hosttools wherever roam
    was started from). An installed roam needs nothing: its Python finds its own package."""
    env = dict(os.environ)
    if checkout() is not None:
        rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_DIR.parent)] + rest)
    return env


def up(
    scenario: str,
    d: Path,
    fleet: Path | None = None,
    keys: Path | None = None,
    nodes: list[str] | None = None,
    speed: float = 1.0,
    heap_kb: int | None = None,
    provision: bool = False,
    fresh: bool = False,
    run: bool = False,
    seed: int = 1,
    timeout: float = 120.0,
    board: str = BOARD_TYPE,
    romfs_kb: int | None = None,
) -> dict[str, Any]:
    """Start the lab daemon; returns its state once every board is up. ``board``: the boards'
    type (boards/<board>.toml: its chip's heap and romfs partition), or a type and types by
    role (board_types: "esp32,agent=esp32c3"); ``romfs_kb``: their romfs
    partition instead of the type's (0: none, a board whose MicroPython has no ROMFS, as
    micropython.org's images: docs/LAB.md "Heap")."""
    if read_state(d) is not None:
        raise RoamError("a lab is already up in %s (roam lab down first)" % d)
    sc = load_scenario(scenario, nodes, speed)
    configs = build_configs(sc, seed, speed)
    if romfs_kb is not None and (romfs_kb < 0 or romfs_kb % 4):
        # a partition is whole 4 KiB flash sectors, as the board files' romfs_kb
        raise RoamUsageError(
            "--romfs-kb must be 0 (none) or a multiple of 4 KiB, not %d" % romfs_kb
        )
    types = board_types(board)
    if heap_kb is None:
        for t in sorted(set(types.values())):
            default_heap_kb(t)  # a board file that cannot give it: one clear error, first
    d.mkdir(parents=True, exist_ok=True)
    if fresh:
        import shutil

        shutil.rmtree(d / "boards", ignore_errors=True)
        shutil.rmtree(d / "console", ignore_errors=True)
    else:
        # a lab brought down and up again: its boards were stopped, not crashed (and deploy,
        # provision and lab start reset them again): their crash-loop counters start at 0
        for count in (d / "boards").glob("*/boot.count"):
            count.unlink(missing_ok=True)
    (d / "events.jsonl").unlink(missing_ok=True)
    spec = {
        "scenario": scenario,
        "nodes": nodes,
        "speed": speed,
        "heap_kb": heap_kb,  # None: each board's calibrated heap (hosttools/vboard.py)
        "seed": seed,
        "board": board,
        "romfs_kb": romfs_kb,  # None: the board type's partition
    }
    _atomic_write(d / "lab.json", json.dumps(spec))
    log = open(d / "daemon.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hosttools.lab", "serve", str(d.resolve())],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # survives this command; its boards are in its process group
        cwd=str(d.resolve()),
        # the daemon imports this very hosttools (a checkout's, when it runs from one without
        # an install), wherever roam was started from
        env=_daemon_env(),
    )
    log.close()
    end = time.monotonic() + timeout
    st = None
    while time.monotonic() < end:
        if proc.poll() is not None:
            tail = (d / "daemon.log").read_text().strip().splitlines()[-5:]
            raise RoamError("the lab daemon stopped at once: %s" % (" | ".join(tail) or "?"))
        try:
            st = json.loads((d / STATE).read_text())
        except (FileNotFoundError, ValueError):
            st = None
        # every board's process runs and has booted (it reads its console: a real board is
        # at its REPL about a second after power-on; twelve virtual ones at once on a busy
        # machine took more than the 5 s a first probe waits, and deploy found them silent)
        if st and all(b.get("alive") and b.get("booted") for b in st["boards"]):
            break
        time.sleep(0.1)
    else:
        _kill_group(proc.pid)
        raise RoamError("the lab did not come up within %gs (see %s)" % (timeout, d / "daemon.log"))
    assert st is not None
    # the ports are the links (tty/NAME): they stay valid across `roam lab unplug` / `plug`
    ports = {b["name"]: b["link"] for b in st["boards"]}
    fleet = fleet or d / "fleet.toml"
    keys = keys or fleet.with_name("keys.toml")
    mover = positions(sc, seed)
    at_start = {c.name: mover.at(c.name, 0.0) or (0.0, 0.0) for c in configs}
    secrets = {"log": os.urandom(16).hex(), "update": os.urandom(16).hex()}
    _atomic_write(fleet, fleet_text(configs, ports, st["air"], at_start, board))
    _atomic_write(keys, keys_text(configs, secrets), mode=0o600)
    if provision:
        from hosttools.fleet import derived_keys

        for c in configs:
            cfg = dict(c.config)
            keys_ = dict(cfg["keys"])
            for name, secret in secrets.items():
                keys_.update(derived_keys(name, secret, c.node_id, c.role))
            cfg["keys"] = keys_
            write_config(d / "boards" / c.name, cfg)
    if run:
        start(d)
    st["fleet"] = str(fleet)
    st["keys"] = str(keys)
    return st


def control(d: Path, cmd: str, boards: list[str] | None = None) -> dict[str, Any]:
    """Ask the lab daemon in ``d`` to do ``cmd`` (start, unplug, plug, power_off, power_on,
    air_cut, air_heal)."""
    import socket

    if read_state(d) is None:
        raise RoamError(no_lab(d))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(str(d / CONTROL))
        s.sendall((json.dumps({"cmd": cmd, "boards": boards}) + "\n").encode())
        ans = json.loads(s.makefile("r").readline() or "{}")
    except (OSError, ValueError) as e:
        raise RoamError("the lab in %s does not answer (%s)" % (d, e)) from None
    finally:
        s.close()
    if not ans:
        raise RoamError("the lab in %s gave no answer to %s" % (d, cmd))
    if not ans.get("ok"):
        raise RoamError("the lab refused %s: %s" % (cmd, ans.get("error") or "?"))
    return ans


def start(d: Path) -> None:
    control(d, "start")


def down(d: Path, timeout: float = 15.0) -> int | None:
    """Stop the daemon and every board; returns how many boards it had, None if no lab was up
    (down is idempotent: what the user asked for, no lab running, holds)."""
    p = d / STATE
    try:
        st = json.loads(p.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise RoamError("%s is damaged: remove it" % p) from None
    pid = st.get("pid")
    n = len(st.get("boards", []))
    if isinstance(pid, int) and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        while time.monotonic() < end and _alive(pid):
            time.sleep(0.05)
    # whatever is left of its process group (a board process stuck somewhere) goes too
    _kill_group(pid)
    p.unlink(missing_ok=True)
    return n


def safe_mode_reason(console: Path, max_bytes: int = 65536) -> str | None:
    """Why the board sits in safe mode (its last boot printed safe_mode, not start), or None."""
    for ev in _console_events_backwards(console, max_bytes):
        if ev.get("ev") == "safe_mode":
            return str(ev.get("reason") or "safe mode")
        if ev.get("ev") == "start":
            return None
    return None


def _console_events_backwards(
    console: Path, max_bytes: int, prefix: str = "{"
) -> Iterator[dict[str, Any]]:
    """The JSON objects of the console's last ``max_bytes``, last first (lines that start with
    ``prefix``)."""
    try:
        with open(console, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return
    for line in reversed(tail.splitlines()):
        line = line.strip()
        if not line.startswith(prefix):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict):
            yield ev


def last_binding(console: Path, max_bytes: int = 65536) -> str | None:
    """The agent a mobile node is bound to, from the last bound/unbound event it printed."""
    for ev in _console_events_backwards(console, max_bytes, '{"t":'):
        if ev.get("ev") == "bound":
            return ev.get("agent")
        if ev.get("ev") in ("unbound", "start"):
            return None
    return None


# -- the command line ---------------------------------------------------------------------------

_dir_option = click.option(
    "--dir",
    "dir_",
    metavar="DIR",
    default=None,
    help="Lab directory (default out/lab, or $ROAM_LAB_DIR).",
)


@click.group("lab")
def lab_cmd() -> None:
    """Virtual boards on this PC: one per scenario node, joined by a simulated air."""


@lab_cmd.command("up")
@click.argument("scenario")
@_dir_option
@click.option(
    "--fleet",
    "fleet",
    metavar="FILE",
    default=None,
    help="Write the fleet file here (default DIR/fleet.toml).",
)
@click.option(
    "--keys",
    "keys",
    metavar="FILE",
    default=None,
    help="Write the keys file here (default: keys.toml next to the fleet file).",
)
@click.option("--nodes", default=None, metavar="A,B,..", help="Only these nodes of the scenario.")
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Run the scenario's movement and faults this many times faster.",
)
@click.option(
    "--heap-kb",
    type=int,
    default=None,
    help="MicroPython heap per board (default: the lab chip's budget x the 64/32 factor of "
    "boards/heap64.json for where its firmware runs from, + the shims' heap).",
)
@click.option(
    "--provision",
    is_flag=True,
    help="Write each board's config.json directly (instead of `roam provision`).",
)
@click.option(
    "--board",
    "board",
    default=BOARD_TYPE,
    show_default=True,
    metavar="TYPE[,ROLE=TYPE...]",
    help="The boards' type (boards/TYPE.toml: esp32, esp32c3, esp32s3): its chip's heap; "
    "ROLE=TYPE gives a role's boards another (esp32,agent=esp32c3,router=esp32c3).",
)
@click.option(
    "--romfs-kb",
    type=int,
    default=None,
    metavar="KIB",
    help="Each board's romfs partition (default: the board type's; 0: none, as a board whose "
    "MicroPython has no ROMFS, micropython.org's images: the firmware runs from the filesystem).",
)
@click.option("--fresh", is_flag=True, help="Erase the boards' filesystems first.")
@click.option("--run", is_flag=True, help="Start the scenario clock at once (roam lab start).")
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Random seed of the layout and the air (as roam sim run --seed).",
)
def up_cmd(
    scenario, dir_, fleet, keys, nodes, speed, heap_kb, board, romfs_kb, provision, fresh, run, seed
):
    """Start the air and one virtual board per node of SCENARIO (name or TOML file).

    Each board runs the MicroPython unix port ($ROAM_MICROPYTHON, default the one `make venv`
    builds)."""
    d = lab_dir(dir_)
    st = up(
        scenario,
        d,
        Path(fleet) if fleet else None,
        Path(keys) if keys else None,
        [n.strip() for n in nodes.split(",") if n.strip()] if nodes else None,
        speed,
        heap_kb,
        provision,
        fresh,
        run,
        seed,
        board=board,
        romfs_kb=romfs_kb,
    )
    for b in st["boards"]:
        click.echo(
            "%-8s %-7s node %-3d %-12s %s  %s"
            % (b["name"], b["role"], b["node_id"], b["address"], b["mac"], b["link"])
        )
    click.echo(
        "lab up: %d boards, air %s; fleet %s, keys %s"
        % (len(st["boards"]), st["air"], st["fleet"], st["keys"])
    )
    if not run:
        # the collection starts before the clock: `roam lab start` resets every board, and
        # what a board logs at boot (and its first binding) is only seen by a collector that
        # is already listening
        click.echo(
            "next: roam deploy --fleet %s; roam provision --fleet %s --keys %s; then start "
            "collecting (roam field --fleet %s --keys %s --out DIR &, or roam logs --fleet %s "
            "--out DIR &) and only then roam lab start"
            % (st["fleet"], st["fleet"], st["keys"], st["fleet"], st["keys"], st["fleet"])
        )


@lab_cmd.command("start")
@_dir_option
def start_cmd(dir_):
    """Reset every board and start the scenario clock (movement, faults)."""
    start(lab_dir(dir_))
    click.echo("scenario clock started; boards reset")


def _boards_arg(
    d: Path, boards: tuple[str, ...], all_: bool, radio_only: bool = False
) -> list[str] | None:
    if sum((bool(boards), all_, radio_only)) != 1:
        raise click.UsageError("name the boards to act on, or give --all or --radio-only")
    if radio_only:
        # the boards a field tester carries back to the laptop: those not on the access point
        try:
            fleet = tomllib.loads((d / "fleet.toml").read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise RoamError("cannot read the lab's fleet file: %s" % e) from None
        return [b["name"] for b in fleet.get("board", []) if "wifi" not in b]
    return None if all_ else list(boards)


_radio_only = click.option(
    "--radio-only",
    is_flag=True,
    help="The boards not on the access point (the ones carried back to the laptop).",
)


@lab_cmd.command("unplug")
@click.argument("boards", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every board of the lab.")
@_radio_only
@_dir_option
def unplug_cmd(boards, all_, radio_only, dir_):
    """Pull the USB cable of BOARDS: their serial ports vanish, the boards run on."""
    d = lab_dir(dir_)
    ans = control(d, "unplug", _boards_arg(d, boards, all_, radio_only))
    click.echo("unplugged: %s" % ", ".join(ans["boards"]))


@lab_cmd.command("plug")
@click.argument("boards", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every board of the lab.")
@_radio_only
@_dir_option
def plug_cmd(boards, all_, radio_only, dir_):
    """Plug BOARDS' USB cables back in: their serial ports appear again."""
    d = lab_dir(dir_)
    ans = control(d, "plug", _boards_arg(d, boards, all_, radio_only))
    click.echo("plugged: %s" % ", ".join(ans["boards"]))


@lab_cmd.command("status")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="The state as JSON.")
def status_cmd(dir_, as_json):
    """The lab's boards: alive, pty, role, bound agent or safe mode (from their consoles)."""
    d = lab_dir(dir_)
    st = read_state(d)
    if st is None:
        raise RoamError(no_lab(d))
    for b in st["boards"]:
        b["bound"] = last_binding(Path(b["console"])) if b["role"] == "mobile" else None
        b["safe_mode"] = safe_mode_reason(Path(b["console"]))
    if as_json:
        click.echo(json.dumps(st, indent=1))
        return
    clock = st.get("clock_started")
    click.echo(
        "lab %s (pid %d), scenario %s, clock %s"
        % (
            d,
            st["pid"],
            st["scenario"],
            "at %.1f s" % (time.time() - clock) if clock else "not started",
        )
    )
    for b in st["boards"]:
        click.echo(
            "%-8s %-5s %-7s %-12s %s  resets %-3d%s"
            % (
                b["name"],
                "up" if b["alive"] else "DOWN",
                b["role"],
                b["address"],
                b["pty"] or "(unplugged)",
                b["resets"],
                ("  SAFE MODE (%s)" % b["safe_mode"])
                if b["safe_mode"]
                else ("  bound to %s" % b["bound"])
                if b["bound"]
                else "",
            )
        )


@lab_cmd.command("down")
@_dir_option
def down_cmd(dir_):
    """Stop every board and the air (no lab running is not an error: exit status 0)."""
    d = lab_dir(dir_)
    n = down(d)
    if n is None:
        click.echo("lab down: no lab running in %s" % d.absolute())
    else:
        click.echo("lab down: %d boards stopped" % n)


def serve_main(d: Path) -> int:
    spec = json.loads((d / "lab.json").read_text())
    sc = load_scenario(spec["scenario"], spec.get("nodes"), spec.get("speed", 1.0))
    configs = build_configs(sc, spec.get("seed", 1), spec.get("speed", 1.0))
    LabDaemon(
        d,
        sc,
        configs,
        spec.get("heap_kb"),
        spec.get("seed", 1),
        spec.get("board", BOARD_TYPE),
        spec.get("romfs_kb"),
    ).serve()
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        sys.exit(serve_main(Path(sys.argv[2])))
    print("usage: python -m hosttools.lab serve LAB_DIR (use `roam lab up`)", file=sys.stderr)
    sys.exit(2)

"""The field as the dashboard shows it, built from the boards' log lines as they arrive.

Per board: when it was last heard, its boot, how many lines, its mode (``running``, ``silent``,
``safe_mode``, ``repl``, ``never``), reboots seen; for a mobile node its serving agent (by
name), last hand-off, the RSSI of the agents it hears and an estimated position; for an agent
its bindings and load. Per flow (source > destination, by board name): datagrams sent and
delivered, counted as the report counts them (sends in the last ``IN_FLIGHT_S`` are not yet
counted). ``snapshot()`` is what ``GET /api/state`` answers (docs/USER_GUIDE.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hosttools.fleet import Fleet

SILENT_S = 15.0  # every board logs its log_stats at least every 10 s
IN_FLIGHT_S = 2.0
# log-distance path loss for the position estimate: RSSI at 1 m and the exponent
RSSI_1M = -40.0
PATH_EXP = 2.7


class BoardView:
    def __init__(self, name: str, role: str, node: int, addr: str, pos: Any) -> None:
        self.name = name
        self.role = role
        self.node = node
        self.addr = addr
        self.pos = list(pos) if pos else None
        self.last_seen: float | None = None
        self.boot: int | None = None
        self.boots_seen = 0
        self.lines = 0
        self.state = "never"  # running | safe_mode | repl (from what it said last)
        self.last_event = ""
        self.agent: str | None = None  # serving agent (mobile nodes)
        self.last_handoff: dict[str, Any] | None = None
        self.rssi: dict[str, int] = {}
        self.bindings: set[str] = set()
        self.load: int | None = None
        self.stats: dict[str, Any] = {}
        self.crashes = 0
        self.last_crash: dict[str, Any] | None = None  # its error and where (the crash line's at)
        self.reboot_at: float | None = None

    def mode(self, now: float) -> str:
        if self.last_seen is None:
            return "never"
        if self.state in ("safe_mode", "repl"):
            return self.state
        if now - self.last_seen > SILENT_S:
            return "silent"
        return "running"


class FieldState:
    def __init__(self, fleet: Fleet, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.boards: dict[str, BoardView] = {}
        self.by_addr: dict[str, str] = {}
        for b in fleet:
            self.boards[b.name] = BoardView(b.name, b.role, b.node, b.addr, b.pos)
            self.by_addr[b.addr] = b.name
        # flow "src>dst" -> {"sent": {seq: host t}, "got": set(seq)}
        self.flows: dict[str, dict[str, Any]] = {}
        self.started = clock()

    def name_of(self, addr: Any) -> Any:
        return self.by_addr.get(addr, addr)

    def apply(self, board: str, ev: dict[str, Any], t: float) -> None:
        """One log line of ``board`` that arrived at host time ``t``."""
        b = self.boards.get(board)
        if b is None:
            return
        name = ev.get("ev")
        b.lines += 1
        b.last_seen = t if b.last_seen is None else max(b.last_seen, t)
        boot = ev.get("b")
        if isinstance(boot, int) and boot != b.boot:
            if b.boot is not None:
                b.reboot_at = t
                b.agent = None
                b.bindings.clear()
            b.boot = boot
            b.boots_seen += 1
            b.state = "running"
        b.last_event = str(name)
        if name == "safe_mode":
            b.state = "safe_mode"
        elif name == "config_error" or ev.get("repl"):
            b.state = "repl"
        elif name == "crash":
            b.crashes += 1
            b.last_crash = {"error": ev.get("error"), "at": ev.get("at")}
        elif name == "start":
            b.state = "running"
        elif name == "bound":
            b.agent = self.name_of(ev.get("agent"))
        elif name == "handoff":
            b.agent = self.name_of(ev.get("new"))
            b.last_handoff = {
                "t": t,
                "from": self.name_of(ev.get("old")),
                "to": b.agent,
            }
        elif name == "unbound":
            if b.agent == self.name_of(ev.get("agent")):
                b.agent = None
        elif name == "rssi" and isinstance(ev.get("agents"), dict):
            b.rssi = {self.name_of(a): v for a, v in ev["agents"].items()}
            if ev.get("serving"):
                b.agent = self.name_of(ev["serving"])
        elif name == "binding_up":
            b.bindings.add(self.name_of(ev.get("home")))
            b.load = ev.get("load", b.load)
        elif name == "binding_down":
            b.bindings.discard(self.name_of(ev.get("home")))
            b.load = ev.get("load", b.load)
        elif name == "log_stats":
            b.stats = {k: v for k, v in ev.items() if k not in ("t", "n", "b", "s", "ev")}
        elif name == "app_tx":
            flow = self._flow(b.name, self.name_of(ev.get("dst")))
            if isinstance(ev.get("seq"), int):
                flow["sent"].setdefault(ev["seq"], t)
        elif name == "app_rx":
            flow = self._flow(self.name_of(ev.get("src")), b.name)
            if isinstance(ev.get("seq"), int):
                flow["got"].add(ev["seq"])

    def _flow(self, src: Any, dst: Any) -> dict[str, Any]:
        key = "%s>%s" % (src, dst)
        f = self.flows.get(key)
        if f is None:
            f = self.flows[key] = {"src": src, "dst": dst, "sent": {}, "got": set()}
        return f

    # -- what the page shows -----------------------------------------------------------------

    def estimate(self, b: BoardView) -> list[float] | None:
        """Where a mobile node probably is: near the agents it hears, pulled toward the
        strongest (weights from distances estimated by a log-distance path loss)."""
        pts: list[tuple[list[Any], float]] = []
        for agent, rssi in b.rssi.items():
            a = self.boards.get(agent)
            if a is None or a.pos is None or not isinstance(rssi, (int, float)):
                continue
            d = 10 ** ((RSSI_1M - rssi) / (10 * PATH_EXP))
            pts.append((a.pos, max(d, 1.0)))
        serving = self.boards.get(b.agent) if b.agent else None
        if not pts and serving is not None and serving.pos:
            pts = [(serving.pos, 30.0)]
        if not pts:
            return None
        wsum = sum(1 / (d * d) for _p, d in pts)
        x = sum(p[0] / (d * d) for p, d in pts) / wsum
        y = sum(p[1] / (d * d) for p, d in pts) / wsum
        if len(pts) == 1:
            # one agent: somewhere at the estimated distance; drawn below it
            y -= min(pts[0][1], 80.0) * 0.5
        return [round(x, 1), round(y, 1)]

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        boards = {}
        for b in self.boards.values():
            v: dict[str, Any] = {
                "role": b.role,
                "node": b.node,
                "address": b.addr,
                "last_seen_s": None if b.last_seen is None else round(now - b.last_seen, 2),
                "mode": b.mode(now),
                "boot": b.boot,
                "boots": b.boots_seen,
                "rebooted_s": None if b.reboot_at is None else round(now - b.reboot_at, 1),
                "crashes": b.crashes,
                "last_crash": b.last_crash,
                "lines": b.lines,
                "last_event": b.last_event,
                "pos": b.pos,
                "stats": b.stats,
            }
            if b.role == "mobile":
                v["agent"] = b.agent
                v["rssi"] = b.rssi
                v["last_handoff"] = (
                    None
                    if b.last_handoff is None
                    else dict(b.last_handoff, ago_s=round(now - b.last_handoff["t"], 1))
                )
                v["estimate"] = self.estimate(b)
            elif b.role == "agent":
                v["bindings"] = sorted(str(x) for x in b.bindings)
                v["load"] = b.load
            boards[b.name] = v
        flows = []
        for key in sorted(self.flows):
            f = self.flows[key]
            counted = [s for s, t in f["sent"].items() if t < now - IN_FLIGHT_S]
            got = sum(1 for s in counted if s in f["got"])
            flows.append(
                {
                    "flow": key,
                    "src": f["src"],
                    "dst": f["dst"],
                    "sent": len(counted),
                    "delivered": got,
                    "ratio": None if not counted else round(got / len(counted), 4),
                }
            )
        return {
            "t": now,
            "uptime_s": round(now - self.started, 1),
            "boards": boards,
            "flows": flows,
        }

"""Merge the logs of many boards into one timeline on the host's clock.

Each board stamps its events with its own ``ticks_ms`` (wraps at 2**30, restarts at 0 on every
boot, runs a little fast or slow); `roam logs` stamps each line with the host time at which it
arrived. Per board and per boot we fit ``host = a + b * ticks`` over those (ticks, host) pairs:

* boots: lines that carry their boot number and sequence (``b``, ``s``: every line of the
  current firmware) are grouped by boot and put in sequence order, copies dropped (a line that
  came both live and from the board's flash counts once). Older logs without them are split at
  a ``soft reboot`` line, at a ``boot`` event, and where the ticks go backwards by more than a
  wrap explains (a wrap is ticks going back by ~2**30 while the host clock advanced the same
  amount);
* lines pulled from a board's flash after the walk (``roam logs --pull``) have no arrival time:
  they take their time from their boot's fit. A boot with no arrival time at all (the board
  restarted while out of reach) is placed just before the next boot that has one (or after
  the one before), at the nominal clock rate, and says so (``"estimated": true`` in
  clock.json);
* the fit is robust: least squares, then the pairs whose residual is far out (a line that sat
  in a USB buffer, a host hiccup) are dropped and the line refitted; since a line can only
  arrive after it was printed, the intercept is then moved to the lower edge of the residuals
  (the fastest deliveries), which is the best estimate of when the board printed.

The merged events use the simulator's schema (docs/EVENTS.md): ``{"t": ms, "node": id,
"event": name, ...fields}`` with ``t`` in ms from the start of the log session, plus
``"board"`` (the board's name). So `roam report` plots a log directory like a simulator run,
and ``summary.json`` is built with the simulator's own metric functions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hosttools.errors import RoamError

PERIOD = 1 << 30  # a board's ticks_ms wraps here (firmware/mobility/ticks.py)
LOGS_META = "logs.json"
REBOOT_TEXT = ("soft reboot", "rst:0x", "ets ")  # console lines that mean the board restarted
BOOT_EVENTS = ("boot", "start")  # the firmware logs "start" once per boot
# A jump in ticks is a reboot unless the host clock moved by about as much (tolerance: this
# fraction of the elapsed time, at least MIN_SLACK_MS).
SLACK_FRACTION = 0.05
MIN_SLACK_MS = 2000.0
EDGE_QUANTILE = 2.0  # percent: the lower edge of the residuals the intercept moves to


@dataclass
class Segment:
    """One boot of one board: its events and the clock fit."""

    board: str
    index: int
    ticks: list[float] = field(default_factory=list)  # unwrapped ticks, ms
    host: list[float | None] = field(default_factory=list)  # host seconds (None: pulled)
    events: list[dict[str, Any]] = field(default_factory=list)  # parallel to ticks
    a: float = 0.0  # host seconds at ticks = 0
    b: float = 0.001  # host seconds per tick
    used: int = 0
    residual_ms: dict[str, float] = field(default_factory=dict)
    estimated: bool = False  # no line of this boot arrived live: placed by its neighbours
    boot: int | None = None  # the board's boot number (lines that carry one)
    # (ticks, host) read from the board at a known moment (a pull's clock reading)
    anchors: list[tuple[float, float]] = field(default_factory=list)

    def pairs(self) -> tuple[list[float], list[float]]:
        """(ticks, host) of the lines that have an arrival time, and the anchors."""
        t = [x for x, h in zip(self.ticks, self.host, strict=True) if h is not None]
        h = [h for h in self.host if h is not None]
        return t + [a[0] for a in self.anchors], h + [a[1] for a in self.anchors]

    def fit(self) -> None:
        self.a, self.b, self.used, self.residual_ms = fit_clock(*self.pairs())

    def to_host(self, ticks: np.ndarray) -> np.ndarray:
        return self.a + self.b * ticks


def fit_clock(
    ticks: Iterable[float], host: Iterable[float]
) -> tuple[float, float, int, dict[str, float]]:
    """Robust fit host = a + b * ticks (host in s, ticks in ms). Returns (a, b, pairs kept,
    residual figures in ms)."""
    x = np.asarray(list(ticks) if not isinstance(ticks, np.ndarray) else ticks, dtype=float)
    y = np.asarray(list(host) if not isinstance(host, np.ndarray) else host, dtype=float)
    n = len(x)
    if n == 0:
        return 0.0, 0.001, 0, {}
    if n == 1 or float(x.max() - x.min()) < 1.0:
        # One instant: nominal rate, offset from the earliest arrival.
        a = float(np.min(y - 0.001 * x))
        return a, 0.001, n, {"p50": 0.0, "p95": 0.0, "max": 0.0}
    # Centre for numerical stability (host seconds since 1970 are large).
    x0, y0 = float(x[0]), float(y[0])
    xc, yc = x - x0, y - y0
    keep = np.ones(n, dtype=bool)
    b, a = 0.001, 0.0
    for _ in range(4):
        b, a = np.polyfit(xc[keep], yc[keep], 1)
        r = yc - (a + b * xc)
        med = float(np.median(r[keep]))
        mad = float(np.median(np.abs(r[keep] - med))) or 1e-4
        new = np.abs(r - med) <= max(5 * 1.4826 * mad, 0.002)
        if new.sum() < 2 or (new == keep).all():
            keep = new if new.sum() >= 2 else keep
            break
        keep = new
    b, a = np.polyfit(xc[keep], yc[keep], 1)
    r = yc - (a + b * xc)
    # Lines arrive after they are printed: the earliest arrivals mark when they were printed.
    a += float(np.percentile(r[keep], EDGE_QUANTILE))
    r = (yc - (a + b * xc))[keep] * 1000.0
    res = {
        "p50": float(np.percentile(np.abs(r), 50)),
        "p95": float(np.percentile(np.abs(r), 95)),
        "max": float(np.max(np.abs(r))),
    }
    return float(y0 + a - b * x0), float(b), int(keep.sum()), res


def _tick_of(obj: Mapping[str, Any]) -> Any:
    t = obj.get("t")
    if t is None:
        t = obj.get("ticks")
    return t


def split_boots(board: str, records: Iterable[Mapping[str, Any]]) -> list[Segment]:
    """A board's log records (the .jsonl written by `roam logs` or `roam field`) as boot
    segments with their events and unwrapped ticks."""
    records = list(records)
    if any(isinstance((r.get("json") or {}).get("b"), int) for r in records):
        return _by_boot(board, records)
    return _by_ticks(board, records)


def _by_boot(board: str, records: list[Mapping[str, Any]]) -> list[Segment]:
    """Lines that carry their boot (``b``) and sequence (``s``): one segment per boot, in the
    order boots first appear, lines in sequence order, one copy of each (the one with the
    earliest arrival time)."""
    boots: dict[int, dict[Any, tuple[float | None, dict[str, Any]]]] = {}
    anchors: dict[int, list[tuple[float, float]]] = {}
    for rec in records:
        a = rec.get("anchor")
        if isinstance(a, dict) and isinstance(rec.get("host"), (int, float)):
            if isinstance(a.get("b"), int) and isinstance(a.get("t"), (int, float)):
                anchors.setdefault(a["b"], []).append((float(a["t"]), float(rec["host"])))
            continue
        obj = rec.get("json")
        if not isinstance(obj, dict):
            continue
        boot, seq, t = obj.get("b"), obj.get("s"), _tick_of(obj)
        if not isinstance(boot, int) or not isinstance(t, (int, float)):
            continue
        name = obj.get("ev", obj.get("event"))
        if not isinstance(name, str):
            continue
        h = rec.get("host")
        h = float(h) if isinstance(h, (int, float)) else None
        lines = boots.setdefault(boot, {})
        old = lines.get(seq)
        if old is None or (h is not None and (old[0] is None or h < old[0])):
            lines[seq] = (h, obj)
    segs: list[Segment] = []
    for boot, lines in boots.items():
        seg = Segment(board, len(segs), boot=boot)
        wraps = 0
        prev = None
        for seq in sorted(lines, key=lambda k: k if isinstance(k, int) else -1):
            h, obj = lines[seq]
            t = _tick_of(obj)
            if prev is not None and t - prev < -PERIOD // 2:
                wraps += 1  # ticks_ms wrapped within this boot
            prev = t
            seg.ticks.append(float(t + wraps * PERIOD))
            seg.host.append(h)
            seg.events.append(obj)
        for t, h in anchors.get(boot, ()):
            # a clock reading later in the boot: unwrapped against the boot's last line
            if seg.ticks:
                while t < seg.ticks[-1] - PERIOD // 2:
                    t += PERIOD
            seg.anchors.append((t, h))
        segs.append(seg)
    return segs


def place_unanchored(segs: list[Segment]) -> None:
    """Boots none of whose lines has an arrival time (fit() found no pairs): placed right
    before the next boot that is anchored (a boot ends, the next starts), else right after
    the one before, at the nominal rate; marked estimated."""
    REBOOT_S = 1.0  # a board's restart: the time from its last line to its next boot's start
    for i, seg in enumerate(segs):
        if seg.used or not seg.ticks:
            continue
        seg.estimated = True
        seg.b = 0.001
        after = next((s for s in segs[i + 1 :] if s.used), None)
        before = next((s for s in reversed(segs[:i]) if s.used or s.estimated), None)
        if after is not None:
            start_next = after.a + after.b * min(after.ticks)
            seg.a = start_next - REBOOT_S - seg.b * max(seg.ticks)
        elif before is not None:
            end_before = before.a + before.b * max(before.ticks)
            seg.a = end_before + REBOOT_S - seg.b * min(seg.ticks)


def _by_ticks(board: str, records: list[Mapping[str, Any]]) -> list[Segment]:
    segs: list[Segment] = []
    cur: Segment | None = None
    wraps = 0
    prev_t = prev_h = None
    for rec in records:
        h = rec.get("host")
        obj = rec.get("json")
        if obj is None:
            text = rec.get("text")
            if isinstance(text, str) and text.lstrip().startswith(REBOOT_TEXT):
                cur = None  # the next event starts a new boot
            continue
        if not isinstance(obj, dict) or not isinstance(h, (int, float)):
            continue
        t = _tick_of(obj)
        name = obj.get("ev", obj.get("event"))
        if not isinstance(t, (int, float)) or not isinstance(name, str):
            continue
        if name in BOOT_EVENTS:
            cur = None
        if cur is not None and prev_t is not None and prev_h is not None:
            dt = t - prev_t
            dh = (h - prev_h) * 1000.0
            slack = max(MIN_SLACK_MS, SLACK_FRACTION * abs(dh))
            if dt < 0 and abs(dt + PERIOD - dh) <= slack:
                wraps += 1  # ticks_ms wrapped
            elif dt < -slack or dt - dh > slack:
                cur = None  # went backwards or ran ahead of the host: a reboot
        if cur is None:
            cur = Segment(board, len(segs))
            segs.append(cur)
            wraps = 0
        cur.ticks.append(float(t + wraps * PERIOD))
        cur.host.append(float(h))
        cur.events.append(obj)
        prev_t, prev_h = t, h
    return segs


def read_board_log(
    path: str | os.PathLike[str], skipped: list[str] | None = None
) -> list[dict[str, Any]]:
    """A board's log records. A line that is not a JSON object (cut off by a power cut or a
    killed collector) is left out, and named in `skipped`; without `skipped` it is an error."""
    out = []
    loads = json.loads
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = loads(line)
                if not isinstance(rec, dict):
                    raise ValueError
            except ValueError:
                what = "%s line %d is not JSON (cut off?): %.40s" % (path, i, line.strip())
                if skipped is None:
                    raise RoamError(what) from None
                skipped.append(what)
                continue
            out.append(rec)
    return out


def is_log_dir(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    return (p / LOGS_META).is_file()


SUMMARY_EVENTS = frozenset(
    ("app_send", "app_deliver", "binding_up", "binding_down", "published", "handoff")
)


def summary_row(t_ms: int, rec: Mapping[str, Any]) -> tuple:
    """The few fields of an event the summary needs (compact: crosses process boundaries)."""
    return (
        t_ms,
        rec.get("event"),
        rec.get("node"),
        rec.get("flow"),
        rec.get("seq"),
        rec.get("dst"),
        rec.get("home"),
        rec.get("epoch"),
    )


# The firmware's application events (firmware/driver.py) and the simulator's names for them.
# A flow is the (source address, destination address) pair, written "src>dst".
APP_TX = "app_tx"
APP_RX = "app_rx"


def board_events(
    board: str,
    path: str | os.PathLike[str],
    node_of: Mapping[str, Any],
    t0: float,
    addr_of: Mapping[str, str] | None = None,
    node_by_addr: Mapping[str, Any] | None = None,
) -> tuple[list[float], list[str], list[tuple], list[dict], list[str]]:
    """One board's events on the fitted host clock: (host times, the events as JSON lines in
    the simulator's schema with t = ms since t0, summary rows, fit report per boot, the lines
    of its log left out as not JSON)."""
    skipped: list[str] = []
    segs = split_boots(board, read_board_log(path, skipped))
    for seg in segs:
        seg.fit()
    place_unanchored(segs)
    hosts_out: list[float] = []
    lines: list[str] = []
    rows: list[tuple] = []
    fits = []
    encode = json.JSONEncoder(separators=(",", ":")).encode
    default_node = node_of.get(board, board)
    my_addr = (addr_of or {}).get(board)
    by_addr = node_by_addr or {}
    for seg in segs:
        hosts = seg.to_host(np.asarray(seg.ticks))
        fits.append(
            {
                "board": board,
                "boot": seg.boot if seg.boot is not None else seg.index,
                "estimated": seg.estimated,
                "events": len(seg.events),
                "used": seg.used,
                "a": seg.a,
                "b_ms_per_tick": seg.b * 1000.0,
                "drift_ppm": (seg.b * 1000.0 - 1.0) * 1e6,
                "residual_ms": seg.residual_ms,
            }
        )
        t_ms = np.rint((hosts - t0) * 1000.0).astype(np.int64).tolist()
        for hh, t, obj in zip(hosts.tolist(), t_ms, seg.events, strict=False):
            rec = {
                "t": t,
                "node": obj.get("n", obj.get("node", default_node)),
                "event": obj.get("ev", obj.get("event")),
            }
            for k, v in obj.items():
                if k not in rec and k not in SKIP_FIELDS:
                    rec[k] = v
            rec["board"] = board
            ev = rec["event"]
            if ev == APP_TX and "dst" in rec and "seq" in rec and my_addr:
                rec["event"], rec["flow"] = "app_send", "%s>%s" % (my_addr, rec["dst"])
                rec["dst"] = by_addr.get(rec["dst"], rec["dst"])
            elif ev == APP_RX and "src" in rec and "seq" in rec and my_addr:
                rec["event"], rec["flow"] = "app_deliver", "%s>%s" % (rec["src"], my_addr)
                rec["src"] = by_addr.get(rec["src"], rec["src"])
            hosts_out.append(hh)
            lines.append(encode(rec))
            if rec["event"] in SUMMARY_EVENTS:
                rows.append(summary_row(t, rec))
    return hosts_out, lines, rows, fits, skipped


# the head of a board's line: its own clock, node, boot, sequence and event name
SKIP_FIELDS = frozenset(("t", "ticks", "ev", "n", "node", "event", "b", "s"))


def _board_job(args: tuple) -> tuple[list, list, list, list, list]:
    return board_events(*args)


def _merge(
    log_dir: str | os.PathLike[str], node_of: Mapping[str, Any] | None, workers: int
) -> tuple[list[str], list[tuple], dict[str, Any]]:
    p = Path(log_dir)
    if not is_log_dir(p):
        raise RoamError(
            "%s is not a log directory (no %s: written by `roam logs`)" % (p, LOGS_META)
        )
    try:
        meta = json.loads((p / LOGS_META).read_text())
    except ValueError:
        raise RoamError("%s/%s is not valid JSON" % (p, LOGS_META)) from None
    boards = sorted(meta.get("boards", {})) or sorted(f.name[:-6] for f in p.glob("*.jsonl"))
    node_of = dict(node_of or {})
    node_by_addr: dict[str, Any] = {}
    addr_of: dict[str, str] = {}
    for b, info in meta.get("boards", {}).items():
        if isinstance(info, dict) and "node" in info:
            node_of.setdefault(b, info["node"])
            if "addr" in info:
                node_by_addr[info["addr"]] = info["node"]
                addr_of[b] = info["addr"]
    paths = [(b, p / (b + ".jsonl")) for b in boards if (p / (b + ".jsonl")).is_file()]
    if not paths:
        raise RoamError("%s holds no board logs (*.jsonl)" % p)
    t0 = meta.get("started")
    if not isinstance(t0, (int, float)):
        t0 = min((_first_host(path) for _, path in paths), default=0.0)
    jobs = [(b, str(path), node_of, float(t0), addr_of, node_by_addr) for b, path in paths]
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_board_job, jobs))
    else:
        results = [_board_job(j) for j in jobs]
    hosts = np.concatenate([np.asarray(r[0], dtype=float) for r in results])
    lines = [line for r in results for line in r[1]]
    order = np.argsort(hosts, kind="stable")
    lines = [lines[i] for i in order.tolist()]
    rows = sorted((row for r in results for row in r[2]), key=lambda row: row[0])
    fits = [f for r in results for f in r[3]]
    report = {
        "started": t0,
        "stopped": meta.get("stopped"),
        "boards": boards,
        "fits": fits,
        "node_by_addr": node_by_addr,
        "skipped": [s for r in results for s in r[4]],
    }
    return lines, rows, report


def _first_host(path: Path) -> float:
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                h = json.loads(line).get("host")
            except ValueError:
                continue
            if isinstance(h, (int, float)):
                return float(h)
    return float("inf")


def merge_dir(
    log_dir: str | os.PathLike[str], node_of: Mapping[str, Any] | None = None, workers: int = 1
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All boards' events of a log directory on one clock, in time order, and the fit report.
    `workers` > 1 parses and fits boards in parallel processes."""
    lines, _, report = _merge(log_dir, node_of, workers)
    return [json.loads(line) for line in lines], report


# -- summary.json with the simulator's keys -----------------------------------------------------


def summarize(
    records: Iterable[Mapping[str, Any]],
    end_ms: float | None = None,
    node_by_addr: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The simulator's summary keys (docs/METRICS.md) from merged events (see summarize_rows)."""
    records = list(records)
    rows = [summary_row(int(r["t"]), r) for r in records if r.get("event") in SUMMARY_EVENTS]
    if end_ms is None:
        end_ms = max((int(r["t"]) for r in records), default=0)
    return summarize_rows(rows, end_ms, node_by_addr)


def summarize_rows(
    rows: Iterable[tuple], end_ms: float, node_by_addr: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The summary from summary rows in time order, with the simulator's metric functions
    (hosttools/sim/metrics.py). Figures a board log cannot give (frames on the air, attacks)
    are None."""
    from hosttools.sim import metrics

    sent: dict[tuple[Any, Any], int] = {}
    deliv: dict[tuple[Any, Any], int] = {}
    duplicates = 0
    flows: dict[Any, list[Any]] = {}  # flow -> [src, dst, first send, last send, count]
    serving: dict[Any, Any] = {}
    timeline = []
    binding_changes = 0
    publications = set()
    mobile_handoffs: list[tuple[int, Any]] = []  # the mobile nodes' own "handoff" lines
    for t_ms, ev, node, flow, seq, dst, home, epoch in rows:
        t_us = int(t_ms) * 1000
        if ev == "app_send":
            sent.setdefault((flow, seq), t_us)
            f = flows.setdefault(flow, [node, dst, t_us, t_us, 0])
            f[3] = t_us
            f[4] += 1
        elif ev == "app_deliver":
            if (flow, seq) in deliv:
                duplicates += 1
            else:
                deliv[(flow, seq)] = t_us
        elif ev == "binding_up" or ev == "binding_down":
            if home is None:
                continue
            binding_changes += 1
            if ev == "binding_up":
                if serving.get(home) != node:
                    serving[home] = node
                    timeline.append((t_us, home, node))
            elif serving.get(home) == node:
                serving[home] = None
                timeline.append((t_us, home, None))
        elif ev == "published":
            publications.add((node, epoch, seq))
        elif ev == "handoff" and node is not None:
            mobile_handoffs.append((t_us, node))
    end_us = int(end_ms * 1000)
    # as in the simulator: a datagram not delivered and sent within its flow's flight bound of
    # the end may still be on its way (docs/METRICS.md, "The flight bound")
    bounds = metrics.flight_bounds(list(flows), sent, deliv)
    tail = metrics.in_flight_at_end(sent, deliv, bounds, end_us)
    counted = {k: t for k, t in sent.items() if k not in tail}
    n_sent, n_deliv, ratio = metrics.delivery(counted, deliv)
    fl = {}
    for f, (src, dst, first, last, count) in flows.items():
        fl[f] = (src, dst, int((last - first) / (count - 1)) if count > 1 else 0)
    # serving_changes names the mobile by its home address; flows name nodes: map when known.
    node_by_addr = dict(node_by_addr or {})
    handoffs = [(t, node_by_addr.get(m, m)) for t, m in metrics.serving_changes(timeline)]
    if not timeline and mobile_handoffs:
        # no agent's binding line in the log (only the mobile nodes' logs were collected): the
        # hand-offs the mobile nodes made, as the report draws them (it said 0 and drew some)
        handoffs = mobile_handoffs
    per_flow: dict[Any, list[tuple[int, Any]]] = {}
    for (f, s), t in sorted(deliv.items(), key=lambda kv: kv[1]):
        per_flow.setdefault(f, []).append((t, s))
    intr, gap_lost = metrics.handoff_gaps(handoffs, fl, per_flow, end_us, sent)
    # the boards' logs give no drop, power or partition evidence here: a loss is the in-flight
    # tail's, a hand-off's, or "other"
    lost = {k: t for k, t in sent.items() if k not in deliv}
    by_cause = metrics.count_causes(
        metrics.attribute_losses(
            lost, {f: (v[0], v[1]) for f, v in fl.items()}, bounds, [], {}, gap_lost, None, end_us
        )
    )
    intr_ms = [v / 1000.0 for v in intr]
    n_pub = len(publications)
    return {
        "delivery_ratio": ratio,
        "sent": n_sent,
        "delivered": n_deliv,
        "in_flight": len(tail),
        "undelivered": len(lost),
        "lost_by_cause": by_cause,
        "duplicates": duplicates,
        "handoffs": len(handoffs),
        "interruption_ms": {
            "median": metrics.percentile(intr_ms, 50),
            "p95": metrics.percentile(intr_ms, 95),
            "max": max(intr_ms) if intr_ms else None,
            "count": len(intr_ms),
        },
        "lost_in_handoff": by_cause["handoff"],
        "control_frames": None,
        "control_bytes": None,
        "publications": n_pub,
        "binding_changes": binding_changes,
        "publications_per_binding_change": (n_pub / binding_changes if binding_changes else None),
        "convergence_ms": {
            "median": None,
            "p95": None,
            "count": 0,
            "unfinished": 0,
            "not_held": 0,
        },
        # counted from the frames on the air, which board logs do not hold
        "retransmissions": None,
        "acks": None,
        "ack_entries": None,
        # what the simulator's attackers did: none in a field test (its board logs)
        **dict.fromkeys(metrics.ATTACK_COUNTERS),
        "attacks": {},
        "sim_s": end_ms / 1000.0,
        "wall_s": end_ms / 1000.0,
    }


def write_run(
    log_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    node_of: Mapping[str, Any] | None = None,
    workers: int = 1,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Merge a log directory and write events.jsonl, summary.json and clock.json (the fits)
    into out_dir (default: the log directory itself), each atomically. Returns the summary.
    Each line left out (not JSON: cut off) is told to `warn`, and listed in clock.json."""
    lines, rows, report = _merge(log_dir, node_of, workers)
    if warn is not None:
        skipped = report["skipped"]
        for what in skipped[:5]:
            warn(what + ": skipped")
        if len(skipped) > 5:
            warn("%d more lines skipped (clock.json lists them)" % (len(skipped) - 5))
    out = Path(out_dir or log_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(report.get("stopped"), (int, float)):
        end_ms = (report["stopped"] - report["started"]) * 1000.0
        # the run is the log session: what a board logged after it (a board restarted by a
        # pull, say) is not part of the walk
        n = len(lines)
        lines = [line for line, t in zip(lines, _times(lines), strict=True) if t <= end_ms]
        report["after_end"] = n - len(lines)
        rows = [row for row in rows if row[0] <= end_ms]
    else:
        end_ms = max((row[0] for row in rows), default=0)
    summary = summarize_rows(rows, end_ms, report["node_by_addr"])
    summary["source"] = "logs"
    summary["boards"] = len(report["boards"])
    summary["nodes"] = len(report["boards"])
    _atomic_lines(out / "events.jsonl", lines)
    _atomic_json(out / "clock.json", report)
    _atomic_json(out / "summary.json", summary)
    return summary


def _times(lines: list[str]) -> list[float]:
    """The time (ms) of each merged event line."""
    return [json.loads(line)["t"] for line in lines]


def _atomic_lines(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(0, len(lines), 65536):
            f.write("\n".join(lines[i : i + 65536]))
            f.write("\n")
    os.replace(tmp, path)


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)

"""Merging board logs: 1,000,000 log lines from 8 boards into one timeline.

    .venv/bin/python -m bench.merge_logs [--lines 1000000] [--boards 8] [--workers 2]

Writes a log directory as `roam logs` does (each board with its own tick origin, 0.3 % drift,
USB latency and some late lines, one reboot per board, a few console text lines), then times
``hosttools.timeline.write_run`` (parse, fit per boot, merge, write events.jsonl, clock.json
and summary.json). The issue's bar: <= 10 s on a 2-core machine. Also reports the worst clock
error against the known print times.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import figure, write_result
from hosttools.timeline import PERIOD, write_run


def make_logdir(path: Path, lines: int, boards: int, seed: int) -> dict[str, dict]:
    rng = random.Random(seed)
    per = lines // boards
    t0 = 1.7e9
    duration = 3600.0
    truth = {}
    boards_meta: dict[str, dict] = {}
    meta = {"kind": "roam-logs", "started": t0, "stopped": t0 + duration, "boards": boards_meta}
    for b in range(boards):
        name = "b%d" % b
        drift = rng.uniform(-0.003, 0.003)
        boards_meta[name] = {
            "port": "/dev/fake%d" % b,
            "node": b + 1,
            "addr": "10.0.0.%d" % (b + 1),
        }
        reboot_at = per // 2
        tick0 = rng.randrange(PERIOD)
        out = []
        probe = {}
        for i in range(per):
            true_h = t0 + duration * i / per
            if i == reboot_at:
                out.append('{"host":%.6f,"n":%d,"text":"MPY: soft reboot"}' % (true_h, i))
                tick0 = 7 - int(duration * i / per * 1000.0)
            ticks = int(tick0 + duration * i / per * 1000.0 * (1 + drift)) % PERIOD
            lat = 0.001 + rng.expovariate(700.0) + (rng.uniform(0.02, 0.2) if i % 37 == 0 else 0)
            ev = ("adv", "binding_up", "app_send", "app_deliver")[i & 3]
            out.append(
                '{"host":%.6f,"n":%d,"json":{"t":%d,"node":%d,"event":"%s","seq":%d,'
                '"flow":%d}}' % (true_h + lat, i, ticks, b + 1, ev, i, b)
            )
            if i % 1000 == 1:
                probe[i] = true_h
        (path / (name + ".jsonl")).write_text("\n".join(out) + "\n")
        truth[name] = probe
    (path / "logs.json").write_text(json.dumps(meta))
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--boards", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="roam-merge-"))
    try:
        logdir = tmp / "logs"
        logdir.mkdir()
        truth = make_logdir(logdir, args.lines, args.boards, args.seed)
        t = time.perf_counter()
        write_run(logdir, tmp / "run", workers=args.workers)
        wall = time.perf_counter() - t
        # Clock error on the probe events (known print times).
        worst = 0.0
        started = json.loads((logdir / "logs.json").read_text())["started"]
        with open(tmp / "run" / "events.jsonl") as f:
            for line in f:
                r = json.loads(line)
                p = truth[r["board"]].get(r["seq"])
                if p is not None:
                    worst = max(worst, abs(r["t"] - (p - started) * 1000.0))
        n_events = sum(1 for _ in open(tmp / "run" / "events.jsonl"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_result(
        "merge_logs",
        {
            "lines": figure(args.lines, "lines"),
            "boards": figure(args.boards, "boards"),
            "events_merged": figure(n_events, "events"),
            "merge_s": figure(round(wall, 3), "s"),
            "lines_per_s": figure(round(args.lines / wall), "lines/s"),
            "worst_clock_error_ms": figure(round(worst, 3), "ms"),
        },
    )


if __name__ == "__main__":
    main()

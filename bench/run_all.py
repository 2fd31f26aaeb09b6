"""Run every benchmark, each in its own process, and list the result files they wrote.

    .venv/bin/python bench/run_all.py            # all of bench/*.py
    .venv/bin/python bench/run_all.py wire fuzz  # only bench/wire.py and bench/fuzz.py

A benchmark is any ``bench/<name>.py`` except ``common.py``, ``run_all.py``, files starting with
``_`` and ``*_mpy.py`` (scripts that a benchmark runs on MicroPython itself). Each runs as
``python -m bench.<name>`` from the repository root, with ``bench/`` also on the path so both
``from bench.common import ...`` and ``from common import ...`` work. A benchmark fails if it exits
non-zero, runs longer than the time limit, or writes no ``out/bench/*.json``; then so does this.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
OUT_DIR = REPO_DIR / "out" / "bench"
NOT_BENCHMARKS = {"common", "field_common", "run_all", "__init__"}  # (helpers, not benchmarks)
TIME_LIMIT_S = 15 * 60
LONGER = {
    "ota_interrupt": 40 * 60,  # 50 interrupted deploys and 50 that complete the job
    "sim_sweep": 60 * 60,  # 140 runs: six scenarios on seeds 1-20, and walk's baseline
}


def benchmarks() -> list[str]:
    names = []
    for path in sorted(BENCH_DIR.glob("*.py")):
        name = path.stem
        if name in NOT_BENCHMARKS or name.startswith("_") or name.endswith("_mpy"):
            continue
        names.append(name)
    return names


def _written_since(start: float) -> list[Path]:
    if not OUT_DIR.is_dir():
        return []
    return sorted(p for p in OUT_DIR.glob("*.json") if p.stat().st_mtime >= start)


def run(name: str) -> tuple[bool, float, list[Path]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_DIR), str(BENCH_DIR)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    start = time.time()
    print("=== bench/%s.py" % name, flush=True)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench." + name],
            cwd=REPO_DIR,
            env=env,
            timeout=LONGER.get(name, TIME_LIMIT_S),
        )
        ok = done.returncode == 0
        if not ok:
            print("bench/%s.py exited with status %d" % (name, done.returncode), flush=True)
    except subprocess.TimeoutExpired:
        ok = False
        print(
            "bench/%s.py took longer than %d s" % (name, LONGER.get(name, TIME_LIMIT_S)),
            flush=True,
        )
    written = _written_since(start)
    if ok and not written:
        ok = False
        print("bench/%s.py wrote no out/bench/*.json" % name, flush=True)
    return ok, time.time() - start, written


def main(argv: list[str]) -> int:
    available = benchmarks()
    unknown = [name for name in argv if name not in available]
    if unknown:
        print("run_all: unknown benchmark(s): %s (have: %s)" % (unknown, ", ".join(available)))
        return 2
    selected = argv or available
    if not selected:
        print("run_all: no benchmarks in bench/")
        return 0
    results = [(name, *run(name)) for name in selected]
    print("\n=== summary")
    failed = 0
    for name, ok, seconds, written in results:
        files = ", ".join(str(p.relative_to(REPO_DIR)) for p in written) or "-"
        print("%-4s %-24s %7.1f s  %s" % ("ok" if ok else "FAIL", name, seconds, files))
        failed += not ok
    print("%d benchmarks, %d failed" % (len(results), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

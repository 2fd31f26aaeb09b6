"""Mutation fuzzing of the wire decoders at scale, on CPython and on MicroPython.

    .venv/bin/python -m bench.fuzz_wire [--count 1000000] [--mpy-count 100000] [--seed 1]
                                        [--workers 2]

The fuzzer itself is bench/fuzz_wire_mpy.py (portable: the same file runs on both interpreters,
seeded by its own xorshift generator). This driver runs it on CPython in ``--workers`` processes
(worker k uses seed + k and an equal share of the count) and once on the repository's
MicroPython, then writes out/bench/fuzz_wire.json. The contract is zero exceptions other than
DecodeError; the script exits 1 (after writing the figures) when any was seen, printing each
with the input's hex so it can be replayed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from bench.common import REPO_DIR, BenchError, figure, last_json_line, run_micropython, write_result

FUZZER = REPO_DIR / "bench" / "fuzz_wire_mpy.py"


def run_cpython(count: int, seed: int, workers: int) -> tuple[dict[str, Any], float]:
    """Run the fuzzer in ``workers`` CPython processes; returns the merged counts, wall time."""
    shares = [count // workers + (1 if k < count % workers else 0) for k in range(workers)]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, str(FUZZER), "--count", str(n), "--seed", str(seed + k), "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k, n in enumerate(shares)
        if n > 0
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise BenchError(f"CPython fuzzer exited with {proc.returncode}:\n{out[-2000:]}{err}")
        results.append(last_json_line(out))
    wall = time.perf_counter() - start
    merged: dict[str, Any] = {"failures": []}
    for key in ("frames", "decoded", "verified", "decode_errors", "unexpected"):
        merged[key] = sum(r[key] for r in results)
    merged["slowest_frame_us"] = max(r["slowest_frame_us"] for r in results)
    for r in results:
        merged["failures"] += r["failures"]
    return merged, wall


def run_mpy(count: int, seed: int) -> dict[str, Any]:
    out = run_micropython(
        FUZZER, "--count", str(count), "--seed", str(seed), "--quiet", timeout=1200
    )
    result: dict[str, Any] = last_json_line(out)
    return result


def _figures(impl: str, r: dict[str, Any], per_s: int, more: dict[str, Any]) -> dict[str, Any]:
    """One interpreter's figures (named impl_...) from its merged counts ``r``."""
    out = {
        "frames": figure(r["frames"], "frames"),
        "unexpected_exceptions": figure(r["unexpected"], "exceptions"),
        "frames_per_s": figure(per_s, "frames/s"),
        **more,
    }
    for key in ("decoded", "verified", "decode_errors"):
        out[key] = figure(r[key], "frames")
    out["slowest_frame"] = figure(r["slowest_frame_us"], "us")
    return {impl + "_" + name: value for name, value in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="CPython frames")
    parser.add_argument("--mpy-count", type=int, default=100_000, help="MicroPython frames")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="CPython processes")
    args = parser.parse_args(argv)
    if args.count < 0 or args.mpy_count < 0 or args.workers < 1:
        parser.error("counts must be >= 0 and workers >= 1")

    cpy, wall = run_cpython(args.count, args.seed, args.workers)
    t0 = time.perf_counter()
    mpy = run_mpy(args.mpy_count, args.seed)
    mpy_wall = time.perf_counter() - t0

    workers = {"workers": figure(args.workers, "processes")}
    figures = {
        **_figures("cpython", cpy, round(cpy["frames"] / wall), workers),
        **_figures("mpy", mpy, round(mpy["frames_per_s"]), {}),
        "seed": figure(args.seed, "seed"),
    }
    write_result("fuzz_wire", figures)
    print(f"(CPython wall {wall:.1f} s, MicroPython wall {mpy_wall:.1f} s)")
    failures = cpy["failures"] + mpy["failures"]
    for f in failures:
        print(json.dumps(f))
    if cpy["unexpected"] or mpy["unexpected"]:
        print(
            f"FAIL: {cpy['unexpected']} unexpected exceptions on CPython, "
            f"{mpy['unexpected']} on MicroPython (first ones above)"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

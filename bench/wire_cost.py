"""Cost of encoding + decoding each message type on MicroPython (and CPython for comparison),
and the bytes allocated per decode on MicroPython.

    .venv/bin/python -m bench.wire_cost [--iterations 1000] [--heap 128k]

The measuring code is bench/wire_cost_mpy.py (portable; see its docstring for how allocation is
counted). MicroPython runs with a board-like heap (``--heap``, default 128 KB: an ESP32 without
PSRAM has roughly 110-160 KB free), because the allocator's cost grows with the heap it
searches, and a PC-sized heap would misstate the board. Writes out/bench/wire_cost.json with, per
message type: ``mpy_<type>_encode_decode`` / ``_encode`` / ``_decode`` / ``_verify`` (us),
``mpy_<type>_decode_alloc`` (bytes requested, micropython.mem_total), ``mpy_<type>_decode_heap``
(heap consumed, 16-byte blocks), and ``cpython_<type>_encode_decode`` / ``_verify`` (us).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench.common import (
    REPO_DIR,
    BenchError,
    figure,
    last_json_line,
    run_json,
    run_micropython,
    write_result,
)

SCRIPT = REPO_DIR / "bench" / "wire_cost_mpy.py"


def run_cpython(iterations: int) -> dict[str, Any]:
    command = [sys.executable, SCRIPT, "--iterations", str(iterations)]
    result: dict[str, Any] = run_json(command, "wire_cost_mpy.py on CPython")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=1000, help="calls per timing round")
    parser.add_argument("--heap", default="128k", help="MicroPython heap size (-X heapsize)")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error("--iterations must be >= 1")

    mpy = last_json_line(
        run_micropython(SCRIPT, "--iterations", str(args.iterations), heapsize=args.heap)
    )
    cpy = run_cpython(args.iterations)
    if mpy.get("impl") != "micropython":
        raise BenchError(f"expected a MicroPython result, got {mpy.get('impl')!r}")

    figures: dict[str, Any] = {}
    for name in sorted(mpy["results"]):
        r = mpy["results"][name]
        figures[f"mpy_{name}_encode_decode"] = figure(round(r["encode_decode_us"], 1), "us")
        figures[f"mpy_{name}_encode"] = figure(round(r["encode_us"], 1), "us")
        figures[f"mpy_{name}_decode"] = figure(round(r["decode_us"], 1), "us")
        if "verify_us" in r:
            figures[f"mpy_{name}_verify"] = figure(round(r["verify_us"], 1), "us")
        figures[f"mpy_{name}_decode_alloc"] = figure(round(r["decode_alloc_bytes"]), "bytes")
        figures[f"mpy_{name}_decode_heap"] = figure(round(r["decode_heap_bytes"]), "bytes")
        figures[f"mpy_{name}_frame"] = figure(r["frame_bytes"], "bytes")
    for name in sorted(cpy["results"]):
        r = cpy["results"][name]
        figures[f"cpython_{name}_encode_decode"] = figure(round(r["encode_decode_us"], 2), "us")
        if "verify_us" in r:
            figures[f"cpython_{name}_verify"] = figure(round(r["verify_us"], 2), "us")
    figures["mpy_heap"] = figure(_parse_size(args.heap), "bytes")
    write_result("wire_cost", figures)
    return 0


def _parse_size(text: str) -> int:
    units = {"k": 1024, "m": 1024 * 1024}
    t = text.strip().lower()
    if t and t[-1] in units:
        return int(t[:-1]) * units[t[-1]]
    return int(t)


if __name__ == "__main__":
    sys.exit(main())

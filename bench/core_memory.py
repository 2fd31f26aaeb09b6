"""Memory of the cell roles on MicroPython: an agent holding 20 local bindings (budget 64 KiB),
a mobile node tracking 10 agents (budget 32 KiB).

Method. On the unix port (64-bit) imported bytecode lives in the heap; on a board the firmware
is frozen into flash and the heap holds only data. So this benchmark
1. precompiles firmware/mobility with mpy-cross into a temporary directory (no compiler in the
   heap at import time) and runs bench/core_memory_mpy.py on it;
2. measures, with a large heap, the heap taken by the imported code, the role's state (heap in
   use after gc with the role alive, minus the code) and the peak (largest heap in use after a
   collection during ten virtual minutes of operation);
3. runs the role with ``-X heapsize`` = code + budget (what a board has for data) and records
   whether it completed, and finds by bisection the smallest heap in which the whole run
   (code included) completes.
64-bit pointers make every object about twice its ESP32 size: the figures bound a board's.
"""

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    MICROPYTHON,
    BenchError,
    checked,
    figure,
    last_json_line,
    precompile,
    run_captured,
    write_result,
)

SCRIPT = Path(__file__).resolve().parent / "core_memory_mpy.py"
CASES = (("agent", 20, 64 * 1024), ("mobile", 10, 32 * 1024))


def run(path: Path, heap: int, role: str, count: int) -> dict | None:
    """The script's JSON line, or None when the run did not fit the heap (MemoryError)."""
    env = dict(os.environ, MICROPYPATH=str(path))
    command = [MICROPYTHON, "-X", "heapsize=%d" % heap, SCRIPT, role, str(count)]
    done = run_captured(command, env=env)
    if done.returncode != 0 and "MemoryError" in done.stdout + done.stderr:
        return None
    return last_json_line(checked(done, "core_memory_mpy.py %s" % role).stdout)


def smallest_heap(path: Path, role: str, count: int, hi: int) -> int:
    lo = 8 * 1024  # surely too small
    while hi - lo > 1024:
        mid = (lo + hi) // 2
        if run(path, mid, role, count) is None:
            lo = mid
        else:
            hi = mid
    return hi


def main() -> None:
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        precompile(path)
        for role, count, budget in CASES:
            big = run(path, 1024 * 1024, role, count)
            if big is None:
                raise BenchError("%s does not run even in 1 MiB" % role)
            if big["held"] != count:
                raise BenchError("%s holds %d, expected %d" % (role, big["held"], count))
            given = big["code"] + big["base"] + budget
            fits = run(path, given, role, count) is not None
            whole = smallest_heap(path, role, count, 1024 * 1024)
            label = "%s_%d" % (role, count)
            figures[label + "_fits_budget_beyond_code"] = figure(int(fits), "bool")
            figures[label + "_budget"] = figure(budget, "bytes")
            figures[label + "_state"] = figure(big["state"], "bytes")
            figures[label + "_peak_data"] = figure(big["peak"] - big["code"], "bytes")
            figures[label + "_code_heap_unix64"] = figure(big["code"], "bytes")
            figures[label + "_smallest_heap_whole_run"] = figure(whole, "bytes")
    write_result("core_memory", figures)


if __name__ == "__main__":
    main()

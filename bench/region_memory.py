"""Memory of an agent holding 20 local and 500 published bindings, on MicroPython.

Method. On the unix port (64-bit) the firmware's bytecode lives in the heap; on a board it is
frozen into flash and the heap holds only data. So the benchmark
1. precompiles firmware/mobility with mpy-cross into a temporary directory (no compiler
   memory at import time),
2. measures the heap the imported code takes (a run with a large heap),
3. runs the agent with the ``-X heapsize`` that leaves exactly 64 KiB free once the code is
   loaded (found by trying; the GC's own tables take a little): it builds the 20 local bindings
   (registration requests) and the 500 published ones (25 publications), then runs ten virtual
   minutes of timers and tunnelled datagrams. It fits when no MemoryError occurs.
The figures: the code size, the agent's state (heap in use after gc, minus before the
bindings), the most heap in use while running, and whether it fit. 64-bit pointers make every
object about twice its ESP32 size, so the figures are an upper bound for a board.
"""

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script too
from bench.common import MICROPYTHON, figure, precompile, run_json, write_result  # noqa: E402

SCRIPT = Path(__file__).resolve().parent / "region_memory_mpy.py"
BUDGET = 64 * 1024


def run(path: Path, heap: int, mode: str) -> dict:
    env = dict(os.environ, MICROPYPATH=str(path))
    command = [MICROPYTHON, "-X", "heapsize=%d" % heap, SCRIPT, mode]
    return run_json(command, "region_memory_mpy.py %s" % mode, env=env)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        precompile(path)
        code = run(path, 1024 * 1024, "code")
        heap = code["alloc"] + BUDGET
        for _ in range(6):  # grow the heap until 64 KiB are free after the imports
            free = run(path, heap, "code")["free"]
            if free >= BUDGET:
                break
            heap += BUDGET - free
        result = run(path, heap, "run")
        # and the least data heap it runs in (4 KiB steps down from 64 KiB)
        smallest = BUDGET if result.get("fits") else None
        base = heap - BUDGET
        for kib in range(60, 8, -4):
            if not run(path, base + kib * 1024, "run").get("fits"):
                break
            smallest = kib * 1024
        code = code["code"]
    if not result.get("fits"):
        print("the agent did NOT fit in 64 KiB of data heap (code: %d bytes)" % code)
    write_result(
        "region_memory",
        {
            "fits_64k_beyond_code": figure(int(result.get("fits", 0)), "bool"),
            "code_heap_unix64": figure(code, "bytes"),
            "heap_given": figure(heap, "bytes"),
            "free_for_data_after_imports": figure(result.get("free_for_data", 0), "bytes"),
            "agent_state_20_local_500_published": figure(result.get("state", -1), "bytes"),
            "live_data_after_10_min": figure(result.get("live_after_run", -1), "bytes"),
            "smallest_data_heap_that_fits": figure(smallest or 0, "bytes"),
            "local_bindings": figure(result.get("local", 0), "count"),
            "published_bindings": figure(result.get("published", 0), "count"),
            "tunnelled_datagrams": figure(result.get("tunnelled", 0), "count"),
        },
    )
    if not result.get("fits"):
        sys.exit(1)


if __name__ == "__main__":
    main()

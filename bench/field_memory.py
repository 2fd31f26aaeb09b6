"""The heap the log in the field takes on a board, per role, at 32 bits (issue "Field tests
without cables": the log store and the forwarding add <= 8 KiB of live heap).

The firmware as `roam deploy` sends it (.mpy: on a board its code lives in the heap too) runs
bench/field_memory_mpy.py on the 32-bit MicroPython (the WebAssembly port, tools/mpy32.mjs: a
board's pointer size) and, for reference, on the 64-bit unix port. It reads the live heap before
the driver sets the field log up, once it is set up (the flash store, the stream, on a backbone
board its socket and the agent's relay; the set-up code dropped), and after 400 lines are
logged and streamed (and, on a backbone board, sent again after a REWIND). Roles: a mobile node
(the stream goes by radio), a host on the backbone, an agent relaying eight radio-only boards.

    python -m bench.field_memory          # writes out/bench/field_memory.json
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import common  # noqa: E402
from bench.common import MICROPYTHON, BenchError, figure, last_json_line, write_result  # noqa: E402

SCRIPT = REPO / "bench" / "field_memory_mpy.py"
STUBS = REPO / "bench" / "mpy"
MPY32 = REPO / "tools" / "mpy32.mjs"
ROLES = ("mobile", "host", "agent")
GOAL = 8 * 1024


def build(dst: Path) -> None:
    from hosttools.deploy import plan

    for it in plan(REPO / "firmware", True):
        p = dst / it.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(it.data)


def on32(
    script: Path, fw: Path, work: Path | str, role: str, *extra: str, heap: int, what: str
) -> subprocess.CompletedProcess[str]:
    """``script`` run on the 32-bit MicroPython (tools/mpy32.mjs) as ``script ROLE /fw /work
    /stub EXTRA...``, the firmware ``fw``, ``work`` and the stand-in modules (bench/mpy) mounted
    there; a failure raises BenchError ``32-bit <what>: ...``."""
    node = shutil.which("node")
    if node is None:
        raise BenchError("no Node.js: the 32-bit MicroPython runs on it (apt-get install nodejs)")
    command: list[Any] = [node, MPY32, "--heap", str(heap), "--mount", "%s:/fw" % fw]
    command += ["--mount", "%s:/stub" % STUBS, "--mount", "%s:/work" % work]
    command += [script, role, "/fw", "/work", "/stub", *extra]
    return common.checked(common.run_captured(command, timeout=300), "32-bit %s" % what)


def run32(fw: Path, role: str, *extra: str) -> dict:
    with tempfile.TemporaryDirectory() as work:
        done = on32(SCRIPT, fw, work, role, *extra, heap=2000000, what=role)
    return last_json_line(done.stdout)


def run64(fw: Path, role: str) -> dict:
    with tempfile.TemporaryDirectory() as work:
        command = [MICROPYTHON, "-X", "heapsize=2M", SCRIPT, role, fw, work, STUBS]
        return common.run_json(command, "64-bit %s" % role, timeout=300)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fw = Path(tmp)
        build(fw)
        r32 = {role: run32(fw, role) for role in ROLES}
        code = {role: run32(fw, role, "code")["code_bytes"] for role in ROLES}
        r64 = {role: run64(fw, role) for role in ROLES}
    figures = {}
    for role in ROLES:
        figures["%s_32bit" % role] = figure(r32[role]["live_bytes"], "bytes")
        # the modules the role keeps loaded (their code) and the rest: its objects and buffers
        figures["%s_32bit_code" % role] = figure(code[role], "bytes")
        figures["%s_32bit_data" % role] = figure(r32[role]["live_bytes"] - code[role], "bytes")
        figures["%s_32bit_after_set_up" % role] = figure(r32[role]["set_up_bytes"], "bytes")
        figures["%s_64bit" % role] = figure(r64[role]["live_bytes"], "bytes")
    print(json.dumps({"32bit": r32, "64bit": r64}, indent=1))
    write_result("field_memory", figures)
    over = [role for role in ROLES if r32[role]["live_bytes"] > GOAL]
    over_data = [role for role in ROLES if r32[role]["live_bytes"] - code[role] > GOAL]
    print("over 8 KiB at 32 bits, code and data: %s" % (", ".join(over) or "none"))
    print("over 8 KiB at 32 bits, data: %s" % (", ".join(over_data) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

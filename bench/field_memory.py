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
import statistics
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
RUNS = 5
PAD = 37  # run i: PAD * i more names interned before the first reading


def build(dst: Path, changed: dict[str, str] | None = None) -> None:
    """The firmware as `roam deploy` sends it (.mpy, constants folded) into ``dst``; with
    ``changed`` ({path: source}) in place of those files."""
    from hosttools.deploy import plan, sources

    texts = sources(REPO / "firmware")
    texts.update(changed or {})
    for it in plan(REPO / "firmware", True, texts):
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


def run32(fw: Path, role: str, pad: int, *extra: str) -> dict:
    with tempfile.TemporaryDirectory() as work:
        script = common.against_deployed(SCRIPT)
        done = on32(script, fw, work, role, str(pad), *extra, heap=2000000, what=role)
    return last_json_line(done.stdout)


def median32(fw: Path, role: str, key: str, *extra: str) -> dict:
    """``key`` of RUNS runs, run i with PAD * i names interned first: {"min", "median",
    "max", "runs"}; the claim is judged on the median (a name pool allocated by the field log
    in some runs and not in others is the boundary's doing, not the field log's)."""
    runs = [run32(fw, role, PAD * i, *extra)[key] for i in range(RUNS)]
    return {"min": min(runs), "median": statistics.median(runs), "max": max(runs), "runs": runs}


def run64(fw: Path, role: str) -> dict:
    with tempfile.TemporaryDirectory() as work:
        script = common.against_deployed(SCRIPT)
        command = [MICROPYTHON, "-X", "heapsize=2M", script, role, fw, work, STUBS, "0"]
        return common.run_json(command, "64-bit %s" % role, timeout=300)


def main() -> int:
    # the update service's hooks in fieldlog/backbone.py (the relay of update messages) are
    # bench/ota_memory's "idle" figure: measured here once with them (``*_32bit``, what a board
    # carries) and once without (``*_field``, the log store and its forwarding alone), so that
    # the two benches' figures add up instead of counting those hooks twice
    from bench.ota_memory import variants

    with tempfile.TemporaryDirectory() as tmp:
        trees = variants(Path(tmp))[0]
        fw, field = trees["full"], trees["stripped"]
        r32 = {role: median32(fw, role, "live_bytes") for role in ROLES}
        up = {role: median32(fw, role, "set_up_bytes") for role in ROLES}
        code = {role: median32(fw, role, "code_bytes", "code") for role in ROLES}
        f32 = {role: median32(field, role, "live_bytes") for role in ROLES}
        fcode = {role: median32(field, role, "code_bytes", "code") for role in ROLES}
        r64 = {role: run64(fw, role) for role in ROLES}
    figures: dict[str, Any] = {}

    def put(name: str, runs: dict) -> None:
        figures[name] = figure(runs["median"], "bytes")
        figures[name + "_min"] = figure(runs["min"], "bytes")
        figures[name + "_max"] = figure(runs["max"], "bytes")

    for role in ROLES:
        put("%s_32bit" % role, r32[role])
        # the modules the role keeps loaded (their code) and the rest: its objects and buffers
        put("%s_32bit_code" % role, code[role])
        figures["%s_32bit_data" % role] = figure(
            r32[role]["median"] - code[role]["median"], "bytes"
        )
        figures["%s_32bit_after_set_up" % role] = figure(up[role]["median"], "bytes")
        put("%s_field" % role, f32[role])
        put("%s_field_code" % role, fcode[role])
        figures["%s_field_data" % role] = figure(
            f32[role]["median"] - fcode[role]["median"], "bytes"
        )
        figures["%s_64bit" % role] = figure(r64[role]["live_bytes"], "bytes")
    print(json.dumps({"32bit": r32, "code": code, "field": f32, "64bit": r64}, indent=1))
    write_result("field_memory", figures)
    for name, lives, codes in (("with", r32, code), ("without", f32, fcode)):
        over = [role for role in ROLES if lives[role]["median"] > GOAL]
        over_data = [role for role in ROLES if lives[role]["median"] - codes[role]["median"] > GOAL]
        print(
            "%s the update hooks, over 8 KiB at 32 bits: code and data: %s; data: %s"
            % (name, ", ".join(over) or "none", ", ".join(over_data) or "none")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

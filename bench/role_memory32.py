"""Every role's heap at 32 bits, against its chip's budget, and the virtual board's heap
calibrated from it (issue 17, "Memory honest at 32 bits").

For each role (agent, mobile, home, host, router) the firmware as `roam deploy` sends it (.mpy:
on a board a deployed module's code lives in the heap) runs bench/role_memory32_mpy.py on the
32-bit MicroPython (the WebAssembly port, tools/mpy32.mjs: a board's pointer and object sizes)
and on the 64-bit unix port the virtual boards run. It reports, per role and word size:

* ``code``: the live heap the role's resident modules take once imported (asyncio, config,
  logsink, driver, the links, the field log, the role's core modules);
* ``data``: what the role's worst-case state adds, built through real frames and run two virtual
  minutes (agent: 20 local + 500 published bindings, region running; router: 500 published;
  mobile node: 10 agents heard; home agent: 50 bindings; host: a correspondent, 20 neighbours);

and, at 32 bits, code + data against each chip's ``heap_budget_kb`` (boards/*.toml) with the
share to spare (the goal: >= 20 %). Not in code + data: the driver's own objects and the field
log's buffers and state; ``board`` is the whole board's live heap with those built around the
role (the field log as fieldlog/setup.py builds it, the driver, 200 lines logged and streamed),
against the budgets too. Not in any figure: the fragmentation a long run adds, and a start's
peak (only the calibrated virtual boards test a start: tests/host/test_vboard_firmware.py).

The same with the firmware in a ROMFS image (mpremote's builder, mounted with vfs.VfsRom: its
bytecode read in place, as from a board's flash), at 32 and 64 bits.

The 32-bit port's asyncio is its own (PyScript's, driven by JavaScript), not a board's: its
share of ``code`` is replaced by a board's asyncio, read on the 64-bit unix port and scaled to
32 bits (``board_asyncio32``).

The 64-bit over 32-bit ratios of code and of data (summed over the roles), and of the worst
role's code + data from the filesystem and from a ROMFS, are the virtual board's calibration:
hosttools/vboard.py reads them from boards/heap64.json, which this writes with
``--write-calibration``. A virtual board then gets, for a budget B, B x (the ratio of the worst
role's code + data, for where its firmware runs from) + the shims' heap: it runs out of memory
where a board would.

    python -m bench.role_memory32                        # out/bench/role_memory32.json
    python -m bench.role_memory32 --write-calibration    # also boards/heap64.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import common  # noqa: E402
from bench.common import MICROPYTHON, BenchError, last_json_line, write_result  # noqa: E402

SCRIPT = REPO / "bench" / "role_memory32_mpy.py"
STUBS = REPO / "bench" / "mpy"
C_STUBS = REPO / "bench" / "mpy_c"
MPY32 = REPO / "tools" / "mpy32.mjs"
CALIBRATION = REPO / "boards" / "heap64.json"
ROLES = ("agent", "mobile", "home", "host", "router")
CHIPS = ("esp32", "esp32c3", "esp32s3")
SPARE_GOAL = 0.20
HEAP32 = 1024 * 1024
HEAP64_KB = 2048


def build(dst: Path) -> None:
    from hosttools.deploy import plan

    for it in plan(REPO / "firmware", True):
        p = dst / it.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(it.data)


def romfs_image(fw: Path, dst: Path) -> Path:
    """The firmware set ``fw`` as the ROMFS image `roam deploy` writes (hosttools/romfs.py:
    what `mpremote romfs build` makes of the directory), written to ``dst``."""
    from hosttools.romfs import image

    files = [(p.relative_to(fw).as_posix(), p.read_bytes()) for p in fw.rglob("*") if p.is_file()]
    dst.write_bytes(image(files))
    return dst


# A reading depends on where the heap's blocks happen to lie: the collector is conservative,
# and a stale word that looks like a pointer keeps a freed structure alive. Measured: the host's
# data read 8,304 bytes in two memory layouts and 4,624-4,800 in three others, the layouts
# differing only by the length of an unused argument. So each role is read in LAYOUTS layouts
# (that argument's length) and the reading with the median total taken.
LAYOUTS = (0, 8, 40, 82, 120)


def median_reading(command: Callable[[str], list[Any]], what: str) -> dict[str, Any]:
    """The script's JSON reading in each of LAYOUTS (``command(work)``, ``work`` an empty
    directory for the board's flash, and a pad of that length); the one whose code + data is
    the median, with the least and the most code + data of them all (``spread``)."""

    def read(n: int) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as work:
            done = common.run_captured(command(work) + ["x" * n], timeout=600)
        return last_json_line(common.checked(done, what).stdout)

    runs = sorted((read(n) for n in LAYOUTS), key=lambda r: r["code_bytes"] + r["data_bytes"])
    out = dict(runs[len(runs) // 2])
    out["spread"] = [runs[i]["code_bytes"] + runs[i]["data_bytes"] for i in (0, -1)]
    return out


def command32(fw: Path, work: str | Path, role: str, script: Path = SCRIPT) -> list[Any]:
    """The command that runs ``script`` (read from the host) as ROLE on the 32-bit MicroPython,
    with the firmware ``fw`` (a directory or a .romfs image), the stand-ins and ``work`` (the
    board's flash) mounted where the script expects them."""
    node = shutil.which("node")
    if node is None:
        raise BenchError("no Node.js: the 32-bit MicroPython runs on it")
    c: list[Any] = [node, MPY32, "--heap", str(HEAP32), "--mount", "%s:/fw" % fw.parent]
    c += ["--mount", "%s:/stub" % STUBS, "--mount", "%s:/cstub" % C_STUBS]
    c += ["--mount", "%s:/work" % work]
    c += [common.against_deployed(script)]
    return c + [role, "/fw/" + fw.name, "/stub", "/cstub", "/work"]


def on32(fw: Path, role: str) -> dict[str, Any]:
    """``fw``: the firmware directory, or its ROMFS image (a .romfs file)."""
    return median_reading(lambda work: command32(fw, work, role), "32-bit %s" % role)


def on64(fw: Path, role: str) -> dict[str, Any]:
    def command(work: str) -> list[Any]:
        c: list[Any] = [MICROPYTHON, "-X", "heapsize=%dK" % HEAP64_KB]
        c += [common.against_deployed(SCRIPT)]
        return c + [role, str(fw), str(STUBS), str(C_STUBS), work]

    return median_reading(command, "64-bit %s" % role)


def budgets() -> dict[str, int]:
    out = {}
    for chip in CHIPS:
        data = tomllib.loads((REPO / "boards" / (chip + ".toml")).read_text())
        out[chip] = int(data["heap_budget_kb"])
    return out


Readings = tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]


def board_asyncio32(read: dict[str, Readings]) -> tuple[int, float]:
    """The heap of a board's asyncio at 32 bits, and the ratio it is scaled by; ``read``: per
    role its readings (32 and 64 bits from the filesystem, 32 and 64 bits from a ROMFS).

    The 32-bit MicroPython here (the WebAssembly port's PyScript variant) has an asyncio of its
    own, driven by JavaScript's event loop: some 4.7 KB of objects at 32 bits, all its parts
    loaded at once. A board has MicroPython's (extmod/asyncio, frozen, its parts loaded on
    first use), which only the 64-bit unix port here has: read there (``asyncio64``, with the
    parts driver.py loads) and scaled to 32 bits by the 64/32 ratio of the firmware's own
    module objects with their code run in place (the ROMFS readings less their asyncio), as
    a frozen module's code is. Module objects are pointers, 4 bytes at 32 bits and 8 at 64:
    their ratio would be near 2; the firmware's, with its names' characters that do not
    grow, is lower, so the figure errs on the large side."""
    fw64 = sum(rom64["code_bytes"] - rom64["asyncio_bytes"] for _, _, _, rom64 in read.values())
    fw32 = sum(rom["code_bytes"] - rom["asyncio_bytes"] for _, _, rom, _ in read.values())
    ratio = fw64 / fw32
    at64 = sorted(r64["asyncio_bytes"] for _, r64, _, _ in read.values())[len(read) // 2]
    return round(at64 / ratio), round(ratio, 3)


def on_board(reading: dict[str, Any], asyncio32: int) -> dict[str, Any]:
    """A 32-bit reading with a board's asyncio (``asyncio32`` bytes: board_asyncio32) in place of
    the 32-bit port's own (its ``asyncio_bytes``)."""
    fix = asyncio32 - reading["asyncio_bytes"]
    out = dict(reading)
    for k in ("code_bytes", "live_bytes", "board_bytes"):
        out[k] += fix
    out["spread"] = [x + fix for x in reading["spread"]]
    out["asyncio_bytes"] = asyncio32
    return out


def measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        fw = Path(tmp) / "fw"
        build(fw)
        image = romfs_image(fw, Path(tmp) / "fw.romfs")
        read: dict[str, Readings] = {}
        for role in ROLES:
            read[role] = (on32(fw, role), on64(fw, role), on32(image, role), on64(image, role))
    # the 32-bit readings with a board's asyncio in place of the port's (board_asyncio32)
    asyncio32, inplace_ratio = board_asyncio32(read)
    roles = {}
    for role, (port32, r64, port_rom, rom64) in read.items():
        r32, rom = on_board(port32, asyncio32), on_board(port_rom, asyncio32)
        roles[role] = {
            "code32": r32["code_bytes"],
            "code32_port": port32["code_bytes"],  # (as read, with the port's own asyncio)
            "data32": r32["data_bytes"],
            "spread32": r32["spread"],
            "code64": r64["code_bytes"],
            "data64": r64["data_bytes"],
            "held": r32["held"],
            "board32": r32["board_bytes"],
            "asyncio32_port": port32["asyncio_bytes"],
            "asyncio64": r64["asyncio_bytes"],
            "code_romfs32": rom["code_bytes"],
            "data_romfs32": rom["data_bytes"],
            "code_romfs64": rom64["code_bytes"],
            "data_romfs64": rom64["data_bytes"],
        }
    budget = budgets()
    for r in roles.values():
        r["total32"] = r["code32"] + r["data32"]
        r["total64"] = r["code64"] + r["data64"]
        r["ratio"] = round(r["total64"] / r["total32"], 3)
        r["spare"] = {chip: round(1 - r["total32"] / (kb * 1024), 3) for chip, kb in budget.items()}
        r["spare_board"] = {
            chip: round(1 - r["board32"] / (kb * 1024), 3) for chip, kb in budget.items()
        }
        r["total_romfs32"] = r["code_romfs32"] + r["data_romfs32"]
        r["total_romfs64"] = r["code_romfs64"] + r["data_romfs64"]
        r["ratio_romfs"] = round(r["total_romfs64"] / r["total_romfs32"], 3)
        r["spare_romfs"] = {
            chip: round(1 - r["total_romfs32"] / (kb * 1024), 3) for chip, kb in budget.items()
        }
    code32 = sum(r["code32"] for r in roles.values())
    code64 = sum(r["code64"] for r in roles.values())
    data32 = sum(r["data32"] for r in roles.values())
    data64 = sum(r["data64"] for r in roles.values())
    worst = max(roles, key=lambda k: roles[k]["total32"])
    worst_rom = max(roles, key=lambda k: roles[k]["total_romfs32"])
    return {
        "board_asyncio32": asyncio32,
        "inplace_ratio": inplace_ratio,
        "worst_role_romfs": worst_rom,
        "worst_ratio_romfs": roles[worst_rom]["ratio_romfs"],
        "roles": roles,
        "budget_kb": budget,
        "code_ratio": round(code64 / code32, 3),
        "data_ratio": round(data64 / data32, 3),
        "worst_role": worst,
        "worst_ratio": roles[worst]["ratio"],
        "short_of_goal": [
            "%s on %s (%.0f %% spare)" % (role, chip, 100 * s)
            for role, r in roles.items()
            for chip, s in r["spare"].items()
            if s < SPARE_GOAL
        ],
    }


def figures(res: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for role, r in res["roles"].items():
        for k in ("code32", "data32", "total32", "code64", "data64", "total64"):
            out["%s_%s" % (role, k)] = {"value": r[k], "unit": "B"}
        lo, hi = r["spread32"]
        out["%s_total32_spread" % role] = {
            "value": hi - lo,
            "unit": "B",
            "note": "least %d, most %d over %d layouts" % (lo, hi, len(LAYOUTS)),
        }
        for k in ("code_romfs32", "total_romfs32"):
            out["%s_%s" % (role, k)] = {"value": r[k], "unit": "B", "note": "firmware in ROMFS"}
        for chip, s in r["spare"].items():
            out["%s_spare_%s" % (role, chip)] = {"value": round(100 * s, 1), "unit": "%"}
        for chip, s in r["spare_romfs"].items():
            out["%s_spare_romfs_%s" % (role, chip)] = {"value": round(100 * s, 1), "unit": "%"}
        note = "the whole board: the role, its field log and driver"
        out["%s_board32" % role] = {"value": r["board32"], "unit": "B", "note": note}
        for chip, s in r["spare_board"].items():
            out["%s_spare_board_%s" % (role, chip)] = {"value": round(100 * s, 1), "unit": "%"}
        out["%s_code32_port" % role] = {
            "value": r["code32_port"],
            "unit": "B",
            "note": "as read, with the 32-bit port's own asyncio (%d B)" % r["asyncio32_port"],
        }
    out["board_asyncio32"] = {
        "value": res["board_asyncio32"],
        "unit": "B",
        "note": "a board's asyncio: its 64-bit reading / inplace_ratio (board_asyncio32())",
    }
    out["inplace_ratio"] = {
        "value": res["inplace_ratio"],
        "unit": "64/32",
        "note": "the firmware's module objects, code in place (ROMFS), less asyncio",
    }
    for k in ("code_ratio", "data_ratio", "worst_ratio"):
        out[k] = {"value": res[k], "unit": "64/32", "note": res["worst_role"]}
    out["worst_ratio_romfs"] = {
        "value": res["worst_ratio_romfs"],
        "unit": "64/32",
        "note": "%s, firmware in ROMFS" % res["worst_role_romfs"],
    }
    return out


def _spares(spare: dict[str, float]) -> str:
    """A role's share to spare on each chip, as the tables print it."""
    return "%5.0f %% %3.0f %% %3.0f %%" % tuple(100 * spare[c] for c in CHIPS)


def table(res: dict[str, Any]) -> str:
    lines = [
        "role     code32  data32   sum32 | code64  data64   sum64  64/32 | spare esp32 c3 s3",
    ]
    spread = "  ".join("%s %d-%d" % (k, *r["spread32"]) for k, r in res["roles"].items())
    for role, r in res["roles"].items():
        lines.append(
            "%-7s %7d %7d %7d | %6d %7d %7d  %.2f | %s"
            % (
                role,
                r["code32"],
                r["data32"],
                r["total32"],
                r["code64"],
                r["data64"],
                r["total64"],
                r["ratio"],
                _spares(r["spare"]),
            )
        )
    lines.append(
        "budgets (KiB): %s; 64/32: code %.3f, data %.3f, worst role (%s) %.3f"
        % (
            res["budget_kb"],
            res["code_ratio"],
            res["data_ratio"],
            res["worst_role"],
            res["worst_ratio"],
        )
    )
    lines.append("sum32 is the median over %d layouts; least-most: %s" % (len(LAYOUTS), spread))
    lines.append(
        "code32 holds a board's asyncio, %d B (its 64-bit reading / %.3f), not the 32-bit "
        "port's own (%s B)"
        % (
            res["board_asyncio32"],
            res["inplace_ratio"],
            "-".join(
                str(f(r["asyncio32_port"] for r in res["roles"].values())) for f in (min, max)
            ),
        )
    )
    lines.append("the whole board (the role, its field log and driver, 200 lines logged), 32 bits:")
    for role, r in res["roles"].items():
        lines.append("%-7s %7d | %s" % (role, r["board32"], _spares(r["spare_board"])))
    if res["short_of_goal"]:
        lines.append("under 20 %% spare: %s" % ", ".join(res["short_of_goal"]))
    lines.append("the firmware in a ROMFS (its .mpy run in place from flash), at 32 bits:")
    lines.append("role     code32  data32   sum32 | sum64  64/32 | spare esp32 c3 s3")
    for role, r in res["roles"].items():
        lines.append(
            "%-7s %7d %7d %7d | %6d  %.2f | %s"
            % (
                role,
                r["code_romfs32"],
                r["data_romfs32"],
                r["total_romfs32"],
                r["total_romfs64"],
                r["ratio_romfs"],
                _spares(r["spare_romfs"]),
            )
        )
    lines.append(
        "64/32 with the firmware in a ROMFS, worst role (%s): %.3f"
        % (res["worst_role_romfs"], res["worst_ratio_romfs"])
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-calibration", action="store_true", help="write boards/heap64.json")
    args = ap.parse_args(argv)
    res = measure()
    print(table(res))
    write_result("role_memory32", figures(res))
    if args.write_calibration:
        cal = {
            "factor": res["worst_ratio"],
            # the firmware imported from a ROMFS image (code in flash): hosttools/vboard.py
            "romfs_factor": res["worst_ratio_romfs"],
            "worst_role_romfs": res["worst_role_romfs"],
            "code_ratio": res["code_ratio"],
            "data_ratio": res["data_ratio"],
            "worst_role": res["worst_role"],
            # a board's asyncio at 32 bits (board_asyncio32): tests/host/test_role_heap32.py
            # puts it in place of the 32-bit port's own
            "board_asyncio32": res["board_asyncio32"],
            "inplace_ratio": res["inplace_ratio"],
            "roles": {
                k: {
                    x: v[x]
                    for x in (
                        "code32",
                        "data32",
                        "code64",
                        "data64",
                        "code_romfs32",
                        "data_romfs32",
                        "code_romfs64",
                        "data_romfs64",
                    )
                }
                for k, v in res["roles"].items()
            },
            "command": "python -m bench.role_memory32 --write-calibration",
            "commit": common.git_commit(),
        }
        CALIBRATION.write_text(json.dumps(cal, indent=1) + "\n")
        print("wrote %s" % CALIBRATION.relative_to(REPO))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

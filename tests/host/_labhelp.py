"""Helpers for tests that run `roam lab` (the real CLI, in subprocesses) and must leave nothing
running: every lab is brought down by the fixture, and `no_lab_processes` checks /proc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROAM = str(Path(sys.executable).parent / "roam")
MPREMOTE = str(Path(sys.executable).parent / "mpremote")
REPO = Path(__file__).resolve().parents[2]


def roam(lab_dir: Path, *args: str, timeout: float = 60, check: bool = True):
    env = dict(os.environ, ROAM_LAB_DIR=str(lab_dir), ROAM_BOARD_TIMEOUT="15")
    r = subprocess.run(
        [ROAM, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=str(REPO)
    )
    if check:
        assert r.returncode == 0, "roam %s failed (%d): %s %s" % (
            " ".join(args),
            r.returncode,
            r.stdout,
            r.stderr,
        )
    return r


def lab_processes(lab_dir: Path) -> list[int]:
    """Pids of processes that belong to the lab in lab_dir: the daemon (its command line names
    the directory) and the boards (their VB_ROOT is under it)."""
    mine = []
    key = str(lab_dir.resolve())
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path("/proc/%s/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode()
            env = Path("/proc/%s/environ" % pid).read_bytes().decode("utf-8", "replace")
            stat = Path("/proc/%s/stat" % pid).read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            continue  # a zombie holds nothing; its parent (this test) reaps it
        if ("hosttools.lab serve" in cmd and key in cmd) or ("VB_ROOT=" + key) in env:
            mine.append(int(pid))
    return mine


def wait_no_lab_processes(lab_dir: Path, timeout: float = 10) -> list[int]:
    end = time.monotonic() + timeout
    left = lab_processes(lab_dir)
    while left and time.monotonic() < end:
        time.sleep(0.1)
        left = lab_processes(lab_dir)
    return left


def console_events(lab_dir: Path, board: str) -> list[dict]:
    """The board's JSON log lines since its last `start` (its current run of the role)."""
    path = lab_dir / "console" / (board + ".log")
    out = []
    for ln in path.read_bytes().decode("utf-8", "replace").splitlines():
        ln = ln.strip()
        if ln.startswith('{"t":'):
            try:
                out.append(json.loads(ln))
            except ValueError:
                pass  # a line cut by a reset
    starts = [i for i, e in enumerate(out) if e.get("ev") == "start"]
    return out[starts[-1] :] if starts else []


def lab_down(lab_dir: Path, timeout: float = 30) -> None:
    """`roam lab down` (whatever state the lab is in), then none of its processes left."""
    roam(lab_dir, "lab", "down", check=False, timeout=timeout)
    left = wait_no_lab_processes(lab_dir)
    assert not left, "processes left after roam lab down: %s" % left

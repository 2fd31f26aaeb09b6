"""docs/USER_GUIDE.md's lab walkthrough, run exactly as written: the lines of the code block
after the `walkthrough` marker, in one bash, from a copy of nothing but the guide's working
directory (a scratch directory with `roam` on the PATH). Then the run directory must hold what
the guide promises: a report, every board's log, no gap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.host._labhelp import wait_no_lab_processes

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "USER_GUIDE.md"
MARKER = "<!-- walkthrough:"


def walkthrough() -> list[str]:
    lines = GUIDE.read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith(MARKER))
    assert lines[i + 1].startswith("```"), "the marker must be right above the code block"
    end = next(k for k in range(i + 2, len(lines)) if lines[k].startswith("```"))
    return lines[i + 2 : end]


def test_the_guides_lab_walkthrough_runs_as_written(tmp_path):
    commands = walkthrough()
    assert commands[0].startswith("roam lab up") and commands[-1] == "roam lab down"
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    env.pop("ROAM_LAB_DIR", None)
    script = "set -e\n" + "\n".join(commands) + "\n"
    try:
        r = subprocess.run(
            ["bash", "-c", script],
            cwd=str(tmp_path),
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
    finally:
        subprocess.run(
            [str(Path(sys.executable).parent / "roam"), "lab", "down"],
            cwd=str(tmp_path),
            env=env,
            capture_output=True,
            timeout=60,
        )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run = tmp_path / "out" / "walk1"
    assert (run / "report.html").stat().st_size > 10000
    summary = json.loads((run / "summary.json").read_text())
    assert summary["sent"] > 500 and summary["delivered"] >= 0.99 * summary["sent"], summary
    assert summary["handoffs"] >= 4, summary
    assert json.loads((run / "gaps.json").read_text()) == {}
    boards = json.loads((run / "logs.json").read_text())["boards"]
    assert len(boards) == 12 and all((run / (b + ".jsonl")).stat().st_size for b in boards)
    assert not wait_no_lab_processes(tmp_path / "out" / "lab")

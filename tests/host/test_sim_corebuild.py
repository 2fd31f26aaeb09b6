"""The simulator's compiled core (hosttools/corebuild.py): the same sources compiled with
Cython give exactly the run the Python sources give, and a build is used only for the sources
it was made from."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hosttools import corebuild, paths

ROAM = Path(sys.executable).parent / "roam"


def _run(tmp_path, name, core):
    out = tmp_path / name
    env = dict(os.environ)
    env.pop("ROAM_CORE", None)
    if core == "python":
        env["ROAM_CORE"] = "python"
    done = subprocess.run(
        [str(ROAM), "sim", "run", "ha-down", "--duration", "20", "--seed", "3", "--jobs", "1"]
        + ["--out", str(out), "--quiet"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    s = json.loads((out / "summary.json").read_text())
    # what the run saw, should it not run the core asked for
    s["_stderr"] = done.stderr
    return out, s


def test_compiled_core_gives_the_run_of_the_python_sources(tmp_path):
    corebuild.build()  # (made by `make venv`; built here if missing)
    d1, s1 = _run(tmp_path, "py", "python")
    d2, s2 = _run(tmp_path, "c", "compiled")
    assert s1["core"] == "python", s1["_stderr"]
    assert s2["core"] == "compiled", (corebuild.built_dir(), s2["_stderr"])
    for s in (s1, s2):
        assert s.pop("machine_ref_ms") > 0  # the machine's speed, beside the wall time
        for k in ("wall_s", "core", "peak_rss_mib", "peak_rss_total_mib", "_stderr"):
            s.pop(k)
    assert s1 == s2 and s1["delivered"] > 50
    for name in ("events.jsonl", "capture.pcap"):
        assert (d1 / name).read_bytes() == (d2 / name).read_bytes()


def test_a_build_is_used_only_for_its_own_sources(tmp_path, monkeypatch):
    src = tmp_path / "mobility"
    shutil.copytree(corebuild.SOURCES, src)
    monkeypatch.setattr(corebuild, "SOURCES", str(src))
    monkeypatch.setattr(corebuild, "CACHE", str(tmp_path / "cache"))
    before = corebuild.digest()
    assert corebuild.built_dir() is None  # nothing built for these yet
    (tmp_path / "cache" / before / "mobility").mkdir(parents=True)
    assert corebuild.built_dir() is None  # not whole: no list of its modules
    (tmp_path / "cache" / before / corebuild.MANIFEST).write_text("{}")
    assert corebuild.built_dir() == str(tmp_path / "cache" / before)
    with open(src / "ticks.py", "a") as f:
        f.write("\n# an edit\n")
    assert corebuild.digest() != before
    assert corebuild.built_dir() is None  # edited sources: the old build is not used


def test_without_cython_the_python_sources_run(monkeypatch):
    monkeypatch.setattr(corebuild, "_cython_version", lambda: None)
    assert corebuild.digest() is None and corebuild.built_dir() is None
    with pytest.raises(RuntimeError, match="Cython is not installed"):
        corebuild.build()


def test_old_builds_go_recent_ones_stay(tmp_path, monkeypatch):
    """Several processes (and checkouts of a shared environment) may use builds at once: after a
    build, only those neither among the KEEP most recently used nor used within KEEP_S go."""
    monkeypatch.setattr(corebuild, "CACHE", str(tmp_path))
    now = 1e9
    ages = {"a": 10, "b": 20, "c": 30, "d": 40, "e": 50, "f": 2 * corebuild.KEEP_S}
    ages.update({"g": 3 * corebuild.KEEP_S, "build-x": 5 * corebuild.KEEP_S, "build-y": 60})
    for name, age in ages.items():
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (now - age, now - age))
    corebuild.prune(keep=str(tmp_path / "g"), now=now)
    # the 4 most recent stay, e used a minute ago too, f and build-x are old, g is the new one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "build-y", "c", "d", "e", "g"]


def test_the_simulator_chooses_once_and_says_which(tmp_path):
    """hosttools.sim chooses when it is imported: the build, unless ROAM_CORE=python or the core
    was imported from its sources before; all of the build's modules, or none."""
    corebuild.build()
    script = (
        "import sys\n"
        "if sys.argv[1] == 'first': import mobility.ticks\n"
        "import hosttools.sim.world, mobility.agent\n"
        "from hosttools import corebuild\n"
        "files = [sys.modules[m].__file__ for m in ('hosttools.sim.world', 'mobility.agent')]\n"
        "print(corebuild.selected(), *[f.endswith('.py') for f in files])\n"
    )
    env = dict(
        os.environ, PYTHONPATH=str(paths.PACKAGE_DIR.parent) + os.pathsep + corebuild.FIRMWARE_DIR
    )
    env.pop("ROAM_CORE", None)

    def which(arg, **more):
        out = subprocess.run(
            [sys.executable, "-c", script, arg], env=dict(env, **more), capture_output=True,
            text=True, check=True,
        )  # fmt: skip
        return out.stdout.split()

    assert which("-") == ["compiled", "False", "False"]
    assert which("-", ROAM_CORE="python") == ["python", "True", "True"]
    assert which("first") == ["python", "True", "True"]


def test_a_run_on_the_python_sources_says_so(monkeypatch):
    # `roam sim run` prints the core it ran; a run that fell back to the Python sources (they
    # changed since the last build) adds a line: its wall time is not the compiled simulator's
    from hosttools.sim import cli

    assert ("core", "core", "{}") in cli.TABLE_ROWS
    monkeypatch.delenv("ROAM_CORE", raising=False)
    assert cli.core_note("compiled") is None
    assert "hosttools.corebuild --where" in cli.core_note("python")
    monkeypatch.setenv("ROAM_CORE", "python")  # asked for: nothing to say
    assert cli.core_note("python") is None

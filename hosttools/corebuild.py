"""The simulator's compiled modules: the protocol core and the simulator's hot modules, compiled
with Cython from the very sources, unchanged. A build product like any other.

A simulated city runs the same firmware code (firmware/mobility) hundreds of thousands of times
a minute, and the simulator's own event loop, core hosts and world (SIM_MODULES) as often.
Compiled, they behave as the Python modules do (tests/host/test_sim_corebuild.py runs a
scenario both ways and compares the outputs byte for byte) and run faster.

Building: ``python -m hosttools.corebuild`` (part of ``make venv``) compiles them into
``build/roam-core/<key>/`` of this checkout: ``mobility/`` (the package), ``sim/`` (modules of
hosttools.sim) and ``modules.json``, the list of every module it holds and its file. The key
is a digest of the sources, of this file, of the Python, the Cython version and the directives,
so a build is used only for the sources it was made from: after any edit the simulator runs the
Python sources until the next build. A build is made in a temporary directory and renamed, so
it is whole or absent; builds neither among the KEEP most recently used nor used within
KEEP_S are deleted after a build (other processes of the checkout may be using them).

Choosing: the simulator chooses once per process, in hosttools/sim/__init__.py (``select()``),
before any of its modules is imported: the build for the sources as they are now, unless
``ROAM_CORE=python`` or the process already imported one of the build's modules (the core)
from its sources; otherwise the Python sources. Either every module of the build comes from
it (a finder first on sys.meta_path that knows those module names only) or none does.
``selected()`` says which ("compiled" or "python"); summary.json records it (``core``).
Nothing else is loaded from a build: hosttools.radio, the lab, the boards and the core's tests
run the Python sources.
"""

import argparse
import glob
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

from hosttools import paths

FIRMWARE_DIR = str(paths.shipped("firmware"))
SOURCES = os.path.join(FIRMWARE_DIR, "mobility")
SIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sim")
# the simulator's own per-frame and per-input Python: the event loop, the core hosts, the world
# (not the radio's kernels: numba compiles those itself)
SIM_MODULES = ("engine.py", "cores.py", "world.py", "metrics.py", "ring.py", "sharing.py")
# a checkout's build/ (beside its sources), an installed roam's user cache directory (its
# site-packages may not be writable, and is no place for build products)
_CHECKOUT = paths.checkout()
CACHE = str(_CHECKOUT / "build" / "roam-core" if _CHECKOUT else paths.user_cache("core"))
MANIFEST = "modules.json"
KEEP = 4  # builds kept in any case (the most recently used) ...
KEEP_S = 86400  # ... and any other used within this many seconds

# binding: compiled functions are descriptors as Python's are (a function put in a class's
# dict must become a method: sharing.frozen's __setattr__); annotation_typing off: an annotation
# never turns a Python value into a C one (Cython reads `x: float` as a C double)
_DIRECTIVES = "{'language_level': 3, 'binding': True, 'annotation_typing': False}"
_selected = None  # "compiled" or "python", once select() chose


def _cython_version():
    # from the installed distribution's metadata, not `import Cython`: select() runs whenever
    # hosttools.sim is imported (`roam --help` lists `roam sim`), and a compiled build, once
    # made, needs no Cython at run time
    from importlib import metadata

    try:
        return metadata.version("cython")
    except metadata.PackageNotFoundError:
        return None


def digest():
    """The key of a build for the sources as they are now (None without Cython)."""
    version = _cython_version()
    if version is None:
        return None
    h = hashlib.sha256()
    h.update(
        ("%s|%s|%s|%s" % (sys.version, sysconfig.get_platform(), version, _DIRECTIVES)).encode()
    )
    paths = sorted(glob.glob(os.path.join(SOURCES, "*.py")))
    paths += [os.path.join(SIM_DIR, m) for m in SIM_MODULES]
    paths.append(os.path.abspath(__file__))  # how it is built and laid out
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
    return path if os.path.isfile(os.path.join(path, MANIFEST)) else None


def modules(path):
    """{module name: file} of the build in `path`."""
    with open(os.path.join(path, MANIFEST)) as f:
        return {name: os.path.join(path, rel) for name, rel in json.load(f).items()}


class _BuildFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of one build, and only those."""

    def __init__(self, files):
        self.files = files

    def find_spec(self, fullname, path=None, target=None):
        f = self.files.get(fullname)
        if f is None:
            return None
        if f.endswith("__init__.py"):  # the package mobility
            return importlib.util.spec_from_file_location(
                fullname, f, submodule_search_locations=[os.path.dirname(f)]
            )
        return importlib.util.spec_from_file_location(fullname, f)


def select():
    """Choose, once per process, what the simulator runs (see the module's docstring); returns
    "compiled" or "python". The Python sources of the core are put on sys.path in any case."""
    global _selected
    if _selected is not None:
        return _selected
    if FIRMWARE_DIR not in sys.path:
        sys.path.insert(0, FIRMWARE_DIR)
    _selected = "python"
    path = built_dir() if os.environ.get("ROAM_CORE") != "python" else None
    if path is None:
        return _selected
    files = modules(path)
    if any(name in sys.modules for name in files):
        return _selected  # imported from the sources already: all of them from the sources
    sys.meta_path.insert(0, _BuildFinder(files))
    try:
        os.utime(path)  # used now (build() keeps recently used builds)
    except OSError:
        pass
    _selected = "compiled"
    return _selected


def selected():
    """What select() chose: "compiled" or "python"."""
    return _selected or "python"


def build(quiet=False):
    """Compile the core and SIM_MODULES into CACHE (no-op when a matching build exists).
    Returns the build directory; raises RuntimeError with the compiler's last lines on
    failure."""
    d = digest()
    if d is None:
        raise RuntimeError("Cython is not installed (pip install cython)")
    final = os.path.join(CACHE, d)
    if os.path.isfile(os.path.join(final, MANIFEST)):
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
        _compile(work, "mobility/*.py")  # the package mobility
        _compile(sim, "*.py")  # modules of hosttools.sim
        for d in (pkg, sim):
            for path in glob.glob(os.path.join(d, "*.py")) + glob.glob(os.path.join(d, "*.c")):
                if not path.endswith("__init__.py"):
                    os.remove(path)  # the extension modules only (and the package's __init__)
            shutil.rmtree(os.path.join(d, "build"), ignore_errors=True)
        shutil.rmtree(os.path.join(work, "build"), ignore_errors=True)
        files = {"mobility": "mobility/__init__.py"}
        for package, sub in (("mobility", "mobility"), ("hosttools.sim", "sim")):
            for path in sorted(glob.glob(os.path.join(work, sub, "*" + _ext_suffix()))):
                name = os.path.basename(path).split(".")[0]
                files["%s.%s" % (package, name)] = "%s/%s" % (sub, os.path.basename(path))
        with open(os.path.join(work, MANIFEST), "w") as f:
            json.dump(files, f, indent=1, sort_keys=True)
        os.chmod(work, 0o755)
        try:
            os.rename(work, final)
        except OSError:
            if not os.path.isfile(os.path.join(final, MANIFEST)):
                raise
            # another process made the same build meanwhile: its copy is as good
        else:
            work = None
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    prune(keep=final)
    return final


def prune(keep=None, now=None):
    """Delete the builds (and abandoned temporary directories) of CACHE that are neither among
    the KEEP most recently used nor used within KEEP_S, never `keep`."""
    now = time.time() if now is None else now
    try:
        names = os.listdir(CACHE)
    except FileNotFoundError:
        return
    entries = []
    for name in names:
        path = os.path.join(CACHE, name)
        try:
            entries.append((os.stat(path).st_mtime, path))
        except OSError:
            pass  # deleted by another process meanwhile
    builds = sorted((e for e in entries if not _is_temp(e[1])), reverse=True)
    old = [e for e in entries if _is_temp(e[1])] + builds[KEEP:]
    for mtime, path in old:
        if path != keep and now - mtime > KEEP_S:
            shutil.rmtree(path, ignore_errors=True)


def _is_temp(path):
    return os.path.basename(path).startswith("build-")


def _ext_suffix():
    return importlib.machinery.EXTENSION_SUFFIXES[0]


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


def _shown(path):
    """A path as `make venv` prints it: relative to the checkout, absolute when installed."""
    return os.path.relpath(path, _CHECKOUT) if _CHECKOUT else path


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m hosttools.corebuild",
        description="Compile the simulator's core and hot modules (a no-op when up to date).",
    )
    ap.add_argument(
        "--where", action="store_true", help="print the build the simulator would use, or why none"
    )
    args = ap.parse_args(argv)
    if args.where:
        path = built_dir()
        if os.environ.get("ROAM_CORE") == "python":
            print("python (ROAM_CORE=python)")
        elif path is None:
            print("python (no build for the sources as they are: python -m hosttools.corebuild)")
        else:
            print("compiled: %s" % _shown(path))
            for name, f in sorted(modules(path).items()):
                print("  %s  %s" % (name, _shown(f)))
        return 0
    if built_dir() is not None:
        return 0  # up to date: says nothing
    try:
        path = build()
    except RuntimeError as e:
        print("roam: the simulator will run the core's Python sources (%s)" % e, file=sys.stderr)
        return 0  # not fatal: slower, same results
    print("roam: compiled the core for the simulator into %s" % _shown(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())

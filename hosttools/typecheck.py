"""Type-check firmware/ against the MicroPython ESP32 API, without a board.

``micropython-esp32-stubs`` installs the board's modules (``machine``, ``network``, ``espnow``,
``time``, ...) as top-level ``.pyi`` files and ``micropython-stdlib-stubs`` a reduced typeshed
``stdlib/``. mypy does not pick loose stub files up from site-packages, and the board's ``time``
or ``struct`` must *replace* CPython's, not sit beside them. So this module assembles both into
one custom typeshed (``out/typeshed/``, rebuilt when the stub versions change) and runs mypy with
``--custom-typeshed-dir``: then a call into an ESP32 API with a wrong argument, an attribute the
board lacks, or an import of a module MicroPython does not have (``hmac``, ``typing``) is an error.

    python -m hosttools.typecheck            # checks firmware/ and bench/*_mpy.py
    python -m hosttools.typecheck FILE...    # checks the given files or directories
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from hosttools.paths import PACKAGE_DIR, shipped

# a development tool (`make typecheck`): its caches, bench/ and pyproject.toml's mypy settings
# are the checkout's
REPO_DIR = PACKAGE_DIR.parent
DEFAULT_TYPESHED = REPO_DIR / "out" / "typeshed"
DEFAULT_CACHE = REPO_DIR / "out" / "mypy-cache-firmware"
FIRMWARE_DIR = shipped("firmware")
BENCH_DIR = REPO_DIR / "bench"
BOARD_STUBS = "micropython-esp32-stubs"
STDLIB_STUBS = "micropython-stdlib-stubs"
LAYOUT = 2  # bump when build_typeshed changes what it writes, so old copies are rebuilt


class StubsMissing(Exception):
    """The stub packages are not installed (run `make venv`)."""


def _distribution(name: str) -> metadata.Distribution:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError as exc:
        raise StubsMissing("%s is not installed: run `make venv`" % name) from exc


def _stub_files(dist: metadata.Distribution) -> list[tuple[str, Path]]:
    """(path inside site-packages, absolute path) of every .pyi file and VERSIONS of ``dist``."""
    found = []
    for entry in dist.files or []:
        relative = entry.as_posix()
        if ".dist-info/" in relative:
            continue
        if relative.endswith(".pyi") or relative.endswith("/VERSIONS"):
            found.append((relative, Path(str(dist.locate_file(entry))).resolve()))
    return found


def build_typeshed(dest: Path = DEFAULT_TYPESHED) -> Path:
    """Assemble the MicroPython typeshed under ``dest`` (stdlib/ and stubs/); return ``dest``."""
    board = _distribution(BOARD_STUBS)
    stdlib = _distribution(STDLIB_STUBS)
    stamp_text = "layout %d\n%s %s\n%s %s\n" % (
        LAYOUT,
        BOARD_STUBS,
        board.version,
        STDLIB_STUBS,
        stdlib.version,
    )
    stamp = dest / ".stamp"
    if stamp.exists() and stamp.read_text() == stamp_text:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "stdlib").mkdir(parents=True)
    # The reduced CPython typeshed first (stdlib/..., stubs/...); its helpers under _mpy_shed/ are
    # imported as top-level modules, so they go into stdlib/ as well.
    for relative, source in _stub_files(stdlib):
        target = relative if relative.split("/")[0] in ("stdlib", "stubs") else "stdlib/" + relative
        _copy(source, dest / target)
    # The board's modules override the CPython ones of the same name.
    for relative, source in _stub_files(board):
        _copy(source, dest / "stdlib" / relative)
    _list_new_modules(dest / "stdlib")
    (dest / "mypy.ini").write_text("[mypy]\n")
    stamp.write_text(stamp_text)
    return dest


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _list_new_modules(stdlib_dir: Path) -> None:
    # mypy only treats a module in a custom typeshed as present if stdlib/VERSIONS names it.
    versions = stdlib_dir / "VERSIONS"
    listed = set()
    for line in versions.read_text().splitlines():
        line = line.split("#")[0].strip()
        if ":" in line:
            listed.add(line.split(":")[0].strip())
    present = set()
    for path in stdlib_dir.iterdir():
        if path.suffix == ".pyi":
            present.add(path.stem)
        elif path.is_dir():
            present.add(path.name)
    missing = sorted(present - listed)
    with versions.open("a") as out:
        out.write("\n# MicroPython modules added by hosttools/typecheck.py\n")
        for name in missing:
            out.write("%s: 3.0-\n" % name)


def mypy_command(paths: list[str], typeshed: Path, cache_dir: Path = DEFAULT_CACHE) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mypy",
        "--custom-typeshed-dir",
        str(typeshed),
        # Only the board's modules and firmware/ itself: a CPython package installed on the host
        # must not make a firmware import look valid.
        "--no-site-packages",
        "--python-version",
        "3.11",
        "--explicit-package-bases",
        "--cache-dir",
        str(cache_dir),
        # Keep the host's [tool.mypy] section (normal typeshed, hosttools files) out of this run.
        "--config-file",
        str(typeshed / "mypy.ini"),
        *paths,
    ]


def check(paths: list[str], typeshed: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run mypy on ``paths`` with the MicroPython typeshed; returns the finished process."""
    typeshed = build_typeshed(DEFAULT_TYPESHED if typeshed is None else typeshed)
    # firmware/ on the module path, so `from mobility import ...` resolves as on the board.
    env = dict(os.environ, MYPYPATH=str(FIRMWARE_DIR))
    return subprocess.run(
        mypy_command(paths, typeshed),
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_DIR,
        check=False,
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # The MicroPython-side benchmark scripts run on the board's API too.
    paths = args or [str(FIRMWARE_DIR)] + sorted(str(p) for p in BENCH_DIR.glob("*_mpy.py"))
    try:
        done = check(paths)
    except StubsMissing as exc:
        print("typecheck: error: %s" % exc, file=sys.stderr)
        return 2
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())

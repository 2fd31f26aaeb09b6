"""`roam flash`: put the MicroPython image on a board with esptool's Python API.

Order matters, so that a mistake never costs a half-erased board:

1. the board type (boards/<type>.toml) gives the chip and the image's flash offset;
2. the image (``--firmware FILE`` or the newest ``*.bin`` in the image cache's <type>/,
   hosttools/images.py: what `roam firmware fetch` downloads)
   is checked with esptool's own image parser before the port is even opened: the ESP image
   magic byte and the chip id of its extended header must match the board type's chip;
3. the port must exist and be free (exclusive open);
4. esptool detects the chip; a chip other than the board type's is refused before anything is
   written;
5. erase, write at the offset, verify (esptool's MD5 check of the flash), hard reset.

Between 2 and 3 the image's partition table gets a romfs partition of the board file's
``romfs_kb``, carved from the filesystem's (hosttools/partitions.py; ``--no-romfs``: the image's
table as it is).

``--dry-run`` does 1 and 2 and prints the equivalent esptool command line instead, and the
partition table roam would write.
"""

from __future__ import annotations

import shlex
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hosttools.boardio import open_serial
from hosttools.errors import RoamError, RoamUsageError
from hosttools.fleet import BoardType, load_board_type
from hosttools.images import cache_dir
from hosttools.targets import BoardProgress, Target, fleet_options, resolve, run_parallel

DEFAULT_BAUD = 460800


def chip_key(name: str) -> str:
    """esptool spells chips "ESP32-S3" (CHIP_NAME) and "esp32s3" (--chip): compare as the latter."""
    return name.lower().replace("-", "").replace("(", "").replace(")", "")


def chip_for_image_id(chip_id: int) -> str | None:
    from esptool.targets import ROM_LIST

    for rom in ROM_LIST:
        if rom.IMAGE_CHIP_ID == chip_id:
            return str(rom.CHIP_NAME)
    return None


def where_to_get(bt: BoardType) -> str:
    if "image_url" in bt.data:  # the board file pins one: roam fetches it
        return "roam firmware fetch --board %s (or pass --firmware FILE)" % bt.name
    return (
        "download the MicroPython .bin for this board from %s into %s (or pass "
        "--firmware FILE)" % (bt.download_url, cache_dir() / bt.name)
    )


def find_image(bt: BoardType, firmware: str | None) -> Path:
    if firmware:
        p = Path(firmware)
        if not p.is_file():
            raise RoamError("firmware image %s not found: %s" % (p, where_to_get(bt)))
        return p
    d = cache_dir() / bt.name
    images = sorted(d.glob("*.bin")) if d.is_dir() else []
    if not images:
        raise RoamError(
            "no MicroPython image for board type %s in %s: %s" % (bt.name, d, where_to_get(bt))
        )
    return images[-1]  # MicroPython names them ..-vX.Y.Z.bin / ..-YYYYMMDD-..: newest sorts last


def check_image(path: Path, bt: BoardType) -> bytes:
    """The image's bytes if esptool's parser accepts it as an image for the board's chip."""
    from esptool.bin_image import LoadFirmwareImage
    from esptool.util import FatalError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RoamError("cannot read firmware image %s: %s" % (path, exc.strerror)) from None
    if not data:
        raise RoamError("firmware image %s is empty: %s" % (path, where_to_get(bt)))
    if data[0] != 0xE9:
        hint = (
            " (it looks like a UF2 file: the ESP32 needs the .bin)" if data[:4] == b"UF2\n" else ""
        )
        raise RoamError(
            "%s is not an ESP firmware image (first byte 0x%02x, expected 0xe9)%s: %s"
            % (path, data[0], hint, where_to_get(bt))
        )
    try:
        image = LoadFirmwareImage(bt.chip, data)
    except KeyError:
        raise RoamError(
            "board type %s names chip %r, which esptool does not know" % (bt.name, bt.chip)
        ) from None
    except Exception as exc:  # noqa: BLE001 - esptool's parser fails in many ways
        # One readable line, no esptool internals (its messages carry format tuples, struct
        # and ord() errors): an image that ends too early, or one that is damaged.
        if isinstance(exc, (struct.error, TypeError, IndexError)) or (
            isinstance(exc, FatalError) and "end of file" in str(exc).lower()
        ):
            why = "it ends too early (%d bytes): a cut-off download?" % len(data)
        else:
            why = "its header or segments are damaged"
        raise RoamError(
            "%s is not a valid %s image (%s): %s" % (path, bt.chip, why, where_to_get(bt))
        ) from None
    expected = image.ROM_LOADER.IMAGE_CHIP_ID
    if image.chip_id != expected:
        other = chip_for_image_id(image.chip_id) or "chip id %d" % image.chip_id
        raise RoamError(
            "%s is an image for %s, but board type %s is %s: %s"
            % (path, other, bt.name, image.ROM_LOADER.CHIP_NAME, where_to_get(bt))
        )
    return data


def esptool_command(port: str, bt: BoardType, image: Path, baud: int) -> str:
    """The esptool command line that does what `roam flash` does."""
    args = [
        "esptool",
        "--chip",
        bt.chip,
        "--port",
        port,
        "--baud",
        str(baud),
        "--before",
        "default-reset",
        "--after",
        "hard-reset",
        "write-flash",
        "--erase-all",
        "0x%x" % bt.flash_offset,
        str(image),
    ]
    return shlex.join(args)


def connect_chip(port: str, baud: int) -> Any:
    """esptool's detect_chip on the port, then its flasher stub (the connected chip object)."""
    from esptool.cmds import detect_chip, run_stub
    from esptool.logger import log

    # roam reports progress and errors itself (one bar per board, one error line): esptool's
    # own messages ("Connecting....", notes, warnings about a port without RTS/DTR) stay out.
    log.set_verbosity("silent")
    esp = detect_chip(port=port, baud=115200, connect_mode="default-reset", connect_attempts=3)
    esp = run_stub(esp)
    if baud != 115200:
        esp.change_baud(baud)
    return esp


def flash_board(
    port: str,
    bt: BoardType,
    data: bytes,
    baud: int = DEFAULT_BAUD,
    progress: BoardProgress | None = None,
    connect: Callable[[str, int], Any] | None = None,
) -> str:
    """Erase, write, verify, reset. Returns the detected chip's name."""
    from esptool.cmds import erase_flash, reset_chip, verify_flash, write_flash
    from esptool.util import FatalError

    step = progress.update if progress else (lambda f, t="": None)
    open_serial(port).close()  # missing or busy port: one clear error before esptool
    step(0.05, "connecting")
    try:
        esp = (connect or connect_chip)(port, baud)
    except (FatalError, OSError) as exc:
        raise RoamError(
            "board on %s does not answer esptool (%s); hold BOOT while pressing "
            "RESET to enter the bootloader, then retry" % (port, " ".join(str(exc).split()))
        ) from None
    try:
        found = str(esp.CHIP_NAME)
        if chip_key(found) != chip_key(bt.chip):
            raise RoamError(
                "board on %s is an %s, but board type %s needs an %s: nothing was "
                "written (fix the board type in the fleet or --type)"
                % (port, found, bt.name, bt.chip.upper())
            )
        try:
            step(0.15, "erasing")
            erase_flash(esp)
            step(0.4, "writing 0x%x" % bt.flash_offset)
            write_flash(esp, [(bt.flash_offset, data)], no_progress=True)
            step(0.85, "verifying")
            verify_flash(esp, [(bt.flash_offset, data)])
            step(0.95, "resetting")
            reset_chip(esp, "hard-reset")
        except FatalError as exc:
            raise RoamError("flashing %s failed: %s" % (port, " ".join(str(exc).split()))) from None
        return found
    finally:
        port_obj = getattr(esp, "_port", None)
        if port_obj is not None:
            try:
                port_obj.close()
            except Exception:  # noqa: BLE001 - closing after a failure must not hide it
                pass


def board_type_for(target: Target, type_name: str | None) -> BoardType:
    if type_name:
        try:
            return load_board_type(type_name)
        except RoamError as e:  # --type names no board file: the command line is wrong
            raise RoamUsageError(str(e)) from None
    if target.board is not None:
        return load_board_type(target.board.board_type)
    raise RoamUsageError(
        "board type of %s unknown: pass --type (one of the boards/*.toml) or add "
        "the board to the fleet" % target.port
    )


@click.command("flash")
@fleet_options
@click.option(
    "--type",
    "type_name",
    metavar="TYPE",
    help="Board type (boards/TYPE.toml, or $ROAM_BOARDS_DIR/TYPE.toml); default: the fleet "
    "entry's.",
)
@click.option(
    "--firmware",
    metavar="FILE",
    help="MicroPython image (.bin); default: newest in $ROAM_FIRMWARE_CACHE/TYPE/ (default "
    "~/.cache/roam/firmware/TYPE/, under $XDG_CACHE_HOME if set: `roam firmware fetch`).",
)
@click.option(
    "--baud",
    "-b",
    type=click.IntRange(min=9600),
    default=DEFAULT_BAUD,
    show_default=True,
    help="Serial speed for writing the image (esptool's --baud); lower it on a flaky cable.",
)
@click.option(
    "--romfs/--no-romfs",
    "romfs",
    default=True,
    show_default=True,
    help="Give the board a romfs partition (the board file's romfs_kb, from the front of the "
    "filesystem's), where `roam deploy` puts the firmware to run it from flash.",
)
@click.option("--dry-run", is_flag=True, help="Check the image, print the esptool command.")
def flash_cmd(
    port: str | None,
    fleet_path: str | None,
    board_name: str | None,
    type_name: str | None,
    firmware: str | None,
    baud: int,
    romfs: bool,
    dry_run: bool,
) -> None:
    """Flash MicroPython onto one board (--port) or every board of the fleet."""
    from hosttools.partitions import with_romfs

    targets, _ = resolve(port, fleet_path, board_name, dry_run=dry_run)
    # Everything that can be checked without a board is checked for every board first.
    plan = []
    notes = {}
    for t in targets:
        bt = board_type_for(t, type_name)
        image = find_image(bt, firmware)
        change = with_romfs(
            check_image(image, bt), bt.flash_offset, int(bt.data.get("romfs_kb", 0)) if romfs else 0
        )
        plan.append((t, bt, image, change.image))
        notes[t.port] = change
    if dry_run:
        for t, bt, image, _ in plan:
            click.echo(esptool_command(t.port, bt, image, baud))
            change = notes[t.port]
            if change.changed:  # (else the command line is the whole story)
                click.echo("# with the image's partition table replaced (%s):" % change.note)
                for line in change.csv.splitlines()[2:]:
                    click.echo("#   " + line)
        return
    by_port = {t.port: (bt, data) for t, bt, _, data in plan}

    def job(t: Target, progress: BoardProgress) -> str:
        bt, data = by_port[t.port]
        return flash_board(t.port, bt, data, baud, progress)

    chips = run_parallel("flash", targets, job)
    for (t, bt, image, _), chip in zip(plan, chips, strict=False):
        click.echo(
            "%s: %s flashed with %s at 0x%x (%s)"
            % (t.label, chip, image.name, bt.flash_offset, notes[t.port].note)
        )

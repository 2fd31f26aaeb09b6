"""The partition table `roam flash` writes: MicroPython's own, with a romfs partition carved
from the front of the filesystem's.

micropython.org's ESP32 images are whole-flash images (bootloader, partition table at 0x8000,
the MicroPython app at 0x10000) whose table has no ``romfs`` partition, so the firmware's
modules are copied into the heap when imported (docs/LAB.md "Heap"). MicroPython's ESP32 port
mounts a data partition labelled ``romfs`` at /rom when its build has ROMFS support
(``vfs.rom_ioctl``), and MicroPython ships such a table for custom builds
(ports/esp32/partitions-4MiB-romfs.csv: ``romfs, data, 0x8f``). roam replaces the image's table
before writing it: the ``vfs`` partition starts ``romfs_kb`` (the board file's) later and the
romfs partition takes that space; everything else is the image's own. `roam flash` erases the
whole chip first, so nothing on the old filesystem depends on where it started. An image whose
MicroPython has no ROMFS support ignores the partition (and `roam deploy` then puts the
firmware on the filesystem, as before); a table with no ``vfs`` partition, or one that already
has a ``romfs``, is left as it is.

The table is read, changed, checked and written by esp-idf-defs (the data structures of ESP-IDF's
own gen_esp32part.py: its MD5 entry, its alignment and overlap checks).
"""

from __future__ import annotations

from dataclasses import dataclass

TABLE_OFFSET = 0x8000  # where the ESP32 family's bootloader reads the partition table
TABLE_SIZE = 0xC00  # ESP-IDF's MAX_PARTITION_LENGTH
ROMFS_LABEL = "romfs"
ROMFS_SUBTYPE = 0x8F  # as MicroPython's partitions-4MiB-romfs.csv
FILESYSTEM_LABEL = "vfs"


@dataclass
class TableChange:
    image: bytes  # the image to write (the input itself when nothing changed)
    note: str  # what was done, or why not, in words
    csv: str  # the table the board gets, as ESP-IDF's CSV ("" when the image has none)
    changed: bool = False  # the table was replaced


def with_romfs(image: bytes, flash_offset: int, romfs_kb: int) -> TableChange:
    """``image`` (written at ``flash_offset``) with a ``romfs_kb`` romfs partition."""
    from esp_idf_defs import PartitionDefinition, PartitionTable  # type: ignore[import-untyped]
    from esp_idf_defs.partitions import InputError  # type: ignore[import-untyped]

    at = TABLE_OFFSET - flash_offset
    raw = image[at : at + TABLE_SIZE] if at >= 0 else b""
    if len(raw) < 32 or raw[:2] != PartitionDefinition.MAGIC_BYTES:
        return TableChange(image, "the image holds no partition table: written as it is", "")
    try:
        table = PartitionTable.from_binary(raw)
    except InputError as e:
        return TableChange(image, "the image's partition table is unreadable (%s)" % e, "")
    names = {p.name: p for p in table}
    if romfs_kb <= 0:
        return TableChange(image, "no romfs partition asked for", table.to_csv())
    if ROMFS_LABEL in names:
        return TableChange(image, "the image's table has a romfs partition", table.to_csv())
    fs = names.get(FILESYSTEM_LABEL)
    size = romfs_kb * 1024
    if fs is None or fs.size < 2 * size:
        return TableChange(
            image,
            "the image's table has no %r partition of at least %d KiB to carve a romfs "
            "partition from: written as it is" % (FILESYSTEM_LABEL, 2 * romfs_kb),
            table.to_csv(),
        )
    rom = PartitionDefinition()
    rom.name, rom.type, rom.subtype = ROMFS_LABEL, fs.type, ROMFS_SUBTYPE
    rom.offset, rom.size = fs.offset, size
    fs.offset, fs.size = fs.offset + size, fs.size - size
    table.insert(table.index(fs), rom)
    try:
        table.verify()
        new = table.to_binary()
    except InputError as e:
        return TableChange(image, "a romfs partition does not fit the table (%s)" % e, "")
    patched = image[:at] + new + image[at + len(new) :]
    return TableChange(
        patched,
        "partition table: romfs %d KiB at 0x%x, %s %d KiB at 0x%x"
        % (romfs_kb, rom.offset, FILESYSTEM_LABEL, fs.size // 1024, fs.offset),
        table.to_csv(),
        changed=True,
    )

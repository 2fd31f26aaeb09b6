"""What an update sends to a board: a firmware set (the modules `roam deploy` would put on the
root, less the bootstrap that only USB changes) or a config, each file with its SHA-256, and the
set's hash (firmware/update/wire.py ``set_hash``) that STATUS reports once the board runs it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from hosttools.firmware import update_wire

# firmware/slots.py BOOTSTRAP
BOOTSTRAP = ("boot.py", "main.py", "slots.py", "slots.mpy", "romimage.py", "romimage.mpy")


@dataclass(frozen=True)
class File:
    path: str
    data: bytes

    @property
    def sha(self) -> bytes:
        return hashlib.sha256(self.data).digest()


@dataclass(frozen=True)
class Payload:
    kind: int  # update/wire.py KIND_FIRMWARE or KIND_CONFIG
    files: tuple[File, ...]
    set_hash: bytes

    @property
    def short(self) -> str:
        """The hash as STATUS shows it (its first 8 bytes, hex)."""
        return self.set_hash[:8].hex()

    @property
    def size(self) -> int:
        return sum(len(f.data) for f in self.files)


def set_of(items: list[Any]) -> list[File]:
    """The deploy items (hosttools/deploy.py Item) an update carries: all but the bootstrap."""
    return [File(it.path, it.data) for it in items if it.path not in BOOTSTRAP]


def firmware(items: list[Any]) -> Payload:
    w = update_wire()
    files = tuple(set_of(items))
    return Payload(w.KIND_FIRMWARE, files, w.set_hash([(f.path, f.sha.hex()) for f in files]))


def romfs_image(items: list[Any]) -> Payload:
    """The same firmware set as one romfs image (firmware/romimage.py), for a board with a
    romfs partition: its modules then run in place from flash. The set's hash is the modules'
    (the version is the same, only how it travels and where it runs from differ), so STATUS
    names it alike on every board."""
    from hosttools import romfs

    w = update_wire()
    img = romfs.image([(f.path, f.data) for f in set_of(items)])
    return Payload(w.KIND_FIRMWARE, (File(romfs.SLOT_IMAGE, img),), firmware(items).set_hash)


def config(cfg_bytes: bytes) -> Payload:
    """A config (the bytes provision writes): STATUS names a config by its SHA-256's first 8
    bytes, so that is its "set" here."""
    w = update_wire()
    f = File("config.json", cfg_bytes)
    return Payload(w.KIND_CONFIG, (f,), f.sha[: w.SET_LEN])


def root_set_hash(items: list[Any]) -> str:
    """The set hash of what a USB deploy puts on the root (hex): deploy records it in the
    board's fw/state.json, so STATUS names that version too."""
    return firmware(items).set_hash.hex()

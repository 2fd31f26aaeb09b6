# The romfs partition of a virtual board, and `vfs.rom_ioctl` as MicroPython's ports give it.
#
# An ESP32 image built with ROMFS support finds a data partition labelled "romfs", offers it
# through vfs.rom_ioctl (what `mpremote romfs deploy` and `roam deploy` write it with) and,
# at every start, mounts a valid image in it at /rom with /rom and /rom/lib on sys.path; the
# .mpy modules imported from there run in place from flash instead of being copied into the
# heap. The unix port has vfs.VfsRom but no rom_ioctl and no way to map a file, so here the
# partition (the host's file VB_ROMFS) is read into one bytearray at start, which the host adds
# to the process's heap (hosttools/vboard.py), and writes go to both.
#
# The calls, as ports/esp8266 and ports/stm32 implement them (MicroPython 1.25+): 1 the number
# of partitions; 2 a memoryview of partition id (the whole partition); 3 erase the partition
# from its start for `length` bytes, whole sectors (answers the minimum write size); 4 write
# `buf` at `offset` (flash: a write clears bits, it never sets them: erase first); 5 writing
# is complete. A bad id, a range past the partition's end or a call not listed answer -EINVAL,
# an int, as the C code does (nothing raises).
import sys

import vfs as _builtin_vfs

_EINVAL = 22
_SECTOR = 4096  # the ESP32's flash erase unit
_MIN_WRITE = 4  # what the ESP8266 port answers to an erase; mpremote writes 4 KB chunks anyway
MAGIC = b"\xd2\xcd\x31"  # a ROMFS image's first bytes

_file = None  # the host file, open from start (the board's filesystem replaces the host's)
_part = None  # the partition's bytes (a bytearray), or None when the board has none


def _persist(offset, n):
    _file.seek(offset)
    _file.write(memoryview(_part)[offset : offset + n])
    _file.flush()


def rom_ioctl(cmd, *args):
    if cmd == 1:
        return 1
    if not args or args[0] != 0:
        return -_EINVAL
    size = len(_part)
    if cmd == 2:
        return memoryview(_part)
    if cmd == 3 and len(args) == 2:
        end = (args[1] + _SECTOR - 1) // _SECTOR * _SECTOR
        if not 0 <= args[1] <= size:
            return -_EINVAL
        end = min(end, size)
        for i in range(end):
            _part[i] = 0xFF
        _persist(0, end)
        return _MIN_WRITE
    if cmd == 4 and len(args) == 3:
        offset, buf = args[1], args[2]
        n = len(buf)
        if offset < 0 or offset + n > size:
            return -_EINVAL
        for i in range(n):
            _part[offset + i] &= buf[i]
        _persist(offset, n)
        return 0
    if cmd == 5:
        return 0
    return -_EINVAL


class _Vfs:
    """The built-in vfs module and rom_ioctl (the built-in's attributes cannot be added to)."""


def install(path):
    """Read the partition at `path` and make `import vfs` give rom_ioctl."""
    global _file, _part
    _file = open(path, "r+b")
    size = _file.seek(0, 2)
    _file.seek(0)
    _part = bytearray(size)
    _file.readinto(_part)
    mod = _Vfs()
    for name in dir(_builtin_vfs):
        if not name.startswith("__"):
            setattr(mod, name, getattr(_builtin_vfs, name))
    mod.rom_ioctl = rom_ioctl
    sys.modules["vfs"] = mod


def mount():
    """At start, as the port does: a valid image is mounted at /rom; True if it was. A damaged
    one is skipped without a word (the board boots without /rom)."""
    if _part is None or _part[:3] != MAGIC:
        return False
    try:
        _builtin_vfs.mount(_builtin_vfs.VfsRom(memoryview(_part)), "/rom")
    except OSError:
        return False
    return True

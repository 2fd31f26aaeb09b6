"""The running version's romfs image, in the board's romfs partition.

A board whose MicroPython offers a romfs partition (``vfs.rom_ioctl``; on an ESP32 the data
partition ``roam flash`` labels ``romfs``) mounts the image in it at ``/rom`` at every start, and
the ``.mpy`` modules imported from there run in place from flash instead of being copied into
the heap (docs/FIRMWARE.md "Boards"). A version that runs from the partition keeps its image as
a file: ``fw/root.img`` for the one `roam deploy` put on the root over USB, ``romfs.img`` in its
slot for one an over-the-air update staged (update/stage.py). At boot, before anything is
imported from ``/rom``, ``slots.select()`` asks ``install`` to make the partition hold the image
of the version it chose: after an update's switch, a rollback, or a write a power cut stopped.

Writing follows what ``mpremote romfs deploy`` does (erase, write in chunks, complete), in both
forms a port may offer the partition (a memoryview, or a block device), but the first chunk,
which holds the image's header, goes last: until then the partition holds no valid image, so a
cut leaves nothing mounted (the next boot writes again), never half an image.

Part of the bootstrap (on the root's filesystem, changed only over USB); boot-time code, dropped
afterwards.
"""

import hashlib
import os

ROM = "/rom"
IMAGE = "romfs.img"  # a slot's image
ROOT_IMAGE = "fw/root.img"  # the root's, kept by `roam deploy` for a rollback to it
_CHUNK = 4096  # a flash sector


def partition():
    """The first romfs partition (what ``vfs.rom_ioctl(2, 0)`` gives), or None when the board
    has none (no ROMFS support, or no such partition)."""
    try:
        import vfs

        if vfs.rom_ioctl(1) > 0:
            d = vfs.rom_ioctl(2, 0)
            if not isinstance(d, int):
                return d
    except (ImportError, AttributeError, OSError):
        pass
    return None


def size(d):
    """The partition's size in bytes."""
    if hasattr(d, "ioctl"):
        return d.ioctl(4, 0) * d.ioctl(5, 0)
    return len(d)


def file_hash(p, buf):
    """The SHA-256 of file ``p``, read through ``buf``."""
    h = hashlib.sha256()
    mv = memoryview(buf)
    with open(p, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(mv[:n])
    return h.digest()


def _held_hash(d, n, buf):
    """The hash of the partition's first ``n`` bytes."""
    h = hashlib.sha256()
    if not hasattr(d, "readblocks"):
        h.update(memoryview(d)[:n])
        return h.digest()
    bs = d.ioctl(5, 0)
    block = bytearray(bs)
    i = 0
    while n > 0:
        d.readblocks(i, block)
        h.update(memoryview(block)[: min(n, bs)])
        n -= bs
        i += 1
    return h.digest()


def _ok(r, what):
    if isinstance(r, int) and r < 0:
        raise OSError(-r, what)
    return r


def install(p):
    """Make the partition hold the image in file ``p`` and mount it at ``/rom``; "written",
    "held" (it held it already) or None when the board has no partition that can take it."""
    d = partition()
    if d is None:
        return None
    n = os.stat(p)[6]
    if n > size(d):
        return None
    buf = bytearray(_CHUNK)
    if _held_hash(d, n, buf) == file_hash(p, buf):
        try:
            os.stat(ROM)
        except OSError:
            mount(d)  # (the port mounts it at start; a REPL session may have unmounted it)
        return "held"
    import vfs

    try:
        vfs.umount(ROM)  # (the image it held: about to be overwritten)
    except OSError:
        pass
    block = d.ioctl(5, 0) if hasattr(d, "ioctl") else 0
    chunk = _CHUNK
    if block:
        for b in range((n + block - 1) // block):
            _ok(d.ioctl(6, b), "erase")
        chunk = min(chunk, block)
    else:
        least = _ok(vfs.rom_ioctl(3, 0, n), "erase")
        if least and chunk % least:
            chunk = (chunk // least + 1) * least
            buf = bytearray(chunk)
    mv = memoryview(buf)
    with open(p, "rb") as f:
        for off in list(range(chunk, n, chunk)) + [0]:  # the header's chunk last
            f.seek(off)
            k = f.readinto(mv[:chunk])
            while k % 4:  # whole words; 0xff leaves erased flash as it is
                buf[k] = 0xFF
                k += 1
            if block:
                d.writeblocks(off // block, mv[:k], off % block)
            else:
                _ok(vfs.rom_ioctl(4, 0, off, mv[:k]), "write")
    if not block:
        _ok(vfs.rom_ioctl(5, 0), "write complete")
    mount(d)
    return "written"


def mount(d):
    import vfs

    vfs.mount(vfs.VfsRom(d), ROM)

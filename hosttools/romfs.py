"""The firmware in a board's romfs partition: the image, and writing it over the REPL.

A board whose MicroPython has ROMFS support and a partition for it (``vfs.rom_ioctl``; on an
ESP32 a data partition labelled ``romfs``) mounts the image in it at ``/rom`` at every start,
and the ``.mpy`` modules imported from there run in place from flash: an agent's heap needs
60,000 bytes at 32 bits instead of 113,040 (bench/role_memory32.py). `roam deploy` then puts
the firmware set there, all but the bootstrap (boot.py, main.py, slots: they stay on the
filesystem, where only a USB deploy changes them).

The image is what ``mpremote romfs build`` makes of the ``.mpy`` files as deploy compiles them
(mpremote's own writer). Writing follows ``mpremote romfs deploy``'s calls (erase, write
in chunks, complete), in both forms a port may offer (the partition as a memoryview, or as a
block device), with two differences that keep a cut-off write from leaving half an image: the
first chunk, which holds the image's header, is written last (until then the partition holds
no valid image, and a board booting meanwhile does not mount it), and the partition is hashed
on the board (nothing read back over the wire) before deploy removes the filesystem's copies
of the modules. Once written, the image is mounted at once, as the board's next start would.
"""

from __future__ import annotations

import ast
import binascii
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hosttools.boardio import board_exec
from hosttools.errors import RoamError

CHUNK = 4096  # a flash sector; mpremote writes chunks of this size too
ROOT_IMAGE = "fw/root.img"  # firmware/romimage.py: the root's image, for a rollback to it
SLOT_IMAGE = "romfs.img"  # firmware/romimage.py IMAGE: an update's image in its slot
HEADER = b"\xd2\xcd\x31"  # a ROMFS image's first bytes

_QUERY = """try:
 import vfs
except ImportError:
 vfs=None
r=None
if hasattr(vfs,'rom_ioctl') and vfs.rom_ioctl(1)>0:
 d=vfs.rom_ioctl(2,0)
 if hasattr(d,'ioctl'):
  r=(d.ioctl(4,0)*d.ioctl(5,0),d.ioctl(5,0))
 elif not isinstance(d,int):
  r=(len(d),0)
print(repr(r))
"""

_HASH = """import vfs,hashlib,binascii
d=vfs.rom_ioctl(2,0)
h=hashlib.sha256()
n=%d
if hasattr(d,'ioctl'):
 bs=d.ioctl(5,0)
 b=bytearray(bs)
 i=0
 while n>0:
  d.readblocks(i,b)
  h.update(memoryview(b)[:min(n,bs)])
  n-=bs
  i+=1
else:
 h.update(memoryview(d)[:n])
print(binascii.hexlify(h.digest()).decode())
"""


_CLEAR = """import vfs
d=vfs.rom_ioctl(2,0)
if hasattr(d,'ioctl'):
 b=bytearray(d.ioctl(5,0))
 d.readblocks(0,b)
 r=d.ioctl(6,0) if bytes(b[:3])==%r else '-'
else:
 r=vfs.rom_ioctl(3,0,%d) if bytes(d[:3])==%r else '-'
print(r)
"""


# the image kept as the root's file (firmware/romimage.py ROOT_IMAGE), copied on the board from
# the partition: a rollback to the root writes it back; %r: the path, %d: the image's length,
# %r: its hash
_KEEP = """import vfs,os,hashlib
d=vfs.rom_ioctl(2,0)
p=%r
n=%d
b=bytearray(4096)
def fh():
 h=hashlib.sha256()
 with open(p,'rb') as f:
  while True:
   k=f.readinto(b)
   if not k:
    break
   h.update(memoryview(b)[:k])
 return h.digest()
try:
 same=os.stat(p)[6]==n and fh()==%r
except OSError:
 same=False
if not same:
 try:
  os.mkdir('fw')
 except OSError:
  pass
 with open(p+'.tmp','wb') as f:
  if hasattr(d,'readblocks'):
   bs=d.ioctl(5,0)
   blk=bytearray(bs)
   i=0
   while i*bs<n:
    d.readblocks(i,blk)
    f.write(memoryview(blk)[:min(bs,n-i*bs)])
    i+=1
  else:
   for o in range(0,n,4096):
    f.write(memoryview(d)[o:min(o+4096,n)])
 try:
  os.remove(p)
 except OSError:
  pass
 os.rename(p+'.tmp',p)
print(0 if same else n)
"""

_MOUNT = """import vfs,sys
try:
 vfs.mount(vfs.VfsRom(vfs.rom_ioctl(2,0)),'/rom')
except (OSError,TypeError):
 pass
for p in ('/rom/lib','/rom'):
 if p not in sys.path:
  sys.path.insert(min(2,len(sys.path)),p)
"""


@dataclass
class Partition:
    size: int  # bytes
    block: int  # the block size of a block-device partition; 0: a memoryview


def image(files: Sequence[tuple[str, bytes]]) -> bytes:
    """The ROMFS image of ``files`` ((path, data), paths relative to the image's root): the
    bytes ``mpremote romfs build`` makes of such a directory, with mpremote's writer, walked in
    the same (sorted) order, without its tree printed (a deploy runs one job per board, in
    threads, and stdout is theirs)."""
    from mpremote.romfs import VfsRomWriter

    tree: dict[str, Any] = {}
    for path, data in files:
        *dirs, name = path.split("/")
        node = tree
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = data
    writer = VfsRomWriter()

    def add(node: dict[str, Any]) -> None:
        for name in sorted(node):
            if isinstance(node[name], dict):
                writer.opendir(name)
                add(node[name])
                writer.closedir()
            else:
                writer.mkfile(name, node[name])

    add(tree)
    return bytes(writer.finalise())


def partition(t: Any, port: str) -> Partition | None:
    """The board's first romfs partition, or None when it has none (or no ROMFS support, or
    a MicroPython older than 1.23, which has no ``vfs`` module)."""
    out = board_exec(t, _QUERY, port).decode().strip()
    try:
        r = ast.literal_eval(out)
    except (ValueError, SyntaxError):
        raise RoamError("board on %s: unreadable romfs query answer %r" % (port, out)) from None
    if r is None:
        return None
    return Partition(int(r[0]), int(r[1]))


def holds(t: Any, port: str, img: bytes) -> bool:
    """The partition begins with exactly ``img`` (hashed on the board: nothing read back)."""
    out = board_exec(t, _HASH % len(img), port, timeout=30.0).decode().strip()
    return out == hashlib.sha256(img).hexdigest()


def _check(result: str, what: str, port: str) -> int:
    try:
        n = int(result)
    except ValueError:
        raise RoamError("board on %s: %s answered %r" % (port, what, result)) from None
    if n < 0:
        raise RoamError("board on %s: %s failed (error %d)" % (port, what, -n))
    return n


def write(
    t: Any,
    port: str,
    img: bytes,
    part: Partition,
    step: Callable[[float, str], Any] = lambda f, s: None,
) -> None:
    """Write ``img`` into the partition, header last, and check it on the board."""
    if len(img) > part.size:
        raise RoamError(
            "board on %s: the firmware's romfs image (%d bytes) does not fit its romfs "
            "partition (%d bytes): deploy with --no-romfs" % (port, len(img), part.size)
        )
    board_exec(t, "import vfs\ntry:\n vfs.umount('/rom')\nexcept OSError:\n pass\n", port)
    board_exec(t, "import vfs\nfrom binascii import a2b_base64\nd=vfs.rom_ioctl(2,0)\n", port)
    chunk = CHUNK
    if part.block:
        for b in range((len(img) + part.block - 1) // part.block):
            _check(board_exec(t, "print(d.ioctl(6,%d))" % b, port).decode(), "erase", port)
        chunk = min(chunk, part.block)
    else:
        erased = board_exec(t, "print(vfs.rom_ioctl(3,0,%d))" % len(img), port, 60.0)
        least = _check(erased.decode(), "erase", port)
        if least and chunk % least:
            chunk = (chunk // least + 1) * least
    offsets = list(range(0, len(img), chunk))
    for n, off in enumerate(offsets[1:] + offsets[:1]):  # the header's chunk last
        step(n / len(offsets), "writing the romfs image at %d" % off)
        piece = img[off : off + chunk]
        piece += b"\xff" * (-len(piece) % 4)  # whole words; 0xff leaves erased flash as it is
        data = binascii.b2a_base64(piece, newline=False).decode()
        if part.block:
            call = "d.writeblocks(%d,a2b_base64(%r),%d)" % (
                off // part.block,
                data,
                off % part.block,
            )
            board_exec(t, call + "\nprint(0)", port)
        else:
            out = board_exec(t, "print(vfs.rom_ioctl(4,0,%d,a2b_base64(%r)))" % (off, data), port)
            _check(out.decode(), "write", port)
    if not part.block:
        _check(board_exec(t, "print(vfs.rom_ioctl(5,0))", port).decode(), "write complete", port)
    if not holds(t, port, img):
        raise RoamError("board on %s: the romfs partition does not hold what was written" % port)
    # mounted now, as the board's next start would: code run before that start (a deploy
    # with --no-reset, then `roam test`) imports the new modules, as the filesystem's before
    board_exec(t, _MOUNT, port)


def keep(t: Any, port: str, img: bytes) -> bool:
    """The image the partition holds, kept as the root's file too (copied on the board);
    True when the file had to be written."""
    out = board_exec(t, _KEEP % (ROOT_IMAGE, len(img), hashlib.sha256(img).digest()), port, 60.0)
    return _check(out.decode().strip(), "keeping the image", port) > 0


def forget(t: Any, port: str) -> None:
    """The root's version no longer runs from an image: its file goes (before anything else
    changes, so that a boot after a cut never writes it back over the new firmware)."""
    board_exec(t, "import os\ntry:\n os.remove(%r)\nexcept OSError:\n pass\n" % ROOT_IMAGE, port)


def clear(t: Any, port: str, part: Partition) -> None:
    """Erase the image's header, if there is one: the board no longer mounts it."""
    out = board_exec(t, _CLEAR % (HEADER, CHUNK, HEADER), port, timeout=30.0).decode().strip()
    if out != "-":
        _check(out, "erase", port)

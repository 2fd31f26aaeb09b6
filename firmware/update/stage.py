"""Staging an update on the board's flash, beside the running version, then switching to it.

A firmware set goes into the spare slot (slots.spare: ``fw/a`` or ``fw/b``, never the running
one); a config into ``fw/cfg.json``. Each file grows in ``<path>.part`` (appended in order, so
what is there is what the laptop sent up to that offset: a drop resumes where it stopped, also
after a reboot), is hashed when complete and only then renamed to its name. A marker
(``.set`` in the slot) names the set being staged: a different set starts the slot afresh.

``commit`` checks every file again, then switches in one atomic step: the new ``fw/state.json``
(slots.write) names the slot (or, for a config, ``config.json`` is replaced after the old one
is kept in ``fw/cfg.prev``). Before that step the board runs the old version; after it, the new
one, on probation (slots.py). A power cut anywhere leaves one or the other, never a mix.
"""

import os

import slots

from mobility.compat import const
from update import wire

CFG_STAGED = "fw/cfg.json"
IMAGE = slots.romimage.IMAGE  # a set as one romfs image
MARK = ".set"
MAX_FILES = 64
MAX_PATH = 64
MAX_SIZE = 256 * 1024  # a module (a romfs image: what the partition holds)
# sha256(b""): a package's empty __init__
EMPTY = (
    b"\xe3\xb0\xc4\x42\x98\xfc\x1c\x14\x9a\xfb\xf4\xc8\x99\x6f\xb9\x24"
    b"\x27\xae\x41\xe4\x64\x9b\x93\x4c\xa4\x95\x99\x1b\x78\x52\xb8\x55"
)


def _exists(p):
    try:
        return os.stat(p)[6]
    except OSError:
        return -1


# one read buffer while the service is loaded: a fresh one per file is a block that a busy
# board's fragmented heap may not have (an agent that relays its cell's traffic)
_BUF = bytearray(256)


def file_hash(p):
    return slots.romimage.file_hash(p, _BUF)


def _remove_tree(p):
    try:
        mode = os.stat(p)[0]
    except OSError:
        return
    if mode & 0x4000:
        for name in os.listdir(p):
            _remove_tree(p + "/" + name)
        os.rmdir(p)
    else:
        os.remove(p)


def _mkdirs(p):
    at = ""
    for part in p.split("/")[:-1]:
        at = at + "/" + part if at else part
        try:
            os.mkdir(at)
        except OSError:
            pass


_PATH_PUNCT = b"_-./"
_SLASH = const(47)  # (before their use: MicroPython folds them where the compiler knows them)
_DOT = const(46)


def path_ok(p, kind):
    if kind == wire.KIND_CONFIG:
        return p == "config.json"
    if p == IMAGE:
        return True  # the set as one romfs image (romimage.py), for a board with a partition
    if not p or len(p) > MAX_PATH or p in slots.BOOTSTRAP:
        return False
    # as bytes: indexing or iterating a str makes (interns) a one-character string each time,
    # and a new interned string can need a new pool block that a fragmented heap does not have
    b = p.encode()
    if b[0] == _SLASH:
        return False
    for part in b.split(b"/"):
        if not part or part[0] == _DOT:
            return False
    for c in b:
        if not (_alnum(c) or c in _PATH_PUNCT):
            return False
    return p.endswith(".py") or p.endswith(".mpy")


def rom_size():
    """Bytes of the board's romfs partition (0: none)."""
    d = slots.romimage.partition()
    return 0 if d is None else slots.romimage.size(d)


def _alnum(c):
    return 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122


class Stage:
    """One set being staged: BEGIN, then FILE and DATA, then COMMIT. Methods answer
    (code, value) with the ACK codes of update/wire.py."""

    def __init__(self):
        self.kind = 0
        self.set = None
        self.dir = None
        # the set's files by index, in three lists: a list per file took 210 bytes of a board's
        # heap (12 KB for a firmware set), these about 110. No table in one block: a busy
        # agent's heap has 40 KB free in pieces of 700 bytes at most (bench/ota_interrupt.py)
        self.paths = []  # path in the set (None: not declared yet)
        self.sizes = []  # size in bytes
        self.shas = []  # SHA-256
        self.error = ""  # why the last BAD_CONFIG

    def begin(self, kind, set_hash, n):
        st = slots.read()
        if st.get("pending"):
            return wire.BUSY, 0
        if kind not in (wire.KIND_FIRMWARE, wire.KIND_CONFIG) or not 0 < n <= MAX_FILES:
            return wire.BAD, 0
        if kind == wire.KIND_CONFIG and n != 1:
            return wire.BAD, 0
        self.kind, self.set = kind, bytes(set_hash)
        self.paths, self.sizes, self.shas = [None] * n, [0] * n, [None] * n
        if kind == wire.KIND_CONFIG:
            self.dir = slots.DIR
            _mkdirs(CFG_STAGED)
            return wire.OK, 0
        self.dir = slots.DIR + "/" + slots.spare(st)
        mark = self.dir + "/" + MARK
        try:
            with open(mark, "rb") as f:
                same = f.read() == self.set
        except OSError:
            same = False
        if not same:  # another set was staged here (or none): start afresh
            _remove_tree(self.dir)
            _mkdirs(mark)
            with open(mark, "wb") as f:
                f.write(self.set)
        return wire.OK, 0

    def _where(self, p):
        return CFG_STAGED if self.kind == wire.KIND_CONFIG else self.dir + "/" + p

    def file(self, i, size, sha, p):
        """Declare file ``i``; answers how many of its bytes the board has."""
        if self.set is None:
            return wire.NO_BEGIN, 0
        if not 0 <= i < len(self.paths) or size < 0 or not path_ok(p, self.kind):
            return wire.BAD, 0
        if p == IMAGE:
            if size > rom_size():
                return wire.NO_SPACE, 0  # the partition cannot take it (or the board has none)
        elif size > MAX_SIZE:
            return wire.BAD, 0
        where = self._where(p)
        self.paths[i], self.sizes[i], self.shas[i] = p, size, sha
        if size == 0 and sha == EMPTY:  # a package's empty __init__: no DATA to come
            _mkdirs(where)
            open(where, "wb").close()
            return wire.OK, 0
        if _exists(where) == size and file_hash(where) == sha:
            return wire.OK, size  # already staged (an earlier, interrupted transfer)
        _mkdirs(where)
        have = _exists(where + ".part")
        if have > size:
            os.remove(where + ".part")
            have = -1
        return wire.OK, max(have, 0)

    def data(self, i, off, chunk):
        if self.set is None:
            return wire.NO_BEGIN, 0
        if not 0 <= i < len(self.paths) or self.paths[i] is None:
            return wire.BAD, 0
        where, size = self._where(self.paths[i]), self.sizes[i]
        if _exists(where) == size:
            return wire.OK, size  # complete already: a late copy
        part = where + ".part"
        have = max(_exists(part), 0)
        if off != have or off + len(chunk) > size:
            return wire.OFFSET, have
        try:
            with open(part, "ab") as f:
                f.write(chunk)
        except OSError:
            return wire.NO_SPACE, have
        have += len(chunk)
        if have < size:
            return wire.OK, have
        if file_hash(part) != self.shas[i]:
            os.remove(part)
            return wire.MISMATCH, 0
        slots.replace(part, where)
        return wire.OK, size

    def commit(self):
        """Switch to the staged set; (code, 0). The caller resets the board after OK."""
        if self.set is None:
            return wire.NO_BEGIN, 0
        for i, p in enumerate(self.paths):
            if p is None:
                return wire.MISSING, 0
            where = self._where(p)
            if _exists(where) != self.sizes[i] or file_hash(where) != self.shas[i]:
                return wire.MISSING, 0
        st = slots.read()
        if st.get("pending"):
            return wire.BUSY, 0
        if self.kind == wire.KIND_CONFIG:
            return self._commit_config(st)
        # files of an older set left in the slot go (only the set's are importable)
        self._prune(self.dir, self.dir + "/")
        hexset = "".join("%02x" % b for b in self.set)
        slot = self.dir.split("/")[-1]
        st["previous"], st["prev_set"] = st["active"], st.get("set")
        st["active"], st["set"] = slot, hexset
        st["pending"], st["tries"] = "fw", 0
        slots.write(st)  # the switch
        self.set = None
        return wire.OK, 0

    def _prune(self, d, root):
        for name in os.listdir(d):
            p = d + "/" + name
            if os.stat(p)[0] & 0x4000:
                self._prune(p, root)
            elif p[len(root) :] not in self.paths:
                os.remove(p)  # .part files, the marker, modules of an older set

    def _commit_config(self, st):
        import json

        import config

        try:
            with open(CFG_STAGED) as f:
                config.validate(json.load(f), "the new config")
        except (ValueError, OSError) as e:
            self.error = str(e)
            return wire.BAD_CONFIG, 0
        # the old config kept for a rollback, whole before the switch
        tmp = slots.CFG_PREV + ".tmp"
        with open(config.PATH, "rb") as src, open(tmp, "wb") as dst:
            while True:  # through the small buffer: a block of the file's size may not be free
                n = src.readinto(_BUF)
                if not n:
                    break
                dst.write(memoryview(_BUF)[:n])
        slots.replace(tmp, slots.CFG_PREV)
        st["pending"], st["tries"] = "cfg", 0
        slots.write(st)  # on probation from the next boot on: a rollback restores cfg.prev
        slots.replace(CFG_STAGED, config.PATH)  # the switch
        self.set = None
        return wire.OK, 0

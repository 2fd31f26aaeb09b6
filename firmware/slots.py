"""Which firmware and config a board runs: the firmware `roam deploy` put on its root over USB,
or a version an over-the-air update staged in a slot (``fw/a`` or ``fw/b``); the config in
``config.json``, or the one before it (``fw/cfg.prev``). A change an update switched to is on
probation until it runs ``healthy_ms``; one that does not get there is rolled back by itself
(docs/FIRMWARE.md "Over-the-air updates").

The state lives in ``fw/state.json``, always written whole (temp file, then rename)::

    {"active": "a", "previous": "root", "set": "<set hash>", "prev_set": "...",
     "pending": "fw" | "cfg" | null, "tries": 1, "rollback": null or {...}}

Every boot while a change is pending counts a try; the boot after ``MAX_TRIES`` tries that did
not reach ``healthy()`` goes back to the previous firmware (or config) and records why in
``rollback``, which the driver logs (``ota_rollback``) and ``roam devices --ota`` shows.

The bootstrap (boot.py, main.py, this file) stays on the root: only `roam deploy` over USB
changes it, and a USB deploy makes the root active again (it writes the state itself). Only boot
uses ``select``; the module is dropped afterwards (its code is heap on a board).
"""

import json
import os
import sys

import romimage

DIR = "fw"
STATE = "fw/state.json"
CFG_PREV = "fw/cfg.prev"
MAX_TRIES = 2  # boots a change gets to become healthy; the next boot rolls it back
ROOT = "root"
SLOTS = (ROOT, "a", "b")
# on the root only, USB only
BOOTSTRAP = ("boot.py", "main.py", "slots.py", "slots.mpy", "romimage.py", "romimage.mpy")
ROM = romimage.ROM  # where the port mounts a romfs partition's image


def read():
    """The state; the root's when there is none (or it is unreadable)."""
    for p in (STATE, STATE + ".tmp"):  # .tmp: a cut between remove and rename on FAT
        try:
            with open(p) as f:
                st = json.load(f)
            if isinstance(st, dict) and st.get("active") in SLOTS:
                return st
        except (OSError, ValueError):
            pass
    return {"active": ROOT, "previous": None, "set": None, "pending": None, "tries": 0}


def write(st):
    """Write the state whole: temp file, then rename (a cut leaves the old or the new)."""
    try:
        os.mkdir(DIR)
    except OSError:
        pass
    st.pop("rolled_back", None)
    tmp = STATE + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(st))
    replace(tmp, STATE)


def replace(src, dst):
    try:
        os.rename(src, dst)
    except OSError:  # FAT: no rename over a file (read() falls back to the .tmp meanwhile)
        os.remove(dst)
        os.rename(src, dst)


def path(slot):
    """Where a slot's modules are ("" is the root)."""
    return "" if slot == ROOT else "/" + DIR + "/" + slot


def spare(st):
    """The slot an update stages into: the one of a/b that is not running."""
    return "b" if st["active"] == "a" else "a"


def select():
    """At boot: count a try of a pending change, or roll it back after MAX_TRIES; make the
    active version importable first: its romfs image (written into the partition when it is
    not there yet), or its slot on the filesystem. Returns the state (``rolled_back`` set on
    the boot that rolled back: main.py then gives the old version its own chances at safe
    mode)."""
    st = read()
    pending = st.get("pending")
    if pending:
        st["tries"] = st.get("tries", 0) + 1
        if st["tries"] > MAX_TRIES:
            rollback(st, pending)
            write(st)
            st["rolled_back"] = True  # (this boot only: the driver logs it)
        else:
            write(st)
    # The version's romfs image into the partition (after a switch or a rollback; the same
    # image: nothing written), before anything is imported from /rom: a module imported from
    # an image runs in place, its names point into it, and the write would pull both from
    # under them (so everything up to here is the bootstrap's, on the filesystem).
    img = image(st["active"])
    try:
        on_rom = img is not None and romimage.install(img) is not None
    except OSError:
        # the flash refused the write: the version cannot run (an update's is rolled back
        # after its tries, as one that fails at import)
        on_rom = False
    on_fs = [p for p in sys.path if not p.startswith(ROM)]
    if on_rom:
        # the version from the romfs image: the image before the filesystem (the slot's
        # directory holds only the image), so that modules an earlier deploy left on the
        # filesystem never shadow it; the root adds only the bootstrap
        sys.path[:] = [ROM, ROM + "/lib"] + on_fs
    else:
        # an image in the partition is another version's: not imported from (left mounted:
        # that costs nothing, and nothing is changed that a test could not put back)
        sys.path[:] = on_fs
        if st["active"] != ROOT:
            # the slot first, the root last: every module of the version comes from its slot
            # (a set is complete), the root adds only the bootstrap (this module, for the
            # update service) and never shadows the slot (one complete version runs, never a
            # mix)
            root = [p for p in sys.path if p in ("", "/", ".")]
            rest = [p for p in sys.path if p not in ("", "/", ".")]
            sys.path[:] = [path(st["active"])] + rest + (root or [""])
    return st


def image(slot):
    """The romfs image file of ``slot``'s version (romimage.py), or None: it runs from the
    filesystem."""
    p = romimage.ROOT_IMAGE if slot == ROOT else DIR + "/" + slot + "/" + romimage.IMAGE
    try:
        os.stat(p)
        return p
    except OSError:
        return None


def rollback(st, pending):
    tries = st["tries"] - 1
    if pending == "cfg":
        replace(CFG_PREV, "config.json")
        st["rollback"] = {"what": "config", "tries": tries}
    else:
        st["rollback"] = {
            "what": "firmware",
            "from": st.get("set"),
            "to": st.get("prev_set"),
            "slot": st["active"],
            "tries": tries,
        }
        st["active"], st["set"] = st.get("previous") or ROOT, st.get("prev_set")
        st["previous"], st["prev_set"] = None, None
    st["pending"], st["tries"] = None, 0


def healthy():
    """The running change ran long enough: no longer on probation. Returns what was pending
    ("fw", "cfg") or None."""
    st = read()
    pending = st.get("pending")
    if pending:
        st["pending"], st["tries"] = None, 0
        write(st)
    return pending


def drop():
    sys.modules.pop("slots", None)
    sys.modules.pop("romimage", None)

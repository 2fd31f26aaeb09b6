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

DIR = "fw"
STATE = "fw/state.json"
CFG_PREV = "fw/cfg.prev"
MAX_TRIES = 2  # boots a change gets to become healthy; the next boot rolls it back
ROOT = "root"
SLOTS = (ROOT, "a", "b")
BOOTSTRAP = ("boot.py", "main.py", "slots.py", "slots.mpy")  # on the root only, USB only
ROM = "/rom"  # where the port mounts a romfs partition's image (the root's version, USB only)


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
    """At boot: count a try of a pending change, or roll it back after MAX_TRIES; put the
    active slot first on ``sys.path`` (the root's: its romfs image, when mounted). Returns the
    state (``rolled_back`` set on the boot that rolled back)."""
    st = read()
    pending = st.get("pending")
    if pending:
        st["tries"] = st.get("tries", 0) + 1
        if st["tries"] > MAX_TRIES:
            rollback(st, pending)
            write(st)
            st["rolled_back"] = True  # (this boot only: the driver logs it)
            import safemode

            safemode.healthy()  # the old version gets its own chances
        else:
            write(st)
    if st["active"] != ROOT:
        # the slot first, the root last: every module of the version comes from its slot (a
        # set is complete), the root adds only the bootstrap (this module, for the update
        # service) and never shadows the slot (one complete version runs, never a mix)
        root = [p for p in sys.path if p in ("", "/", ".")]
        rest = [p for p in sys.path if p not in ("", "/", ".")]
        sys.path[:] = [path(st["active"])] + rest + (root or [""])
    elif ROM in sys.path:
        # the root's version from the board's romfs image (roam deploy put it there): the image
        # before the filesystem, so that modules an earlier deploy left on the filesystem never
        # shadow it; writing the image's header is then the one step that switches versions
        rom = [p for p in sys.path if p.startswith(ROM)]
        sys.path[:] = rom + [p for p in sys.path if not p.startswith(ROM)]
    return st


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

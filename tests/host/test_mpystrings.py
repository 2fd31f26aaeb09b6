"""hosttools/mpystrings.py: a module's string constants, appended to its .mpy's name table, load
as shared names on the real MicroPython (the unix port), and the module behaves as before; the
modules the firmware drops after use keep theirs as objects."""

import subprocess
from pathlib import Path

from bench.common import MICROPYTHON
from hosttools import deploy, mpystrings

EVENT = "binding_refresh_of_a_test"  # more than 10 characters: mpy-cross keeps it an object


def _module(name: str, extra: int = 0) -> str:
    # ``extra`` names of its own: past 63 the count of names takes two bytes in the .mpy
    own = "".join("name_%d_%s = %d\n" % (i, name, i) for i in range(extra))
    return own + (
        "def event():\n"
        "    return %r\n"
        "def reasons():\n"
        "    return ('a reason of some length', 'short', %r)\n" % (EVENT, "%s of %d bytes")
    )


def _run(tmp: Path, share: bool, script: str, extra: int = 0) -> str:
    d = tmp / ("shared" if share else "plain")
    d.mkdir()
    for name in ("one", "two"):
        src = tmp / (name + ".py")
        src.write_text(_module(name, extra))
        (d / (name + ".mpy")).write_bytes(deploy.compile_mpy(src, name + ".py", share=share))
    done = subprocess.run(
        [MICROPYTHON, "-c", script], cwd=d, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def test_a_modules_strings_become_names_shared_by_every_module(tmp_path: Path):
    src = tmp_path / "m.py"
    src.write_text(_module("m"))
    plain = deploy.compile_mpy(src, "m.py", share=False)
    shared = deploy.compile_mpy(src, "m.py")
    assert EVENT in mpystrings.strings(plain) and EVENT not in mpystrings.names(plain)
    assert {EVENT, "a reason of some length", "%s of %d bytes"} <= set(mpystrings.names(shared))
    # the code and its constants are as they were: only names were added
    assert mpystrings.strings(shared) == mpystrings.strings(plain)
    assert mpystrings.share_strings(shared) == shared  # nothing left to add

    # on MicroPython: the same values; one object for both modules' constant when shared (a
    # name), two objects otherwise
    script = (
        "import one, two\n"
        "print(one.event() == two.event() == %r, one.reasons() == two.reasons())\n"
        "print(one.event() is two.event())\n" % EVENT
    )
    assert _run(tmp_path, True, script) == "True True\nTrue"
    assert _run(tmp_path, False, script) == "True True\nFalse"


def test_a_module_with_many_names_loads_and_runs_shared(tmp_path: Path):
    """Past 63 names a .mpy's count of them takes two bytes (and may take a third when the
    strings are added): the header is rewritten whole."""
    script = "import one, two\nprint(one.name_199_one + two.name_3_two, one.event() is two.event())"
    assert _run(tmp_path, True, script, extra=200) == "202 True"


def test_the_modules_the_firmware_drops_keep_their_strings_as_objects():
    """Boot-time modules (the start, the settings' checks, the config, an update's) are
    forgotten once they ran, and their strings with them: as names they would stay for good."""
    dropped = mpystrings.dropped_modules(deploy.sources())
    assert {"start", "config", "mobility.settings", "fieldlog.setup", "slots"} <= dropped
    assert {"update.service", "update.board", "safemode"} <= dropped  # (a loop's tuple, too)
    assert not {"mobility.agent", "driver", "mobility.region"} & dropped
    built = {it.path: it.data for it in deploy.plan(deploy.FIRMWARE_DIR, True)}
    settings = built["mobility/settings.mpy"]
    assert set(mpystrings.strings(settings)) - set(mpystrings.names(settings))
    agent = built["mobility/agent.mpy"]
    assert set(mpystrings.strings(agent)) <= set(mpystrings.names(agent))

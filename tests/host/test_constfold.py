"""hosttools/constfold.py: the firmware's public constants folded into their readers for a
deploy, what it refuses to fold, and the folded firmware passing its own tests on MicroPython."""

import subprocess
from pathlib import Path

import pytest

from bench import module_memory32 as mm
from hosttools import constfold, deploy

REPO = Path(__file__).resolve().parents[2]
MICROPYTHON = REPO / ".venv" / "bin" / "micropython"

RADIO = """\
from mobility.compat import const

BAND = const(2)  # public: folded
CHANNELS = const(BAND * 7 - 1)  # built of another
_PRIVATE = const(9)  # MicroPython folds it already
LOOKED_UP = const(5)  # read by its name somewhere: kept
TWICE = const(1)


def width(x):
    return x * BAND + _PRIVATE


def reset():
    global TWICE
    TWICE = 2
"""

CELL = """\
from mobility import radio
from mobility.radio import CHANNELS, width


def plan(n):
    return [radio.BAND] * n + [CHANNELS, width(
        radio.BAND)]


def find():
    return getattr(radio, "LOOKED_UP")
"""


def folded(extra=None, users=None):
    files = {"mobility/compat.py": "const = lambda x: x\n", "mobility/radio.py": RADIO}
    files["mobility/cell.py"] = CELL
    files.update(extra or {})
    return constfold.fold(files, users)


def test_a_public_constant_is_private_in_its_module_and_a_number_elsewhere():
    out = folded()
    radio, cell = out["mobility/radio.py"], out["mobility/cell.py"]
    assert "_BAND = const(2)" in radio and "_CHANNELS = const(_BAND * 7 - 1)" in radio
    assert "return x * _BAND + _PRIVATE" in radio
    assert "return [2] * n + [13, width(\n        2)]" in cell
    assert "from mobility.radio import width\n" in cell  # CHANNELS left the import
    # not folded: read by its name (getattr), and assigned again (global)
    assert "LOOKED_UP = const(5)" in radio and 'getattr(radio, "LOOKED_UP")' in cell
    assert "TWICE = const(1)" in radio
    # every edit stays on its lines: a traceback's line numbers do not move
    for rel, text in out.items():
        assert text.count("\n") == {"mobility/radio.py": RADIO, "mobility/cell.py": CELL}.get(
            rel, text
        ).count("\n")


def test_an_attribute_of_that_name_on_anything_but_the_module_keeps_the_constant():
    extra = {"mobility/band.py": "def of(thing):\n    return thing.BAND\n"}
    out = folded(extra)
    assert "BAND = const(2)" in out["mobility/radio.py"]
    assert "[radio.BAND] * n" in out["mobility/cell.py"]


def test_a_constant_whose_name_is_also_a_parameter_is_kept():
    extra = {"mobility/radio.py": RADIO + "\n\ndef scaled(CHANNELS):\n    return CHANNELS * 2\n"}
    out = folded(extra)["mobility/radio.py"]
    assert "CHANNELS = const(BAND * 7 - 1)" in out.replace("_BAND", "BAND")
    assert "    return CHANNELS * 2" in out


def test_a_module_name_bound_to_something_else_resolves_nothing():
    extra = {
        "mobility/other.py": "from mobility import radio\n\n\ndef f(radio):\n"
        "    return radio.CHANNELS\n"
    }
    out = folded(extra)
    assert "CHANNELS = const(" in out["mobility/radio.py"]  # maybe not the module: kept


def test_a_test_that_sets_or_names_a_folded_constant_is_refused():
    with pytest.raises(ValueError, match=r"t.py line 2 sets mobility.radio.BAND"):
        folded(users={"t.py": "from mobility import radio\nradio.BAND = 3\n"})
    with pytest.raises(ValueError, match=r"reads mobility.radio.CHANNELS by its name"):
        folded(users={"t.py": "from mobility import radio\ngetattr(radio, 'CHANNELS')\n"})
    # a test's reads are folded, and it decides nothing of the firmware's folding
    got = folded(users={"t.py": "from mobility import radio\nx = radio.BAND\ny = z.BAND\n"})
    assert got["t.py"] == "from mobility import radio\nx = 2\ny = z.BAND\n"
    assert "_BAND = const(2)" in got["mobility/radio.py"]


def test_the_deployed_firmware_keeps_no_public_constant_of_its_modules(tmp_path):
    """The names a deployed module interns leave out its folded constants (a module global
    each, with its name, on a board)."""
    built = {it.path: it.data for it in deploy.plan(deploy.FIRMWARE_DIR, True)}
    names = set(mm.names(built["mobility/registration.mpy"]))
    assert not {"FA_POORLY_FORMED", "EXT_MH_AUTH", "TYPE_REQUEST"} & names
    assert not {"IF_BACKBONE", "SEND", "DELIVER"} & set(mm.names(built["driver.mpy"]))
    # the source deploy (a board that loads no .mpy) sends the files as they are
    source = {it.path: it.data for it in deploy.plan(deploy.FIRMWARE_DIR, False)}
    assert (
        source["mobility/actions.py"] == (deploy.FIRMWARE_DIR / "mobility/actions.py").read_bytes()
    )


def test_the_folded_firmware_passes_its_tests_on_micropython(tmp_path):
    """The firmware as a deploy folds it, and its MicroPython tests folded with it (as `roam
    test` sends them), run on the unix port: every test passes."""
    firmware = deploy.sources()
    tests = {
        "tests/%s/%s" % (d, p.name): p.read_text()
        for d in ("core", "firmware")
        for p in sorted((REPO / "tests" / d).glob("*.py"))
    }
    for rel, text in constfold.fold(firmware, tests).items():
        dst = tmp_path / ("firmware/" + rel if rel in firmware else rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(text)
    (tmp_path / "tests" / "lib").mkdir()
    for rel in ("tests/run_mpy.py", "tests/lib/unittest.py"):
        (tmp_path / rel).write_text((REPO / rel).read_text())
    done = subprocess.run(
        [MICROPYTHON, "-X", "heapsize=4M", "tests/run_mpy.py", "tests/core", "tests/firmware"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    last = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0 and last.endswith(" passed, 0 failed"), done.stdout[-3000:]
    assert int(last.split()[0]) >= 300

"""bench/module_memory32.py's readers of the firmware: the names a .mpy interns, the strings it
loads as objects, and the order its modules are imported in (the heap readings themselves run in
the bench)."""

from pathlib import Path

from bench import module_memory32 as mm
from hosttools import mpystrings
from hosttools.deploy import compile_mpy


def test_a_mpy_names_what_it_interns_and_not_the_static_qstrs(tmp_path: Path):
    src = tmp_path / "m.py"
    src.write_text(
        "class Zebrafinch:\n"
        "    def __init__(self):\n"
        "        self.wingspan_mm = 'a quite long string constant, not interned' * 2\n"
        "    def append(self, x):\n"  # append, self, x: static or local
        "        return len(x) + self.wingspan_mm.count('q')\n"
    )
    got = mpystrings.names(compile_mpy(src, "m.py"))
    # the source's name is the module's ("m", which importing it interns anyway), not the file's
    assert {"Zebrafinch", "wingspan_mm", "m"} <= set(got) and "m.py" not in got
    assert not {"append", "__init__", "len", "count"} & set(got)  # in the firmware's table


def test_a_mpy_names_the_strings_it_loads_as_objects(tmp_path: Path):
    """A literal of more than 10 characters is an object of the board's heap, one of at most 10 a
    name (free once interned): the strings() reader finds the objects, in tuples too."""
    src = tmp_path / "m.py"
    src.write_text(
        "def f(x):\n"
        "    if x:\n"
        "        raise ValueError('a sentence a board keeps in its heap', x)\n"
        "    return ('short', 'also a longer one', 3, b'bytes')\n"
    )
    got = mpystrings.strings(compile_mpy(src, "m.py"))
    assert "a sentence a board keeps in its heap" in got
    assert "also a longer one" in got
    # in a tuple even a short one is stored as a string (the loader makes it a name only when
    # the name exists already: measure() leaves out those the modules intern)
    assert "short" in got
    assert mm.string_bytes("a sentence a board keeps in its heap") == 16 + 48


def test_the_firmware_modules_come_after_what_they_import():
    order = mm.in_order(["mobility.agent", "mobility.region", "driver", "mobility.ticks"])
    assert sorted(order) == sorted(
        ["mobility.agent", "mobility.region", "driver", "mobility.ticks"]
    )
    assert order.index("mobility.ticks") < order.index("mobility.region")
    assert order.index("mobility.region") < order.index("mobility.agent")
    # a submodule's import imports its package; modules outside the firmware are not named
    assert "fieldlog" in mm.imports("driver") and "asyncio" not in mm.imports("driver")

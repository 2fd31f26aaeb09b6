"""bench/module_memory32.py's readers of the firmware: the names a .mpy interns, and the order
its modules are imported in (the heap readings themselves run in the bench)."""

from pathlib import Path

from bench import module_memory32 as mm
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
    got = mm.names(compile_mpy(src, "m.py"))
    # the source's name is the module's ("m", which importing it interns anyway), not the file's
    assert {"Zebrafinch", "wingspan_mm", "m"} <= set(got) and "m.py" not in got
    assert not {"append", "__init__", "len", "count"} & set(got)  # in the firmware's table


def test_the_firmware_modules_come_after_what_they_import():
    order = mm.in_order(["mobility.agent", "mobility.region", "driver", "mobility.ticks"])
    assert sorted(order) == sorted(
        ["mobility.agent", "mobility.region", "driver", "mobility.ticks"]
    )
    assert order.index("mobility.ticks") < order.index("mobility.region")
    assert order.index("mobility.region") < order.index("mobility.agent")
    # a submodule's import imports its package; modules outside the firmware are not named
    assert "fieldlog" in mm.imports("driver") and "asyncio" not in mm.imports("driver")

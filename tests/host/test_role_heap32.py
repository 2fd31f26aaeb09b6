"""The roles' heap at 32 bits, as bench/role_memory32.py reads it on the WebAssembly MicroPython
(a board's word), with the firmware as `roam deploy` sends it to a board without a romfs (a
stock image: every module's code in the heap): the whole board (the role at its worst, its
field log and driver) leaves at least 20 % of the chip's budget on every chip, but for an agent
on a plain ESP32 (docs/LAB.md "Heap"): there its code and worst-case state leave 20 % and the
whole board at least FLOOR. A change that makes a role's resident code or state
grow past that fails here, not on a board in the field."""

import shutil
import tempfile
from pathlib import Path

import pytest

from bench import role_memory32 as bench

NOT_YET = {("agent", "esp32")}  # issue 17: the whole board is 3.1 KB short of 20 % there
FLOOR = 0.17  # what such a board leaves at least (17.2 % in December 2026): no slide back


@pytest.fixture(scope="module")
def firmware():
    if (
        shutil.which("node") is None
        or not (Path(bench.REPO) / ".venv" / "npm" / "node_modules" / "@micropython").is_dir()
    ):
        pytest.skip("no 32-bit MicroPython (make venv installs it where npm is)")
    with tempfile.TemporaryDirectory() as tmp:
        fw = Path(tmp) / "fw"
        bench.build(fw)
        yield fw


@pytest.mark.parametrize("role", bench.ROLES)
def test_the_whole_board_leaves_a_fifth_of_the_budget(firmware, role):
    reading = bench.on32(firmware, role)
    board = reading["board_bytes"]
    assert board > reading["code_bytes"] + reading["data_bytes"]  # the field log and driver
    for chip, kb in bench.budgets().items():
        spare = 1 - board / (kb * 1024)
        if (role, chip) in NOT_YET:
            assert spare < 0.20, "%s fits %s now: take it out of NOT_YET" % (role, chip)
            assert spare >= FLOOR, "%s on %s: %.1f %% to spare" % (role, chip, 100 * spare)
            alone = 1 - (reading["code_bytes"] + reading["data_bytes"]) / (kb * 1024)
            assert alone >= 0.20, "%s on %s by code and state: %.1f %%" % (role, chip, 100 * alone)
            continue
        assert spare >= 0.20, "%s on %s: %.1f %% to spare (%d bytes)" % (
            role,
            chip,
            100 * spare,
            board,
        )

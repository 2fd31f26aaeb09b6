"""The roles' heap at 32 bits, as bench/role_memory32.py reads it on the WebAssembly MicroPython
(a board's word), with the firmware as `roam deploy` sends it to a board without a romfs (a
stock image: every module's code in the heap) and a board's asyncio in place of that port's own
(its size from boards/heap64.json: bench/role_memory32.py board_asyncio32): the whole board (the
role at its worst, its field log and driver) leaves at least 20 % of the chip's budget on every
chip, and so do its code and worst-case state alone. A change that makes a role's resident code
or state grow past that fails here, not on a board in the field."""

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from bench import role_memory32 as bench


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
    asyncio32 = json.loads(bench.CALIBRATION.read_text())["board_asyncio32"]
    reading = bench.on_board(bench.on32(firmware, role), asyncio32)
    board = reading["board_bytes"]
    alone = reading["code_bytes"] + reading["data_bytes"]
    assert board > alone  # the field log and driver
    for chip, kb in bench.budgets().items():
        budget = kb * 1024
        assert 1 - alone / budget >= 0.20, "%s on %s by code and state: %.1f %%" % (
            role,
            chip,
            100 * (1 - alone / budget),
        )
        assert 1 - board / budget >= 0.20, "%s on %s: %.1f %% to spare (%d bytes)" % (
            role,
            chip,
            100 * (1 - board / budget),
            board,
        )

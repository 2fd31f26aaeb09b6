"""`roam test` on a virtual board: the firmware tests run there and the summary line counts."""

import subprocess
import sys
from pathlib import Path

import pytest
from vbhelp import virtual_board

from hosttools import deploy, devtest
from hosttools.errors import RoamError

ROAM = str(Path(sys.executable).parent / "roam")


def test_firmware_tests_pass_on_a_virtual_board(tmp_path):
    """On the lab chip's calibrated heap (an S3's at 32 bits: docs/LAB.md "Heap"), with the
    firmware on the filesystem as a stock image has it: the tests go compiled, and need only
    their modules' heap (sent as source, the board's compiler ran out: it needed the heap
    doubled and 100 KiB more)."""
    with virtual_board(tmp_path / "root", romfs_kb=0) as vb:
        deploy.deploy_board(vb.pty, reset=False)
        done = subprocess.run(
            [ROAM, "test", "--port", vb.pty], capture_output=True, text=True, timeout=300
        )
        on_board = sorted(p.name for p in (tmp_path / "root" / devtest.REMOTE).rglob("*.*py"))
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    passed = int(last.split()[0])
    # (test_driver.py's tests skip: they need tests/core, `roam test --core`)
    driver_tests = (
        (devtest.TESTS_DIR / "firmware" / "test_driver.py").read_text().count("def test_")
    )
    assert last in (
        "%d passed, 0 failed" % passed,
        "%d passed, 0 failed, %d skipped" % (passed, driver_tests),
    )
    assert passed > 0
    n_local = sum(1 for _ in (devtest.TESTS_DIR / "firmware").glob("test_*.py"))
    assert n_local > 0
    assert on_board and all(n.endswith(".mpy") for n in on_board), on_board
    assert "test_update.mpy" in on_board and "run_mpy.mpy" in on_board


# a test module with one test, which passes
ONE_PASSING = (
    "import unittest\n\nclass T(unittest.TestCase):\n"
    "    def test_ok(self):\n        self.assertEqual(1, 1)\n"
)


def _test_tree(tmp_path, monkeypatch, firmware=None, runner=None):
    """A tests/ tree for `roam test` under tmp_path, made devtest's: the unittest stand-in, the
    runner (ours, or the text ``runner``) and ``firmware`` {file name: source}."""
    tests = tmp_path / "tests"
    (tests / "firmware").mkdir(parents=True)
    (tests / "lib").mkdir()
    (tests / "lib" / "unittest.py").write_bytes(
        (devtest.TESTS_DIR / "lib/unittest.py").read_bytes()
    )
    if runner is None:
        (tests / "run_mpy.py").write_bytes((devtest.TESTS_DIR / "run_mpy.py").read_bytes())
    else:
        (tests / "run_mpy.py").write_text(runner)
    for name, text in (firmware or {}).items():
        (tests / "firmware" / name).write_text(text)
    monkeypatch.setattr(devtest, "TESTS_DIR", tests)


def test_the_form_not_sent_goes(tmp_path, monkeypatch):
    """A board that took the tests as source, then as .mpy (or back): each test runs once, and
    only the form sent last is on the board."""
    _test_tree(
        tmp_path,
        monkeypatch,
        firmware={"test_one.py": ONE_PASSING},
    )
    remote = tmp_path / "root" / devtest.REMOTE / "firmware"
    with virtual_board(tmp_path / "root") as vb:
        for as_mpy in (False, True, False):
            monkeypatch.setattr(devtest, "loads_mpy", lambda t, port, m=as_mpy: m)
            passed, failed, _ = devtest.run_on_board(vb.pty)
            assert (passed, failed) == (1, 0)
            assert sorted(p.name for p in remote.iterdir()) == [
                "test_one.mpy" if as_mpy else "test_one.py"
            ]


def test_each_module_runs_in_a_fresh_interpreter(tmp_path, monkeypatch):
    """The board soft-resets before each test module: what one module left in the interpreter
    (here a name on the unittest module the runner imported; on a board, its interned names
    and heap fragments) is gone when the next one runs, and the counts add up over the
    modules, one summary line at the end."""
    leave = (
        "import unittest\n\nclass T(unittest.TestCase):\n"
        "    def test_leave(self):\n        unittest.LEFT_BEHIND = 1\n"
    )
    find = (
        "import unittest\n\nclass T(unittest.TestCase):\n"
        "    def test_nothing_left(self):\n"
        "        self.assertFalse(hasattr(unittest, 'LEFT_BEHIND'))\n"
    )
    _test_tree(tmp_path, monkeypatch, firmware={"test_a_leaves.py": leave, "test_b_finds.py": find})
    with virtual_board(tmp_path / "root") as vb:
        passed, failed, out = devtest.run_on_board(vb.pty)
    assert (passed, failed) == (2, 0), out
    assert [ln for ln in out.splitlines() if " passed, " in ln] == ["2 passed, 0 failed"]


def test_a_failing_test_fails_the_command(tmp_path, monkeypatch):
    _test_tree(
        tmp_path,
        monkeypatch,
        firmware={
            "test_bad.py": "import unittest\n\nclass T(unittest.TestCase):\n"
            "    def test_ok(self):\n        self.assertEqual(1, 1)\n"
            "    def test_bad(self):\n        self.assertEqual(1, 2)\n"
        },
    )
    with virtual_board(tmp_path / "root") as vb:
        passed, failed, out = devtest.run_on_board(vb.pty)
    assert (passed, failed) == (1, 1)
    assert "1 passed, 1 failed" in out


def test_a_keyword_that_matches_nothing_fails(tmp_path, monkeypatch):
    """`roam test -k nomatch`: nothing ran, which is said, and is not a success (exit 1)."""
    from click.testing import CliRunner

    from hosttools.cli import main

    _test_tree(
        tmp_path,
        monkeypatch,
        firmware={"test_one.py": ONE_PASSING},
    )
    with virtual_board(tmp_path / "root") as vb:
        r = CliRunner().invoke(main, ["test", "--port", vb.pty, "-k", "nomatch"])
        assert r.exit_code == 1, r.output
        assert r.stderr.splitlines()[-1] == "roam: error: no test ran: none matched -k 'nomatch'"
        r = CliRunner().invoke(main, ["test", "--port", vb.pty, "-k", "test_ok"])
        assert r.exit_code == 0, r.output
        assert r.stdout.strip().splitlines()[-1] == "1 passed, 0 failed"


def test_a_run_that_dies_says_why(tmp_path, monkeypatch):
    """Issue 18 item 7: a run the board ended with an error said "ended without a summary line
    (timeout 600s?)" after a second; now the error the board printed is in the message, and no
    timeout is blamed (a MemoryError: test_a_board_out_of_memory_says_so)."""
    _test_tree(
        tmp_path,
        monkeypatch,
        firmware={"test_one.py": ONE_PASSING},
        runner=(
            "def main(argv):\n    print('test_one ...')\n    raise ValueError('the runner broke')\n"
        ),
    )
    with virtual_board(tmp_path / "root") as vb:
        with pytest.raises(RoamError) as exc:
            devtest.run_on_board(vb.pty, timeout=60)
    msg = str(exc.value)
    assert "ended without a summary line: the board printed ValueError: the runner" in msg
    assert "timeout" not in msg, msg


def test_a_board_out_of_memory_says_so(tmp_path, monkeypatch):
    """The runner itself runs the heap out (here: a runner that keeps what it allocates, as a
    board too small for the test modules it loads): the MemoryError ends the run before its
    summary line, and `roam test` says the board ran out of memory, with the allocation that
    failed, instead of "ended without a summary line"."""
    _test_tree(
        tmp_path,
        monkeypatch,
        firmware={"test_one.py": ONE_PASSING},
        runner=(
            "def main(argv):\n    kept = []\n"
            "    while True:\n        kept.append(bytearray(1024))\n"
        ),
    )
    with virtual_board(tmp_path / "root") as vb:
        with pytest.raises(RoamError) as e:
            devtest.run_on_board(vb.pty, timeout=60)
    msg = str(e.value)
    assert "ran out of memory" in msg, msg
    assert "MemoryError: memory allocation failed" in msg
    assert "without a summary line" not in msg

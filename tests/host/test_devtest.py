"""`roam test` on a virtual board: the firmware tests run there and the summary line counts."""

import subprocess
import sys
from pathlib import Path

import pytest
from vbhelp import virtual_board

from hosttools import deploy, devtest, vboard
from hosttools.errors import RoamError

ROAM = str(Path(sys.executable).parent / "roam")


# `roam test` sends the test modules as source: the board compiles them, and a parse tree is
# all pointers, twice its 32-bit size at 64 bits, beyond the calibrated factor (1.35, measured
# on loaded .mpy code and data): the board gets the S3's budget doubled + the shims' share, +
# 100 KiB: the test modules' names take MicroPython's names table into its 2,560-entry part (one
# block of 28 KB at 64 bits, on a heap the compiler has fragmented; docs/LAB.md "Heap"). (+60
# was enough until test_driver.py: then importing test_update.py found no 2,560-byte block.)
COMPILING_HEAP_KB = 160 * 2 + vboard.SHIM_HEAP_KB + 100


def test_firmware_tests_pass_on_a_virtual_board(tmp_path):
    with virtual_board(tmp_path / "root", heap_kb=COMPILING_HEAP_KB) as vb:
        deploy.deploy_board(vb.pty, reset=False)
        done = subprocess.run(
            [ROAM, "test", "--port", vb.pty], capture_output=True, text=True, timeout=300
        )
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
        firmware={
            "test_one.py": "import unittest\n\nclass T(unittest.TestCase):\n"
            "    def test_ok(self):\n        self.assertEqual(1, 1)\n"
        },
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

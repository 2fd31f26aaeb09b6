"""tests/run_mpy.py and tests/lib/unittest.py, run on real MicroPython and on CPython.

Each test writes small test modules into a temporary directory, runs the runner on them and checks
the closing line, the exit status and what was printed. The runner is run three ways: MicroPython
with our tests/lib/unittest.py, CPython with its own unittest, and CPython with ours.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = TESTS_DIR.parent
RUNNER = TESTS_DIR / "run_mpy.py"
MICROPYTHON = REPO_DIR / ".venv" / "bin" / "micropython"

# CPython, but with tests/lib/unittest.py imported before the runner looks for `unittest`.
_OWN_UNITTEST_ON_CPYTHON = (
    "import sys; sys.path.insert(0, %r); import unittest; "
    "assert unittest.__file__.startswith(%r); sys.path.insert(0, %r); "
    "sys.argv = ['run_mpy.py'] + sys.argv[1:]; import run_mpy; "
    "sys.exit(run_mpy.main(sys.argv[1:]))"
) % (str(TESTS_DIR / "lib"), str(TESTS_DIR / "lib"), str(TESTS_DIR))

INTERPRETERS = {
    "micropython": [str(MICROPYTHON), str(RUNNER)],
    "cpython": [sys.executable, str(RUNNER)],
    "cpython-own-unittest": [sys.executable, "-c", _OWN_UNITTEST_ON_CPYTHON],
}


@pytest.fixture(params=sorted(INTERPRETERS))
def run(request):
    command = INTERPRETERS[request.param]
    if request.param == "micropython":
        assert MICROPYTHON.exists(), "MicroPython is not installed: run `make venv`"

    def run_runner(*args):
        done = subprocess.run(
            command + [str(a) for a in args], capture_output=True, text=True, timeout=120
        )
        return done.returncode, done.stdout + done.stderr

    return run_runner


def write(directory, name, text):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def last_line(output):
    return output.rstrip("\n").splitlines()[-1]


MIXED = """
import unittest

class Mixed(unittest.TestCase):
    log = []

    @classmethod
    def setUpClass(cls):
        cls.shared = 5

    def setUp(self):
        self.value = 1

    def tearDown(self):
        Mixed.log.append("down")

    def test_pass(self):
        self.assertEqual(self.value + self.shared, 6)

    def test_fail(self):
        self.assertEqual(1, 2)

    def test_error(self):
        raise RuntimeError("boom")

    def test_skip(self):
        self.skipTest("not today")

    @unittest.skip("decorated")
    def test_skip_decorated(self):
        raise RuntimeError("must not run")

    def test_teardown_ran_after_each(self):
        # Sorted order: fail, pass, skip, skip_decorated ran before this one (error too).
        self.assertGreaterEqual(len(Mixed.log), 3)


@unittest.skip("whole class")
class SkippedClass(unittest.TestCase):
    def test_one(self):
        raise RuntimeError("must not run")

    def test_two(self):
        raise RuntimeError("must not run")


class NotATest:
    def test_ignored(self):
        raise RuntimeError("not a TestCase: must not run")
"""


def test_counts_and_exit_status(run, tmp_path):
    write(tmp_path, "test_mixed.py", MIXED)
    status, output = run(tmp_path)
    assert last_line(output) == "2 passed, 2 failed, 4 skipped", output
    assert status == 1
    assert "FAIL: test_mixed.Mixed.test_fail" in output
    assert "ERROR: test_mixed.Mixed.test_error" in output
    assert "boom" in output and "Traceback" in output
    assert "must not run" not in output


def test_all_passing_exits_zero_without_skip_count(run, tmp_path):
    # Only setUpClass, setUp, tearDown and test_pass of MIXED: one file given by name.
    write(tmp_path, "test_ok.py", MIXED.split("    def test_fail")[0])
    status, output = run(tmp_path / "test_ok.py")
    assert (status, last_line(output)) == (0, "1 passed, 0 failed"), output
    write(
        tmp_path / "plain",
        "test_plain.py",
        """
        import unittest

        class Plain(unittest.TestCase):
            def test_a(self):
                self.assertTrue(True)
        """,
    )
    status, output = run(tmp_path / "plain")
    assert (status, last_line(output)) == (0, "1 passed, 0 failed"), output


def test_import_failure_counts_as_failure(run, tmp_path):
    write(tmp_path, "test_broken.py", "import no_such_module_anywhere\n")
    write(
        tmp_path,
        "test_fine.py",
        """
        import unittest

        class Fine(unittest.TestCase):
            def test_a(self):
                pass
        """,
    )
    status, output = run(tmp_path)
    assert status == 1
    assert last_line(output) == "1 passed, 1 failed", output
    assert "import of" in output and "test_broken.py" in output


def test_helpers_next_to_the_test_and_same_names_in_two_dirs(run, tmp_path):
    for sub, value in (("a", 1), ("b", 2)):
        write(tmp_path / sub, "shared_helper.py", "VALUE = %d\n" % value)
        write(
            tmp_path / sub,
            "test_same.py",
            """
            import unittest
            import shared_helper

            class Same(unittest.TestCase):
                def test_value(self):
                    self.assertEqual(shared_helper.VALUE, %d)
            """
            % value,
        )
    status, output = run(tmp_path / "a", tmp_path / "b")
    # The second directory's test_same must be its own module, not the first one again, and
    # so is its helper of the same name: what a file imports goes with it (a board's heap holds
    # one file's modules at a time).
    assert last_line(output) == "2 passed, 0 failed", output
    status, output = run(tmp_path / "b")
    assert (status, last_line(output)) == (0, "1 passed, 0 failed"), output


def test_firmware_is_importable(run, tmp_path):
    # firmware/ is on the path as on a board: the protocol core's errors module is always there.
    write(
        tmp_path,
        "test_fw.py",
        """
        import unittest

        class Firmware(unittest.TestCase):
            def test_import(self):
                import mobility
                self.assertIsNotNone(mobility)
        """,
    )
    status, output = run(tmp_path)
    assert (status, last_line(output)) == (0, "1 passed, 0 failed"), output


def test_set_up_class_failure_is_a_failure(run, tmp_path):
    write(
        tmp_path,
        "test_cls.py",
        """
        import unittest

        class Broken(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                raise ValueError("no fixture")

            def test_a(self):
                pass
        """,
    )
    status, output = run(tmp_path)
    assert (status, last_line(output)) == (1, "0 passed, 1 failed"), output
    assert "setUpClass" in output and "no fixture" in output


def test_keyword_filter_and_verbose(run, tmp_path):
    write(tmp_path, "test_mixed.py", MIXED)
    status, output = run("-v", "-k", "test_pass", tmp_path)
    assert (status, last_line(output)) == (0, "1 passed, 0 failed"), output
    assert "test_mixed.Mixed.test_pass ... ok" in output


def test_missing_path_is_a_usage_error(run, tmp_path):
    status, output = run(tmp_path / "nope")
    assert status == 2
    assert "no such file or directory" in output


# Each assertion once passing and once failing: the failing half must all be reported.
ASSERTIONS = [
    ("assertEqual(1, 1)", "assertEqual(1, 2)"),
    ("assertNotEqual(1, 2)", "assertNotEqual(1, 1)"),
    ("assertTrue(1)", "assertTrue(0)"),
    ("assertFalse(0)", "assertFalse(1)"),
    ("assertIs(None, None)", "assertIs(1, None)"),
    ("assertIsNot(1, None)", "assertIsNot(None, None)"),
    ("assertIsNone(None)", "assertIsNone(0)"),
    ("assertIsNotNone(0)", "assertIsNotNone(None)"),
    ("assertIn(1, [1])", "assertIn(2, [1])"),
    ("assertNotIn(2, [1])", "assertNotIn(1, [1])"),
    ("assertLess(1, 2)", "assertLess(2, 2)"),
    ("assertLessEqual(2, 2)", "assertLessEqual(3, 2)"),
    ("assertGreater(3, 2)", "assertGreater(2, 2)"),
    ("assertGreaterEqual(2, 2)", "assertGreaterEqual(1, 2)"),
    ("assertAlmostEqual(1.0, 1.00000001)", "assertAlmostEqual(1.0, 1.1)"),
    ("assertAlmostEqual(1.0, 1.05, delta=0.1)", "assertAlmostEqual(1.0, 1.2, delta=0.1)"),
    ("assertIsInstance(1, int)", "assertIsInstance('1', int)"),
    ("assertRaises(ValueError, int, 'x')", "assertRaises(ValueError, int, '1')"),
    ("assertCountEqual([1, 2, 2], [2, 1, 2])", "assertCountEqual([1, 2], [2, 2])"),
]


def _assertion_module():
    lines = ["import unittest", "", "class Assertions(unittest.TestCase):"]
    for i, (good, bad) in enumerate(ASSERTIONS):
        lines += ["    def test_%02d_good(self):" % i, "        self." + good]
        lines += ["    def test_%02d_bad(self):" % i, "        self." + bad]
    lines += [
        "    def test_raises_context(self):",
        "        with self.assertRaises(KeyError) as caught:",
        "            {}['a']",
        "        self.assertIsInstance(caught.exception, KeyError)",
        "        with self.assertRaises((KeyError, IndexError)):",
        "            [][1]",
        "    def test_raises_context_not_raised(self):",
        "        with self.assertRaises(ValueError):",
        "            pass",
        "    def test_raises_context_other_exception_propagates(self):",
        "        with self.assertRaises(ValueError):",
        "            raise KeyError('other')",
        "    def test_fail(self):",
        "        self.fail('explicit')",
    ]
    return "\n".join(lines) + "\n"


def test_assertions(run, tmp_path):
    write(tmp_path, "test_assertions.py", _assertion_module())
    status, output = run(tmp_path)
    passed, failed = len(ASSERTIONS) + 1, len(ASSERTIONS) + 3
    assert last_line(output) == "%d passed, %d failed" % (passed, failed), output
    for i in range(len(ASSERTIONS)):
        assert "test_assertions.Assertions.test_%02d_bad" % i in output
        assert "test_%02d_good" % i not in output
    assert "ERROR: test_assertions.Assertions.test_raises_context_other_exception" in output
    assert status == 1

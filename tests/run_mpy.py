"""Run the unittest-style tests on MicroPython (and, unchanged, on CPython).

    .venv/bin/micropython tests/run_mpy.py tests/core tests/firmware
    .venv/bin/micropython tests/run_mpy.py tests/core/test_ipv4.py -k checksum -v
    python3 tests/run_mpy.py tests/core

Arguments are directories (searched recursively for ``test_*.py`` and ``test_*.mpy``) or single
files.
``-k TEXT`` keeps only tests whose ``module.Class.method`` contains TEXT; ``-v`` prints every test.

The last line of output is always ``N passed, N failed`` (``, N skipped`` appended when some were
skipped): CI reads that line. The exit status is 1 when a test fails or a module does not import,
2 on a usage error.

This file uses only what the MicroPython unix port has: no os.path, no argparse, no traceback.
"""

import gc
import os
import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"
TEST_PREFIX = "test"


# --- paths (MicroPython has no os.path) ---


def _join(a, b):
    if not a or b.startswith("/"):
        return b
    return a.rstrip("/") + "/" + b


def _dirname(path):
    i = path.rfind("/")
    if i < 0:
        return ""
    if i == 0:
        return "/"
    return path[:i]


def _basename(path):
    return path[path.rfind("/") + 1 :]


def _absolute(path):
    if path.startswith("/"):
        return path
    return _join(os.getcwd(), path)


def _mode(path):
    """The file type and mode bits of ``path``, or None when there is nothing there."""
    try:
        return os.stat(path)[0]
    except OSError:
        return None


def _is_dir(path):
    mode = _mode(path)
    return mode is not None and (mode & 0o170000) == 0o040000


# Absolute, so running from any directory works (MicroPython sets __file__ to the path as given).
TESTS_DIR = _dirname(_absolute(__file__))
REPO_DIR = _dirname(TESTS_DIR)
FIRMWARE_DIR = _join(REPO_DIR, "firmware")
LIB_DIR = _join(TESTS_DIR, "lib")


def _setup_path():
    if FIRMWARE_DIR not in sys.path:
        sys.path.insert(0, FIRMWARE_DIR)
    try:
        import unittest  # noqa: F401  (the real one, when the interpreter has it)
    except ImportError:
        sys.path.append(LIB_DIR)
    try:
        from mobility import reprs  # the messages' reprs, for failure messages
    except ImportError:
        return  # (a firmware set without them)
    reprs.install()


def _print_exception(exc):
    if IS_MICROPYTHON:
        sys.print_exception(exc)
    else:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stdout)


# --- discovery ---


def find_test_files(path):
    """Return the test files under ``path`` (a directory, recursively, or one file), sorted."""
    if not _is_dir(path):
        return [path]
    found = []
    for name in sorted(os.listdir(path)):
        full = _join(path, name)
        if name.startswith(".") or name == "__pycache__" or name == "lib":
            continue
        if _is_dir(full):
            found.extend(find_test_files(full))
        elif name.startswith("test_") and (name.endswith(".py") or name.endswith(".mpy")):
            found.append(full)  # .mpy: `roam test` sends compiled tests to a board
    return found


def find_cases(module, unittest):
    """The TestCase subclasses reachable from ``module``'s namespace, in name order."""
    cases = []
    for name in sorted(dir(module)):
        obj = getattr(module, name)
        if isinstance(obj, type) and issubclass(obj, unittest.TestCase):
            if obj is not unittest.TestCase and obj not in cases:
                cases.append(obj)
    return cases


def find_methods(cls):
    names = []
    for name in sorted(dir(cls)):
        if name.startswith(TEST_PREFIX) and callable(getattr(cls, name)):
            names.append(name)
    return names


# --- running ---


class Result:
    def __init__(self, verbose, keyword):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.verbose = verbose
        self.keyword = keyword

    def report_failure(self, kind, what, exc):
        self.failed += 1
        print("%s: %s" % (kind, what))
        _print_exception(exc)

    def summary(self):
        line = "%d passed, %d failed" % (self.passed, self.failed)
        if self.skipped:
            line += ", %d skipped" % self.skipped
        return line


def run_test(cls, method, label, unittest, result):
    case = cls(method)
    outcome = "ok"
    try:
        case.setUp()
        try:
            getattr(case, method)()
        finally:
            # tearDown and cleanups run even when the test failed; a failure there counts too.
            try:
                case.tearDown()
            finally:
                case.doCleanups()
        result.passed += 1
    except unittest.SkipTest as exc:
        result.skipped += 1
        outcome = "skipped: %s" % exc
    except AssertionError as exc:
        result.report_failure("FAIL", label, exc)
        outcome = "FAIL"
    except Exception as exc:
        result.report_failure("ERROR", label, exc)
        outcome = "ERROR"
    if result.verbose:
        print("%s ... %s" % (label, outcome))


def run_class(cls, module_name, unittest, result):
    prefix = "%s.%s." % (module_name, cls.__name__)
    methods = [m for m in find_methods(cls) if not result.keyword or result.keyword in prefix + m]
    if not methods:
        return
    if getattr(cls, "__unittest_skip__", False):
        result.skipped += len(methods)
        if result.verbose:
            why = getattr(cls, "__unittest_skip_why__", "")
            print("%s* ... skipped: %s" % (prefix, why))
        return
    set_up_class = getattr(cls, "setUpClass", None)
    if set_up_class is not None:
        try:
            set_up_class()
        except unittest.SkipTest as exc:
            result.skipped += len(methods)
            if result.verbose:
                print("%s* ... skipped: %s" % (prefix, exc))
            return
        except Exception as exc:
            result.report_failure("ERROR", prefix + "setUpClass", exc)
            return
    for method in methods:
        run_test(cls, method, prefix + method, unittest, result)
    tear_down_class = getattr(cls, "tearDownClass", None)
    if tear_down_class is not None:
        try:
            tear_down_class()
        except Exception as exc:
            result.report_failure("ERROR", prefix + "tearDownClass", exc)


def run_file(path, unittest, result):
    directory = _dirname(_absolute(path))
    name = _basename(path)
    name = name[: name.rfind(".")]
    # The test's own directory first, so it can import helper modules next to it; a module of the
    # same name imported from another directory must not be reused.
    sys.path.insert(0, directory)
    sys.modules.pop(name, None)
    # what the file loads goes with it: on a board's heap the files run one after another,
    # each with the modules it imports (all of them at once do not fit)
    loaded = set(sys.modules)
    try:
        try:
            module = __import__(name)
        except unittest.SkipTest as exc:
            result.skipped += 1
            print("SKIP module: %s (%s)" % (path, exc))
            return
        except Exception as exc:
            result.report_failure("ERROR", "import of %s" % path, exc)
            return
        for cls in find_cases(module, unittest):
            run_class(cls, name, unittest, result)
    finally:
        sys.path.remove(directory)
        sys.modules.pop(name, None)
        for m in [m for m in sys.modules if m not in loaded]:
            sys.modules.pop(m)
        gc.collect()


def main(argv):
    verbose = False
    keyword = None
    paths = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-v":
            verbose = True
        elif arg == "-k":
            i += 1
            if i >= len(argv):
                print("run_mpy: -k needs a value")
                return 2
            keyword = argv[i]
        elif arg in ("-h", "--help"):
            print(__doc__)
            return 0
        elif arg.startswith("-"):
            print("run_mpy: unknown option %s" % arg)
            return 2
        else:
            paths.append(arg)
        i += 1
    if not paths:
        print("usage: run_mpy.py [-v] [-k TEXT] DIR_OR_FILE...")
        return 2
    for path in paths:
        if _mode(path) is None:
            print("run_mpy: no such file or directory: %s" % path)
            return 2

    _setup_path()
    import unittest

    result = Result(verbose, keyword)
    for path in paths:
        for test_file in find_test_files(path):
            run_file(test_file, unittest, result)
    print(result.summary())
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

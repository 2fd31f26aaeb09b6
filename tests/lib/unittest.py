"""A minimal unittest-compatible module for MicroPython.

MicroPython ships no ``unittest``; micropython-lib's can be installed with ``mip`` on a board with
internet, but not on the host's unix port here. ``tests/run_mpy.py`` puts this directory on
``sys.path`` only when ``import unittest`` fails, so the real module wins wherever it exists.

It covers what the project's shared tests use: ``TestCase`` with ``setUp``/``tearDown``,
``setUpClass``/``tearDownClass``, ``addCleanup``, ``skipTest``, the ``skip``, ``skipIf`` and
``skipUnless`` decorators, and the common assertions (``assertRaises`` also as a context
manager).
The runner itself lives in ``tests/run_mpy.py``; ``main()`` here is a small convenience for
running a single test file directly.

MicroPython functions cannot carry attributes, so a skipped test method is replaced by a wrapper
that raises ``SkipTest``; a skipped class gets ``__unittest_skip__`` like CPython's.
"""


class SkipTest(Exception):
    """Raised to skip the running test; the message is the reason."""


class _RaisesContext:
    # Returned by assertRaises(exc) without a callable; ``exception`` holds the caught instance.
    def __init__(self, expected, msg=None):
        self.expected = expected
        self.msg = msg
        self.exception = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, tb):
        name = getattr(self.expected, "__name__", str(self.expected))
        if exc_type is None:
            raise AssertionError(self.msg or "%s not raised" % name)
        if not issubclass(exc_type, self.expected):
            return False  # let an unexpected exception propagate with its own traceback
        self.exception = exc_value
        return True


def _repr(value, limit=300):
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


class TestCase:
    """Base class of a test case; the runner calls each ``test_*`` method on a fresh instance."""

    def __init__(self, method_name="runTest"):
        self._testMethodName = method_name
        self._cleanups = []

    def __str__(self):
        return "%s (%s.%s)" % (self._testMethodName, type(self).__module__, type(self).__name__)

    def id(self):
        return "%s.%s.%s" % (type(self).__module__, type(self).__name__, self._testMethodName)

    def setUp(self):
        pass

    def tearDown(self):
        pass

    def addCleanup(self, function, *args, **kwargs):
        self._cleanups.append((function, args, kwargs))

    def doCleanups(self):
        # Last registered, first run, like CPython.
        while self._cleanups:
            function, args, kwargs = self._cleanups.pop()
            function(*args, **kwargs)

    def skipTest(self, reason):
        raise SkipTest(reason)

    def fail(self, msg=None):
        raise AssertionError(msg or "failed")

    def _fail(self, default, msg):
        if msg:
            default = default + " : " + str(msg)
        raise AssertionError(default)

    def assertEqual(self, first, second, msg=None):
        if not first == second:
            self._fail("%s != %s" % (_repr(first), _repr(second)), msg)

    assertListEqual = assertEqual
    assertTupleEqual = assertEqual
    assertDictEqual = assertEqual
    assertSetEqual = assertEqual
    assertSequenceEqual = assertEqual

    def assertNotEqual(self, first, second, msg=None):
        if not first != second:
            self._fail("%s == %s" % (_repr(first), _repr(second)), msg)

    def assertTrue(self, expr, msg=None):
        if not expr:
            self._fail("%s is not true" % _repr(expr), msg)

    def assertFalse(self, expr, msg=None):
        if expr:
            self._fail("%s is not false" % _repr(expr), msg)

    def assertIs(self, first, second, msg=None):
        if first is not second:
            self._fail("%s is not %s" % (_repr(first), _repr(second)), msg)

    def assertIsNot(self, first, second, msg=None):
        if first is second:
            self._fail("unexpectedly identical: %s" % _repr(first), msg)

    def assertIsNone(self, obj, msg=None):
        if obj is not None:
            self._fail("%s is not None" % _repr(obj), msg)

    def assertIsNotNone(self, obj, msg=None):
        if obj is None:
            self._fail("unexpectedly None", msg)

    def assertIn(self, member, container, msg=None):
        if member not in container:
            self._fail("%s not found in %s" % (_repr(member), _repr(container)), msg)

    def assertNotIn(self, member, container, msg=None):
        if member in container:
            self._fail("%s unexpectedly found in %s" % (_repr(member), _repr(container)), msg)

    def assertIsInstance(self, obj, cls, msg=None):
        if not isinstance(obj, cls):
            self._fail("%s is not an instance of %s" % (_repr(obj), _repr(cls)), msg)

    def assertNotIsInstance(self, obj, cls, msg=None):
        if isinstance(obj, cls):
            self._fail("%s is an instance of %s" % (_repr(obj), _repr(cls)), msg)

    def assertLess(self, a, b, msg=None):
        if not a < b:
            self._fail("%s not less than %s" % (_repr(a), _repr(b)), msg)

    def assertLessEqual(self, a, b, msg=None):
        if not a <= b:
            self._fail("%s not less than or equal to %s" % (_repr(a), _repr(b)), msg)

    def assertGreater(self, a, b, msg=None):
        if not a > b:
            self._fail("%s not greater than %s" % (_repr(a), _repr(b)), msg)

    def assertGreaterEqual(self, a, b, msg=None):
        if not a >= b:
            self._fail("%s not greater than or equal to %s" % (_repr(a), _repr(b)), msg)

    def assertAlmostEqual(self, first, second, places=None, msg=None, delta=None):
        if first == second:
            return
        if delta is not None and places is not None:
            raise TypeError("specify delta or places, not both")
        diff = abs(first - second)
        if delta is not None:
            if diff <= delta:
                return
            self._fail("%s != %s within %s delta" % (_repr(first), _repr(second), delta), msg)
        if places is None:
            places = 7
        if round(diff, places) == 0:
            return
        self._fail("%s != %s within %d places" % (_repr(first), _repr(second), places), msg)

    def assertNotAlmostEqual(self, first, second, places=None, msg=None, delta=None):
        if delta is not None:
            if first != second and abs(first - second) > delta:
                return
            self._fail("%s == %s within %s delta" % (_repr(first), _repr(second), delta), msg)
        if places is None:
            places = 7
        if first != second and round(abs(first - second), places) != 0:
            return
        self._fail("%s == %s within %d places" % (_repr(first), _repr(second), places), msg)

    def assertCountEqual(self, first, second, msg=None):
        # Same elements with the same multiplicity, in any order; works for unhashable items.
        rest = list(second)
        for item in first:
            for i in range(len(rest)):
                if rest[i] == item:
                    del rest[i]
                    break
            else:
                self._fail("element counts differ: %s vs %s" % (_repr(first), _repr(second)), msg)
        if rest:
            self._fail("element counts differ: %s vs %s" % (_repr(first), _repr(second)), msg)

    def assertRaises(self, expected, *args, **kwargs):
        if not args:
            return _RaisesContext(expected, kwargs.get("msg"))
        function = args[0]
        with _RaisesContext(expected):
            function(*args[1:], **kwargs)
        return None


def skip(reason):
    """Skip a test method or a whole TestCase class."""

    def decorator(item):
        if isinstance(item, type):
            item.__unittest_skip__ = True
            item.__unittest_skip_why__ = reason
            return item

        def skipped(*args, **kwargs):
            raise SkipTest(reason)

        return skipped

    return decorator


def _keep(item):
    return item


def skipIf(condition, reason):
    return skip(reason) if condition else _keep


def skipUnless(condition, reason):
    return _keep if condition else skip(reason)


def expectedFailure(function):
    # The test passes only if its body fails.
    def expected(*args, **kwargs):
        try:
            function(*args, **kwargs)
        except AssertionError:
            return
        raise AssertionError("unexpected success")

    return expected


def main(module="__main__"):
    """Run the TestCases of ``module`` (the ``__main__`` module by default) and exit 1 on failure.

    The project's runner is ``tests/run_mpy.py``; this exists so that a test file ending with
    ``unittest.main()`` also runs on its own.
    """
    import sys

    if isinstance(module, str):
        module = sys.modules[module]
    passed = failed = skipped = 0
    for name in sorted(dir(module)):
        cls = getattr(module, name)
        if not (isinstance(cls, type) and issubclass(cls, TestCase) and cls is not TestCase):
            continue
        for method in sorted(dir(cls)):
            if not method.startswith("test"):
                continue
            case = cls(method)
            try:
                case.setUp()
                try:
                    getattr(case, method)()
                finally:
                    case.tearDown()
                    case.doCleanups()
                passed += 1
            except SkipTest:
                skipped += 1
            except Exception as exc:
                failed += 1
                print("FAIL: %s" % case)
                sys.print_exception(exc)
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    sys.exit(1 if failed else 0)

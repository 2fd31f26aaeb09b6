"""``const`` for the firmware's modules, on a board and on CPython alike.

MicroPython's compiler folds ``NAME = const(value)`` by the name ``const`` whatever module it
came from (and drops ``_NAME`` from the globals); on CPython, where the core runs unchanged (the
simulator, the tests), the fallback returns the value. One place for the fallback instead of a
copy at the top of every module.
"""

try:
    from micropython import const
except ImportError:

    def const(x):  # type: ignore[misc]  # same behaviour as MicroPython's const
        return x


__all__ = ["const"]

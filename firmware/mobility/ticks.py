"""Wrap-safe millisecond arithmetic, the same domain as a board's ``time.ticks_ms``.

Times are integers modulo PERIOD (2**30, what MicroPython's ticks_ms uses on every port), so they
stay small ints on a 32-bit board. Never compare two times with ``<``: use ``diff``.
"""

PERIOD = 1 << 30
MASK = PERIOD - 1
HALF = PERIOD >> 1


def add(t, ms):
    """The time ``ms`` ms after ``t`` (``ms`` may be negative), wrapped into [0, PERIOD)."""
    return (t + ms) & MASK


def diff(a, b):
    """``a - b`` in milliseconds, signed, wrap-safe (like ``time.ticks_diff``).

    Correct while the true distance is below PERIOD / 2 (about 6.2 days).
    """
    # (a - b) stays inside the small-int range of a 32-bit board: no allocation.
    d = (a - b) & MASK
    if d >= HALF:
        d -= PERIOD
    return d

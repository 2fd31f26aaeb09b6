"""A bound on the answers an outsider can trigger (docs/CORE.md "Security rules").

``RateLimit.allow(now, key)``: at most one answer per ``key`` per ``gap_ms`` and at most
``burst`` answers per ``window_ms`` in all. The per-key times are held for at most ``size``
keys: when the table is full, entries older than the gap make room; when none is that old the
new key gets no answer (a flood of new keys costs the genuine ones at most one gap). Nothing is
allocated once the table is full; ticks wrap safely (an entry whose age no longer compares is
dropped).
"""

from mobility.compat import const
from mobility.ticks import diff

DEFAULT_SIZE = const(32)


class RateLimit:
    def __init__(self, gap_ms, burst, window_ms, size=DEFAULT_SIZE):
        self.gap_ms = gap_ms
        self.burst = burst
        self.window_ms = window_ms
        self.size = size
        self._last = {}  # key -> when it was last answered (ticks)
        self._win_at = None  # start of the current window (ticks)
        self._n = 0  # answers in it

    def would(self, now, key=None):
        """True when allow() would say yes (no state changes: a check before the costly work)."""
        if key is not None:
            last = self._last.get(key)
            if last is not None and 0 <= diff(now, last) < self.gap_ms:
                return False
        w = self._win_at
        return w is None or not 0 <= diff(now, w) < self.window_ms or self._n < self.burst

    def allow(self, now, key=None):
        """True (and counted) when an answer for ``key`` may go now."""
        if not self.would(now, key):
            return False
        w = self._win_at
        if w is None or not 0 <= diff(now, w) < self.window_ms:
            self._win_at = now
            self._n = 0
        if key is not None:
            t = self._last
            if key not in t and len(t) >= self.size:
                self._purge(now)
                if len(t) >= self.size:
                    return False
            t[key] = now
        self._n += 1
        return True

    def _purge(self, now):
        t = self._last
        old = None
        for k in t:
            d = diff(now, t[k])
            if not 0 <= d < self.gap_ms:
                if old is None:
                    old = []
                old.append(k)
        if old is not None:
            for k in old:
                del t[k]

    def __len__(self):
        return len(self._last)

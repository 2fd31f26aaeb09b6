"""Discrete-event engine with virtual time.

Time is an integer number of microseconds since the start of the run (frames last a few
milliseconds, so milliseconds would be too coarse for contention). Events are kept in a heap
ordered by (time, insertion number): two events at the same time run in the order they were
scheduled, which together with a seeded generator makes every run reproducible.
"""

import heapq


class Engine:
    def __init__(self):
        self.now = 0  # microseconds
        self._heap = []
        self._seq = 0
        self.events_run = 0
        self._next_report = 0

    def at(self, t_us, fn, *args):
        """Run fn(*args) at virtual time t_us (never earlier than now)."""
        if t_us < self.now:
            t_us = self.now
        self._seq += 1
        heapq.heappush(self._heap, (t_us, self._seq, fn, args))

    def after(self, delay_us, fn, *args):
        self.at(self.now + delay_us, fn, *args)

    def run_to(self, until_us, progress=None, progress_every_us=1000000):
        """Run every event up to and including until_us and stop there (now = until_us);
        called window by window, it reports progress once per `progress_every_us` of virtual
        time across calls."""
        heap = self._heap
        pop = heapq.heappop
        n = 0
        while heap and heap[0][0] <= until_us:
            t, _seq, fn, args = pop(heap)
            self.now = t
            fn(*args)
            n += 1
        self.now = until_us
        self.events_run += n
        if progress is not None and until_us >= self._next_report:
            progress(until_us)
            self._next_report = until_us + progress_every_us

    def run(self, until_us, progress=None, progress_every_us=1000000):
        """Run every event up to and including until_us; progress(now) is called once per
        `progress_every_us` of virtual time."""
        heap = self._heap
        pop = heapq.heappop
        next_report = self.now + progress_every_us
        n = 0
        while heap and heap[0][0] <= until_us:
            t, _seq, fn, args = pop(heap)
            self.now = t
            fn(*args)
            n += 1
            if progress is not None and t >= next_report:
                progress(t)
                next_report = t + progress_every_us
        self.now = until_us
        self.events_run += n
        if progress is not None:
            progress(until_us)

    def pending(self):
        return len(self._heap)

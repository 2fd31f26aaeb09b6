"""Structured log lines: one compact JSON object per event, on the console, in the board's own
log on flash (fieldlog/store.py), from where the live stream (fieldlog/stream.py) reads it
while the board can reach the collector.

Every line is ``{"t": <ticks ms>, "n": <node id>, "b": <boot>, "s": <seq>, "ev": <event>,
...fields}``: ``b`` is the board's boot counter (config.next_epoch) and ``s`` counts the lines of
this boot from 0, so any collector merges copies of a board's log (console, stream, flash)
without duplicates and names every gap. The host (`roam logs`) picks log lines out of a mixed
console (REPL text, tracebacks) by their ``{"t":`` start.
"""

import json
import sys

try:
    import time

    _ticks = time.ticks_ms
except AttributeError:  # CPython
    import time

    def _ticks():
        return int(time.monotonic() * 1000) & ((1 << 30) - 1)


RESERVED = ("t", "n", "b", "s", "ev")
SEPARATORS = (",", ":")


class LogSink:
    def __init__(self, node_id=0, clock=_ticks, out=None, boot=0):
        self.node_id = node_id
        self.clock = clock
        self.out = out or sys.stdout
        self.boot = boot
        self.seq = 0  # the next line's sequence number in this boot
        self.store = None  # fieldlog.store.LogStore: every line on flash, the stream's source
        self.wake = None  # an asyncio.Event: the stream's task waits on it while it has nothing
        self.lines = 0

    def line(self, name, fields=None, t=None):
        # Built by hand so that the head keys come first on MicroPython too (its dicts keep no
        # order): a reader can pick log lines out of a console by their '{"t":' start.
        head = '{"t":%d,"n":%d,"b":%d,"s":%d,"ev":%s' % (
            self.clock() if t is None else t,
            self.node_id,
            self.boot,
            self.seq,
            json.dumps(name),
        )
        if not fields:
            return head + "}"
        rest = {}
        for k in fields:
            v = fields[k]
            if isinstance(v, (bytes, bytearray, memoryview)):
                v = bytes(v).hex()
            if k in RESERVED:
                k = k + "_"  # the head's keys are reserved: a field never overwrites them
            rest[k] = v
        # compact: every byte of a line is flash and airtime
        return head + "," + json.dumps(rest, separators=SEPARATORS)[1:]

    def event(self, name, fields=None, t=None):
        if t is None:
            t = self.clock()
        text = self.line(name, fields, t)
        self.out.write(text + "\n")
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        self.lines += 1
        if self.store is not None:
            self.store.append(text.encode())
            if self.wake is not None:
                self.wake.set()
        return text

    def close(self):
        """Write what waits in RAM to flash (before a reset or at the REPL)."""
        if self.store is not None:
            self.store.flush()

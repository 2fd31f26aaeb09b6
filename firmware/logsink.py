"""Structured log lines: one compact JSON object per event on the console, optionally copied to
a UDP log sink.

Every line is ``{"t": <board ticks ms>, "n": <node id>, "ev": <event>, ...fields}``, so the host
(`roam logs`) can parse a mixed console (REPL text, tracebacks) by keeping lines that start with
``{"t":``.
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


class LogSink:
    def __init__(self, node_id=0, clock=_ticks, out=None, udp=None):
        self.node_id = node_id
        self.clock = clock
        self.out = out or sys.stdout
        self.udp = udp  # (socket, address) or None
        self.lines = 0

    def line(self, name, fields=None, t=None):
        # Built by hand so that "t", "n", "ev" come first on MicroPython too (its dicts keep
        # no order): a reader can pick log lines out of a console by their '{"t":' start.
        head = '{"t":%d,"n":%d,"ev":%s' % (
            self.clock() if t is None else t,
            self.node_id,
            json.dumps(name),
        )
        if not fields:
            return head + "}"
        rest = {}
        for k in fields:
            v = fields[k]
            if isinstance(v, (bytes, bytearray, memoryview)):
                v = bytes(v).hex()
            if k == "t" or k == "n" or k == "ev":
                k = k + "_"  # the head's keys are reserved: a field never overwrites them
            rest[k] = v
        return head + "," + json.dumps(rest)[1:]

    def event(self, name, fields=None, t=None):
        text = self.line(name, fields, t)
        self.out.write(text + "\n")
        self.lines += 1
        if self.udp is not None:
            try:
                self.udp[0].sendto(text.encode(), self.udp[1])
            except OSError:
                pass  # the sink is best effort: never let it stop the board
        return text

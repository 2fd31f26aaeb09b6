"""logsink.py: one compact JSON object per line, with board ticks, node id, boot and sequence."""

import json
import unittest

import logsink
from scratch import Out


class LogSinkTest(unittest.TestCase):
    def test_one_json_line_per_event(self):
        out = Out()
        sink = logsink.LogSink(node_id=7, clock=lambda: 1234, out=out)
        sink.event("bind", {"agent": "10.0.0.1", "mac": b"\x01\x02"})
        sink.event("tick")
        lines = out.text.split("\n")
        self.assertEqual(lines[-1], "")
        self.assertEqual(len(lines), 3)
        rec = json.loads(lines[0])
        self.assertEqual(rec["t"], 1234)
        self.assertEqual(rec["n"], 7)
        self.assertEqual(rec["ev"], "bind")
        self.assertEqual(rec["mac"], "0102")
        self.assertTrue(lines[0].startswith('{"t":1234,"n":7,"b":0,"s":0,"ev":"bind",'))
        self.assertEqual(json.loads(lines[1])["ev"], "tick")

    def test_a_field_never_overwrites_time_node_or_event(self):
        out = Out()
        sink = logsink.LogSink(node_id=7, clock=lambda: 99, out=out)
        sink.event("lateness", {"n": 40, "t": 5, "ev": "x", "p99": 3})
        rec = json.loads(out.text.split("\n")[0])
        self.assertEqual((rec["t"], rec["n"], rec["ev"]), (99, 7, "lateness"))
        self.assertEqual((rec["n_"], rec["t_"], rec["ev_"], rec["p99"]), (40, 5, "x", 3))

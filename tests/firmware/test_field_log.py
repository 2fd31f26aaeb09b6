"""The log in the field: wire format, flash store, uplink, relay and read service (runs on
MicroPython and CPython, like the board)."""

import json
import os
import unittest

import logsink
from scratch import Out, fresh, rmtree

from fieldlog import reader, relay, setup, stream, wire

SECRET = b"\x5a" * 16
KEY9 = relay.node_key(SECRET, wire.PURPOSE_LOG, 9)
DIR = "_test_field_log"


def _line(seq, n=60):
    body = '{"t":%d,"n":9,"b":3,"s":%d,"ev":"x","pad":"%s"}' % (seq * 10, seq, "p" * n)
    return body.encode()


class WireTest(unittest.TestCase):
    def test_log_frame_round_trips_and_verifies(self):
        msg = reader.encode_log(KEY9, 9, 3, 7, wire.FLAG_MORE, 2, 100, b"aa\nbbb")
        self.assertTrue(wire.verify(KEY9, msg))
        self.assertEqual(tuple(relay.log_ids(msg)), (9, 3, 7))
        f = reader.decode_log(msg)
        self.assertEqual(
            (f.node, f.boot, f.frame, f.num, f.off, f.cont, f.more, f.data),
            (9, 3, 7, 2, 100, False, True, b"aa\nbbb"),
        )

    def test_built_in_place_is_the_same_frame(self):
        buf = bytearray(80)
        buf[28 + wire.LOG_HEAD : 28 + wire.LOG_HEAD + 3] = b"cc\n"
        n = wire.sign_log(memoryview(buf)[28:], KEY9, 9, 3, 8, wire.FLAG_CONT, 2, 106, 3)
        self.assertEqual(
            bytes(buf[28 : 28 + n]), reader.encode_log(KEY9, 9, 3, 8, 1, 2, 106, b"cc\n")
        )

    def test_other_keys_and_changed_bytes_do_not_verify(self):
        msg = reader.encode_log(KEY9, 9, 3, 7, 0, 1, 0, b"aa\n")
        other = relay.node_key(SECRET, wire.PURPOSE_LOG, 10)
        self.assertFalse(wire.verify(other, msg))
        bad = bytearray(msg)
        bad[20] ^= 1
        self.assertFalse(wire.verify(KEY9, bad))
        self.assertFalse(wire.verify(KEY9, msg[:-1]))
        self.assertFalse(wire.verify(None, msg))

    def test_truncated_frames_raise_field_error_only(self):
        msg = reader.encode_log(KEY9, 9, 3, 7, 0, 1, 0, b"aa\nbbb\n")
        for n in range(len(msg)):
            try:
                reader.decode_log(msg[:n])
            except wire.FieldError:
                pass
        self.assertRaises(wire.FieldError, reader.decode_log, b"\x01" * 40)
        no_end = reader.encode_log(KEY9, 9, 3, 7, 0, 1, 0, b"aa")  # cut, without FLAG_MORE
        self.assertRaises(wire.FieldError, reader.decode_log, no_end)

    def test_keys_differ_per_node_and_purpose(self):
        self.assertNotEqual(KEY9, relay.node_key(SECRET, wire.PURPOSE_LOG, 8))
        self.assertNotEqual(KEY9, relay.node_key(SECRET, b"U", 9))
        self.assertEqual(len(KEY9), 16)

    def test_lines_join_across_frames_in_any_order_of_copies(self):
        lines = reader.Lines()
        a = reader.decode_log(reader.encode_log(KEY9, 9, 3, 0, wire.FLAG_MORE, 1, 0, b"x\nabc"))
        b = reader.decode_log(reader.encode_log(KEY9, 9, 3, 1, 3, 1, 5, b"def"))
        c = reader.decode_log(reader.encode_log(KEY9, 9, 3, 2, wire.FLAG_CONT, 1, 8, b"g\ny\n"))
        self.assertEqual(lines.add(c), [(1, 10, b"y")])  # its line's start is not there yet
        self.assertEqual(lines.add(a), [(1, 0, b"x")])
        self.assertEqual(lines.add(b), [])
        self.assertEqual(lines.add(c), [(1, 2, b"abcdefg"), (1, 10, b"y")])


class StoreTest(unittest.TestCase):
    def setUp(self):
        fresh(DIR)
        self.root = DIR + "/logs"

    def tearDown(self):
        rmtree(DIR)

    def _lines(self, st):
        """What is on flash (the files themselves), in ring order."""
        out = []
        for num in st.nums:
            try:
                with open(st.path(num), "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for ln in data.split(b"\n"):
                if ln:
                    out.append(ln)
        return out

    def test_lines_reach_flash_only_at_a_flush(self):
        st, _r = setup.open_store(self.root, 8, 4, 256)
        st.append(_line(0, 10))
        self.assertEqual(self._lines(st), [])
        st.flush()
        self.assertEqual(self._lines(st), [_line(0, 10)])
        self.assertEqual(st.lines, 1)

    def test_the_ring_keeps_its_newest_files_and_its_bound(self):
        st, _r = setup.open_store(self.root, 8, 4, 512)
        for i in range(400):
            st.append(_line(i))
        st.flush()
        files = [(n, os.stat(st.path(n))[6]) for n in st.nums]
        self.assertEqual(len(files), 4)
        self.assertTrue(sum(s for _n, s in files) <= 8 * 1024 + 512)
        got = self._lines(st)
        seqs = [json.loads(g)["s"] for g in got]
        self.assertEqual(seqs[-1], 399)
        self.assertEqual(seqs, list(range(seqs[0], 400)))  # nothing lost inside the ring

    def test_reopening_appends_after_what_is_there(self):
        st, _r = setup.open_store(self.root, 8, 4)
        st.append(_line(1))
        st.flush()
        st2, _r = setup.open_store(self.root, 8, 4)
        st2.append(_line(2))
        st2.flush()
        self.assertEqual(self._lines(st2), [_line(1), _line(2)])

    def test_a_cut_batch_becomes_one_damaged_line_and_the_next_boot_starts_clean(self):
        st, _r = setup.open_store(self.root, 8, 4)
        st.append(_line(1))
        st.flush()
        with open(st.path(st.nums[-1]), "ab") as f:
            f.write(_line(2)[:17])  # the power went in the middle of a batch
        st2, repaired = setup.open_store(self.root, 8, 4)
        self.assertTrue(repaired)
        st2.append(_line(3))
        st2.flush()
        got = self._lines(st2)
        self.assertEqual(got[0], _line(1))
        self.assertEqual(got[1], _line(2)[:17])
        self.assertEqual(got[2], _line(3))

    def test_a_line_longer_than_the_batch_is_written_whole(self):
        st, _r = setup.open_store(self.root, 8, 4, 64)
        st.append(_line(5, 200))
        st.flush()
        self.assertEqual(self._lines(st), [_line(5, 200)])


def _reassemble(frames):
    """Lines from LOG frames, put together as the collector does: {(b, s): line}."""
    lines = reader.Lines()
    out = {}
    for f in frames:
        for _num, _off, line in lines.add(reader.decode_log(f)):
            rec = json.loads(line)
            out[(rec["b"], rec["s"])] = line
    return out


class _Setup(unittest.TestCase):
    def setUp(self):
        fresh(DIR)
        self.st, _r = setup.open_store(DIR + "/logs", 16, 4, 512)

    def tearDown(self):
        self.st.flush()
        rmtree(DIR)


def _up(st, max_frame, rate=1000, max_behind=10**6):
    return stream.Stream(st, KEY9, 9, 3, max_frame, 0, rate, max_behind, 0)


class UplinkTest(_Setup):
    def _frames(self, up, now, ok=True, limit=200):
        out = []
        for _ in range(limit):
            n = up.next_frame(now)
            if not n:
                break
            out.append(bytes(up.buf[up.pre : up.pre + n]))
            up.sent(ok, now)
            now += 1000
        return out

    def test_lines_go_in_order_and_whole_from_flash_and_from_the_batch(self):
        up = _up(self.st, 222, rate=1000)
        for i in range(20):
            self.st.append(_line(i))
            if i == 9:
                self.st.flush()  # half on flash, half still in RAM
        frames = self._frames(up, 0)
        for f in frames:
            self.assertTrue(len(f) <= 222)
            self.assertTrue(wire.verify(KEY9, f))
        self.assertEqual(_reassemble(frames), {(3, i): _line(i) for i in range(20)})
        self.assertEqual(up.sent_bytes, sum(len(_line(i)) + 1 for i in range(20)))
        self.assertIsNone(up.due_in(10**6))

    def test_a_long_line_is_cut_across_frames(self):
        up = _up(self.st, 120, rate=1000)
        self.st.append(_line(0, 300))
        self.st.append(_line(1, 5))
        frames = self._frames(up, 0)
        self.assertTrue(len(frames) >= 4)
        self.assertEqual(_reassemble(frames), {(3, 0): _line(0, 300), (3, 1): _line(1, 5)})

    def test_a_frame_not_taken_is_sent_again_unchanged(self):
        up = _up(self.st, 222, rate=1000)
        self.st.append(_line(0))
        first = bytes(up.buf[: up.next_frame(0)])
        up.sent(False, 0)
        self.st.append(_line(1))
        self.assertEqual(up.next_frame(50), 0)  # backing off
        again = bytes(up.buf[: up.next_frame(100)])
        self.assertEqual(first, again)
        up.sent(True, 100)
        nxt = bytes(up.buf[: up.next_frame(200)])
        self.assertEqual(list(_reassemble([nxt])), [(3, 1)])
        self.assertEqual(relay.log_ids(nxt)[2], relay.log_ids(first)[2] + 1)

    def test_frames_are_paced(self):
        up = _up(self.st, 120, rate=10)
        for i in range(50):
            self.st.append(_line(i))
        self.assertTrue(up.next_frame(0))
        up.sent(True, 0)
        self.assertEqual(up.next_frame(50), 0)
        self.assertEqual(up.due_in(50), 50)
        self.assertTrue(up.next_frame(100))

    def test_lines_written_while_the_stream_waits_share_a_frame(self):
        up = _up(self.st, 222, rate=10)
        self.st.append(_line(0, 5))
        self.assertTrue(up.next_frame(0))
        up.sent(True, 0)
        self.st.append(_line(1, 5))
        self.st.append(_line(2, 5))
        self.assertEqual(up.due_in(40), 60)
        n = up.next_frame(100)
        self.assertEqual(list(_reassemble([bytes(up.buf[:n])])), [(3, 1), (3, 2)])

    def test_far_behind_the_stream_jumps_to_the_present(self):
        up = _up(self.st, 222, rate=1000, max_behind=1000)
        for i in range(40):
            self.st.append(_line(i))
        self.assertEqual(up.next_frame(0), 0)
        self.assertTrue(up.skipped > 1000)
        self.st.append(_line(40))
        self.assertEqual(list(_reassemble(self._frames(up, 10))), [(3, 40)])

    def test_a_new_file_is_no_reason_to_jump(self):
        up = _up(self.st, 222, rate=1000, max_behind=2000)
        lines = reader.Lines()
        seqs = []
        for i in range(200):  # 16 KiB in 4 files: a new file every ~38 lines
            self.st.append(_line(i))
            for f in self._frames(up, i * 1000, limit=8):
                for _n, _o, line in lines.add(reader.decode_log(f)):
                    seqs.append(json.loads(line)["s"])
        self.assertEqual(up.skipped, 0)
        self.assertEqual(seqs, list(range(200)))

    def test_the_stream_crosses_files_and_survives_the_ring_turning(self):
        up = _up(self.st, 222, rate=1000, max_behind=10**6)
        lines = reader.Lines()
        seqs = []
        for i in range(400):  # the 16 KiB ring turns about twice
            self.st.append(_line(i))
            if i % 7 == 0 or i == 399:
                for f in self._frames(up, i * 1000, limit=8 if i < 399 else 100):
                    for _n, _o, line in lines.add(reader.decode_log(f)):
                        seqs.append(json.loads(line)["s"])
        self.assertEqual(seqs, list(range(400)))


class RelayTest(unittest.TestCase):
    def _frame(self, boot, frame, key=KEY9, node=9):
        return reader.encode_log(key, node, boot, frame, 0, 1, 0, b"{}\n")

    def test_authentic_new_frames_pass_copies_and_forgeries_do_not(self):
        r = relay.Relay(SECRET)
        self.assertTrue(r.check(0, self._frame(3, 0)))
        self.assertFalse(r.check(1, self._frame(3, 0)))  # the retried copy
        self.assertTrue(r.check(2, self._frame(3, 1)))
        self.assertFalse(r.check(3, self._frame(2, 9)))  # an earlier boot
        self.assertTrue(r.check(4, self._frame(4, 0)))  # the board restarted
        forged = self._frame(4, 5, key=b"\x01" * 16)
        self.assertFalse(r.check(5, forged))
        self.assertFalse(r.check(6, self._frame(4, 6, node=10)))  # node 9's key, node 10's id
        self.assertFalse(r.check(7, b"\x01\x00"))
        self.assertEqual(r.refused, {"malformed": 1, "auth": 2, "replay": 2, "rate": 0})
        self.assertEqual(r.passed, 3)

    def test_a_board_gets_its_share_of_the_rate(self):
        r = relay.Relay(SECRET, rate=5, burst=5, total=100)
        ok = sum(1 for i in range(20) if r.check(0, self._frame(3, i)))
        self.assertEqual(ok, 5)
        self.assertTrue(r.check(1000, self._frame(3, 100)))

    def test_the_table_stays_within_its_cap(self):
        r = relay.Relay(SECRET, max_nodes=4)
        for node in range(1, 30):
            key = relay.node_key(SECRET, wire.PURPOSE_LOG, node)
            self.assertTrue(r.check(node, self._frame(1, 0, key=key, node=node)))
        self.assertEqual(len(r.nodes), 4)


class RewindTest(_Setup):
    def _backbone(self, msgs):
        from fieldlog import backbone

        out = Out()
        log = logsink.LogSink(node_id=9, clock=lambda: 5, out=out, boot=4)  # a later boot
        log.store = self.st
        net = backbone.Backbone(log, 9, KEY9, object(), None, None)
        net.stream = _up(self.st, 222)
        for m in msgs:
            net.on_request(m)
        return net, out

    def test_an_authentic_rewind_sends_the_whole_ring_again_once(self):
        for i in range(30):
            self.st.append(_line(i))
        first = reader.encode_rewind(KEY9, 9, 100)
        other = relay.node_key(SECRET, wire.PURPOSE_LOG, 10)
        net, out = self._backbone(
            [
                reader.encode_rewind(other, 9, 200),  # not this board's key
                reader.encode_rewind(KEY9, 10, 300),  # another board's
                first,
                first,  # replayed
                b"\x02" * 24,
            ]
        )
        self.assertEqual(net.counter, 100)
        self.assertEqual(out.text.count("log_rewind"), 1)
        up = net.stream
        self.assertEqual((up.num, up.off), (self.st.nums[0], 0))
        frames = UplinkTest._frames(None, up, 0)
        got = _reassemble(frames)
        self.assertEqual([got[(3, i)] for i in range(30)], [_line(i) for i in range(30)])
        self.assertIn(b'"ev":"log_rewind","counter":100', got[(4, 0)])  # after all the rest

    def test_a_rewind_asked_again_while_one_runs_is_not_taken(self):
        # the collector sends a REWIND with a new counter every 2 s until the log_rewind line
        # comes (one may be lost): the board takes one at a time, and its line names which
        for i in range(30):
            self.st.append(_line(i))
        net, out = self._backbone(
            [reader.encode_rewind(KEY9, 9, 100), reader.encode_rewind(KEY9, 9, 101)]
        )
        self.assertEqual(net.counter, 100)
        self.assertEqual(out.text.count("log_rewind"), 1)
        _reassemble(UplinkTest._frames(None, net.stream, 0))  # the rewind runs to its end
        self.assertFalse(net.stream.rewound)
        net.on_request(reader.encode_rewind(KEY9, 9, 102))
        self.assertEqual(net.counter, 102)
        self.assertEqual(out.text.count("log_rewind"), 2)

    def test_no_heap_for_the_file_just_now_sends_nothing_then_everything(self):
        """A rewound stream reads the ring from flash, a file opened per frame (its buffer some
        600 bytes): a heap short of that block just then raised in the stream's task and the
        board restarted (plain ESP32 agents at the demo's log pull). Now nothing goes until
        the heap has the block, then every line, in order."""
        from fieldlog import store as store_mod

        for i in range(30):
            self.st.append(_line(i))
        self.st.flush()
        up = _up(self.st, 222)

        def no_heap(*args):
            raise MemoryError("memory allocation failed, allocating 588 bytes")

        store_mod.open = no_heap  # the module's name shadows the builtin
        try:
            self.assertEqual(up.next_frame(0), 0)
            self.assertEqual(up.next_frame(5000), 0)
        finally:
            del store_mod.open
        got = _reassemble(UplinkTest._frames(None, up, 10000))
        self.assertEqual([got[(3, i)] for i in range(30)], [_line(i) for i in range(30)])


class SinkTest(unittest.TestCase):
    def test_every_line_carries_boot_and_sequence(self):
        out = Out()
        sink = logsink.LogSink(node_id=9, clock=lambda: 77, out=out, boot=513)
        sink.event("a")
        sink.event("b", {"s": 1, "b": 2})
        recs = [json.loads(x) for x in out.text.split("\n") if x]
        self.assertEqual([(r["b"], r["s"]) for r in recs], [(513, 0), (513, 1)])
        self.assertEqual((recs[1]["s_"], recs[1]["b_"]), (1, 2))
        self.assertTrue(out.text.startswith('{"t":77,"n":9,"b":513,"s":0,"ev":"a"}'))

    def test_lines_go_to_the_store(self):
        fresh(DIR)
        try:
            sink = logsink.LogSink(node_id=9, clock=lambda: 5, out=Out(), boot=1)
            sink.store, _r = setup.open_store(DIR + "/logs", 8, 4)
            text = sink.event("x", {"k": 1})
            buf = bytearray(1000)

            def stored():
                num, off, n = sink.store.readinto(sink.store.nums[0], 0, memoryview(buf))
                return bytes(buf[:n])

            self.assertEqual(stored(), text.encode() + b"\n")  # from the batch
            sink.close()
            self.assertEqual(sink.store.n, 0)
            self.assertEqual(stored(), text.encode() + b"\n")  # from flash
        finally:
            rmtree(DIR)


class ServeShortOfHeapTest(unittest.TestCase):
    """A datagram the heap has no buffer for: counted, dropped, and the board goes on. The
    buffer comes before the read, so the datagram was still queued and the loop retried it at
    once, for ever: an agent froze during an over-the-air deploy (the OTA bench)."""

    def test_the_datagram_is_dropped_and_the_other_tasks_run(self):
        import sys

        if sys.implementation.name != "micropython":
            self.skipTest("the serve loop runs on MicroPython's asyncio")
        import asyncio

        from fieldlog import backbone

        class Sock:
            queued = 3  # datagrams waiting, each too big for the heap just now
            reads = []

            def recvfrom(self, n):
                if self.queued == 0:
                    raise OSError(11)  # EAGAIN: nothing more
                if n > 8:
                    raise MemoryError("memory allocation failed, allocating %d bytes" % n)
                self.queued -= 1
                self.reads.append(n)
                return b"\x00" * n, ("10.0.0.9", 4345)

        class Wifi:  # link_wifi without the radio (it imports network): wait a moment
            @staticmethod
            async def _wait_readable(sock):
                await asyncio.sleep_ms(1)

        saved = sys.modules.get("link_wifi")
        sys.modules["link_wifi"] = Wifi

        def restore():
            if saved is None:
                sys.modules.pop("link_wifi", None)
            else:
                sys.modules["link_wifi"] = saved

        self.addCleanup(restore)
        log = logsink.LogSink(node_id=9, clock=lambda: 5, out=Out(), boot=1)
        sock = Sock()
        net = backbone.Backbone(log, 9, KEY9, sock, None, None)
        ticks = []

        async def other():  # runs until the three are dropped (or gives up after 2 s)
            while sock.queued and len(ticks) < 2000:
                ticks.append(1)
                await asyncio.sleep_ms(1)

        async def both():
            server = asyncio.create_task(net.serve())
            await other()
            server.cancel()

        asyncio.run(both())
        self.assertTrue(3 <= len(ticks) < 2000, len(ticks))  # the board's other tasks ran
        self.assertEqual(net.oom, 3)
        self.assertEqual((sock.queued, sock.reads), (0, [8, 8, 8]))  # each one drained

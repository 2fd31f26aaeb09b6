"""The update service: messages, staging, the switch, probation and rollback, and refusal of
forged, replayed, truncated and old-session messages (runs on MicroPython and CPython, like the
board; in a scratch directory that stands for the board's flash)."""

import json
import os
import struct
import sys
import unittest

import slots
from scratch import fresh, rmtree

from fieldlog import relay

# (all at the top: a package found through "" has a relative __path__, wrong after a chdir)
from update import board, service, stage, wire

SECRET = b"\x33" * 16
KEY = relay.node_key(SECRET, wire.PURPOSE_UPDATE, 7)
OTHER = relay.node_key(SECRET, wire.PURPOSE_UPDATE, 8)  # another board's key
DIR = "_test_update"
CFG = {"role": "mobile", "node_id": 7, "address": "10.0.0.7", "keys": {"256": "00" * 16}}


def _tree(path="."):
    """{path: content} of every file below path: the board's flash, to compare."""
    out = {}
    for n in os.listdir(path):
        p = n if path == "." else path + "/" + n
        if os.stat(p)[0] & 0x4000:
            out.update(_tree(p))
        else:
            with open(p, "rb") as f:
                out[p] = f.read()
    return out


def _select():
    """slots.select() as at boot, its sys.path put back (the modules the test imports later
    may come from the board's /rom, which a version without an image takes off the path)."""
    path = list(sys.path)
    try:
        return slots.select()
    finally:
        sys.path[:] = path


def _sha(b):
    import hashlib

    return hashlib.sha256(b).digest()


def _hex(b):
    return "".join("%02x" % c for c in b)


FILES = [("driver.mpy", b"D" * 700 + b"end"), ("mobility/agent.mpy", bytes(range(256)) * 3)]
SET = wire.set_hash([(p, _hex(_sha(d))) for p, d in FILES])


class Board:
    """The service as the driver runs it, with a message counter like the laptop's."""

    def __init__(self, boot=1):
        self.boot = boot
        self.n = 0
        self.svc = service.Service(7, KEY, self.info, lambda bits: 0x1234567, 0)
        self.session = self.svc.session

    def info(self):
        with open("config.json", "rb") as f:
            h = _sha(f.read())
        return h, self.boot, 12, 0x306

    def send(self, t, body=b"", key=KEY, counter=None, session=None):
        if counter is None:
            self.n += 1
            counter = self.n
        msg = wire.sign(key, t, 7, self.session if session is None else session, counter, body)
        return self.svc.handle(0, msg), msg

    def ack(self, reply):
        self.last = reply
        t, node, session, counter = wire.head(reply)
        assert t == wire.ACK and wire.verify(KEY, reply)
        return struct.unpack_from(">BI", bytes(wire.body(reply)), 0)

    def cmd(self, t, body=b""):
        reply, _ = self.send(t, body)
        return self.ack(reply)

    def begin(self, kind=wire.KIND_FIRMWARE, files=FILES, set_hash=SET):
        return self.cmd(wire.BEGIN, struct.pack(">BB", kind, len(files)) + set_hash)

    def file(self, i, path, data):
        return self.cmd(wire.FILE, struct.pack(">BI", i, len(data)) + _sha(data) + path.encode())

    def data(self, i, off, chunk):
        return self.cmd(wire.DATA, struct.pack(">BI", i, off) + chunk)

    def send_all(self, files=FILES, chunk=200):
        for i, (p, d) in enumerate(files):
            code, have = self.file(i, p, d)
            assert code == wire.OK, code
            while have < len(d):
                code, have = self.data(i, have, d[have : have + chunk])
                assert code == wire.OK, code


class Scratch(unittest.TestCase):
    def setUp(self):
        fresh(DIR)
        # the firmware's modules stay importable from the scratch directory: on a board they
        # are found through "", the current directory, which is the root at boot. First on
        # the path: a virtual board's VfsPosix
        # raises ENOENT (not ImportError) for a module missing from a current directory that
        # is not the root.
        self.home = os.getcwd() or "/"  # (a virtual board's VfsPosix can say "" for its root)
        self.added = self.home not in sys.path
        if self.added:
            sys.path.insert(0, self.home)
        os.chdir(DIR)
        with open("config.json", "w") as f:
            f.write(json.dumps(CFG))

    def tearDown(self):
        os.chdir(self.home)
        rmtree(DIR)
        if self.added:
            sys.path.remove(self.home)


class WireTest(unittest.TestCase):
    def test_status_round_trips(self):
        st = {
            "active": "a",
            "previous": "root",
            "set": "00112233445566778899aabbccddeeff",
            "prev_set": None,
            "pending": "fw",
            "tries": 1,
            "rollback": {
                "what": "firmware",
                "from": "ffeeddccbbaa99887766554433221100",
                "tries": 2,
            },
        }
        b = wire.pack_status(st, b"\x01" * 32, 513, 77, 0x306, 9, 256)
        self.assertEqual(len(b), 52)
        self.assertEqual(wire.unpack_status(b)["romfs_kb"], 256)
        got = wire.unpack_status(b)
        self.assertEqual(got["fw"], "0011223344556677")
        self.assertEqual(got["previous_fw"], None)
        self.assertEqual(got["config"], "0101010101010101")
        self.assertEqual(
            (got["boot"], got["uptime_s"], got["mpy"], got["counter"]), (513, 77, 0x306, 9)
        )
        self.assertEqual(
            (got["slot"], got["previous_slot"], got["pending"], got["tries"]),
            ("a", "root", "fw", 1),
        )
        self.assertEqual(
            got["rollback"], {"what": "firmware", "from": "ffeeddccbbaa9988", "tries": 2}
        )

    def test_no_rollback_reads_none(self):
        b = wire.pack_status({"active": "root"}, bytes(32), 1, 0, 0, 0)
        self.assertEqual(wire.unpack_status(b)["rollback"], None)
        self.assertEqual(wire.unpack_status(b)["pending"], None)

    def test_a_radio_data_message_fits_one_espnow_frame(self):
        msg = wire.sign(KEY, wire.DATA, 7, 1, 1, bytes(5 + wire.DATA_RADIO))
        self.assertEqual(28 + len(msg), 250)


class ServiceTest(Scratch):
    def test_hello_answers_status_with_the_nonce_and_changes_nothing(self):
        b = Board()
        before = _tree()
        reply, hello = b.send(wire.HELLO, session=0, counter=4242)
        t, node, session, counter = wire.head(reply)
        self.assertEqual((t, node, session, counter), (wire.STATUS, 7, b.session, 4242))
        self.assertTrue(wire.verify(KEY, reply))
        st = wire.unpack_status(wire.body(reply))
        self.assertEqual((st["slot"], st["boot"], st["counter"]), ("root", 1, 0))
        self.assertEqual(b.svc.handle(0, hello)[:4], reply[:4])  # a replayed HELLO: the same
        self.assertEqual(_tree(), before)

    def test_a_whole_update_switches_atomically_and_rolls_back_by_itself(self):
        b = Board()
        self.assertEqual(b.begin(), (wire.OK, 0))
        b.send_all()
        before = _tree()
        self.assertEqual(slots.read()["active"], "root")  # staged, not yet switched
        self.assertEqual(b.cmd(wire.COMMIT), (wire.OK, 0))
        self.assertEqual(b.svc.after, "reset")
        st = slots.read()
        self.assertEqual((st["active"], st["previous"], st["pending"]), ("a", "root", "fw"))
        self.assertEqual(st["set"], _hex(SET))
        with open("fw/a/mobility/agent.mpy", "rb") as f:
            self.assertEqual(f.read(), FILES[1][1])
        self.assertNotIn("fw/a/.set", _tree())
        self.assertEqual(set(_tree()) - set(before), {"fw/state.json"})
        # boots that never reach the health mark: two tries, then the previous version

        path = list(sys.path)
        try:
            for n in (1, 2):
                st = slots.select()
                self.assertEqual((st["active"], st["tries"]), ("a", n))
                self.assertEqual(sys.path[0], "/fw/a")
                sys.path[:] = path
            st = slots.select()
            self.assertTrue(st.get("rolled_back"))
            self.assertEqual(st["active"], "root")
            self.assertEqual(st["rollback"]["from"], _hex(SET))
            self.assertEqual(st["rollback"]["tries"], 2)
            # the root runs (from the filesystem: it has no romfs image here)
            self.assertEqual(sys.path, [p for p in path if not p.startswith(slots.ROM)])
            self.assertEqual(st["active"], "root")
        finally:
            sys.path[:] = path
        self.assertEqual(slots.read()["pending"], None)

    def test_a_version_without_a_romfs_image_runs_from_the_filesystem(self):
        """Without its image file (romimage.py: fw/root.img, a slot's romfs.img) a version's
        modules are on the filesystem: an image mounted at /rom is another version's and
        leaves sys.path, so it never fills in a module (tests/host/test_deploy_romfs.py has
        the versions with an image, on a virtual board's partition)."""
        path = list(sys.path)
        try:
            sys.path[:] = ["", ".frozen", "/rom", "/rom/lib", "/lib"]
            st = slots.select()
            self.assertEqual(st["active"], "root")
            self.assertEqual(sys.path, ["", ".frozen", "/lib"])
            b = Board()
            b.begin()
            b.send_all()
            b.cmd(wire.COMMIT)
            sys.path[:] = ["", ".frozen", "/rom", "/rom/lib", "/lib"]
            slots.select()
            self.assertEqual(sys.path, ["/fw/a", ".frozen", "/lib", ""])
        finally:
            sys.path[:] = path

    def test_a_healthy_version_stays(self):
        b = Board()
        b.begin()
        b.send_all()
        b.cmd(wire.COMMIT)

        path = list(sys.path)
        try:
            slots.select()
        finally:
            sys.path[:] = path
        self.assertEqual(slots.healthy(), "fw")
        self.assertEqual(slots.read()["pending"], None)
        st = slots.read()
        self.assertEqual(stage.Stage().begin(wire.KIND_FIRMWARE, SET, 2), (wire.OK, 0))
        self.assertEqual(slots.spare(st), "b")  # the next update goes beside it

    def test_an_interrupted_transfer_resumes_where_it_stopped_in_a_new_session(self):
        b = Board()
        b.begin()
        p, d = FILES[1]
        b.file(1, p, d)
        b.data(1, 0, d[:300])
        b2 = Board(boot=2)  # a reboot: a new service, a new session
        self.assertEqual(b2.begin(), (wire.OK, 0))
        self.assertEqual(b2.file(1, p, d), (wire.OK, 300))
        self.assertEqual(b2.data(1, 0, d[:100]), (wire.OFFSET, 300))  # not at the end: refused
        self.assertEqual(b2.data(1, 300, d[300:]), (wire.OK, len(d)))
        self.assertEqual(b2.file(1, p, d), (wire.OK, len(d)))  # complete: nothing to send

    def test_a_file_that_does_not_hash_is_dropped(self):
        b = Board()
        b.begin()
        p, d = FILES[0]
        b.file(0, p, d)
        self.assertEqual(b.data(0, 0, b"X" * len(d)), (wire.MISMATCH, 0))
        self.assertNotIn("fw/a/driver.mpy", _tree())
        self.assertEqual(b.cmd(wire.COMMIT), (wire.MISSING, 0))
        self.assertEqual(slots.read()["active"], "root")

    def test_another_set_starts_the_slot_afresh(self):
        b = Board()
        b.begin()
        b.file(0, *FILES[0])
        b.data(0, 0, FILES[0][1][:50])
        other = [("driver.mpy", b"new")]
        b.begin(files=other, set_hash=wire.set_hash([("driver.mpy", _hex(_sha(b"new")))]))
        self.assertEqual(b.file(0, "driver.mpy", b"new"), (wire.OK, 0))

    def test_paths_outside_the_slot_and_the_bootstrap_are_refused(self):
        b = Board()
        b.begin()
        for p in (
            "../config.json",
            "/boot.py",
            "main.py",
            "slots.mpy",
            "romimage.mpy",
            "a//b.py",
            ".x.py",
            "x.txt",
        ):
            self.assertEqual(b.file(0, p, b"x")[0], wire.BAD, p)
        self.assertEqual(b.file(5, "x.py", b"x")[0], wire.BAD)  # no such index

    def test_no_new_update_while_the_last_is_on_probation(self):
        b = Board()
        b.begin()
        b.send_all()
        b.cmd(wire.COMMIT)
        self.assertEqual(Board(boot=2).begin(), (wire.BUSY, 0))

    def test_reset_is_taken(self):
        b = Board()
        self.assertEqual(b.cmd(wire.RESET), (wire.OK, 0))
        self.assertEqual(b.svc.after, "soft")


class RefusalTest(Scratch):
    """Nothing but the board's own key, its session and a fresh counter changes anything."""

    def test_a_message_the_heap_could_not_take_is_taken_when_sent_again(self):
        b = Board()
        b.begin()
        real = stage.Stage.file
        calls = []

        def short_of_heap(st, *args):
            calls.append(args)
            if len(calls) == 1:
                raise MemoryError("a fragmented heap")
            return real(st, *args)

        stage.Stage.file = short_of_heap
        try:
            p, d = FILES[0]
            body = struct.pack(">BI", 0, len(d)) + _sha(d) + p.encode()
            with self.assertRaises(MemoryError):  # (board.handle drops it: no answer)
                b.send(wire.FILE, body, counter=5)
            reply, _ = b.send(wire.FILE, body, counter=5)  # the laptop's resend, the same
        finally:
            stage.Stage.file = real
        self.assertEqual(b.ack(reply), (wire.OK, 0))
        self.assertEqual((b.svc.taken, len(calls)), (2, 2))  # BEGIN, then this FILE once

    def test_a_message_dropped_for_want_of_heap_is_counted(self):
        class Short:
            def handle(self, now, msg):
                raise MemoryError("a fragmented heap")

        class Net:
            oom = 0

        class Drv:
            update = Short()
            net = Net()

            def clock(self):
                return 0

        drv = Drv()
        sent = []
        board.handle(drv, b"\x13", sent.append)  # the board goes on, no answer
        self.assertEqual((drv.net.oom, sent), (1, []))

    def _begun(self):
        b = Board()
        b.begin()
        b.file(0, *FILES[0])
        return b

    def test_forged_messages_get_no_answer_and_change_nothing(self):
        b = self._begun()
        before = _tree()
        p, d = FILES[0]
        body = struct.pack(">BI", 0, 0) + d[:100]
        for key in (OTHER, b"\x00" * 16, KEY[:15] + b"\x00"):
            reply, _ = b.send(wire.DATA, body, key=key)
            self.assertIsNone(reply)
            reply, _ = b.send(wire.COMMIT, key=key)
            self.assertIsNone(reply)
            reply, _ = b.send(wire.HELLO, key=key, session=0)
            self.assertIsNone(reply)
        # a message for another node, tagged with its key
        msg = wire.sign(OTHER, wire.RESET, 8, b.session, 999)
        self.assertIsNone(b.svc.handle(0, msg))
        # the board's own answers sent back to it
        self.assertIsNone(b.svc.handle(0, wire.ack(KEY, 7, b.session, 999, 0)))
        self.assertEqual(_tree(), before)
        self.assertEqual(b.svc.after, None)
        self.assertEqual(b.svc.taken, 2)

    def test_replayed_messages_get_no_answer_and_change_nothing(self):
        b = self._begun()
        p, d = FILES[0]
        reply, msg = b.send(wire.DATA, struct.pack(">BI", 0, 0) + d[:100])
        self.assertEqual(b.ack(reply), (wire.OK, 100))
        before = _tree()
        self.assertIsNone(b.svc.handle(0, msg))  # the same message again
        reply, _ = b.send(wire.RESET, counter=1)  # an old counter
        self.assertIsNone(reply)
        self.assertEqual(_tree(), before)
        # a message of the session before a reboot
        b2 = Board(boot=2)
        b2.svc.session = 0x7654321
        self.assertIsNone(b2.svc.handle(0, msg))
        self.assertEqual(_tree(), before)
        self.assertEqual(b.svc.after, None)

    def test_truncated_messages_get_no_answer_and_change_nothing(self):
        b = self._begun()
        p, d = FILES[0]
        b.n += 1
        msg = wire.sign(KEY, wire.DATA, 7, b.session, b.n, struct.pack(">BI", 0, 0) + d[:100])
        before = _tree()
        for n in range(len(msg)):
            self.assertIsNone(b.svc.handle(0, msg[:n]), n)
        self.assertIsNone(b.svc.handle(0, msg + b"\x00"))
        self.assertEqual(_tree(), before)
        self.assertEqual(b.svc.refused, len(msg) + 1)
        self.assertEqual(b.ack(b.svc.handle(0, msg)), (wire.OK, 100))  # the whole one is taken


class ConfigTest(Scratch):
    def _config(self, b, cfg):
        data = json.dumps(cfg).encode()
        b.begin(wire.KIND_CONFIG, [("config.json", data)], _sha(data)[:16])
        self.assertEqual(b.file(0, "config.json", data), (wire.OK, 0))
        self.assertEqual(b.data(0, 0, data), (wire.OK, len(data)))
        return b.cmd(wire.COMMIT)

    def test_a_config_the_board_refuses_changes_nothing(self):
        b = Board()
        before = _tree()
        bad = dict(CFG, role="pilot")
        self.assertEqual(self._config(b, bad)[0], wire.BAD_CONFIG)
        self.assertIn(b"role", b.last)  # the board's reason, in the ACK
        after = _tree()
        after.pop("fw/cfg.json", None)  # the staged copy, never read
        self.assertEqual(after, before)

    def test_a_config_is_switched_and_rolled_back_after_failed_boots(self):
        b = Board()
        new = dict(CFG, adv_interval_ms=500)
        self.assertEqual(self._config(b, new), (wire.OK, 0))
        with open("config.json") as f:
            self.assertEqual(json.load(f), new)
        self.assertEqual(slots.read()["pending"], "cfg")
        for _ in (1, 2):
            _select()
        st = _select()
        self.assertTrue(st.get("rolled_back"))
        self.assertEqual(st["rollback"]["what"], "config")
        with open("config.json") as f:
            self.assertEqual(json.load(f), CFG)


class _Log:
    def __init__(self):
        self.events = []

    def event(self, name, fields, now=None):
        self.events.append((name, fields))


DROPPED = (
    "update.service",
    "update.stage",
    "update.wire",
    "update.board",
    "update",
    "slots",
    "romimage",
    "config",
)


class IdleTest(Scratch):
    """The driver's side: the service and its modules go after a quiet minute."""

    def setUp(self):
        super().setUp()
        # idle() pops the package: the other tests keep the modules they imported
        self.saved = {m: sys.modules[m] for m in DROPPED if m in sys.modules}

    def tearDown(self):
        sys.modules.update(self.saved)
        super().tearDown()

    def test_the_service_is_dropped_after_a_quiet_minute(self):
        class Drv:
            pass

        drv = Drv()
        drv.update = service.Service(7, KEY, lambda: (bytes(32), 1, 0, 0), lambda b: 5, 1000)
        drv.log = _Log()
        board.idle(drv, 1000 + service.IDLE_MS - 1)
        self.assertIsNotNone(drv.update)  # not yet
        self.assertIn("update.service", sys.modules)
        board.idle(drv, 1000 + service.IDLE_MS + 1)
        self.assertIsNone(drv.update)
        for m in ("update.service", "update.stage", "update.wire", "update.board"):
            self.assertNotIn(m, sys.modules)
        self.assertEqual(drv.log.events[-1][0], "ota_service")
        # the next message loads it again (from the root, the current directory on a board)
        os.chdir(self.home)
        try:
            from update import service as again  # noqa: F401
        finally:
            os.chdir(DIR)
        self.assertIn("update.service", sys.modules)

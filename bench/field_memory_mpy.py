# The heap the log in the field takes on a board (bench/field_memory.py runs this on the 32-bit
# MicroPython and on the 64-bit unix port), with the firmware as `roam deploy` sends it (.mpy:
# on a board its code lives in the heap too).
#
#   ARGV: ROLE FIRMWARE_DIR WORK_DIR STUB_DIR     ROLE: mobile | agent | host
#
# What a board loads anyway (asyncio, the core's auth/ipv4/ticks, logsink) is loaded before the
# first reading; then the field log is set up as the driver does (fieldio.FieldIO and, on a
# backbone board, fieldlog.backbone.Backbone with the relay on an agent), 400 lines are logged
# and streamed (and on a backbone board sent again after a REWIND), and the live heap is read
# again. `socket` is a stand-in
# module (a board's is C), imported before the first reading. Readings are taken at the start
# of a `# --run--` chunk: the WebAssembly port frees a chunk's garbage only once it returned.
# Prints one JSON line: the live bytes after each step and at the end.
import gc
import sys

try:
    argv = ARGV  # noqa: F821 - set by tools/mpy32.mjs (that port has no sys.argv)
except NameError:
    argv = sys.argv
ROLE, FW, WORK = argv[1], argv[2], argv[3]
sys.path.insert(0, FW)
sys.path.insert(0, argv[4])  # the stand-in socket module
import os  # noqa: E402

os.chdir(WORK)
import asyncio  # noqa: E402, F401
import json  # noqa: E402, F401
import struct  # noqa: E402, F401

import logsink  # noqa: E402
import socket  # noqa: E402, F401 - the stand-in
from mobility import auth, ipv4, ticks  # noqa: E402, F401


class _Radio:
    def send(self, mac, data):
        return True


class _Role:
    def uplink(self):
        return (b"\x02\x00\x00\x00\x00\x01", b"\x0a\x00\x00\x01")


class _Null:
    def write(self, s):
        pass


SECRET = b"\x5a" * 16
STEPS = []
CFG = {
    "role": ROLE,
    "node_id": 9,
    "address": "10.0.0.9",
    "keys": {"256": "11" * 16, "768": "33" * 16},
    "collector": "10.77.0.2:4345",
}
if ROLE == "agent":
    CFG["keys"]["769"] = SECRET.hex()
LOG = logsink.LogSink(node_id=9, boot=1)
LOG.out = _Null()
NOW = [0]
S = {}  # what the steps keep alive


def step(name):
    gc.collect()
    STEPS.append([name, gc.mem_alloc() - BASE])


# --run--
gc.collect()
BASE = gc.mem_alloc()
# --run--
from fieldlog import store as _store  # noqa: E402

S["store"] = _store
# --run--
step("store module")
import fieldio  # noqa: E402

S["fieldio"] = fieldio
# --run--
step("fieldio, wire, uplink modules")
LOG.store = S["store"].LogStore()
LOG.store.open()
# --run--
step("store (batch, open file)")
if ROLE in ("agent", "host"):
    from fieldlog import backbone

    S["backbone"] = backbone
# --run--
step("backbone module")
S["net"] = None
if ROLE in ("agent", "host"):
    S["net"] = S["backbone"].Backbone(CFG, LOG, 0)
# --run--
step("backbone (socket, relay)")
S["field"] = S["fieldio"].FieldIO(CFG, LOG, _Radio(), _Role(), S["net"], 0)
S["task"] = S["field"].run(lambda: 0)  # the coroutine object the driver's loop holds
# --run--
step("FieldIO and its task")
# a while of operation: lines logged, streamed, relayed, pulled
field = S["field"]
net = S["net"]
for i in range(400):
    LOG.event("app_rx", {"src": "10.0.0.6", "seq": i, "len": 16}, NOW[0])
    NOW[0] += 25
    up = field.up
    while up is not None and up.due_in(NOW[0]) == 0:
        n = up.next_frame(NOW[0])
        if not n:
            break
        up.sent(field._send(n) is not False, NOW[0])
        NOW[0] += up.gap_ms
    if i % 50 == 0:
        LOG.store.flush()
if net is not None and net.relayer is not None:
    from fieldlog import wire

    for node in range(20, 28):  # the radio-only boards of a busy cell
        k = wire.node_key(SECRET, wire.PURPOSE_LOG, node)
        net.relayer.check(NOW[0], wire.encode_log(k, node, 1, 0, 0, 1, 0, b"{}\n"))
if net is not None:
    from fieldlog import reader

    net.on_request(reader.encode_rewind(bytes.fromhex(CFG["keys"]["768"]), 9, 1))
    del reader
    sys.modules.pop("fieldlog.reader", None)  # the bench's own tool, not the board's
    for i in range(400):  # the ring sent again
        if not field.up.next_frame(NOW[0]):
            break
        field.up.sent(True, NOW[0])
        NOW[0] += 100
del field, net, up
# --run--
step("after 400 lines")
print(
    json.dumps(
        {
            "role": ROLE,
            "live_bytes": STEPS[-1][1],
            "lines": LOG.store.lines,
            "streamed_bytes": S["field"].up.sent_bytes if S["field"].up else 0,
            "steps": STEPS,
        }
    )
)

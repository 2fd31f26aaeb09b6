# The heap the log in the field takes on a board (bench/field_memory.py runs this on the 32-bit
# MicroPython and on the 64-bit unix port), with the firmware as `roam deploy` sends it (.mpy:
# on a board its code lives in the heap too).
#
#   ARGV: ROLE FIRMWARE_DIR WORK_DIR STUB_DIR PAD [code]     ROLE: mobile | agent | host
#
# PAD names are interned before the first reading: how many a board has interned already moves
# where the interned-name pools grow (a pool allocated at twice the last one's size, paid by
# whichever module interns the name that filled the last), so bench/field_memory.py runs each
# figure with several PADs and takes the median (as bench/ota_memory.py does).
#
# With `code`, only the modules the role keeps loaded are imported and measured (their code, at
# this pointer size): the rest of the live figure is data.
#
# What a board loads anyway (asyncio, logsink, the driver, the role's core) is loaded before the
# first reading. Then the field log is set up as the driver does (fieldlog/setup.py: the flash
# store, on a backbone board the field socket and, on an agent, the relay; the stream and its
# task; the set-up module dropped), 400 lines are logged and streamed (on an agent, frames of
# eight radio-only boards relayed; on a backbone board, the ring sent again after a REWIND), and
# the live heap is read again. `socket` is a stand-in module (a board's is C), imported before the
# first reading. One action per `# --run--` chunk, readings at the start of one: the WebAssembly
# port frees a chunk's garbage only once it returned, and its collector is conservative (a stale
# word can keep a dead object alive), so a reading is the least of five, the stack churned.
# Prints one JSON line.
import gc
import sys

try:
    argv = ARGV  # type: ignore[name-defined]  # noqa: F821 - set by tools/mpy32.mjs
except NameError:
    argv = sys.argv
ROLE, FW, WORK = argv[1], argv[2], argv[3]
sys.path.insert(0, FW)
sys.path.insert(0, argv[4])  # the stand-in socket module
import os  # noqa: E402

os.chdir(WORK)
import asyncio  # noqa: E402, F401
import json  # noqa: E402
import socket  # noqa: E402, F401 - the stand-in
import struct  # noqa: E402, F401

import logsink  # noqa: E402

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
S: dict = {}  # what the chunks keep alive, by name


def _churn(n):
    # overwrite the stack the last chunks used: that port's collector is conservative, and a
    # stale word on it can keep a dead object alive
    a = b = c = d = e = f = g = h = n
    return n if n <= 0 else _churn(n - 1) + a + b + c + d + e + f + g + h - 8 * n


def least():
    """The live heap above BASE, read after collections with the stack churned: the least of
    five readings (an object can only look alive when it is not, never the reverse)."""
    best = None
    for k in range(5):
        _churn(5 + 3 * k)
        gc.collect()
        m = gc.mem_alloc() - BASE
        best = m if best is None or m < best else best
    return best


# the role's core and the driver, loaded before the field log as on a board: their names fill the
# interned-name pools to the size a board's have when the field log adds its own
import driver  # noqa: E402, F401

__import__("mobility." + ROLE)
k = 0
for k in range(int(argv[5])):
    exec("pad_%d = 0" % k, {})  # interns the name; the rest is garbage
del k
BASE = 0
# --run--
gc.collect()
BASE = gc.mem_alloc()
# --run--
if argv[6:] == ["code"]:
    from fieldlog import store, stream  # noqa: F401

    if ROLE != "mobile":
        from fieldlog import backbone  # noqa: F401
    if ROLE == "agent":
        from fieldlog import relay  # noqa: F401
    S["code"] = True
# --run--
if argv[6:] == ["code"]:
    print(json.dumps({"role": ROLE, "code_bytes": least()}))
    raise SystemExit
# --run--
from fieldlog import setup  # noqa: E402

S["setup"] = setup
del setup
# --run--
LOG.store = S["setup"].open_store("logs", 192, 6)[0]
# --run--
S["net"] = S["setup"].backbone(CFG, LOG, _Radio(), 0) if ROLE != "mobile" else None
# --run--
S["field"] = S["setup"].stream(CFG, LOG, _Radio(), _Role(), S["net"], 0)
# --run--
S["task"] = S["field"].run(lambda: 0)  # the coroutine object the driver's loop holds
# --run--
S["setup"].drop()  # as the driver does once the role runs: the set-up code is freed
del S["setup"]
# --run--
SET_UP = least()
# --run--
# a while of operation: lines logged, streamed, relayed, the ring sent again
field = S["field"]
now = 0
for i in range(400):
    LOG.event("app_rx", {"src": "10.0.0.6", "seq": i, "len": 16}, now)
    now += 25
    while field.due_in(now) == 0:
        n = field.next_frame(now)
        if not n:
            break
        field.sent(field._send(n) is not False, now)
        now += field.gap_ms
    if i % 50 == 0:
        LOG.store.flush()
del field
# --run--
field = S["field"]
net = S["net"]
if net is not None:
    from fieldlog import reader, relay, wire

    if net.relayer is not None:
        for node in range(20, 28):  # the radio-only boards of a busy cell
            k = relay.node_key(SECRET, wire.PURPOSE_LOG, node)
            net.relayer.check(now, reader.encode_log(k, node, 1, 0, 0, 1, 0, b"{}\n"))
    net.on_request(reader.encode_rewind(bytes.fromhex(CFG["keys"]["768"]), 9, 1))
    del reader, relay, wire
    sys.modules.pop("fieldlog.reader", None)  # the bench's own tool, not the board's
    if ROLE != "agent":
        sys.modules.pop("fieldlog.relay", None)  # (the bench's too, on a board not an agent)
    for _ in range(400):  # the ring sent again
        if not field.next_frame(now):
            break
        field.sent(True, now)
        now += 100
del field, net
# --run--
LIVE = least()
# --run--
print(
    json.dumps(
        {
            "role": ROLE,
            "set_up_bytes": SET_UP,
            "live_bytes": LIVE,
            "lines": LOG.store.lines,
            "streamed_bytes": S["field"].sent_bytes,
        }
    )
)

# The heap the over-the-air update service takes on a board (bench/ota_memory.py runs this on the
# 32-bit MicroPython, tools/mpy32.mjs), with the firmware as `roam deploy` sends it (.mpy) or,
# for the idle baseline, with the update hooks cut out of it (bench/ota_memory.py builds both).
#
#   ARGV: ROLE FIRMWARE_DIR WORK_DIR STUB_DIR PAD     ROLE: mobile | agent
#
# WORK_DIR holds cfg.json (the board's config), wiring.py (what this variant's start._build does
# to the driver once built) and, for an `active` run, updates.bin (the laptop's update messages,
# each as a 2-byte length and the message); without it the run is `idle` (the same arguments
# either way: a different string interned shifts the heap by a block or more).
#
# PAD names are interned before the first reading: how many a board has interned already moves
# where the interned-name pools grow (a pool or chunk allocated one name sooner or later), which
# bench/ota_memory.py varies from run to run.
#
# What a board loads anyway (asyncio, the core's auth/ipv4/ticks/actions, logsink, the field log's
# wire/store/stream/relay; config too, dropped again as driver.main does) is loaded before the first
# reading. Then, as start._build does: on a backbone board (agent) the Backbone built by
# fieldlog/setup.py (set-up dropped), the Driver built and wired, the coroutines of its tasks made;
# the live heap is read (`idle`; an idle run ends here, before any update name is compiled: qstrs
# interned in the heap count). Then, in an active run: the update modules imported (`code`); the
# messages taken by Driver.on_update, one by one, their answers checked (`active`); update/board.py
# idle() as the driver runs it after a quiet minute (`after`); the modules it left popped
# (`after_all`). One action per `# --run--` chunk, readings after it: the WebAssembly port frees a
# chunk's garbage only once it returned, and its collector is conservative (a stale word can keep a
# dead object alive), so a reading is the least of five, the stack churned (as
# bench/field_memory_mpy.py does), and that in each of three chunks in a row, the least taken: the
# chunk right after an action can still see its stale words (up to 16 KB more after board.idle(), 2
# KB after building the driver). Prints JSON lines and, after the idle and the last reading,
# micropython.qstr_info()'s line; bench/ota_memory.py merges them.
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
import hashlib  # noqa: E402, F401
import json  # noqa: E402
import socket  # noqa: E402, F401 - the stand-in
import struct  # noqa: E402, F401
import time  # noqa: E402, F401

import config  # noqa: E402, F401 - loaded at boot (driver.main), then dropped
import logsink  # noqa: E402
import micropython  # noqa: E402

from fieldlog import relay, store, stream, wire  # noqa: E402, F401
from mobility import actions, auth, ipv4, ticks  # noqa: E402, F401

del config  # its names stay interned, as on a board
sys.modules.pop("config", None)


class _Radio:
    mac = b"\x02\x00\x00\x00\x00\x09"

    def send(self, mac, data):
        return True


class _Role:
    def next_wake(self):
        return None


class _Null:
    def write(self, s):
        pass


def rand(bits):
    return 0x5EED  # the session number bench/ota_memory.py signs its messages for


with open("cfg.json") as f:
    CFG = json.load(f)
del f
k = 0
for k in range(int(argv[5])):
    exec("pad_%d = 0" % k, {})  # interns the name; the rest is garbage
del k
try:
    MODE = "active" if os.stat("updates.bin") else "idle"
except OSError:
    MODE = "idle"
LOG = logsink.LogSink(node_id=CFG["node_id"], boot=1)
LOG.out = _Null()
RADIO = _Radio()
LINK = _Radio()  # the Wi-Fi link (the driver only keeps it)
S: dict = {}  # what the chunks keep alive, by name
R = {"replies": 0, "bad": 0}  # the service's answers: how many, how many not OK
NAMES = ("drv", "net", "cfg", "rand", "ipv4", "key")  # wiring.py's names, interned before BASE


def _reply(msg):
    R["replies"] += 1
    # STATUS (0x11) answers HELLO; an ACK (0x17) carries its code after the 12-byte head
    if msg[0] != 0x11 and (msg[0] != 0x17 or msg[12] != 0):
        R["bad"] += 1


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


BASE = 0
# every name the chunks bind, bound before BASE: the script's own globals do not grow after it
# (through globals(): a checker reads a later `import driver` as rebinding a None)
for _name in (
    "AT_IDLE IDLE CODE ACTIVE AFTER AFTER_ALL LEFT driver setup drv src ns svc st b f k n m".split()
):
    globals()[_name] = None
# --run--
gc.collect()
BASE = gc.mem_alloc()
# --run--
import driver  # noqa: E402, F811 - (bound before BASE)

S["net"] = None
if ROLE != "mobile":
    from fieldlog import setup

    S["net"] = setup.backbone(CFG, LOG, RADIO, 0)
    setup.drop()  # as start._build does once the role runs
    del setup
# --run--
S["drv"] = driver.Driver(
    _Role(), RADIO, LOG, backbone=LINK if S["net"] is not None else None, net=S["net"]
)
del driver
# --run--
# start._build's own lines after it built the driver (this variant's: bench/ota_memory.py)
with open("wiring.py") as f:  # noqa: F811 - (bound before BASE)
    src = f.read()
ns = {NAMES[0]: S["drv"], NAMES[1]: S["net"], NAMES[2]: CFG, NAMES[3]: rand, NAMES[4]: ipv4}
exec(src, ns)
del f, src, ns
# --run--
# the coroutines of the driver's tasks (Driver.run), as its loop holds them
drv = S["drv"]
S["tasks"] = [drv.timers(), drv.radio_rx()]
if drv.backbone is not None:
    S["tasks"].append(drv.backbone_rx())
if drv.net is not None:
    S["tasks"].append(drv.net.serve())
del drv
AT_IDLE = list(sys.modules)  # (alive at every reading from here on)
# --run--
IDLE = least()
# --run--
IDLE = min(IDLE, least())
# --run--
IDLE = min(IDLE, least())
# --run--
print(json.dumps({"role": ROLE, "mode": MODE, "idle": IDLE, "modules": AT_IDLE}))
print(json.dumps({"qstr_at": "idle"}))
micropython.qstr_info()  # the interned names (in the heap): bench/ota_memory.py reads the line
if MODE == "idle":
    raise SystemExit
# --run--
for m in ("update.board", "update.service", "update.stage", "update.wire"):
    __import__(m)  # as the first message does (update.board imports the rest later)
del m
# --run--
CODE = least()
# --run--
CODE = min(CODE, least())
# --run--
CODE = min(CODE, least())
# --run--
# the laptop's update: HELLO, BEGIN, every FILE and its DATA, the last file half sent
with open("updates.bin", "rb") as f:
    while True:
        n = f.read(2)
        if not n:
            break
        S["drv"].on_update(f.read(struct.unpack(">H", n)[0]), _reply)
del f, n
# --run--
ACTIVE = least()
# --run--
ACTIVE = min(ACTIVE, least())
# --run--
ACTIVE = min(ACTIVE, least())
# --run--
svc = S["drv"].update
st = svc.stage
print(
    json.dumps(
        {
            "replies": R["replies"],
            "bad": R["bad"],
            "taken": svc.taken,
            "refused": svc.refused,
            "declared": sum(1 for x in st.paths if x is not None),
            "set_files": len(st.paths),
        }
    )
)
# a quiet minute later: update/board.py idle(), what the driver is to run from its timers
b = sys.modules["update.board"]
b.idle(S["drv"], ticks.add(svc.last, sys.modules["update.service"].IDLE_MS))
if S["drv"].update is not None:
    raise RuntimeError("board.idle() kept the service")
del svc, st, b
# --run--
AFTER = least()
# --run--
AFTER = min(AFTER, least())
# --run--
AFTER = min(AFTER, least())
# --run--
LEFT = [m for m in sys.modules if m not in AT_IDLE]
print(json.dumps({"left": LEFT}))
while LEFT:
    sys.modules.pop(LEFT.pop())
del LEFT
# --run--
AFTER_ALL = least()
# --run--
AFTER_ALL = min(AFTER_ALL, least())
# --run--
AFTER_ALL = min(AFTER_ALL, least())
# --run--
print(json.dumps({"code": CODE, "active": ACTIVE, "after": AFTER, "after_all": AFTER_ALL}))
print(json.dumps({"qstr_at": "after_all"}))
micropython.qstr_info()

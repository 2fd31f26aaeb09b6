# One role's heap on a board (bench/role_memory32.py runs this on the 32-bit MicroPython, the
# WebAssembly port through tools/mpy32.mjs, and on the 64-bit unix port for the ratio), with the
# firmware as `roam deploy` sends it (.mpy: on a board its code lives in the heap).
#
#   ARGV: ROLE FIRMWARE STUB_DIR C_STUB_DIR WORK_DIR [PAD]
#   ROLE: agent | mobile | home | host | router
#   WORK_DIR: an empty directory, the board's flash for its log store
#   PAD: unused, its length moves the heap's layout (bench/role_memory32.py LAYOUTS)
#   FIRMWARE: a directory (as a board's LittleFS holds it) or a .romfs image (as a ROMFS holds
#   it: mounted at /rom, its .mpy run in place: their bytecode and constants are not copied
#   into the heap)
#
# Stand-ins for what a board has in C (socket, network, espnow, aioespnow, machine; os, io,
# time, collections) are imported before the first reading. Then: `code`, the live heap the
# role's resident modules take once imported (asyncio, its share also alone as `asyncio`;
# logsink, driver, the links, the field log's store/stream/wire and on a backbone board
# backbone, + relay on an agent; the role's core modules; config imported and dropped, as
# driver.main does: its names stay interned); `data`, what the role's worst-case state adds
# once built through real frames and run a while:
#   agent   20 local bindings (registrations) + 500 published (25 origins x 20), region running
#   router  500 published bindings, region running
#   mobile  10 agents heard, bound to the best, refreshing
#   home    50 mobile nodes bound (their 50 home keys in its config)
#   host    a correspondent with a gateway and 20 neighbours, sending
# and `board`, all of the board's live heap once the field log (as fieldlog/setup.py builds it:
# the flash store, on a backbone board the field socket and on an agent the relay, the stream
# and its task) and the driver are built around the role, and 200 lines logged and streamed:
# what code + data leave out.
# Readings are the least of five collections with the stack churned, each at the start of its
# own `# --run--` chunk (that port frees a chunk's garbage once it returned and its collector is
# conservative; bench/field_memory_mpy.py). Prints one JSON line.
import gc
import sys

try:
    argv = ARGV  # type: ignore[name-defined]  # noqa: F821 - set by tools/mpy32.mjs
except NameError:
    argv = sys.argv
ROLE, FW, WORK = argv[1], argv[2], argv[5]
if FW.endswith(".romfs"):
    # the firmware as a ROMFS image (in flash on a board, mapped; here a bytes object read
    # before the first reading, so that only what importing from it costs is counted)
    import vfs

    with open(FW, "rb") as f:
        IMAGE = f.read()
    vfs.mount(vfs.VfsRom(memoryview(IMAGE)), "/rom")  # type: ignore[attr-defined]
    FW = "/rom"
    sys.path.insert(0, FW)  # (as slots.py puts a board's image first)
else:
    # a board runs from its filesystem's root with "" first on sys.path: a module's file name,
    # a name of the heap, is "mobility/agent.mpy", not this directory's path
    import os as _os

    _os.chdir(FW)
    sys.path.insert(0, "")
sys.path.insert(0, argv[3])  # the stand-in socket
sys.path.insert(0, argv[4])  # the stand-ins for network, espnow, aioespnow, machine
# os, io, time and collections are in C on a board; this port's are Python modules (its asyncio
# imports io, time and collections' defaultdict, which a board has not: 0.4 KB of heap a board
# does not spend): imported before the first reading
import collections  # noqa: E402, F401
import io  # noqa: E402, F401
import json  # noqa: E402
import os  # noqa: E402, F401
import socket  # noqa: E402, F401
import struct  # noqa: E402, F401
import time  # noqa: E402, F401

try:
    import collections.defaultdict  # type: ignore[import-not-found]  # noqa: F401
except ImportError:
    pass  # the unix port's collections is in C, as a board's

import aioespnow  # noqa: E402, F401
import espnow  # noqa: E402, F401
import machine  # noqa: E402, F401
import network  # noqa: E402, F401

BACKBONE = ROLE != "mobile"
CELL = b"cell key of the benchmark field!"
REGION = b"region key of the benchmark!!!!!"
HOME_KEY = b"home key of the benchmark field!"
SECRET = b"binding secret of the benchmark!"  # agents derive each node's binding key K_X
AGENT_MAC = b"\x02\x00\x00\x00\x00\xaa"
S: dict = {}


def _churn(n):
    a = b = c = d = e = f = g = h = n
    return n if n <= 0 else _churn(n - 1) + a + b + c + d + e + f + g + h - 8 * n


def least():
    best = None
    for k in range(5):
        _churn(5 + 3 * k)
        gc.collect()
        m = gc.mem_alloc() - BASE
        best = m if best is None or m < best else best
    return best


def rand_gen():
    state = [12345]

    def rand(bits):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] & ((1 << bits) - 1) if bits <= 31 else state[0]

    return rand


def mac(i):
    return bytes((2, 0, 0, 0, i >> 8, i & 0xFF))


def aton(s):
    return bytes(int(x) for x in s.split("."))


OWN = "10.0.0.1"
NB = "10.0.0.2"
N_ORIGINS = 25
PER_ORIGIN = 20


def region_cfg():
    members = [OWN, NB] + ["10.0.1.%d" % (i + 1) for i in range(N_ORIGINS)]
    return members, {
        "members": members,
        "neighbours": [{"addr": NB, "iface": 1, "mac": "10.0.0.2:4344"}],
        # (the default capacity, 512: room for the 500 it takes; a table of 600 read 0.8 KB more)
    }


def publish(role, members, now):
    from mobility import actions, auth, publication

    own, nb = aton(OWN), aton(NB)
    for o in range(N_ORIGINS):
        binds = [(aton("10.8.%d.%d" % (o, j + 1)), 600) for j in range(PER_ORIGIN)]
        pub = publication.Publication(aton(members[2 + o]), 0, 0, True, binds, [])
        role.on_frame(
            now,
            actions.IF_BACKBONE,
            nb + b"\x10\xf8",
            0,
            publication.hop_packet(
                auth.Keys({auth.SPI_REGION: REGION}),
                nb,
                own,
                publication.encode_payload(pub, REGION),
            ),
        )
        role.out.clear()


def _drop_sender():
    """Forget mobility.request, the sending side of a registration, which the bench loads to
    make real requests for an agent or a home agent to answer: those roles do not load it."""
    import mobility

    sys.modules.pop("mobility.request", None)
    try:
        delattr(mobility, "request")
    except AttributeError:
        pass


def build_agent(now):
    from mobility import actions, agent, auth, registration, request

    members, reg = region_cfg()
    keys = {0x100: CELL, auth.SPI_NODE_SECRET: SECRET, 0x200: REGION}
    cfg = {"node_id": 1, "address": OWN, "keys": keys, "mac": AGENT_MAC}
    cfg["capacity"] = 20
    cfg["region"] = reg
    a = agent.Agent(cfg, rand_gen(), now)
    a.beacon.next_at = now  # an advertisement first: a request echoes its sequence
    a.beacon.on_timer(now)
    a.out.clear()
    own = aton(OWN)
    for i in range(20):
        home = aton("10.9.0.%d" % (i + 1))
        req = registration.RegRequest(
            home,
            own,
            0,
            600,
            home,
            aton("0.0.0.0"),
            own,
            request.make_ident(a.nonce, 1),
            node_mac=mac(i + 1),
            agent_mac=AGENT_MAC,
            agent_seq=a.beacon.last_seq,
        )
        frame = request.encode_request(req, auth.node_key(SECRET, home))
        a.on_frame(now, actions.IF_RADIO, mac(i + 1), -50, frame)
        a.out.clear()
    publish(a, members, now)
    _drop_sender()
    return a, {"local": len(a.bindings), "published": len(a.region.table)}


def build_router(now):
    from mobility import router

    members, reg = region_cfg()
    cfg = {"node_id": 2, "address": OWN, "keys": {0x100: CELL, 0x200: REGION}, "region": reg}
    r = router.Router(cfg, rand_gen(), now)
    r.out.clear()
    publish(r, members, now)
    return r, {"published": len(r.region.table)}


def build_home(now):
    from mobility import actions, auth, home, registration, request

    own = aton(OWN)
    coa = aton("10.0.0.5")
    keys = {0x100: CELL, 0x200: REGION}
    mobiles = {}
    for i in range(50):
        mobiles["10.9.1.%d" % (i + 1)] = 100 + i
        keys[auth.spi_home(100 + i)] = HOME_KEY[:-2] + bytes((i, 7))
    cfg = {"node_id": 3, "address": OWN, "keys": keys, "mobiles": mobiles}
    cfg["links"] = [{"addr": "10.0.0.5", "iface": 1, "mac": "10.0.0.5:4344"}]
    h = home.HomeAgent(cfg, rand_gen(), now)
    h.out.clear()
    for i in range(50):
        addr = aton("10.9.1.%d" % (i + 1))
        req = registration.RegRequest(
            addr,
            own,
            0,
            600,
            addr,
            own,
            coa,
            request.make_ident(h.nonce, 1),
            registration.EXT_MH_AUTH,
            auth.spi_home(100 + i),
        )
        frame = request.encode_request(req, HOME_KEY[:-2] + bytes((i, 7)))
        h.on_frame(now, actions.IF_BACKBONE, coa + b"\x10\xf8", 0, frame)
        h.out.clear()
    _drop_sender()
    return h, {"bound": len(h.cache.bindings)}


def build_host(now):
    from mobility import host

    nbs = {"10.0.2.%d" % (i + 1): "02:00:00:00:02:%02x" % (i + 1) for i in range(20)}
    cfg = {"node_id": 4, "address": "10.0.2.100", "keys": {0x100: CELL, 0x200: REGION}}
    cfg["gateway"] = "02:00:00:00:00:01"
    cfg["neighbours"] = nbs
    cfg["accept_proxy"] = True
    h = host.Host(cfg, rand_gen(), now)
    h.out.clear()
    return h, {"neighbours": len(h.neighbours)}


def build_mobile(now):
    from mobility import advert, auth, ipv4, mobile, registration

    own = aton("10.0.0.50")
    k_x = auth.node_key(SECRET, own)
    cfg = {"node_id": 50, "address": "10.0.0.50", "keys": {0x100: CELL, auth.SPI_NODE: k_x}}
    cfg["mac"] = "02:00:00:00:00:32"
    m = mobile.MobileNode(cfg, rand_gen(), now)
    S["seqs"] = [0] * 10

    def hear(i, now, challenge=0):
        adv = advert.Advertisement(
            src=aton("10.0.0.%d" % (1 + i)),
            dst=m.address if challenge else ipv4.BCAST_ADDR,
            adv_lifetime=3,
            seq=S["seqs"][i],
            reg_lifetime=60,
            flags=0x90,
            services=1,
            capacity=20,
            load=i,
            nonce=1000 + i,
            challenge=challenge,
        )
        S["seqs"][i] += 1
        m.on_frame(now, 0, mac(1 + i), -50 - i, advert.encode_advertisement(adv, CELL))
        if not challenge and ipv4.addr_key(adv.src, 0) not in m.agents.table and m.sol.challenge:
            hear(i, now, m.sol.challenge)

    def answer(now):
        info = m.reg.agent
        if info is None:
            return
        rep = registration.RegReply(
            src=info.addr,
            dst=m.address,
            code=0,
            lifetime=30,
            home=m.address,
            ident=m.reg.ident,
            node_mac=m.mac,
            agent_mac=info.mac,
            req_ident=m.reg.ident,
        )
        m.on_frame(now, 0, info.mac, -50, registration.encode_reply(rep, k_x))

    S["hear"], S["answer"] = hear, answer
    for i in range(10):
        hear(i, now)
        m.out.clear()
        answer(now)
        m.out.clear()
    return m, {"agents": len(m.agents.table)}


def run(role, now, seconds):
    """The role kept running: its timers, frames of its kind, datagrams."""
    from mobility import actions, ipv4, ticks

    dgram = ipv4.udp(aton("10.9.0.1"), aton("10.8.3.4"), 5000, 5000, b"x" * 40)
    t = now
    end = ticks.add(now, seconds * 1000)
    while ticks.diff(end, t) > 0:
        t = ticks.add(t, 100)
        w = role.next_wake()
        if w is not None and ticks.diff(t, w) >= 0:
            role.on_timer(t)
            role.out.clear()
        if ROLE == "mobile":
            if (t // 100) % 10 == 0:
                for i in range(10):
                    S["hear"](i, t)
                    role.out.clear()
            S["answer"](t)
            role.out.clear()
            role.on_send(t, aton("10.0.0.99"), b"y" * 40)
        elif ROLE in ("agent", "router"):
            role.on_frame(t, actions.IF_RADIO, mac(1), -50, bytearray(dgram))
        elif ROLE == "home":
            role.on_frame(
                t,
                actions.IF_BACKBONE,
                mac(9),
                0,
                ipv4.udp(aton("10.7.0.1"), aton("10.9.1.3"), 5000, 5000, b"z" * 40),
            )
        else:
            role.on_send(t, aton("10.0.2.%d" % (1 + (t // 100) % 20)), b"w" * 40)
        role.out.clear()
    return t


class _Radio:  # (the bench's stand-ins, defined before the first reading: not the board's)
    mac = AGENT_MAC

    def send(self, mac, data):
        return True


class _Null:
    def write(self, s):
        pass


BASE = 0
# --run--
gc.collect()
BASE = gc.mem_alloc()
# --run--
import asyncio  # noqa: E402 - frozen on a board: its objects are heap, its code is not

# the parts driver.py loads at its import (a board's asyncio loads each on first use; this
# port's, its own, loads them all at once: bench/role_memory32.py replaces its share)
asyncio.Event, asyncio.gather  # noqa: B018
# --run--
ASYNCIO = least()
# --run--
import config  # noqa: E402, F401
import driver  # noqa: E402, F401
import link_espnow  # noqa: E402, F401
import logsink  # noqa: E402, F401

from fieldlog import store, stream, wire  # noqa: E402, F401

if BACKBONE:
    import link_wifi  # noqa: F401

    from fieldlog import backbone  # noqa: F401
if ROLE == "agent":
    from fieldlog import relay  # noqa: F401
S["cls"] = config.role_class(ROLE)
del config  # as driver.main does: boot-time code, dropped (its names stay interned)
sys.modules.pop("config", None)
# --run--
CODE = least()
# --run--
NOW = 1000
S["role"], S["held"] = globals()["build_" + ROLE](NOW)
from mobility import settings  # noqa: E402

settings.drop()  # as start.py does once the role is built (boot-time code)
del settings
# --run--
S["t"] = run(S["role"], NOW, 120)
# --run--
LIVE = least()
# --run--
from fieldlog import setup  # noqa: E402

CFG = {"role": ROLE, "node_id": 9, "address": OWN, "collector": "10.77.0.2:4345"}
CFG["keys"] = {"256": "11" * 16, "768": "33" * 16, "769": "5a" * 16}  # log key, log secret
LOG = logsink.LogSink(node_id=9, boot=1)
LOG.out = _Null()
LOG.store = setup.open_store(WORK + "/logs", 192, 6)[0]  # (the working directory: FW)
S["net"] = setup.backbone(CFG, LOG, _Radio(), S["t"]) if BACKBONE else None
S["field"] = setup.stream(CFG, LOG, _Radio(), S["role"], S["net"], S["t"])
S["task"] = S["field"].run(lambda: 0)  # the coroutine the driver's loop holds
S["driver"] = driver.Driver(S["role"], _Radio(), LOG, field=S["field"], net=S["net"])
setup.drop()  # as start.py does
del setup, CFG  # (and the config: a board keeps none of it)
# --run--
field = S["field"]
now = S["t"]
for i in range(200):
    LOG.event("app_rx", {"src": "10.0.0.6", "seq": i, "len": 16}, now)
    now += 25
    while field.due_in(now) == 0:
        n = field.next_frame(now)
        if not n:
            break
        field.sent(True, now)
        now += field.gap_ms
    if i % 50 == 0:
        LOG.store.flush()
del field
# --run--
BOARD = least()
# --run--
print(
    json.dumps(
        {
            "role": ROLE,
            "code_bytes": CODE,
            "asyncio_bytes": ASYNCIO,
            "data_bytes": LIVE - CODE,
            "live_bytes": LIVE,
            "board_bytes": BOARD,
            "held": S["held"],
            "heap_free": gc.mem_free(),
            "modules": sorted(sys.modules),  # (bench/module_memory32.py: the resident set)
        }
    )
)

"""MicroPython side of bench/region_memory.py: an agent holding 20 local and 500 published
bindings, built through real frames (registration requests, publications), then kept running
(advertisements, snapshots, tunnelled datagrams) for ten virtual minutes.

    micropython region_memory_mpy.py code     -> prints {"code": bytes after the imports}
    micropython region_memory_mpy.py run      -> prints the figures (JSON, last line)

Prints one JSON line. A MemoryError anywhere is reported as {"fits": 0, ...}.
"""

import gc
import json
import sys

gc.collect()
M0 = gc.mem_alloc()

from mobility import actions, agent, auth, ipv4, publication, registration, request  # noqa: E402

gc.collect()
CODE = gc.mem_alloc() - M0
FREE = gc.mem_free()  # what is left for data once the code is loaded

CELL = b"cell key of the benchmark field!"
REGION = b"region key of the benchmark!!!!!"
SECRET = b"binding secret of the benchmark!"  # agents derive each node's binding key
AGENT_MAC = b"\x02\x00\x00\x00\x00\xaa"
N_LOCAL = 20
N_ORIGINS = 25
PER_ORIGIN = 20  # 25 x 20 = 500 published bindings
OWN = "10.0.0.1"
NB = "10.0.0.2"


def mac(i):
    return bytes((2, 0, 0, 0, i >> 8, i & 0xFF))


def rand_gen():
    state = [12345]

    def rand(bits):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] & ((1 << bits) - 1) if bits <= 31 else state[0]

    return rand


def main():
    members = [OWN, NB] + ["10.0.1.%d" % (i + 1) for i in range(N_ORIGINS)]
    cfg = {
        "node_id": 1,
        "address": OWN,
        "keys": {0x100: CELL, 0x200: REGION, 0x102: SECRET},
        "mac": AGENT_MAC,
        "capacity": N_LOCAL,
        "region": {
            "members": members,
            "neighbours": [{"addr": NB, "iface": 1, "mac": "10.0.0.2:4344"}],
            "max_published": 600,
        },
    }
    now = 1000
    a = agent.Agent(cfg, rand_gen(), now)
    from mobility import settings

    settings.drop()  # as start.py does once the role is built (boot-time code)
    del settings
    a.beacon.next_at = now  # an advertisement first: a request echoes its sequence
    a.beacon.on_timer(now)
    a.out.clear()
    gc.collect()
    base = gc.mem_alloc()
    own = ipv4.aton(OWN)
    nb = ipv4.aton(NB)
    nb_mac = nb + b"\x10\xf8"
    for i in range(N_LOCAL):
        home = ipv4.aton("10.9.0.%d" % (i + 1))
        req = registration.RegRequest(
            home, own, 0, 600, home, ipv4.ANY_ADDR, own, request.make_ident(a.nonce, 1)
        )
        req.node_mac = mac(i + 1)
        req.agent_mac = AGENT_MAC
        req.agent_seq = a.beacon.last_seq
        kx = auth.node_key(SECRET, home)
        a.on_frame(now, actions.IF_RADIO, mac(i + 1), -50, request.encode_request(req, kx))
        a.out.clear()
    for o in range(N_ORIGINS):
        binds = [(ipv4.aton("10.8.%d.%d" % (o, j + 1)), 600) for j in range(PER_ORIGIN)]
        pub = publication.Publication(ipv4.aton(members[2 + o]), 0, 0, True, binds, [])
        a.on_frame(
            now,
            actions.IF_BACKBONE,
            nb_mac,
            0,
            publication.hop_packet(
                auth.Keys({auth.SPI_REGION: REGION}),
                nb,
                own,
                publication.encode_payload(pub, REGION),
            ),
        )
        a.out.clear()
        binds = pub = None
    gc.collect()
    state = gc.mem_alloc() - base
    local = len(a.bindings)
    published = len(a.region.table)
    # keep running: timers (advertisements, the region's snapshots) and datagrams tunnelled by
    # published bindings, for ten virtual minutes; track the most memory in use
    peak = 0
    dgram = bytearray(ipv4.udp(ipv4.aton("10.9.0.1"), ipv4.aton("10.8.3.4"), 5000, 5000, b"x" * 40))
    tunnelled = 0
    t = now
    end = now + 600000
    while t < end:
        w = a.next_wake()
        t = w if w > t else t + 1
        a.on_timer(t)
        for _ in range(5):
            a.on_frame(t, actions.IF_RADIO, mac(1), -50, bytearray(dgram))
        for i in range(a.out.n):
            if a.out.kind[i] == actions.SEND and a.out.data[i][9] == ipv4.PROTO_IPIP:
                tunnelled += 1
        a.out.clear()
        used = gc.mem_alloc()
        if used > peak:
            peak = used
    gc.collect()
    live = gc.mem_alloc() - (M0 + CODE)
    return {
        "live_after_run": live,
        "fits": 1,
        "code": CODE,
        "free_for_data": FREE,
        "state": state,
        "local": local,
        "published": published,
        "peak_in_use": peak,
        "after": gc.mem_alloc(),
        "heap_free": gc.mem_free(),
        "tunnelled": tunnelled,
    }


mode = sys.argv[1] if len(sys.argv) > 1 else "run"
if mode == "code":
    print(json.dumps({"code": CODE, "alloc": gc.mem_alloc(), "free": FREE}))
else:
    try:
        print(json.dumps(main()))
    except MemoryError:
        print(json.dumps({"fits": 0, "code": CODE, "free_for_data": FREE}))

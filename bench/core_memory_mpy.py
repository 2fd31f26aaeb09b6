"""MicroPython side of bench/core_memory.py: run one role in a small heap and report its memory.

    micropython -X heapsize=64k core_memory_mpy.py agent 20
    micropython -X heapsize=32k core_memory_mpy.py mobile 10

The agent takes 20 local bindings (authenticated registration requests), then runs ten virtual
minutes: advertisements, solicitation answers, refreshes, forwarding. The mobile node hears 10
agents, binds to the best, and runs ten virtual minutes: advertisements from all ten, re-ranking,
refreshes, datagrams. Prints one JSON line: heap in use after the imports (code), after the run
(code + state), the largest heap in use after a collection during the run (peak), the heap
size, and the role state's share.
"""

import gc
import sys

gc.collect()
BASE = gc.mem_alloc()

from mobility import advert, auth, ipv4, registration, request, solicit, ticks  # noqa: E402

KEY = b"cell key of the benchmark"
SECRET = b"binding secret of the benchmark"  # agents derive each node's binding key from it
KEYS = {0x100: KEY}
MAC = b"\x02\x00\x00\x00\x00\x01"
AGENT_MAC = b"\x02\x00\x00\x00\x00\xaa"


def rand_factory():
    state = [12345]

    def rand(bits):
        x = state[0]
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        state[0] = x
        return x >> (32 - bits)

    return rand


def addr(i):
    return bytes([10, 0, i >> 8, i & 0xFF])


def run_agent(n):
    from mobility.agent import Agent

    gc.collect()
    code = gc.mem_alloc() - BASE
    now = ticks.PERIOD - 100000
    keys = {0x100: KEY, auth.SPI_NODE_SECRET: SECRET}
    a = Agent(
        {"node_id": 1, "address": addr(1), "keys": keys, "mac": AGENT_MAC}, rand_factory(), now
    )
    from mobility import settings

    settings.drop()  # as start.py does once the role is built (boot-time code)
    del settings
    a.beacon.next_at = now  # an advertisement first: a request echoes its sequence
    a.beacon.on_timer(now)
    node_keys = [auth.node_key(SECRET, addr(100 + i)) for i in range(n)]
    out = a.out
    peak = 0
    for i in range(n):
        home = addr(100 + i)
        mac = bytes([2, 0, 0, 0, 1, i])
        req = registration.RegRequest(
            src=home,
            dst=a.address,
            lifetime=60,
            home=home,
            coa=a.address,
            ident=(a.nonce << 32) | 1,
            node_mac=mac,
            agent_mac=AGENT_MAC,
            agent_seq=a.beacon.last_seq,
        )
        a.on_frame(
            now, 0, mac, -50, bytearray(request.encode_request(req, auth.pads(node_keys[i])))
        )
        out.clear()
    counters = [1] * n
    rx = bytearray(ipv4.udp(addr(100), addr(101), 5000, 5000, b"x" * 40))
    sol = bytearray(solicit.encode_solicitation(advert.Solicitation(src=addr(200), level=2), KEY))
    for second in range(600):  # ten virtual minutes
        now = ticks.add(now, 1000)
        a.on_timer(now)
        out.clear()
        if second % 40 == 0:  # every node refreshes (lifetime 60 s)
            for i in range(n):
                home = addr(100 + i)
                counters[i] += 1
                req = registration.RegRequest(
                    src=home,
                    dst=a.address,
                    lifetime=60,
                    home=home,
                    coa=a.address,
                    ident=(a.nonce << 32) | counters[i],
                    node_mac=bytes([2, 0, 0, 0, 1, i]),
                    agent_mac=AGENT_MAC,
                    agent_seq=a.beacon.last_seq,
                )
                a.on_frame(
                    now,
                    0,
                    bytes([2, 0, 0, 0, 1, i]),
                    -50,
                    bytearray(request.encode_request(req, auth.pads(node_keys[i]))),
                )
                out.clear()
        a.on_frame(now, 0, MAC, -60, sol)
        out.clear()
        for _ in range(5):
            rx[8] = 64
            a.on_frame(now, 0, MAC, -50, rx)
            out.clear()
        gc.collect()
        used = gc.mem_alloc()
        if used > peak:
            peak = used
    return a, code, len(a.bindings), peak - BASE


def run_mobile(n):
    from mobility.mobile import MobileNode

    gc.collect()
    code = gc.mem_alloc() - BASE
    now = ticks.PERIOD - 100000
    node_key = auth.node_key(SECRET, addr(50))
    keys = {0x100: KEY, auth.SPI_NODE: node_key}
    m = MobileNode(
        {"node_id": 50, "address": addr(50), "keys": keys, "mac": MAC}, rand_factory(), now
    )
    from mobility import settings

    settings.drop()  # as start.py does once the role is built (boot-time code)
    del settings
    out = m.out
    nonces = [1000 + i for i in range(n)]
    seqs = [0] * n
    peak = 0

    def hear(i, now, challenge=0):
        # a broadcast, or (challenge set) the agent's answer to the node's solicitation
        adv = advert.Advertisement(
            src=addr(1 + i),
            dst=m.address if challenge else ipv4.BCAST_ADDR,
            adv_lifetime=3,
            seq=seqs[i],
            reg_lifetime=60,
            flags=0x90,
            services=1,
            capacity=20,
            load=i,
            nonce=nonces[i],
            challenge=challenge,
        )
        seqs[i] += 1
        m.on_frame(
            now, 0, bytes([2, 0, 0, 0, 0, 1 + i]), -50 - i, advert.encode_advertisement(adv, KEY)
        )
        if not challenge and ipv4.addr_key(adv.src, 0) not in m.agents.table and m.sol.challenge:
            hear(i, now, m.sol.challenge)  # a new agent enters by answering the solicitation

    def answer(now):
        # the agent's reply to the registration in flight
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
            node_mac=MAC,
            agent_mac=info.mac,
            req_ident=m.reg.ident,
        )
        m.on_frame(now, 0, info.mac, -50, registration.encode_reply(rep, node_key))

    for _second in range(600):
        for _tenth in range(10):
            now = ticks.add(now, 100)
            m.on_timer(now)
            out.clear()
            answer(now)
            out.clear()
        for i in range(n):
            hear(i, now)
            out.clear()
            answer(now)
            out.clear()
        m.on_send(now, addr(99), b"y" * 40)
        out.clear()
        gc.collect()
        used = gc.mem_alloc()
        if used > peak:
            peak = used
    return m, code, len(m.agents.table), peak - BASE


def main():
    kind = sys.argv[1]
    n = int(sys.argv[2])
    if kind == "agent":
        role, code, held, peak = run_agent(n)
    elif kind == "mobile":
        role, code, held, peak = run_mobile(n)
    else:
        raise SystemExit("role must be agent or mobile")
    gc.collect()
    in_use = gc.mem_alloc() - BASE  # the role is still referenced: code + its state
    heap = gc.mem_alloc() + gc.mem_free()
    print(
        '{"role": "%s", "held": %d, "heap": %d, "base": %d, "code": %d, "in_use": %d, '
        '"state": %d, "peak": %d, "ok": %d}'
        % (kind, held, heap, BASE, code, in_use, in_use - code, peak, role is not None)
    )


main()

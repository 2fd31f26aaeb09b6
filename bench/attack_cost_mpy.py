"""What a forged or spoofed frame costs a region member, against forwarding one datagram
(issue 15: "state the CPU cost of a forged frame against forwarding one datagram").

Run on MicroPython from the repository root (the sources, not frozen bytecode: the ratios,
not the microseconds, are the figure):

    MICROPYPATH=firmware micropython -X heapsize=4M bench/attack_cost_mpy.py [n]

Each case feeds the same frame ``n`` times to one role (the action buffer cleared after each)
and prints microseconds per frame and the ratio to the hot-path forward (one JSON line):

* ``forward``: an agent forwards a datagram to a node with a local binding (the hot path);
* ``tunnel``: a router tunnels a datagram to the agent holding the node's published binding;
* ``pub_far_jump``: a publication signed by a region-key holder, epoch + 0x7fff: refused
  from its fixed header, before decoding and HMAC (Region.stale_copy);
* ``pub_bad_tag``: a new publication whose tags are wrong (an outsider's: the origin's and the
  hop tag): the hop tag's HMAC computed, refused before decoding;
* ``pub_wrong_link``: a new publication under a neighbour's IP source from another link:
  decoded, refused before the HMAC;
* ``tunnel_spoofed``: IP-in-IP from a station that is no configured peer: refused before
  decapsulation;
* ``proxy_replay``: a recorded proxy request replayed at a correspondent: HMAC, counter
  refused (the 133 answer is rate-limited, so it is not sent again);
* ``spoofed_datagram``: a datagram with a spoofed source at a proxy router: tunnelled like
  any (the proxy check refuses it).
"""

import json
import sys
import time

from mobility import actions, auth, ipv4, publication, registration, request, tunnel
from mobility.agent import Agent
from mobility.host import Host
from mobility.router import Router

CELL = b"cell key of the benchmark field!"
REGION = b"region key of the benchmark!!!!!"
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
BB = actions.IF_BACKBONE


def link(a):
    return ipv4.aton(a) + b"\x10\xf8"


def rand(bits):
    return 12345 & ((1 << bits) - 1)


def member_cfg(i, me, members, extra=None):
    nbs = []
    for m in members:
        if m != me:
            nbs.append({"addr": m, "iface": BB, "mac": link(m)})
    cfg = {
        "node_id": i,
        "address": me,
        "keys": {auth.SPI_CELL: CELL, auth.SPI_REGION: REGION},
        "region": {
            "members": members,
            "neighbours": nbs,
            "hosts": [{"addr": "10.0.0.60", "iface": BB, "mac": link("10.0.0.60")}],
        },
    }
    if extra:
        for k in extra:
            cfg[k] = extra[k]
    return cfg


def timed(role, frames, iface, mac):
    out = role.out
    k = len(frames)
    t0 = time.ticks_us()
    for i in range(N):
        role.on_frame(1000, iface, mac, -50, frames[i % k])
        out.clear()
    return time.ticks_diff(time.ticks_us(), t0) / N


def main():
    members = ["10.0.0.1", "10.0.0.2", "10.0.0.9"]
    home = ipv4.aton("10.9.0.7")
    node_mac = b"\x02RM\x00\x00\x07"
    ag = Agent(member_cfg(1, "10.0.0.1", members), rand, 0)
    ag.bindings[ipv4.addr_key(home, 0)] = [home, node_mac, 0, 600000]
    r = Router(member_cfg(3, "10.0.0.9", members, {"proxy": True}), rand, 0)
    r.region.table.bind(0, home, 600000, 0, 1)  # published at member 0 (10.0.0.1)
    r.region.origins.accept(0, 1, 5, 100)  # origin 10.0.0.2 taken at (5, 100)
    r.out.clear()
    ag.out.clear()
    dgram = ipv4.udp(ipv4.aton("10.5.0.1"), home, 5000, 5000, b"x" * 40)
    fwd = [bytearray(dgram) for _ in range(4)]
    res = {"n": N}
    # the hot path re-sends the buffer it was given (TTL decremented in place): refresh it
    t_fwd = 0
    out = ag.out
    t0 = time.ticks_us()
    for i in range(N):
        b = fwd[i & 3]
        b[8] = 64
        ag.on_frame(1000, 0, b"\x02RM\x00\x00\x01", -50, b)
        out.clear()
    t_fwd = time.ticks_diff(time.ticks_us(), t0) / N
    res["forward"] = t_fwd
    res["tunnel"] = timed(r, [dgram], BB, link("10.0.0.60"))

    def pub(epoch, seq, key):
        p = publication.Publication(ipv4.aton("10.0.0.2"), epoch, seq, False, [(home, 60)], [])
        # (with the hop tag a member computes with that key: an outsider's is as wrong as
        # its publication's tag)
        return publication.hop_packet(
            auth.Keys({auth.SPI_REGION: key}),
            ipv4.aton("10.0.0.2"),
            ipv4.aton("10.0.0.9"),
            publication.encode_payload(p, key),
        )

    res["pub_far_jump"] = timed(r, [pub(5 + 0x7FFF, 0, REGION)], BB, link("10.0.0.2"))
    res["pub_bad_tag"] = timed(
        r, [pub(5, 101, b"not the region key at all!!!!!!")], BB, link("10.0.0.2")
    )
    res["pub_wrong_link"] = timed(r, [pub(5, 101, REGION)], BB, link("10.0.0.66"))
    sp = tunnel.encapsulate(ipv4.aton("10.0.0.2"), ipv4.aton("10.0.0.1"), dgram)
    res["tunnel_spoofed"] = timed(ag, [sp], BB, link("10.0.0.66"))
    # a correspondent that accepts proxies, and a proxy request it has taken
    c = Host(
        {
            "node_id": 60,
            "address": "10.0.0.60",
            "keys": {auth.SPI_CELL: CELL, auth.SPI_REGION: REGION},
            "accept_proxy": True,
        },
        rand,
        0,
    )
    ident = (c.nonce << 32) | 7
    req = registration.RegRequest(
        ipv4.aton("10.0.0.9"),
        ipv4.aton("10.0.0.60"),
        0,
        60,
        home,
        ipv4.ANY_ADDR,
        ipv4.aton("10.0.0.1"),
        ident,
        registration.EXT_MH_AUTH,
        auth.SPI_REGION,
    )
    rq = request.encode_request(req, REGION)
    c.on_frame(0, BB, link("10.0.0.9"), -50, rq)  # taken once
    c.out.clear()
    res["proxy_replay"] = timed(c, [rq], BB, link("10.0.0.66"))
    spoofed = [
        ipv4.udp(ipv4.aton("10.77.0.%d" % (i + 1)), home, 5000, 5000, b"x" * 40) for i in range(50)
    ]
    res["spoofed_datagram"] = timed(r, spoofed, BB, link("10.0.0.66"))
    res["proxies_held"] = len(r.proxies.bindings)
    for k in list(res):
        if k not in ("n", "forward", "proxies_held"):
            res[k + "_vs_forward"] = res[k] / t_fwd
    print(json.dumps(res))


main()

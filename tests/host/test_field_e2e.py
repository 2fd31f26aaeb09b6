"""The field test end to end on virtual boards, checked against the air.

The CLI as a hobbyist runs it, every step a real `roam` process: `roam lab up` (the `walk`
scenario shortened: the agents a1..a3, the router, the home agent, the correspondent c1 and the
mobile node m1, six times walking speed), `roam deploy` and `roam provision` of the fleet the lab
wrote, `roam devices` listing the lab's boards, `roam logs` collecting every board's console
at once while `roam lab start` runs the walk, `roam report LOGDIR`. Then the report's figures
are compared with what the AIR recorded on its own, without the boards' logs: `air.pcap`
(every IPv4 frame as it was put on the air) and
`air-rx.pcap` (every frame the air delivered, with the receiving board's MAC as Ethernet
destination), decoded with the firmware's own decoders (mobility.ipv4, tunnel, registration).

"Agree" means equal counts, for one flow (c1 -> m1, a datagram every 100 ms):

* sent: the distinct sequence numbers of c1 -> m1 application datagrams (UDP port 5000, also
  inside an IP-in-IP tunnel) anywhere on the air = the report's `sent` (c1's app_tx lines);
* delivered: the distinct sequence numbers of those datagrams the air delivered to m1's MAC =
  the report's `delivered` (m1's app_rx lines);
* delivery_ratio = delivered / sent of the air's counts;
* hand-offs: accepted registration replies (code 0, lifetime > 0) the air delivered to m1's MAC,
  in time order, from an agent other than the one of the previous accepted reply = the report's
  `handoffs` (serving-agent changes from the agents' binding_up lines).

The counts can be equal, not merely close, because nothing is in flight at either end of the
logging window: `roam logs` starts before `roam lab start` resets the boards (the flow starts 3 s
after boot, once c1 has joined the backbone) and stops 4 s after the flow's last datagram (the
scenario is shortened so that the flow stops at 28 s). Only air records inside the logging
window are counted. A difference would be a real fault: a line lost by `roam logs` or the
report, a datagram a board logged but never sent, or one its radio received but never handed
to the application.

About 50 s: up 1 s, deploy + provision 4 s, the run 32 s, report 2 s, down 1 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from hosttools.pcap import read_pcap
from tests.host._labhelp import REPO, ROAM, roam, wait_no_lab_processes

NODES = "a1,a2,a3,r1,ha,c1,m1"
SPEED = 6
FLOW_START_S = 18  # scenario seconds (3 s at 6x): c1 is on the backbone by then
DURATION_S = 168  # scenario seconds (28 s at 6x): the flow stops there; m1 has passed a3
LOG_SECONDS = 32


def _scenario(tmp_path):
    """walk.toml, shortened: the flow c1 -> m1 runs from 3 s to 28 s (at 6x)."""
    from hosttools.sim import scenario as sc_mod

    text = open(sc_mod.resolve("walk")).read()
    for old, new in (
        ("duration_s = 300\n", "duration_s = %d\n" % DURATION_S),
        (
            'src = "c1"\ndst = "m1"\ninterval_ms = 100\n',
            'src = "c1"\ndst = "m1"\ninterval_ms = 100\nstart_s = %d\n' % FLOW_START_S,
        ),
    ):
        assert text.count(old) == 1, "walk.toml changed: %r" % old
        text = text.replace(old, new)
    path = tmp_path / "walk_short.toml"
    path.write_text(text)
    return path


@pytest.fixture
def lab_dir(tmp_path):
    d = tmp_path / "lab"
    yield d
    roam(d, "lab", "down", check=False, timeout=30)
    left = wait_no_lab_processes(d)
    assert not left, "processes left after roam lab down: %s" % left


def _app_seq(h, ipv4, tunnel, src, dst):
    """The sequence number of an application datagram src -> dst in decoded packet h (looking
    inside an IP-in-IP tunnel), or None."""
    if h.proto == ipv4.PROTO_IPIP:
        h = ipv4.decode(tunnel.decapsulate(h))
    if h.proto != ipv4.PROTO_UDP or h.src != src or h.dst != dst:
        return None
    _sport, dport, payload = ipv4.decode_udp(h)
    if dport != ipv4.APP_PORT or len(payload) < 4:
        return None
    return int.from_bytes(payload[:4], "big")


def air_figures(lab, src_addr, mobile_addr, mobile_mac, agents, t0, t1):
    """What the air recorded between host times t0 and t1 (seconds): (sent seqs, delivered
    seqs, accepted registration replies [(t_us, agent address)]) for the flow src -> mobile."""
    from mobility import ipv4, registration, tunnel  # type: ignore[import-not-found]
    from mobility.errors import DecodeError  # type: ignore[import-not-found]

    src, dst = ipv4.aton(src_addr), ipv4.aton(mobile_addr)
    lo, hi = int(t0 * 1e6), int(t1 * 1e6)
    sent = set()
    for t_us, frame in read_pcap(str(lab / "air.pcap")):
        if not lo <= t_us <= hi:
            continue
        try:
            seq = _app_seq(ipv4.decode(frame), ipv4, tunnel, src, dst)
        except DecodeError:
            continue
        if seq is not None:
            sent.add(seq)
    delivered = set()
    replies = []
    mac = bytes.fromhex(mobile_mac.replace(":", ""))
    for t_us, frame in read_pcap(str(lab / "air-rx.pcap")):
        if not lo <= t_us <= hi or frame[0:6] != mac or frame[12:14] != b"\x08\x00":
            continue
        try:
            h = ipv4.decode(frame[14:])
            seq = _app_seq(h, ipv4, tunnel, src, dst)
            if seq is not None:
                delivered.add(seq)
                continue
            if h.proto != ipv4.PROTO_UDP or ipv4.decode_udp(h)[1] != ipv4.REG_PORT:
                continue
            msg = registration.decode_registration(h)
        except DecodeError:
            continue
        if (
            isinstance(msg, registration.RegReply)
            and msg.code == registration.ACCEPTED
            and msg.lifetime > 0
            and msg.home == dst
            and ipv4.ntoa(msg.src) in agents
        ):
            replies.append((t_us, ipv4.ntoa(msg.src)))
    return sent, delivered, replies


def handoffs_from_replies(replies):
    """Changes of the agent that accepted m1's registration (the first binding is none)."""
    n = 0
    last = None
    for _t, agent in sorted(replies):
        if last is not None and agent != last:
            n += 1
        last = agent
    return n


def test_field_test_report_agrees_with_the_air(lab_dir, tmp_path):
    t_start = time.monotonic()
    fleet = lab_dir / "fleet.toml"
    keys = lab_dir / "keys.toml"
    r = roam(
        lab_dir,
        "lab",
        "up",
        str(_scenario(tmp_path)),
        "--nodes",
        NODES,
        "--speed",
        str(SPEED),
        "--fresh",
    )
    assert "lab up: 7 boards" in r.stdout, r.stdout
    r = roam(lab_dir, "deploy", "--fleet", str(fleet), timeout=120)
    assert r.stdout.count("as .mpy") == 7, r.stdout
    roam(lab_dir, "provision", "--fleet", str(fleet), "--keys", str(keys), timeout=60)
    st = json.loads(roam(lab_dir, "lab", "status", "--json").stdout)
    boards = {b["name"]: b for b in st["boards"]}
    agents = {b["address"] for b in st["boards"] if b["role"] == "agent"}

    # roam devices lists the lab's boards, each with its pty, chip and fleet entry
    rows = json.loads(roam(lab_dir, "devices", "--json", "--fleet", str(fleet)).stdout)
    virtual = {r["fleet"]: r for r in rows if r["virtual"]}
    assert sorted(virtual) == sorted(NODES.split(",")), rows
    for name, row in virtual.items():
        assert row["port"] == boards[name]["pty"] and row["chip"] == "esp32", row

    # roam logs collects every board's console for the whole run; the walk starts 1 s in
    logdir = tmp_path / "logs"
    env = dict(os.environ, ROAM_LAB_DIR=str(lab_dir))
    logs = subprocess.Popen(
        [ROAM, "logs", "--fleet", str(fleet), "--out", str(logdir)]
        + ["--duration", str(LOG_SECONDS), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(REPO),
    )
    try:
        time.sleep(1.0)
        roam(lab_dir, "lab", "start")
        out, err = logs.communicate(timeout=LOG_SECONDS + 30)
    finally:
        if logs.poll() is None:
            logs.kill()
            logs.wait()
    assert logs.returncode == 0, out + err
    assert out.count(" 0 gaps") == 7, out

    r = roam(lab_dir, "report", str(logdir), timeout=60)
    summary = json.loads((logdir / "summary.json").read_text())
    meta = json.loads((logdir / "logs.json").read_text())
    roam(lab_dir, "lab", "down")  # closes the air's captures

    sent, delivered, replies = air_figures(
        lab_dir,
        boards["c1"]["address"],
        boards["m1"]["address"],
        boards["m1"]["mac"],
        agents,
        meta["started"],
        meta["stopped"],
    )
    air_handoffs = handoffs_from_replies(replies)
    print(
        "report: sent %d delivered %d ratio %.4f hand-offs %d | air: sent %d delivered %d "
        "hand-offs %d (%d accepted replies) | %.1f s"
        % (
            summary["sent"],
            summary["delivered"],
            summary["delivery_ratio"],
            summary["handoffs"],
            len(sent),
            len(delivered),
            air_handoffs,
            len(replies),
            time.monotonic() - t_start,
        )
    )
    # a real run: the whole flow (25 s at 10/s), m1 walked past a2 and a3
    assert len(sent) >= 200, len(sent)
    assert air_handoffs >= 2, replies
    # and the report agrees with the air
    assert summary["sent"] == len(sent)
    assert summary["delivered"] == len(delivered)
    assert summary["delivery_ratio"] == pytest.approx(len(delivered) / len(sent))
    assert summary["handoffs"] == air_handoffs
    # nothing of the flow was in flight at the window's ends: the air saw no c1 -> m1 datagram
    # outside it (the flow runs 3..28 s after the boot, inside the window)
    all_sent, _, _ = air_figures(
        lab_dir,
        boards["c1"]["address"],
        boards["m1"]["address"],
        boards["m1"]["mac"],
        agents,
        0,
        time.time() + 1,
    )
    assert all_sent == sent
    assert (logdir / "report.html").stat().st_size > 0

"""Forged and replayed log frames from a station without keys never appear anywhere.

A field test on virtual boards (a1, the router, the home agent, c1 on the backbone, m1 in a1's
cell; every cable pulled, `roam field` collecting) with an outsider in the air: a station next
to a1 that holds no key. It
* sends LOG frames signed with a key of its own, by ESP-NOW to a1 (for a1 to relay, in m1's
  name) and by UDP straight to the collector (in c1's name), each carrying a line
  ``"ev":"forged"``;
* replays genuine frames: m1's radio frames to a1, taken from the air's capture (a sniffer's
  view), sent to a1 again and, unwrapped, to the collector; and c1's and a1's own lines, by
  copying genuine UDP frames it cannot sign (the collector never sees their copies as new).

Afterwards no forged line is in the run directory or the dashboard's state, no line is there
twice, the collector counted the forged frames as refused, and a1's relay counted forged
(auth) and replayed frames as refused.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import time
import urllib.request

from hosttools.pcap import read_pcap
from tests.host._labhelp import REPO, ROAM, lab_down, roam

NODES = "a1,r1,ha,c1,m1"
MAC = bytes.fromhex("02666f726765")  # the outsider
OWN_KEY = b"\x42" * 16  # not derived from the fleet's log secret


class Outsider:
    """A station of the lab's air with a radio and a Wi-Fi station on the access point."""

    def __init__(self, air: tuple[str, int], ssid: str, ip: str) -> None:
        self.air = air
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2)
        self.seq = 0
        self.ip = ip
        self.sock.sendto(b"H" + MAC + bytes((1, 1 | 2 | 4)) + b"outsider", air)
        body = ssid.encode() + b"\x00" + socket.inet_aton(ip)
        self._send(b"C", body)
        channel = json.loads(self.sock.recv(4096)[3:])["channel"]  # the radio follows the AP
        self.sock.sendto(b"H" + MAC + bytes((channel, 1 | 2 | 4)) + b"outsider", air)
        self._send(b"B", struct.pack(">H", 4345))

    def _send(self, kind: bytes, body: bytes) -> None:
        self.seq = (self.seq + 1) & 0xFFFF
        self.sock.sendto(kind + struct.pack(">H", self.seq) + MAC + body, self.air)

    def espnow(self, dst_mac: bytes, frame: bytes) -> None:
        self._send(b"E", dst_mac + b"\x00" + b"\x00" * 4 + frame)

    def udp(self, dst_ip: str, port: int, payload: bytes) -> None:
        body = (
            socket.inet_aton(self.ip)
            + struct.pack(">H", 4345)
            + socket.inet_aton(dst_ip)
            + struct.pack(">H", port)
            + payload
        )
        self._send(b"U", body)


def test_forged_and_replayed_log_frames_never_appear(tmp_path):
    from hosttools.firmware import fieldlog_reader, use

    use()
    from mobility import ipv4  # type: ignore[import-not-found]

    reader = fieldlog_reader()
    lab = tmp_path / "lab"
    fleet, keys = lab / "fleet.toml", lab / "keys.toml"
    try:
        roam(lab, "lab", "up", "walk", "--nodes", NODES, "--speed", "6")
        roam(lab, "deploy", "--fleet", str(fleet), timeout=120)
        roam(lab, "provision", "--fleet", str(fleet), "--keys", str(keys))
        roam(lab, "lab", "unplug", "--all")
        st = json.loads(roam(lab, "lab", "status", "--json").stdout)
        boards = {b["name"]: b for b in st["boards"]}
        host, port = st["air"].rsplit(":", 1)
        run_dir = tmp_path / "run"
        field = subprocess.Popen(
            [ROAM, "field", "--fleet", str(fleet), "--keys", str(keys), "--out", str(run_dir)]
            + ["--duration", "26", "--http-port", "8097", "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(REPO),
            env=dict(os.environ, ROAM_LAB_DIR=str(lab)),
        )
        time.sleep(1.5)
        roam(lab, "lab", "start")
        bad = Outsider((host, int(port)), "roam-backbone", "10.77.0.99")
        a1_mac = bytes.fromhex(boards["a1"]["mac"].replace(":", ""))
        time.sleep(8)  # the walk runs; m1 streams through a1
        sent = {"forged": 0, "replayed_radio": 0, "replayed_udp": 0}
        line = b'{"t":1,"n":9,"b":1,"s":%d,"ev":"outsider-wrote-this"}\n'
        for i in range(40):
            for node, via_radio in (
                (boards["m1"]["node_id"], True),
                (boards["c1"]["node_id"], False),
            ):
                msg = reader.encode_log(OWN_KEY, node, 1, 1000 + i, 0, 1, 0, line % i)
                if via_radio:
                    pkt = ipv4.udp(
                        ipv4.aton("10.0.0.99"), ipv4.aton(boards["a1"]["address"]), 4345, 4345, msg
                    )
                    bad.espnow(a1_mac, pkt)
                else:
                    bad.udp("10.77.0.2", 4345, msg)
                sent["forged"] += 1
        # the genuine frames m1 sent to a1 so far, as a sniffer caught them
        genuine = []
        for _t, frame in read_pcap(str(lab / "air.pcap")):
            if len(frame) > 28 and frame[9] == 17 and frame[22:24] == b"\x10\xf9":
                genuine.append(frame)
        assert genuine, "no log frame of m1 on the air"
        for frame in genuine[:60]:
            bad.espnow(a1_mac, frame)  # for a1 to relay again
            bad.udp("10.77.0.2", 4345, frame[28:])  # straight to the collector
            sent["replayed_radio"] += 1
            sent["replayed_udp"] += 1
        time.sleep(2)
        with urllib.request.urlopen("http://127.0.0.1:8097/api/state", timeout=5) as r:
            state = json.loads(r.read())
        out, err = field.communicate(timeout=60)
        assert field.returncode == 0, out + err
        time.sleep(11)  # a1 logs its relay's numbers every 10 s
    finally:
        lab_down(lab)
    seen: dict[tuple[str, int, int], int] = {}
    for p in run_dir.glob("*.jsonl"):
        for text in p.read_text().splitlines():
            rec = json.loads(text)
            obj = rec.get("json") or {}
            assert obj.get("ev") != "outsider-wrote-this", (p.name, obj)
            key = (p.stem, obj.get("b"), obj.get("s"))
            seen[key] = seen.get(key, 0) + 1
    assert seen and max(seen.values()) == 1
    # nor in the dashboard's state: the outsider's lines and copies changed no board
    assert "outsider-wrote-this" not in json.dumps(state)
    assert state["collector"]["refused"]["auth"] >= 40
    assert "refused" in out and "auth" in out, out  # the collector's closing line
    # a1's relay refused the forged frames (on their tag, or, when their boot number is not
    # newer than m1's, before any hashing, as replays) and the replayed ones (not newer than
    # what it passed on)
    stats = [
        json.loads(t)["json"]
        for t in (lab / "console" / "a1.jsonl").read_text().splitlines()
        if '"ev":"log_stats"' in t
    ]
    refused = stats[-1]["refused"]
    assert refused["auth"] + refused["replay"] >= 40 + sent["replayed_radio"], (refused, sent)

"""The air: one host process carrying ESP-NOW frames and Wi-Fi (UDP) datagrams between virtual
boards in real time.

Each virtual board's shims (boards/shims/_air.py) talk to the air over UDP on localhost (the
datagram format is documented there). The air places every board at a position, decides with
the radio model shared with the simulator (hosttools/radio.py: path loss -> RSSI, loss, range,
channel) which boards hear a frame and at what RSSI, answers a synchronous unicast send with the
MAC layer's verdict (acknowledged after at most `retries` retransmissions, or not), applies
faults (a board's radio off, a pair cut), serves Wi-Fi scans and connections to the access
points it is told about, carries UDP datagrams between boards that joined an access point (the
region backbone: boards/shims/socket.py) unless a fault cuts a board's backbone or a partition
separates two boards, and records every IPv4 frame in a pcap (LINKTYPE_RAW) as it is sent.

With `rx_pcap`, it also records every frame it delivered: one record per frame a board's radio
(or backbone socket) received, with an Ethernet header carrying the link addresses (destination =
the receiving board's MAC, source = the sender's), so that what reached a board can be counted
apart from what was lost on the way (tests/host/test_field_e2e.py does). A unicast frame the MAC
retried after a lost ACK is delivered, and recorded, once per attempt that was heard, as a
receiver's radio sees it.

Positions come from `set_position()` or from a `mover(name, t_s) -> (x, y)` callback that the
lab builds from a scenario's paths, evaluated in real time.
"""

from __future__ import annotations

import json
import math
import random
import selectors
import socket
import struct
import threading
import time

from hosttools import radio as radio_mod
from hosttools.pcap import LINKTYPE_ETHERNET, PcapWriter

FLAG_WLAN = 1
FLAG_ESPNOW = 2
FLAG_STA_CONNECTED = 4
FLAG_POWERSAVE = 8
POWERSAVE_MISS = 0.3  # share of frames a board in modem sleep misses


class Station:
    """What the air knows of one board."""

    __slots__ = (
        "mac",
        "name",
        "rx_addr",
        "channel",
        "flags",
        "x",
        "y",
        "index",
        "radio_on",
        "ip",
        "frames_in",
        "frames_out",
    )

    def __init__(self, mac, index):
        self.mac = mac
        self.name = mac.hex(":")
        self.rx_addr = None
        self.channel = 1
        self.flags = 0
        self.x = 0.0
        self.y = 0.0
        self.index = index
        self.radio_on = True
        self.ip = None
        self.frames_in = 0
        self.frames_out = 0


class AccessPoint:
    def __init__(self, ssid, channel=1, x=0.0, y=0.0, subnet="10.77.0.", bssid=None):
        self.ssid = ssid
        self.channel = channel
        self.x = x
        self.y = y
        self.subnet = subnet
        self.bssid = bssid or bytes((0x02, 0xA9, 0, 0, 0, len(ssid) & 0xFF))
        self.next_host = 10


class Air:
    def __init__(self, port=0, radio_cfg=None, seed=1, pcap=None, mover=None, rx_pcap=None):
        self.radio = radio_mod.Radio(radio_cfg, seed=seed)
        self.rng = random.Random(seed)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.port = self.sock.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self.stations: dict[bytes, Station] = {}
        self.by_name: dict[str, Station] = {}
        self.positions: dict[str, tuple] = {}
        self.cut: set = set()
        self.aps: list[AccessPoint] = []
        self.pcap = PcapWriter(pcap) if pcap else None
        self.rx_pcap = PcapWriter(rx_pcap, LINKTYPE_ETHERNET) if rx_pcap else None
        self.mover = mover
        self.t0 = time.monotonic()
        self.frames = 0
        self.delivered = 0
        self.lost = 0
        self.udp_binds: dict[tuple, tuple] = {}  # (mac, port) -> host address of that socket
        self.backbone_down: set = set()  # board names whose backbone is cut
        self.partition: dict[str, int] = {}  # board name -> part, while a partition stands
        self.udp_sent = 0
        self.udp_delivered = 0
        self.udp_dropped = 0
        self._stop = threading.Event()
        self._thread = None
        self.lock = threading.Lock()

    # -- configuration ---------------------------------------------------------------------------

    def set_position(self, name, x, y):
        """Place the board called `name` (its VB_NAME) or with this MAC (bytes)."""
        self.positions[name] = (float(x), float(y))
        st = self.by_name.get(name) if isinstance(name, str) else self.stations.get(name)
        if st is not None:
            st.x, st.y = float(x), float(y)

    def add_access_point(self, ssid, channel=1, x=0.0, y=0.0):
        ap = AccessPoint(ssid, channel, x, y)
        self.aps.append(ap)
        return ap

    def radio_off(self, name, off=True):
        st = self.by_name.get(name)
        if st is not None:
            st.radio_on = not off

    def cut_pair(self, a, b, cut=True):
        key = frozenset((a, b))
        if cut:
            self.cut.add(key)
        else:
            self.cut.discard(key)

    def cut_backbone(self, name, cut=True):
        """A board's backbone (its Wi-Fi LAN) cut or healed: no UDP to or from it."""
        if cut:
            self.backbone_down.add(name)
        else:
            self.backbone_down.discard(name)

    def set_partition(self, groups):
        """Split the backbone into groups of board names (no UDP between groups); [] heals."""
        self.partition = {}
        for i, g in enumerate(groups):
            for name in g:
                self.partition[name] = i

    # -- the medium ------------------------------------------------------------------------------

    def _station(self, mac):
        st = self.stations.get(mac)
        if st is None:
            st = Station(mac, len(self.stations) + 1)
            self.stations[mac] = st
        return st

    def _move(self, now_s):
        if self.mover is None:
            return
        for st in self.stations.values():
            p = self.mover(st.name, now_s)
            if p is not None:
                st.x, st.y = p

    def link(self, src: Station, dst: Station):
        """(heard, rssi) for one frame from src to dst: radio model, channel, faults."""
        if not (src.radio_on and dst.radio_on):
            return False, None
        if not dst.flags & FLAG_WLAN or src.channel != dst.channel:
            return False, None
        if frozenset((src.name, dst.name)) in self.cut:
            return False, None
        d = math.hypot(src.x - dst.x, src.y - dst.y)
        mean = self.radio.mean_rssi(src.index, dst.index, d, (src.x, src.y), (dst.x, dst.y))
        rssi = self.radio.frame_rssi(mean, self.rng)
        if self.rng.random() < self.radio.p_loss(rssi):
            return False, rssi
        if dst.flags & FLAG_POWERSAVE and self.rng.random() < POWERSAVE_MISS:
            return False, rssi
        return True, rssi

    def _deliver(self, src, dst, rssi, flags, fp, payload):
        if dst.rx_addr is None or not dst.flags & FLAG_ESPNOW:
            return
        r = rssi if -128 <= rssi <= 127 else -128
        self.sock.sendto(
            b"F" + src.mac + struct.pack("b", r) + bytes((flags,)) + fp + payload, dst.rx_addr
        )
        dst.frames_in += 1
        self.delivered += 1
        self._record_rx(src, dst, payload)

    def _record(self, payload):
        if self.pcap is not None and payload[:1] and payload[0] >> 4 == 4:
            self.pcap.write(int(time.time() * 1e6), payload)

    def _record_rx(self, src, dst, payload):
        if self.rx_pcap is not None:
            eth = dst.mac + src.mac + b"\x08\x00"
            self.rx_pcap.write(int(time.time() * 1e6), eth + payload)

    def on_espnow(self, src, seq, dst_mac, flags, fp, payload, reply_to):
        self.frames += 1
        src.frames_out += 1
        self._record(payload)
        if dst_mac[0] & 1:  # broadcast / multicast: everyone in range, no ACK
            for st in self.stations.values():
                if st is src:
                    continue
                heard, rssi = self.link(src, st)
                if heard:
                    self._deliver(src, st, rssi, flags, fp, payload)
                else:
                    self.lost += 1
            return
        dst = self.stations.get(dst_mac)
        acked = False
        if dst is not None and dst is not src:
            # The MAC retries a unicast frame until it is acknowledged.
            for _attempt in range(1 + self.radio.retries):
                heard, rssi = self.link(src, dst)
                if heard:
                    ack_heard, _ = self.link(dst, src)
                    self._deliver(src, dst, rssi, flags, fp, payload)
                    if ack_heard:
                        acked = True
                        break
            if not acked:
                self.lost += 1
        if flags & 1:
            self.sock.sendto(
                b"A" + struct.pack(">H", seq) + (b"\x01" if acked else b"\x00"), reply_to
            )

    def on_scan(self, st, seq, reply_to):
        out = []
        for ap in self.aps:
            d = math.hypot(st.x - ap.x, st.y - ap.y)
            rssi = int(self.radio.mean_rssi(st.index, 0xFFFF, d, (st.x, st.y), (ap.x, ap.y)))
            if rssi >= self.radio.sensitivity:
                out.append([ap.ssid, ap.bssid.hex(), ap.channel, rssi, 3, False])
        self.sock.sendto(b"S" + struct.pack(">H", seq) + json.dumps(out).encode(), reply_to)

    def on_connect(self, st, seq, ssid, reply_to, static=None):
        ans = {"ok": False, "status": 201}
        for ap in self.aps:
            if ap.ssid == ssid:
                if static is not None:
                    st.ip = static
                elif st.ip is None:
                    st.ip = "%s%d" % (ap.subnet, ap.next_host)
                    ap.next_host += 1
                ans = {
                    "ok": True,
                    "ip": st.ip,
                    "channel": ap.channel,
                    "rssi": -50,
                    "gateway": ap.subnet + "1",
                    "netmask": "255.255.255.0",
                }
                break
        self.sock.sendto(b"C" + struct.pack(">H", seq) + json.dumps(ans).encode(), reply_to)

    def backbone_link(self, src: Station, dst: Station) -> bool:
        """Whether a UDP datagram gets from src to dst over the access point's LAN."""
        if not (src.radio_on and dst.radio_on):
            return False
        if not (src.flags & FLAG_STA_CONNECTED and dst.flags & FLAG_STA_CONNECTED):
            return False
        if src.name in self.backbone_down or dst.name in self.backbone_down:
            return False
        if frozenset((src.name, dst.name)) in self.cut:
            return False
        ps, pd = self.partition.get(src.name), self.partition.get(dst.name)
        return ps is None or pd is None or ps == pd

    def on_udp(self, src, sip, sport, dip, dport, payload):
        self.udp_sent += 1
        self._record(payload)
        bcast = dip == b"\xff\xff\xff\xff" or dip[3] == 255
        hit = False
        for st in list(self.stations.values()):
            if st is src or not (bcast or st.ip == ".".join(str(b) for b in dip)):
                continue
            to = self.udp_binds.get((st.mac, dport))
            if to is None:
                continue  # no socket on that port: lwIP drops it (ICMP unreachable unmodelled)
            if not self.backbone_link(src, st):
                continue
            hit = True
            self.sock.sendto(b"U" + sip + struct.pack(">H", sport) + payload, to)
            self.udp_delivered += 1
            self._record_rx(src, st, payload)
        if not hit:
            self.udp_dropped += 1

    def handle(self, data, addr):
        kind = data[:1]
        if kind == b"H" and len(data) >= 9:
            mac = bytes(data[1:7])
            with self.lock:
                st = self._station(mac)
                st.rx_addr = addr
                st.channel = data[7]
                st.flags = data[8]
                name = data[9:].decode("utf-8", "replace")
                if name and name != st.name:
                    self.by_name.pop(st.name, None)
                    st.name = name
                self.by_name[st.name] = st
                if st.name in self.positions:
                    st.x, st.y = self.positions[st.name]
            return
        # Requests: kind seq(2) mac(6) body; answers go back to the sending socket.
        if len(data) < 9:
            return
        seq = struct.unpack_from(">H", data, 1)[0]
        st = self.stations.get(bytes(data[3:9]))
        if st is None:
            return  # not announced yet (no H): as a radio that is not on
        if kind == b"E" and len(data) >= 20:
            self.on_espnow(
                st, seq, bytes(data[9:15]), data[15], bytes(data[16:20]), bytes(data[20:]), addr
            )
        elif kind == b"S":
            self.on_scan(st, seq, addr)
        elif kind == b"C":
            body = bytes(data[9:])
            static = None
            if len(body) >= 5 and body[-5] == 0:
                static = ".".join(str(b) for b in body[-4:])
                body = body[:-5]
            self.on_connect(st, seq, body.decode("utf-8", "replace"), addr, static)
        elif kind == b"B" and len(data) >= 11:
            self.udp_binds[(st.mac, struct.unpack_from(">H", data, 9)[0])] = addr
        elif kind == b"X" and len(data) >= 11:
            self.udp_binds.pop((st.mac, struct.unpack_from(">H", data, 9)[0]), None)
        elif kind == b"U" and len(data) >= 21:
            sport, dport = (
                struct.unpack_from(">H", data, 13)[0],
                struct.unpack_from(">H", data, 19)[0],
            )
            self.on_udp(st, bytes(data[9:13]), sport, bytes(data[15:19]), dport, bytes(data[21:]))

    # -- running ---------------------------------------------------------------------------------

    def serve_forever(self, poll_s=0.05):
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        last_move = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now - last_move >= 0.1:
                    self._move(now - self.t0)
                    last_move = now
                    # a capture read while the air runs holds all but the last 0.1 s
                    for w in (self.pcap, self.rx_pcap):
                        if w is not None:
                            w.flush()
                if not sel.select(poll_s):
                    continue
                for _ in range(256):
                    try:
                        data, addr = self.sock.recvfrom(2048)
                    except BlockingIOError:
                        break
                    self.handle(data, addr)
        finally:
            sel.close()

    def start(self):
        self.sock.setblocking(False)
        self._thread = threading.Thread(target=self.serve_forever, name="air", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for w in (self.pcap, self.rx_pcap):
            if w is not None:
                w.close()
        self.sock.close()

    def status(self):
        return [
            {
                "name": s.name,
                "mac": s.mac.hex(":"),
                "channel": s.channel,
                "flags": s.flags,
                "x": round(s.x, 1),
                "y": round(s.y, 1),
                "in": s.frames_in,
                "out": s.frames_out,
                "ip": s.ip,
                "backbone_up": s.name not in self.backbone_down,
            }
            for s in self.stations.values()
        ]

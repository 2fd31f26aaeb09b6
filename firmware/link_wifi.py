"""The Wi-Fi backbone link (IF_BACKBONE): UDP between nodes that joined a common access point.

The station (``network.WLAN(STA_IF)``) joins the access point named in the config; a static
address (``ip``) is set with ``ifconfig`` before joining, so that the other nodes' configs can
name this node's backbone link address in advance (DHCP otherwise). Joining moves the radio to
the access point's channel, which ESP-NOW then uses too: every node must be configured on that
channel. The link checks it and logs ``channel_mismatch`` when the access point sits elsewhere.

A backbone "link address" is 6 bytes: the peer's IPv4 address and UDP port (4344).
"""

import socket
import struct
import time

import network

try:
    import asyncio
except ImportError:  # a build without asyncio
    asyncio = None  # type: ignore[assignment]

PORT = 4344
MAX_FRAME = 1472  # one UDP datagram in one Ethernet/Wi-Fi frame
# What a roam frame can be on the backbone: every packet the core builds, tunnels included, fits
# one ESP-NOW frame (mobility/errors.py MAX_FRAME, 250 bytes). A read asks for no more: the
# stack allocates what recvfrom asks for, and a board's heap is too tight (and too fragmented
# after hours) for 1.5 KB per datagram. A longer datagram is cut and then refused as malformed.
RX_MAX = 256


def _wait_readable(sock):
    # A generator the MicroPython asyncio core understands: park this task until the socket is
    # readable (what asyncio's own streams do).
    yield asyncio.core._io_queue.queue_read(sock)  # type: ignore[attr-defined, union-attr]


def link_address(ip, port=PORT):
    return bytes(int(x) for x in ip.split(".")) + struct.pack(">H", port)


class WifiLink:
    def __init__(
        self,
        ssid,
        key=None,
        channel=1,
        port=PORT,
        log=None,
        timeout_ms=10000,
        ip=None,
        netmask="255.255.255.0",
        gateway=None,
    ):
        self.log = log
        self.sta = network.WLAN(network.STA_IF)
        self.sta.active(True)
        if ip:
            gw = gateway or ip
            self.sta.ifconfig((ip, netmask, gw, gw))
        self.sta.connect(ssid, key)
        start = time.ticks_ms()
        while not self.sta.isconnected():
            if time.ticks_diff(time.ticks_ms(), start) > timeout_ms:
                raise OSError("could not join access point %r" % ssid)
            time.sleep_ms(50)
        self.ip = self.sta.ifconfig()[0]
        have = self.sta.config("channel")
        if have != channel and log:
            log("channel_mismatch", {"want": channel, "have": have, "ssid": ssid})
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(socket.getaddrinfo("0.0.0.0", port)[0][-1])
        self.sock.setblocking(False)
        self.port = port
        self.sent = 0
        self.failed = 0
        if log:
            log("backbone_up", {"ip": self.ip, "port": port, "channel": have})

    def link_address(self):
        return link_address(self.ip, self.port)

    def send(self, mac, data):
        """Send one datagram to the link address `mac` (ip + port). UDP has no ACK: True once
        handed to the stack; False when the stack refuses it (no network)."""
        if len(data) > MAX_FRAME:
            raise ValueError("frame", len(data))  # above MAX_FRAME
        ip = "%d.%d.%d.%d" % (mac[0], mac[1], mac[2], mac[3])
        port = (mac[4] << 8) | mac[5]
        self.sent += 1
        try:
            self.sock.sendto(data, socket.getaddrinfo(ip, port)[0][-1])
        except OSError:
            self.failed += 1
            return False
        return True

    def poll_recv(self):
        """(link address, datagram) of one waiting datagram, or (None, None)."""
        try:
            data, addr = self.sock.recvfrom(RX_MAX)
        except OSError:
            return None, None
        # lwIP (ESP32) gives the sender as ("a.b.c.d", port)
        return link_address(addr[0], addr[1]), data

    async def arecv(self):
        while True:
            src, data = self.poll_recv()
            if src is not None:
                return src, data
            await _wait_readable(self.sock)

"""The Wi-Fi backbone link (IF_BACKBONE): UDP between agents that joined a common access point.

Joining an access point moves the radio to the access point's channel, which is then the
channel ESP-NOW uses too: all nodes must be configured on that channel. The link checks it and
logs ``channel_mismatch`` when the access point sits elsewhere.

A backbone "link address" is 6 bytes: the peer's IPv4 address and UDP port.
"""

import socket
import struct

import network

PORT = 4344


class WifiLink:
    def __init__(self, ssid, key=None, channel=1, port=PORT, log=None, timeout_ms=10000):
        import time

        self.log = log
        self.sta = network.WLAN(network.STA_IF)
        self.sta.active(True)
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
        if log:
            log("backbone_up", {"ip": self.ip, "channel": have})

    def link_address(self):
        return bytes(int(x) for x in self.ip.split(".")) + struct.pack(">H", self.port)

    def send(self, mac, data):
        ip = "%d.%d.%d.%d" % (mac[0], mac[1], mac[2], mac[3])
        port = struct.unpack(">H", bytes(mac[4:6]))[0]
        self.sock.sendto(data, socket.getaddrinfo(ip, port)[0][-1])
        return True

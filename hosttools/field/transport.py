"""How the laptop speaks UDP to the boards on the access point's network.

* :class:`UdpTransport`: a real UDP socket (the laptop joined the field's access point).
* :class:`AirTransport`: the lab's stand-in: the laptop joins the lab's access point through
  the air (hosttools/air.py) as one more station, with the air's board protocol
  (boards/shims/_air.py): ``H`` announces it, ``C`` joins the access point with a static
  address, ``B`` binds the port, ``U`` carries datagrams both ways. The lab's faults apply to
  it as to any station (a partition that leaves the laptop out, a cut backbone).

Both give ``fileno()`` (to wait on in an event loop), ``recv()`` -> (data, (ip, port)) or
None, and ``sendto(data, (ip, port))``.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import time

from hosttools.errors import RoamError

FLAG_WLAN = 1
FLAG_STA_CONNECTED = 4
LAPTOP_MAC = bytes((0x02, 0x4C, 0x41, 0x50, 0x54, 0x01))  # "LAPT": not a board's prefix


class UdpTransport:
    def __init__(self, port: int, bind: str = "0.0.0.0") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((bind, port))
        except OSError as e:
            self.sock.close()
            raise RoamError(
                "cannot listen on UDP %s:%d (%s): is another `roam field` running?"
                % (bind, port, e.strerror)
            ) from None
        self.sock.setblocking(False)
        self.port = port
        self.address = bind

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self) -> tuple[bytes, tuple[str, int]] | None:
        try:
            data, addr = self.sock.recvfrom(2048)
        except (BlockingIOError, InterruptedError):
            return None
        return data, (addr[0], addr[1])

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.sock.sendto(data, addr)
        except OSError:
            pass  # UDP: a datagram that cannot go is a lost datagram

    def close(self) -> None:
        self.sock.close()


class AirTransport:
    """The laptop as a station of the lab's air, at ``ip`` on its access point."""

    def __init__(
        self,
        air: tuple[str, int],
        ip: str,
        port: int,
        ssid: str,
        name: str = "laptop",
        mac: bytes = LAPTOP_MAC,
    ) -> None:
        self.air = air
        self.mac = mac  # a station of its own: the collector and the update client at once
        self.ip = ip
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._seq = 0
        self.address = ip
        # channel 0: no board's radio is on it, so the air never weighs the laptop for an
        # ESP-NOW frame; the access point's LAN (backbone_link) does not look at channels
        self.sock.sendto(
            b"H" + mac + bytes((0, FLAG_WLAN | FLAG_STA_CONNECTED)) + name.encode(), air
        )
        body = ssid.encode() + b"\x00" + socket.inet_aton(ip)
        ans = self._request(b"C", body)
        if ans is None or not json.loads(ans).get("ok"):
            self.sock.close()
            raise RoamError(
                "the lab's air at %s:%d does not answer (is the lab up? roam lab up)" % air
            )
        self._send(b"B", struct.pack(">H", port))
        self.sock.setblocking(False)

    def _send(self, kind: bytes, body: bytes) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        self.sock.sendto(kind + struct.pack(">H", self._seq) + self.mac + body, self.air)
        return self._seq

    def _request(self, kind: bytes, body: bytes, timeout: float = 2.0) -> bytes | None:
        seq = self._send(kind, body)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r, _, _ = select.select([self.sock], [], [], end - time.monotonic())
            if not r:
                break
            data = self.sock.recv(4096)
            if data[:1] == kind and len(data) >= 3 and struct.unpack_from(">H", data, 1)[0] == seq:
                return data[3:]
        return None

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self) -> tuple[bytes, tuple[str, int]] | None:
        while True:
            try:
                data = self.sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return None
            if data[:1] == b"U" and len(data) >= 7:
                ip = socket.inet_ntoa(data[1:5])
                return data[7:], (ip, struct.unpack_from(">H", data, 5)[0])
            # anything else (a late answer, an ESP-NOW frame) is not for the collector

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        body = (
            socket.inet_aton(self.ip)
            + struct.pack(">H", self.port)
            + socket.inet_aton(addr[0])
            + struct.pack(">H", addr[1])
            + data
        )
        self._send(b"U", body)

    def close(self) -> None:
        try:
            self._send(b"X", struct.pack(">H", self.port))
            self.sock.sendto(b"H" + self.mac + bytes((0, 0)), self.air)
        except OSError:
            pass
        self.sock.close()

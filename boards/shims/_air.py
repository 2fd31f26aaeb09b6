# The virtual board's radio: UDP datagrams on localhost to the air (hosttools/air.py), which
# carries them to the other boards by the radio model. Shared by the network and espnow shims.
#
# Wire format (one datagram each, first byte the type; MACs 6 bytes):
#   board -> air   H mac ch flags name                state: WLAN/ESP-NOW active, channel
#                                                     (sent from the rx socket: the air sends
#                                                     frames to where it came from)
#                  E seq(2) mac dst flags fp(4) payload   ESP-NOW send (flags: 1 = sync, answer
#                                                     A; 2 = encrypted, fp = key fingerprint)
#                  S seq(2) mac                       Wi-Fi scan (answer S seq json)
#                  C seq(2) mac ssid [0 ip(4)]        Wi-Fi connect (answer C seq json); the
#                                                     optional ip is a static address
#                  B seq(2) mac port(2)               a UDP socket bound to port (sent from
#                                                     that socket's own host socket)
#                  X seq(2) mac port(2)               that UDP socket closed
#                  U seq(2) mac srcip(4) sport(2) dstip(4) dport(2) payload   a UDP datagram
#                                                     on the Wi-Fi backbone (access point LAN)
#   air -> board   F src rssi(int8) flags fp(4) payload   an ESP-NOW frame (to the rx socket)
#                  A seq(2) ok                        the ESP-NOW send was acknowledged (or not)
#                  U srcip(4) sport(2) payload        a UDP datagram (to the bound socket)
# Without an air (VB_AIR unset) the board is a radio alone in a field: sends get no ACK.

import os
import select
import struct

try:
    # The built-in socket: boards/shims/socket.py shadows the name `socket` on a virtual
    # board (it carries the board's UDP over the air), and `usocket` still names the real one.
    import usocket as socket
except ImportError:
    import socket

FLAG_WLAN = 1
FLAG_ESPNOW = 2
FLAG_STA_CONNECTED = 4
FLAG_POWERSAVE = 8  # Wi-Fi modem sleep: the radio misses some frames

_tx = None
_rx = None
_air = None
_seq = 0
_flags = 0
_channel = 1
_poll = None
_rxpoll = None

MAC = bytes(6)
NAME = os.getenv("VB_NAME") or "vboard"


def _parse_mac(text):
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError("VB_MAC must be six hex bytes aa:bb:cc:dd:ee:ff, got %r" % text)
    return bytes(int(p, 16) for p in parts)


def _init():
    global MAC, _tx, _rx, _air, _poll, _rxpoll
    MAC = _parse_mac(os.getenv("VB_MAC") or "02:00:00:00:00:01")
    air = os.getenv("VB_AIR")
    if not air:
        return
    host, port = air.rsplit(":", 1)
    _air = socket.getaddrinfo(host, int(port))[0][-1]
    _tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _tx.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
    _rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _rx.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
    _poll = select.poll()
    _poll.register(_tx, select.POLLIN)
    _rxpoll = select.poll()
    _rxpoll.register(_rx, select.POLLIN)


def rx_socket():
    return _rx


def set_state(flags=None, channel=None):
    global _flags, _channel
    if flags is not None:
        _flags = flags
    if channel is not None:
        _channel = channel
    hello()


def flags():
    return _flags


def channel():
    return _channel


def hello():
    if _tx is None:
        return
    _rx.sendto(b"H" + MAC + bytes((_channel, _flags)) + NAME.encode(), _air)


def _next_seq():
    global _seq
    _seq = (_seq + 1) & 0xFFFF
    return _seq


next_seq = _next_seq


def air_address():
    """The air's address (for the socket shim's own host sockets), or None without an air."""
    return _air


def request(kind, body, timeout_ms):
    """Send one request and wait for the answer with the same kind and sequence number.
    Returns the answer's body (after type and seq) or None on timeout / no air."""
    if _tx is None:
        return None
    seq = _next_seq()
    answer = b"A" if kind == b"E" else kind  # an ESP-NOW send is answered by an ACK verdict
    _tx.sendto(kind + struct.pack(">H", seq) + MAC + body, _air)
    while True:
        ev = _poll.poll(timeout_ms)
        if not ev:
            return None
        # an ESP-NOW verdict is 4 bytes: a board allocates nothing for it, so the shim takes
        # little (scan and connect answers are JSON)
        data = _tx.recv(16 if kind == b"E" else 2048)
        if len(data) >= 3 and data[0:1] == answer and struct.unpack_from(">H", data, 1)[0] == seq:
            return data[3:]
        # A late answer to an earlier request that timed out: ignore it.


def send_frame(dst, body, sync):
    """Put one ESP-NOW frame in the air (body = flags, key fingerprint, payload). With sync,
    wait for the air's verdict: the receiver's MAC acknowledged it, or not."""
    if _tx is None:
        return not sync
    body = bytes(dst) + body
    if not sync:
        _tx.sendto(b"E" + struct.pack(">H", _next_seq()) + MAC + body, _air)
        return True
    ans = request(b"E", body, 1000)
    return bool(ans) and ans[0] == 1


_init()

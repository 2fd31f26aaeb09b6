# Virtual-board stand-in for the ESP32's `socket` module, for UDP over Wi-Fi: a board whose
# station joined an access point of the air (network.WLAN(STA_IF).connect) exchanges UDP
# datagrams with the other boards on that access point's LAN, carried by the air
# (hosttools/air.py), which applies the lab's faults (a node's backbone cut, a partition).
#
# This file shadows the built-in module on a virtual board (MicroPython lets a file on the path
# extend a built-in module; `usocket` still names the real one, which _air.py uses to talk to
# the air). What it models, as the ESP32's lwIP sockets behave:
#   socket(AF_INET, SOCK_DGRAM), bind, sendto, recvfrom, recv, connect + send, setblocking,
#   settimeout, setsockopt (accepted), close, getaddrinfo of dotted addresses, and polling by
#   select.poll / asyncio (the object is a stream with ioctl, like espnow's).
# Addresses are tuples ("a.b.c.d", port), as getaddrinfo returns them on an ESP32.
# TCP (SOCK_STREAM) is not modelled: socket() raises OSError(EOPNOTSUPP).

import errno
import io
import select
import struct
import time

import _air
import network
import usocket as _real

AF_INET = 2
AF_INET6 = 10
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
IPPROTO_IP = 0
IPPROTO_UDP = 17
IPPROTO_TCP = 6
SOL_SOCKET = 0xFFF
SO_REUSEADDR = 4
SO_BROADCAST = 32
IP_ADD_MEMBERSHIP = 3

_STREAM_POLL = 3
_STREAM_CLOSE = 4
_STREAM_GET_FILENO = 10
_POLL_RD = 1
_POLL_WR = 4

# A send's message to the air, built in place: on an ESP32 lwIP copies a datagram into pbufs
# of its own heap, not MicroPython's, so a send must leave no garbage in the board's heap
# (the garbage of building it with + ran a plain ESP32 agent, tight on heap, out of memory
# where a board would not). U seq(2) mac(6) src ip(4) src port(2) dst ip(4) dst port(2) data
_TX_HEAD = 21
_TX = bytearray(_TX_HEAD + 1472)
_own = ["", b"\x00\x00\x00\x00"]  # the station's address as text, and as 4 bytes

_EPHEMERAL = 49152
_next_port = _EPHEMERAL
_bound = {}  # port -> socket: one socket per UDP port, as lwIP (EADDRINUSE otherwise)


def _aton(ip):
    parts = ip.split(".")
    if len(parts) != 4:
        raise OSError(-202)  # lwIP's "name not known" (EAI_FAIL) for what is not an address
    try:
        b = bytes(int(p) for p in parts)
    except ValueError:
        raise OSError(-202) from None
    return b


def _ntoa(b):
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    if host == "localhost":
        host = "127.0.0.1"
    _aton(host)
    return [(AF_INET, type or SOCK_STREAM, proto, "", (host, int(port)))]


def _addr(a):
    if isinstance(a, (tuple, list)) and len(a) == 2:
        return _aton(a[0]), int(a[1])
    raise TypeError("address must be a tuple (ip, port)")


class socket(io.IOBase):
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=0):
        if af != AF_INET:
            raise OSError(errno.EAFNOSUPPORT)
        if type != SOCK_DGRAM:
            # Only the backbone's UDP is carried by the air.
            raise OSError(errno.EOPNOTSUPP)
        self._r = _real.socket(_real.AF_INET, _real.SOCK_DGRAM)
        self._r.bind(_real.getaddrinfo("127.0.0.1", 0)[0][-1])
        self._poll = select.poll()
        self._poll.register(self._r, select.POLLIN)
        self._port = 0
        self._peer = None
        self._timeout = None  # None: blocking forever; 0: non-blocking; ms otherwise
        self._closed = False

    # -- set-up -------------------------------------------------------------------------------

    def _announce(self, kind):
        air = _air.air_address()
        if air is not None:
            msg = (
                kind + struct.pack(">H", _air.next_seq()) + _air.MAC + struct.pack(">H", self._port)
            )
            self._r.sendto(msg, air)

    def bind(self, addr):
        global _next_port
        self._check()
        if self._port:
            raise OSError(errno.EINVAL)
        _ip, port = _addr(addr)
        if port == 0:
            while _next_port in _bound:
                _next_port = _EPHEMERAL + (_next_port + 1 - _EPHEMERAL) % 16000
            port = _next_port
            _next_port = _EPHEMERAL + (_next_port + 1 - _EPHEMERAL) % 16000
        if port in _bound:
            raise OSError(errno.EADDRINUSE)
        self._port = port
        _bound[port] = self
        self._announce(b"B")

    def connect(self, addr):
        self._check()
        self._peer = _addr(addr)
        if not self._port:
            self.bind(("0.0.0.0", 0))

    def setsockopt(self, level, opt, value):
        self._check()

    def setblocking(self, flag):
        self._timeout = None if flag else 0

    def settimeout(self, value):
        self._timeout = None if value is None else int(value * 1000)

    def close(self):
        if self._closed:
            return
        if self._port:
            self._announce(b"X")
            _bound.pop(self._port, None)
        self._closed = True
        self._r.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _check(self):
        if self._closed:
            raise OSError(errno.EBADF)

    # -- sending ------------------------------------------------------------------------------

    def sendto(self, data, addr):
        self._check()
        ip, port = _addr(addr)
        if not self._port:
            self.bind(("0.0.0.0", 0))
        sta = network._ifaces[network.STA_IF]  # (no WLAN object per send)
        if not sta.connected:
            raise OSError(errno.EHOSTUNREACH)  # lwIP: no route without a joined network
        n = len(data)
        if n > 1472:
            raise OSError(errno.EMSGSIZE)
        air = _air.air_address()
        if air is not None:
            if _own[0] is not sta.ip:
                _own[0], _own[1] = sta.ip, _aton(sta.ip)
            t = _TX
            t[0] = 0x55  # b"U"
            struct.pack_into(">H", t, 1, _air.next_seq())
            t[3:9] = _air.MAC
            t[9:13] = _own[1]
            struct.pack_into(">H", t, 13, self._port)
            t[15:19] = ip
            struct.pack_into(">H", t, 19, port)
            t[_TX_HEAD : _TX_HEAD + n] = data
            self._r.sendto(memoryview(t)[: _TX_HEAD + n], air)
        return n

    def send(self, data):
        if self._peer is None:
            raise OSError(errno.ENOTCONN)
        ip, port = self._peer
        return self.sendto(data, (_ntoa(ip), port))

    write = send

    # -- receiving ----------------------------------------------------------------------------

    def _wait(self):
        if self._timeout == 0:
            return bool(self._poll.poll(0))
        if self._timeout is None:
            return bool(self._poll.poll(-1))
        return bool(self._poll.poll(self._timeout))

    def recvfrom(self, n):
        self._check()
        end = None if self._timeout in (None, 0) else time.ticks_add(time.ticks_ms(), self._timeout)
        while True:
            if not self._wait():
                raise OSError(errno.EAGAIN if self._timeout == 0 else errno.ETIMEDOUT)
            d = self._r.recv(n + 7)  # an ESP32 allocates what recvfrom asks for, no more
            # U srcip(4) sport(2) payload; anything else (a stray datagram) is not ours
            if len(d) >= 7 and d[0:1] == b"U":
                src = (_ntoa(d[1:5]), struct.unpack(">H", d[5:7])[0])
                if self._peer is None or (_aton(src[0]), src[1]) == self._peer:
                    return d[7 : 7 + n], src
            if end is not None and time.ticks_diff(end, time.ticks_ms()) <= 0:
                raise OSError(errno.ETIMEDOUT)

    def recv(self, n):
        return self.recvfrom(n)[0]

    read = recv

    def readinto(self, buf):
        d = self.recv(len(buf))
        buf[: len(d)] = d
        return len(d)

    # -- stream protocol, so select.poll()/asyncio can wait on the socket ---------------------

    def ioctl(self, req, arg):
        if req == _STREAM_GET_FILENO:
            return -1 if self._closed else self._r.fileno()
        if req == _STREAM_POLL:
            ready = 0
            if arg & _POLL_RD and not self._closed and self._poll.poll(0):
                ready |= _POLL_RD
            if arg & _POLL_WR:
                ready |= _POLL_WR
            return ready
        if req == _STREAM_CLOSE:
            self.close()
            return 0
        return -1

# Virtual-board stand-in for the ESP32's `espnow` module (the C `_espnow` plus the
# espnow.py wrapper MicroPython freezes), as MicroPython's docs describe it: a singleton,
# 250-byte messages, at most 20 registered peers of which 6 encrypted, the broadcast peer,
# OSError(-code, "ESP_ERR_ESPNOW_...") errors, send() returning False with sync=True when the
# peer does not acknowledge (out of range), recv()/irecv()/recvinto() with timeouts and reused
# buffers, the peers_table with RSSI and time, stats(), any(), iteration, and a poll()able
# object for asyncio (aioespnow).

import hashlib
import io
import sys
import time

try:
    import _thread
except ImportError:  # a unix port built without threads: irq() callbacks cannot fire
    _thread = None

import _air
import network

MAX_DATA_LEN = 250
KEY_LEN = 16
ADDR_LEN = 6
MAX_TOTAL_PEER_NUM = 20
MAX_ENCRYPT_PEER_NUM = 6

_BASE = 0x3000 + 100  # ESP_ERR_ESPNOW_BASE = ESP_ERR_WIFI_BASE + 100
_ERR = {
    "ESP_ERR_ESPNOW_NOT_INIT": _BASE + 1,
    "ESP_ERR_ESPNOW_ARG": _BASE + 2,
    "ESP_ERR_ESPNOW_NO_MEM": _BASE + 3,
    "ESP_ERR_ESPNOW_FULL": _BASE + 4,
    "ESP_ERR_ESPNOW_NOT_FOUND": _BASE + 5,
    "ESP_ERR_ESPNOW_INTERNAL": _BASE + 6,
    "ESP_ERR_ESPNOW_EXIST": _BASE + 7,
    "ESP_ERR_ESPNOW_IF": _BASE + 8,
}
_STREAM_POLL = 3
_STREAM_GET_FILENO = 10
_POLL_RD = 1

_BCAST = b"\xff" * 6


def _raise(name):
    raise OSError(-_ERR[name], name)


def _is_multicast(mac):
    return mac[0] & 1 == 1


class _State:
    active = False
    peers = {}  # mac -> [lmk, channel, ifidx, encrypt]
    pmk = b"PMK1234567890123"
    timeout_ms = 300000
    rxbuf = 526
    rate = -1
    pm = None
    stats = [0, 0, 0, 0, 0]  # tx_pkts, tx_responses, tx_failures, rx_packets, rx_dropped
    callback = None
    callback_obj = None
    irq_thread = False


_S = _State


def _irq_loop():
    # The "receive interrupt": while a callback is set, call it whenever a message waits. A
    # callback that leaves messages unread is called again after a pause, not in a busy loop.
    import select as _select

    rx = _air.rx_socket()
    if rx is None:
        return
    p = _select.poll()
    p.register(rx, _select.POLLIN)
    while True:
        cb = _S.callback
        if cb is None or not _S.active:
            time.sleep_ms(20)
            continue
        if not p.poll(50):
            continue
        try:
            cb(_S.callback_obj)
        except Exception as e:  # noqa: BLE001 - as the scheduler does: report, carry on
            print("Unhandled exception in ESPNow irq callback")
            sys.print_exception(e)
        if p.poll(0):
            time.sleep_ms(10)


peers_table_ = {}


def _buf(obj, n):
    """``obj`` as bytes, exactly ``n`` long: a buffer of another length is a ValueError and
    anything without the buffer protocol a TypeError (modespnow.c _get_bytes_len)."""
    if isinstance(obj, str):
        obj = obj.encode()
    if not isinstance(obj, (bytes, bytearray, memoryview)):
        raise TypeError("object with buffer protocol required")
    if len(obj) != n:
        raise ValueError("invalid buffer length")
    return bytes(obj)


def _mac(mac):
    return _buf(mac, ADDR_LEN)


def _raise_arg():
    _raise("ESP_ERR_ESPNOW_ARG")


def _check_init():
    if not _S.active:
        _raise("ESP_ERR_ESPNOW_NOT_INIT")


def _peer(mac):
    """``mac`` as the peer table holds it, and its entry [lmk, channel, ifidx, encrypt];
    ESP_ERR_ESPNOW_NOT_FOUND when it is no peer."""
    mac = _mac(mac)
    if mac not in _S.peers:
        _raise("ESP_ERR_ESPNOW_NOT_FOUND")
    return mac, _S.peers[mac]


def _key(k):
    # An LMK: any false value is no key (no encryption), anything else must be 16 bytes.
    if not k:
        return b""
    return _buf(k, KEY_LEN)


# an air frame: F src(6) rssi(1) flags(1) fingerprint(4), then the message (at most 250)
_RX_MAX = 13 + 250


def _mac_at(k, d):
    """True when the peer MAC ``k`` is the frame ``d``'s source (d[1:7]), compared in place: a
    known peer costs no allocation, as modespnow.c hands out the peers table's bytes."""
    for i in range(6):
        if k[i] != d[1 + i]:
            return False
    return True


def _fingerprint(lmk):
    return hashlib.sha256(_S.pmk + lmk).digest()[:4]


class ESPNowBase(io.IOBase):
    def __init__(self):
        self.peers_table = peers_table_

    # -- configuration ------------------------------------------------------------------------

    def active(self, flag=None):
        if flag is None:
            return _S.active
        _S.active = bool(flag)
        if not _S.active:
            _S.peers.clear()
        f = _air.flags()
        _air.set_state(flags=(f | _air.FLAG_ESPNOW) if _S.active else (f & ~_air.FLAG_ESPNOW))
        return _S.active

    def config(self, *args, **kwargs):
        # As modespnow.c: works before active(True); one positional name to read (rxbuf or
        # timeout_ms: "rate" and "pm" can only be set), keywords to set; an unknown keyword
        # is a TypeError (argument parsing), an unknown name to read a ValueError.
        if len(args) > 1:
            raise TypeError(
                "function takes 2 positional arguments but %d were given" % (len(args) + 1)
            )
        for p, v in kwargs.items():
            if p in ("rxbuf", "timeout_ms", "rate"):
                if not isinstance(v, int):
                    raise TypeError("can't convert %s to int" % type(v).__name__)
                if p == "rate":
                    # wifi_phy_rate_t: accepted as the board accepts it; the radio model has
                    # one rate (docs/LAB.md)
                    if v >= 0:
                        _S.rate = v
                elif p == "rxbuf":
                    if v >= 0:
                        _S.rxbuf = v
                else:
                    _S.timeout_ms = v
            elif p == "pm":
                if not isinstance(v, tuple) or not 1 <= len(v) <= 2:
                    raise TypeError("pm should be set to tuple of length 2")
                _S.pm = tuple(int(x) for x in v)
            else:
                raise TypeError("unexpected keyword argument '%s'" % p)
        if not args:
            return None
        if args[0] == "rxbuf":
            return _S.rxbuf
        if args[0] == "timeout_ms":
            return _S.timeout_ms
        raise ValueError("unknown config param")

    # -- sending ------------------------------------------------------------------------------

    def send(self, *args):
        # send(msg) | send(mac, msg[, sync]), in modespnow.c's order: not initialised, then
        # the MAC (a false one, None or b"", means every registered peer), the message (any
        # buffer), then what esp_now_send() refuses: an empty or oversize message
        # (ESP_ERR_ESPNOW_ARG), the interface down, an unknown peer.
        if not 1 <= len(args) <= 3:
            raise TypeError("function takes from 2 to 4 positional arguments")
        _check_init()
        mac = args[0] if len(args) > 1 else None
        msg = args[1] if len(args) > 1 else args[0]
        sync = len(args) < 3 or args[2] is None or bool(args[2])
        mac = _mac(mac) if mac else None
        if isinstance(msg, str):
            msg = msg.encode()
        if not isinstance(msg, (bytes, bytearray, memoryview)):
            raise TypeError("object with buffer protocol required")
        if not 0 < len(msg) <= MAX_DATA_LEN:
            _raise_arg()
        if not network.wlan_active():
            _raise("ESP_ERR_ESPNOW_IF")
        if mac is None:
            targets = [m for m in _S.peers if not _is_multicast(m)]
        else:
            if mac not in _S.peers:
                _raise("ESP_ERR_ESPNOW_NOT_FOUND")
            targets = [mac]
        ok = True
        for dst in targets:
            peer = _S.peers[dst]
            header = b"\x00\x00\x00\x00"
            enc = peer[3]
            if enc:
                header = _fingerprint(peer[0])
            bcast = _is_multicast(dst)
            _S.stats[0] += 1
            flags = (1 if (sync and not bcast) else 0) | (2 if enc else 0)
            acked = _air.send_frame(dst, bytes((flags,)) + header + bytes(msg), sync and not bcast)
            # tx_responses counts every answer the driver's send callback gets (ACK or not),
            # tx_failures those without ACK; a broadcast is always a success. Without sync the
            # verdict is not waited for here, so it is not counted (docs/LAB.md).
            if bcast:
                acked = True
                _S.stats[1] += 1
            elif sync:
                _S.stats[1] += 1
                if not acked:
                    _S.stats[2] += 1
            ok = ok and acked
        return ok if sync else True

    # -- receiving ----------------------------------------------------------------------------

    def _take(self, data):
        """Read one datagram from the air into data=[peer, msg(, rssi, time)]; 0 if none."""
        rx = _air.rx_socket()
        if rx is None:
            return 0
        p = _air._rxpoll
        while p.poll(0):
            # what recv asks for is allocated in the board's heap, where an ESP32 reads into
            # the ring buffer it took at active(True): no more than the largest frame
            d = rx.recv(_RX_MAX)
            # F src(6) rssi(1) flags(1) fingerprint(4) payload
            if len(d) < 13 or d[0] != 0x46:  # b"F"
                continue
            if not _S.active or not network.wlan_active():
                continue
            rssi = d[7] - 256 if d[7] > 127 else d[7]
            if d[8] & 2:
                # Encrypted frame: only a registered encrypted peer with the same keys can
                # decrypt it; the hardware drops anything else.
                peer = _S.peers.get(bytes(d[1:7]))
                if peer is None or not peer[3] or _fingerprint(peer[0]) != d[9:13]:
                    continue
            _S.stats[3] += 1
            key = None
            for k in peers_table_:
                if _mac_at(k, d):
                    key = k
                    break
            now = time.ticks_ms()
            if key is None:
                key = bytes(d[1:7])
                peers_table_[key] = [rssi, now]
            else:
                entry = peers_table_[key]
                entry[0] = rssi
                entry[1] = now
            data[0] = key
            msg = data[1]
            n = len(d) - 13
            if isinstance(msg, bytearray):
                msg[:] = memoryview(d)[13:]
            else:
                data[1] = d[13:]
            if len(data) >= 4:
                data[2] = rssi
                data[3] = now
            return n
        return 0

    def recvinto(self, data, timeout_ms=None):
        # As modespnow.c: only "not initialised" is an error of the radio (with the WLAN
        # interface down nothing arrives and the read times out); data must be a list of at
        # least 2 whose message buffer holds 250 bytes.
        _check_init()
        if timeout_ms is None:
            timeout_ms = _S.timeout_ms
        elif not isinstance(timeout_ms, int):
            raise TypeError("can't convert %s to int" % type(timeout_ms).__name__)
        if not isinstance(data, list) or len(data) < 2:
            raise ValueError("ESPNow.recvinto(): Invalid argument")
        if not isinstance(data[1], bytearray):
            raise TypeError("object with buffer protocol required")  # a writable one
        n = self._take(data)
        if n or timeout_ms == 0:
            return n
        rx = _air.rx_socket()
        start = time.ticks_ms()
        while True:
            if timeout_ms < 0:
                wait = -1
            else:
                wait = timeout_ms - time.ticks_diff(time.ticks_ms(), start)
                if wait <= 0:
                    return 0
            if rx is None:
                time.sleep_ms(wait if wait >= 0 else 1000)
                continue
            if _air._rxpoll.poll(wait):
                n = self._take(data)
                if n:
                    return n

    def any(self):
        _check_init()
        rx = _air.rx_socket()
        return rx is not None and bool(_air._rxpoll.poll(0))

    def stats(self):
        return tuple(_S.stats)

    # -- peers --------------------------------------------------------------------------------

    def set_pmk(self, pmk):
        pmk = _buf(pmk, KEY_LEN)
        _check_init()
        _S.pmk = pmk

    def add_peer(self, mac, lmk=None, channel=None, ifidx=None, encrypt=None):
        mac = _mac(mac)
        lmk = _key(lmk)
        channel = 0 if channel is None else int(channel)
        ifidx = 0 if ifidx is None else int(ifidx)
        if encrypt is None:
            encrypt = bool(lmk)
        _check_init()
        if not 0 <= channel <= 14 or ifidx not in (0, 1):
            _raise_arg()  # esp_now_add_peer() refuses them
        if mac in _S.peers:
            _raise("ESP_ERR_ESPNOW_EXIST")
        if encrypt and _is_multicast(mac):
            _raise("ESP_ERR_ESPNOW_ARG")
        if len(_S.peers) >= MAX_TOTAL_PEER_NUM:
            _raise("ESP_ERR_ESPNOW_FULL")
        if encrypt and self.peer_count()[1] >= MAX_ENCRYPT_PEER_NUM:
            _raise("ESP_ERR_ESPNOW_FULL")
        _S.peers[mac] = [lmk, channel, ifidx, bool(encrypt)]

    def del_peer(self, mac):
        mac = _mac(mac)
        _check_init()
        mac, _p = _peer(mac)
        del _S.peers[mac]

    def mod_peer(self, mac, lmk=None, channel=None, ifidx=None, encrypt=None):
        mac = _mac(mac)
        _check_init()
        mac, p = _peer(mac)
        new = list(p)
        if lmk is not None:
            new[0] = _key(lmk)
            new[3] = bool(new[0])
        if channel is not None:
            new[1] = int(channel)
        if ifidx is not None:
            new[2] = int(ifidx)
        if encrypt is not None:
            new[3] = bool(encrypt)
        if not 0 <= new[1] <= 14 or new[2] not in (0, 1):
            _raise_arg()
        if new[3] and _is_multicast(mac):
            _raise_arg()
        if new[3] and not p[3] and self.peer_count()[1] >= MAX_ENCRYPT_PEER_NUM:
            _raise("ESP_ERR_ESPNOW_FULL")
        p[:] = new

    def get_peer(self, mac):
        mac = _mac(mac)
        _check_init()
        mac, p = _peer(mac)
        return (mac, (p[0] or bytes(KEY_LEN)), p[1], p[2], p[3])

    def get_peers(self):
        # esp_now_fetch_peer() skips broadcast and multicast peers
        _check_init()
        return tuple(self.get_peer(m) for m in _S.peers if not _is_multicast(m))

    def peer_count(self):
        _check_init()
        return (len(_S.peers), sum(1 for p in _S.peers.values() if p[3]))

    def irq(self, callback, arg=None):
        """Call callback(self) as soon as possible after a message arrives (the callback should
        read every waiting message with irecv(0)/recv(0)). On the ESP32 the receive interrupt
        schedules it; here a radio thread waits for the air's datagrams and calls it (the unix
        port runs no scheduled callback while the program sleeps or polls)."""
        if callback is not None and not callable(callback):
            raise ValueError("invalid handler")
        _S.callback = callback
        _S.callback_obj = self
        if callback is not None and _thread is not None and not _S.irq_thread:
            _S.irq_thread = True
            _thread.start_new_thread(_irq_loop, ())

    # -- stream protocol, so select.poll()/asyncio can wait on the object ------------------

    def ioctl(self, req, arg):
        rx = _air.rx_socket()
        if req == _STREAM_GET_FILENO:
            if rx is None:
                return -1
            return rx.fileno()
        if req == _STREAM_POLL:
            if rx is not None and arg & _POLL_RD and _air._rxpoll.poll(0):
                return _POLL_RD
            return 0
        return -1


class ESPNow(ESPNowBase):
    # Static buffers for alloc-free receipt of messages with ESPNow.irecv() (as espnow.py).
    _data = [None, bytearray(MAX_DATA_LEN)]
    _none_tuple = (None, None)

    def irecv(self, timeout_ms=None):
        n = self.recvinto(self._data, timeout_ms)
        return self._data if n else self._none_tuple

    def recv(self, timeout_ms=None):
        n = self.recvinto(self._data, timeout_ms)
        return [bytes(x) for x in self._data] if n else self._none_tuple

    def __iter__(self):
        return self

    def __next__(self):
        return self.irecv()  # as espnow.py: not initialised is ESP_ERR_ESPNOW_NOT_INIT

"""The ESP-NOW radio link (IF_RADIO), per MicroPython's espnow/aioespnow docs.

* One channel for every node (config "channel"); Wi-Fi power save off (``pm=PM_NONE``), or the
  radio sleeps between beacons and misses frames.
* ESP-NOW sends only to registered peers (``ESP_ERR_ESPNOW_NOT_FOUND`` otherwise) and holds at
  most 20 (``ESP_ERR_ESPNOW_FULL``): the broadcast peer stays registered, unicast peers are
  registered on demand and the least recently used one is evicted when the table is full.
* A unicast ``send(sync=True)`` returns False when the peer did not acknowledge (out of range):
  that is a link failure for the core.
* The RSSI of a frame's sender comes from ``peers_table`` (updated as the message is read).
* Frames above 250 bytes are refused by the core's encoders; the link checks again.
"""

import network

try:
    import aioespnow as _esp
except ImportError:  # a build without asyncio support
    _esp = None  # type: ignore[assignment]
import espnow

from mobility.compat import const

BROADCAST = b"\xff\xff\xff\xff\xff\xff"
_MAX_PEERS = const(20)
MAX_PAYLOAD = 250


class EspNowLink:
    def __init__(self, channel=1, log=None):
        self.log = log
        self.sta = network.WLAN(network.STA_IF)
        self.sta.active(True)
        try:
            self.sta.config(pm=network.WLAN.PM_NONE)
        except (AttributeError, ValueError):
            pass
        if not self.sta.isconnected():
            self.sta.config(channel=channel)
        self.channel = self.sta.config("channel")
        if self.channel != channel and log:
            log("channel_mismatch", {"want": channel, "have": self.channel})
        self.e = _esp.AIOESPNow() if _esp is not None else espnow.ESPNow()
        self.e.active(True)
        self.mac = self.sta.config("mac")
        self.lru = []  # unicast peers, least recently used first
        self._add(BROADCAST)
        self.sent = 0
        self.failed = 0

    def _add(self, mac):
        try:
            self.e.add_peer(mac)
        except OSError as err:
            if len(err.args) > 1 and err.args[1] == "ESP_ERR_ESPNOW_EXIST":
                return
            raise

    def _ensure_peer(self, mac):
        if mac in self.lru:
            if self.lru[-1] != mac:
                self.lru.remove(mac)
                self.lru.append(mac)
            return
        if len(self.lru) >= _MAX_PEERS - 1:  # one slot stays with the broadcast peer
            old = self.lru.pop(0)
            try:
                self.e.del_peer(old)
            except OSError:
                pass
            if self.log:
                self.log("peer_evicted", {"mac": old})
        self._add(mac)
        self.lru.append(bytes(mac))

    def send(self, mac, data):
        """Send synchronously; True when acknowledged (always True for broadcast)."""
        if len(data) > MAX_PAYLOAD:
            raise ValueError("frame", len(data))  # above 250 bytes
        self.sent += 1
        if mac == BROADCAST:
            return self.e.send(BROADCAST, data, False)
        self._ensure_peer(mac)
        try:
            ok = self.e.send(mac, data, True)
        except OSError as err:
            if len(err.args) > 1 and err.args[1] == "ESP_ERR_ESPNOW_NOT_FOUND":
                # someone deleted the peer behind our back: register and retry once
                self._add(mac)
                ok = self.e.send(mac, data, True)
            else:
                raise
        if not ok:
            self.failed += 1
        return ok

    def rssi(self, mac):
        entry = self.e.peers_table.get(mac)
        return entry[0] if entry else -127

    def poll_recv(self):
        """(mac, msg) of one waiting frame or (None, None); msg is a reused bytearray."""
        return self.e.irecv(0)

    async def arecv(self):
        return await self.e.airecv()

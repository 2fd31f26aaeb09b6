# Virtual-board stand-in for the ESP32's built-in `network` module (network.WLAN), as
# MicroPython documents it: STA and AP interfaces sharing one radio and one channel,
# active/connect/disconnect/isconnected/status/scan/config/ifconfig, power management
# constants. Access points come from the air (the lab scenario); without an air no access
# point is ever found.

import json

import _air

STA_IF = 0
AP_IF = 1

STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_BEACON_TIMEOUT = 200
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204

AUTH_OPEN = 0
AUTH_WEP = 1
AUTH_WPA_PSK = 2
AUTH_WPA2_PSK = 3
AUTH_WPA_WPA2_PSK = 4

_hostname = "mpy-" + _air.NAME


def hostname(name=None):
    global _hostname
    if name is None:
        return _hostname
    _hostname = name


def country(code=None):
    if code is None:
        return "01"


class _Iface:
    def __init__(self, ident):
        self.ident = ident
        self.active = False
        self.connected = False
        self.status = STAT_IDLE
        self.ssid = ""
        self.rssi = 0
        self.ip = "0.0.0.0"
        self.netmask = "0.0.0.0"
        self.gateway = "0.0.0.0"
        self.dns = "0.0.0.0"
        self.static = False  # ifconfig() set the address: connect() keeps it (no DHCP)
        self.pm = 1  # PM_PERFORMANCE: the ESP32's default (modem sleep between beacons)
        self.reconnects = -1
        self.txpower = 20
        self.ap_ssid = "ESP_" + "".join("%02X" % b for b in _air.MAC[3:])


_ifaces = [_Iface(STA_IF), _Iface(AP_IF)]


def _flags():
    f = 0
    if _ifaces[0].active or _ifaces[1].active:
        f |= _air.FLAG_WLAN
    if _ifaces[0].connected:
        f |= _air.FLAG_STA_CONNECTED
    # Power save misses frames only while a station is connected and no AP is up (see the
    # espnow docs, "ESPNow and Wifi Operation").
    if _ifaces[0].connected and _ifaces[0].pm != WLAN.PM_NONE and not _ifaces[1].active:
        f |= _air.FLAG_POWERSAVE
    return f | (_air.flags() & _air.FLAG_ESPNOW)


def _update():
    _air.set_state(flags=_flags())


def wlan_active():
    return _ifaces[0].active or _ifaces[1].active


class WLAN:
    IF_STA = STA_IF
    IF_AP = AP_IF
    PM_NONE = 0
    PM_PERFORMANCE = 1
    PM_POWERSAVE = 2
    SEC_OPEN = AUTH_OPEN
    SEC_WPA2 = AUTH_WPA2_PSK

    def __init__(self, interface_id=STA_IF):
        if interface_id not in (STA_IF, AP_IF):
            raise ValueError("invalid WLAN interface identifier")
        self._i = _ifaces[interface_id]

    def active(self, is_active=None):
        if is_active is None:
            return self._i.active
        self._i.active = bool(is_active)
        if not self._i.active:
            self._i.connected = False
            self._i.status = STAT_IDLE
        _update()
        return None

    def connect(self, ssid=None, key=None, *, bssid=None):
        i = self._i
        if i.ident != STA_IF:
            raise OSError("AP interface cannot connect")
        if not i.active:
            raise OSError("Wifi Not Started")
        if ssid is None:
            ssid = i.ssid
        body = ssid.encode()
        if i.static:
            # a static address (ifconfig before connect): no DHCP, the air is told
            body += b"\x00" + bytes(int(x) for x in i.ip.split("."))
        ans = _air.request(b"C", body, 2000)
        i.ssid = ssid
        if ans is None:
            i.connected = False
            i.status = STAT_NO_AP_FOUND
        else:
            r = json.loads(ans)
            i.connected = bool(r.get("ok"))
            i.status = STAT_GOT_IP if i.connected else r.get("status", STAT_NO_AP_FOUND)
            if i.connected and not i.static:
                i.ip = r["ip"]
                i.netmask = r.get("netmask", "255.255.255.0")
                i.gateway = r.get("gateway", "0.0.0.0")
                i.dns = i.gateway
            if i.connected:
                i.rssi = r.get("rssi", -50)
                # The radio follows the access point's channel (one radio, one channel).
                _air.set_state(channel=r.get("channel", _air.channel()))
        _update()

    def disconnect(self):
        self._i.connected = False
        self._i.status = STAT_IDLE
        if not self._i.static:
            self._i.ip = "0.0.0.0"
        _update()

    def isconnected(self):
        if self._i.ident == AP_IF:
            return False
        return self._i.connected

    def status(self, param=None):
        if param is None:
            return self._i.status
        if param == "rssi":
            if not self._i.connected:
                raise OSError("STA is not connected")
            return self._i.rssi
        if param == "stations":
            return []
        raise ValueError("unknown status param")

    def scan(self):
        if not self._i.active:
            raise OSError("Wifi Not Started")
        ans = _air.request(b"S", b"", 2000)
        if ans is None:
            return []
        out = []
        for ssid, bssid, ch, rssi, sec, hidden in json.loads(ans):
            out.append((ssid.encode(), bytes.fromhex(bssid), ch, rssi, sec, hidden))
        return out

    def config(self, *args, **kwargs):
        i = self._i
        if args and kwargs:
            raise TypeError("either get or set parameters")
        if args:
            if len(args) != 1:
                raise TypeError("can query only one param")
            p = args[0]
            if p == "mac":
                if i.ident == AP_IF:
                    # The ESP32's AP MAC is the station MAC + 1.
                    m = bytearray(_air.MAC)
                    m[5] = (m[5] + 1) & 0xFF
                    return bytes(m)
                return _air.MAC
            if p == "channel":
                return _air.channel()
            if p in ("ssid", "essid"):
                return i.ap_ssid if i.ident == AP_IF else i.ssid
            if p in ("pm", "reconnects", "txpower"):
                return getattr(i, p)
            if p in ("hostname", "dhcp_hostname"):
                return _hostname
            if p == "hidden":
                return False
            if p in ("security", "authmode"):
                return AUTH_OPEN
            raise ValueError("unknown config param")
        for p, v in kwargs.items():
            if p == "channel":
                if not 1 <= int(v) <= 14:
                    raise ValueError("channel must be 1..14")
                _air.set_state(channel=int(v))
            elif p == "pm":
                if v not in (0, 1, 2):
                    raise ValueError("invalid pm")
                i.pm = v
                _update()
            elif p in ("ssid", "essid"):
                i.ap_ssid = v
            elif p in ("reconnects", "txpower"):
                setattr(i, p, v)
            elif p in ("hostname", "dhcp_hostname"):
                hostname(v)
            elif p in (
                "mac",
                "key",
                "password",
                "security",
                "authmode",
                "hidden",
                "max_clients",
                "protocol",
            ):
                pass  # accepted and ignored as the air does not model them
            else:
                raise ValueError("unknown config param")

    def ifconfig(self, cfg=None):
        i = self._i
        if cfg is None:
            return (i.ip, i.netmask, i.gateway, i.dns)
        if cfg == "dhcp":
            i.static = False
            return
        i.ip, i.netmask, i.gateway, i.dns = cfg
        i.static = True

    def ipconfig(self, *args, **kwargs):
        if args == ("addr4",):
            return (self._i.ip, self._i.netmask)
        if args == ("gw4",):
            return self._i.gateway
        raise ValueError("unknown ipconfig param")

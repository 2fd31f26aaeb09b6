# Virtual-board stand-in for the ESP32's built-in `network` module (network.WLAN), as
# MicroPython documents it: STA and AP interfaces sharing one radio and one channel,
# active/connect/disconnect/isconnected/status/scan/config/ifconfig, power management
# constants. Access points come from the air (the lab scenario); without an air no access
# point is ever found.

import json
import os

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
AUTH_WPA2_ENTERPRISE = 5
AUTH_WPA3_PSK = 6
AUTH_WPA2_WPA3_PSK = 7
AUTH_WAPI_PSK = 8
AUTH_OWE = 9

# WLAN.config(protocol=...) bits (wifi_protocol_t): 802.11b/g/n and Espressif's long-range mode
MODE_11B = 1
MODE_11G = 2
MODE_11N = 4
MODE_LR = 8

# The default hostname a board's firmware has (MICROPY_PY_NETWORK_HOSTNAME_DEFAULT)
_hostname = "mpy-" + (os.getenv("VB_CHIP") or "esp32").replace("-", "")
HOSTNAME_MAX_LEN = 32


def _wifi_error(text):
    # network_common.c esp_exceptions(): an ESP_ERR_WIFI_* code is OSError(text)
    raise OSError(text)


def _invalid_arg():
    # esp_exceptions() of ESP_ERR_INVALID_ARG (0x102): check_esp_err's OSError(-code, name)
    raise OSError(-0x102, "ESP_ERR_INVALID_ARG")


def hostname(name=None):
    global _hostname
    if name is None:
        return _hostname
    if not isinstance(name, str):
        raise TypeError("can't convert %s to str" % type(name).__name__)
    if len(name) > HOSTNAME_MAX_LEN:
        raise ValueError("hostname too long")
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
        self.txpower = 20.0  # dBm, kept in the driver's quarter-dBm steps
        self.protocol = MODE_11B | MODE_11G | MODE_11N
        self.hidden = False
        self.authmode = AUTH_OPEN
        self.max_clients = 10
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
    SEC_WEP = AUTH_WEP
    SEC_WPA = AUTH_WPA_PSK
    SEC_WPA2 = AUTH_WPA2_PSK
    SEC_WPA_WPA2 = AUTH_WPA_WPA2_PSK
    SEC_WPA2_ENT = AUTH_WPA2_ENTERPRISE
    SEC_WPA3 = AUTH_WPA3_PSK
    SEC_WPA2_WPA3 = AUTH_WPA2_WPA3_PSK
    SEC_WAPI = AUTH_WAPI_PSK
    SEC_OWE = AUTH_OWE

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
        return self._i.active

    def connect(self, ssid=None, key=None, *, bssid=None):
        i = self._i
        if bssid is not None and len(bssid) != 6:
            raise ValueError
        if not wlan_active():
            _wifi_error("Wifi Not Started")
        if i.ident != STA_IF or not i.active:
            _wifi_error("Wifi Invalid Mode")  # esp_wifi_connect() without the STA mode
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
        if not wlan_active():
            _wifi_error("Wifi Not Started")
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
            return self._i.status if self._i.ident == STA_IF else None
        if param == "rssi":
            self._require(STA_IF)
            if not self._i.connected:
                _wifi_error("Wifi Not Connected")
            return self._i.rssi
        if param == "stations":
            self._require(AP_IF)
            return []
        raise ValueError("unknown status param")

    def _require(self, ident):
        if self._i.ident != ident:
            raise OSError("STA required" if ident == STA_IF else "AP required")

    def scan(self):
        if not _ifaces[STA_IF].active:
            raise OSError("STA must be active")
        ans = _air.request(b"S", b"", 2000)
        if ans is None:
            return []
        out = []
        for ssid, bssid, ch, rssi, sec, hidden in json.loads(ans):
            out.append((ssid.encode(), bytes.fromhex(bssid), ch, rssi, sec, hidden))
        return out

    def config(self, *args, **kwargs):
        # network_wlan.c network_wlan_config(): keywords set, one positional name reads; the
        # AP's own settings need the AP interface, reconnects and hostname the STA ("AP
        # required"/"STA required"); an unknown name is a ValueError.
        i = self._i
        if args and kwargs:
            raise TypeError("either pos or kw args are allowed")
        for p, v in kwargs.items():
            if p == "mac":
                if not isinstance(v, (bytes, bytearray)):
                    raise TypeError("object with buffer protocol required")
                if len(v) != 6:
                    raise ValueError("invalid buffer length")
                # accepted; the air knows a board by its MAC, which stays (docs/LAB.md)
            elif p in ("ssid", "essid"):
                self._require(AP_IF)
                i.ap_ssid = str(v)[:32]
            elif p == "hidden":
                self._require(AP_IF)
                i.hidden = bool(v)
            elif p in ("security", "authmode"):
                self._require(AP_IF)
                i.authmode = int(v)
            elif p in ("key", "password"):
                self._require(AP_IF)
            elif p == "channel":
                ch = int(v)
                if not wlan_active():
                    _wifi_error("Wifi Not Started")
                if not 1 <= ch <= 14:
                    _invalid_arg()  # esp_wifi_set_channel()
                _air.set_state(channel=ch)
            elif p in ("hostname", "dhcp_hostname"):
                hostname(v)
            elif p == "max_clients":
                self._require(AP_IF)
                i.max_clients = int(v)
            elif p == "reconnects":
                n = int(v)
                self._require(STA_IF)
                i.reconnects = n if n >= -1 else -1
            elif p == "txpower":
                q = int(float(v) * 4)  # quarter dBm, as esp_wifi_set_max_tx_power() takes
                if not wlan_active():
                    _wifi_error("Wifi Not Started")
                if not 8 <= q <= 84:
                    _invalid_arg()
                for f in _ifaces:
                    f.txpower = q * 0.25  # one transmitter
            elif p == "protocol":
                bits = int(v)
                if bits == 0 or bits & ~(MODE_11B | MODE_11G | MODE_11N | MODE_LR):
                    _invalid_arg()
                # accepted as the board accepts it; the radio model has one PHY (docs/LAB.md)
                i.protocol = bits
            elif p == "pm":
                pm = int(v)
                if pm not in (WLAN.PM_NONE, WLAN.PM_PERFORMANCE, WLAN.PM_POWERSAVE):
                    _invalid_arg()  # esp_wifi_set_ps()
                for f in _ifaces:
                    f.pm = pm  # one setting for the radio
                _update()
            else:
                raise ValueError("unknown config param")
        if kwargs:
            return None
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
        if p in ("ssid", "essid"):
            return i.ap_ssid if i.ident == AP_IF else i.ssid
        if p == "hidden":
            self._require(AP_IF)
            return i.hidden
        if p in ("security", "authmode"):
            self._require(AP_IF)
            return i.authmode
        if p == "channel":
            return _air.channel()
        if p == "ifname":
            return "sta" if i.ident == STA_IF else "ap"
        if p in ("hostname", "dhcp_hostname"):
            self._require(STA_IF)
            return _hostname
        if p == "max_clients":
            return i.max_clients
        if p == "reconnects":
            self._require(STA_IF)
            return i.reconnects
        if p == "txpower":
            if not wlan_active():
                _wifi_error("Wifi Not Started")
            return i.txpower
        if p == "protocol":
            return i.protocol
        if p == "pm":
            return i.pm
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

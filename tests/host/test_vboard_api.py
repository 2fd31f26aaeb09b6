"""The virtual board's espnow, aioespnow, network and machine as MicroPython's ESP32 port has
them: every error the real board raises, raised the same (the table in docs/LAB.md, "The API
as a virtual board provides it", names the test of each row).

The checks run on the real MicroPython unix port with the shims (boards/shims/) first on the
path, no air: a radio alone in a field (a unicast send gets no ACK). The reference is the ESP32
port's source (ports/esp32/modespnow.c, network_wlan.c, modmachine.c; espnow.py and aioespnow.py
frozen beside them) and MicroPython's documentation of these modules.
"""

import os
import subprocess
import textwrap
import time

import pytest

from hosttools.paths import PACKAGE_DIR
from hosttools.vboard import SHIMS_DIR, micropython_exe
from tests.host._vboards import Lab

PRELUDE = """
import sys
sys.path[:0] = [%r]
import network, espnow, aioespnow, machine
def t(name, f):
    try:
        r = f()
        print(name, "->", repr(r))
    except Exception as e:
        print(name, "!!", type(e).__name__, " ".join(repr(a) for a in e.args))
"""

NOT_INIT = "OSError -12389"
ARG = "OSError -12390"
NOT_FOUND = "OSError -12393"
EXIST = "OSError -12395"
IF = "OSError -12396"
FULL = "OSError -12392"
INVALID_ARG = "OSError -258"


def run(body: str, chip: str = "esp32") -> dict:
    """Run ``body`` (calls of t(name, callable)) on the unix port with the shims; the outcome
    of each name: "-> repr" or "!! Type first-arg"."""
    script = PRELUDE % str(SHIMS_DIR) + textwrap.dedent(body)
    env = dict(os.environ, VB_MAC="02:52:4f:00:00:01", VB_CHIP=chip, VB_NAME="api")
    env.pop("VB_AIR", None)
    r = subprocess.run(
        [micropython_exe(), "-X", "heapsize=2M", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(PACKAGE_DIR.parent),
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = {}
    for line in r.stdout.splitlines():
        for sep in (" -> ", " !! "):
            if sep in line:
                name, rest = line.split(sep, 1)
                out[name] = ("-> " if sep == " -> " else "") + rest
    return out


def err(outcome: str, kind: str) -> bool:
    return outcome.startswith(kind)


# -- espnow ------------------------------------------------------------------------------------


def test_espnow_send_errors_as_the_board():
    o = run(
        """
        e = espnow.ESPNow()
        sta = network.WLAN(network.STA_IF)
        peer = b"\\x02" * 6
        t("send_not_init", lambda: e.send(peer, b"x"))
        t("recv_not_init", lambda: e.recv(0))
        t("any_not_init", lambda: e.any())
        t("next_not_init", lambda: next(e))
        t("active", lambda: e.active(True))
        t("send_if_down", lambda: e.send(b"\\xff" * 6, b"x"))
        t("sta", lambda: sta.active(True))
        t("send_unknown_peer", lambda: e.send(peer, b"x"))
        t("add", lambda: e.add_peer(peer))
        t("send_empty", lambda: e.send(peer, b""))
        t("send_251", lambda: e.send(peer, b"x" * 251))
        t("send_250_no_ack", lambda: e.send(peer, b"x" * 250))
        t("send_str", lambda: e.send(peer, "abc", True))
        t("send_nosync", lambda: e.send(peer, b"x", False))
        t("send_mac_5", lambda: e.send(b"\\x02" * 5, b"x"))
        t("send_mac_int", lambda: e.send(7, b"x"))
        t("send_msg_int", lambda: e.send(peer, 7))
        t("send_all_none", lambda: e.send(None, b"x"))
        t("send_all_empty_mac", lambda: e.send(b"", b"x"))
        t("send_one_arg", lambda: e.send(b"x"))
        t("stats", lambda: e.stats())
        """
    )
    assert err(o["send_not_init"], NOT_INIT) and "'ESP_ERR_ESPNOW_NOT_INIT'" in o["send_not_init"]
    assert err(o["recv_not_init"], NOT_INIT)
    assert err(o["any_not_init"], NOT_INIT)
    assert err(o["next_not_init"], NOT_INIT)  # espnow.py's __next__ is irecv()
    assert o["active"] == "-> True"
    assert err(o["send_if_down"], IF)
    assert err(o["send_unknown_peer"], NOT_FOUND)
    assert "'ESP_ERR_ESPNOW_NOT_FOUND'" in o["send_unknown_peer"]
    # modespnow.c passes the length to esp_now_send(), which refuses 0 and > 250 bytes
    assert err(o["send_empty"], ARG) and "'ESP_ERR_ESPNOW_ARG'" in o["send_empty"]
    assert err(o["send_251"], ARG)
    assert o["send_250_no_ack"] == "-> False"  # alone in the field: no ACK
    assert o["send_str"] == "-> False"
    assert o["send_nosync"] == "-> True"
    assert o["send_mac_5"] == "ValueError 'invalid buffer length'"
    assert err(o["send_mac_int"], "TypeError")
    assert err(o["send_msg_int"], "TypeError")
    assert o["send_all_none"] == "-> False"  # every registered peer, none answers
    assert o["send_all_empty_mac"] == "-> False"  # a false MAC is every peer too
    assert o["send_one_arg"] == "-> False"
    tx, responses, failures, rx, dropped = eval(o["stats"][3:])
    assert (tx, responses, failures, rx, dropped) == (6, 5, 5, 0, 0)


def test_espnow_peers_as_the_board():
    o = run(
        """
        e = espnow.ESPNow()
        network.WLAN(network.STA_IF).active(True)
        p = b"\\x02\\x00\\x00\\x00\\x00\\x01"
        t("add_not_init", lambda: e.add_peer(p))
        t("count_not_init", lambda: e.peer_count())
        t("peers_not_init", lambda: e.get_peers())
        t("pmk_not_init", lambda: e.set_pmk(b"k" * 16))
        e.active(True)
        t("add", lambda: e.add_peer(p))
        t("add_again", lambda: e.add_peer(p))
        t("add_bad_mac", lambda: e.add_peer(b"\\x01\\x02"))
        t("add_bad_lmk", lambda: e.add_peer(b"\\x02" * 6, b"short"))
        t("add_channel_15", lambda: e.add_peer(b"\\x03" * 6, channel=15))
        t("add_ifidx_2", lambda: e.add_peer(b"\\x03" * 6, ifidx=2))
        t("add_bcast_encrypted", lambda: e.add_peer(b"\\xff" * 6, b"k" * 16))
        t("add_bcast", lambda: e.add_peer(b"\\xff" * 6))
        t("get", lambda: e.get_peer(p))
        t("get_unknown", lambda: e.get_peer(b"\\x09" * 6))
        t("mod_unknown", lambda: e.mod_peer(b"\\x09" * 6, channel=3))
        t("mod", lambda: e.mod_peer(p, channel=3))
        t("get_after_mod", lambda: e.get_peer(p)[2])
        t("get_peers", lambda: [x[0] for x in e.get_peers()])
        t("count", lambda: e.peer_count())
        t("del_unknown", lambda: e.del_peer(b"\\x09" * 6))
        t("del", lambda: e.del_peer(p))
        t("pmk_short", lambda: e.set_pmk(b"k"))
        t("pmk", lambda: e.set_pmk(b"k" * 16))
        for i in range(19):
            e.add_peer(bytes([2, 0, 0, 0, 1, i]))
        t("add_21st", lambda: e.add_peer(b"\\x02\\x00\\x00\\x00\\x02\\x00"))
        e.active(False)
        e.active(True)
        t("count_after_reinit", lambda: e.peer_count())
        for i in range(6):
            e.add_peer(bytes([2, 0, 0, 0, 3, i]), b"k" * 16)
        t("add_7th_encrypted", lambda: e.add_peer(b"\\x02\\x00\\x00\\x00\\x04\\x00", b"k" * 16))
        t("limits", lambda: (espnow.MAX_DATA_LEN, espnow.KEY_LEN, espnow.ADDR_LEN,
                             espnow.MAX_TOTAL_PEER_NUM, espnow.MAX_ENCRYPT_PEER_NUM))
        """
    )
    for k in ("add_not_init", "count_not_init", "peers_not_init", "pmk_not_init"):
        assert err(o[k], NOT_INIT), k
    assert o["add"] == "-> None"
    assert err(o["add_again"], EXIST)
    assert o["add_bad_mac"] == "ValueError 'invalid buffer length'"
    assert o["add_bad_lmk"] == "ValueError 'invalid buffer length'"
    assert err(o["add_channel_15"], ARG)
    assert err(o["add_ifidx_2"], ARG)
    assert err(o["add_bcast_encrypted"], ARG)
    assert o["add_bcast"] == "-> None"
    assert o["get"] == "-> (%r, %r, 0, 0, False)" % (b"\x02\x00\x00\x00\x00\x01", bytes(16))
    assert err(o["get_unknown"], NOT_FOUND)
    assert err(o["mod_unknown"], NOT_FOUND)
    assert o["get_after_mod"] == "-> 3"
    # esp_now_fetch_peer() leaves out broadcast and multicast peers
    assert o["get_peers"] == "-> [%r]" % b"\x02\x00\x00\x00\x00\x01"
    assert o["count"] == "-> (2, 0)"
    assert err(o["del_unknown"], NOT_FOUND)
    assert o["pmk_short"] == "ValueError 'invalid buffer length'"
    assert o["pmk"] == "-> None"
    assert err(o["add_21st"], FULL)
    assert o["count_after_reinit"] == "-> (0, 0)"  # active(False) forgets every peer
    assert err(o["add_7th_encrypted"], FULL)
    assert o["limits"] == "-> (250, 16, 6, 20, 6)"


def test_espnow_config_recv_and_irq_arguments():
    o = run(
        """
        e = espnow.ESPNow()
        t("cfg_before_active", lambda: e.config(timeout_ms=10, rxbuf=1024))
        t("get_timeout", lambda: e.config("timeout_ms"))
        t("get_rxbuf", lambda: e.config("rxbuf"))
        t("get_rate", lambda: e.config("rate"))
        t("get_unknown", lambda: e.config("foo"))
        t("set_unknown", lambda: e.config(foo=1))
        t("set_rate", lambda: e.config(rate=0x29))  # WIFI_PHY_RATE_LORA_250K
        t("set_pm", lambda: e.config(pm=(75, 25)))
        t("set_pm_bad", lambda: e.config(pm=75))
        e.active(True)
        t("recv_if_down", lambda: e.recv(0))
        network.WLAN(network.STA_IF).active(True)
        t("recv_timeout", lambda: e.recv(5))
        t("irecv_default_timeout", lambda: e.irecv())
        t("recvinto_bad", lambda: e.recvinto([bytearray(250)], 0))
        t("recvinto_bytes", lambda: e.recvinto([None, bytes(250)], 0))
        t("recvinto", lambda: e.recvinto([None, bytearray(250)], 0))
        t("any", lambda: e.any())
        t("irq_bad", lambda: e.irq(5))
        t("irq_none", lambda: e.irq(None))
        t("peers_table", lambda: e.peers_table)
        a = aioespnow.AIOESPNow()
        t("aio_is_espnow", lambda: isinstance(a, espnow.ESPNow))
        t("aio_methods", lambda: [hasattr(a, m) for m in ("arecv", "airecv", "asend")])
        """
    )
    assert o["cfg_before_active"] == "-> None"
    assert o["get_timeout"] == "-> 10"
    assert o["get_rxbuf"] == "-> 1024"
    assert o["get_rate"] == "ValueError 'unknown config param'"  # rate can only be set
    assert o["get_unknown"] == "ValueError 'unknown config param'"
    assert err(o["set_unknown"], "TypeError")
    assert o["set_rate"] == "-> None"
    assert o["set_pm"] == "-> None"
    assert o["set_pm_bad"] == "TypeError 'pm should be set to tuple of length 2'"
    assert o["recv_if_down"] == "-> (None, None)"  # nothing arrives; no error (modespnow.c)
    assert o["recv_timeout"] == "-> (None, None)"
    assert o["irecv_default_timeout"] == "-> (None, None)"  # config(timeout_ms=10)
    assert o["recvinto_bad"] == "ValueError 'ESPNow.recvinto(): Invalid argument'"
    assert err(o["recvinto_bytes"], "TypeError")
    assert o["recvinto"] == "-> 0"
    assert o["any"] == "-> False"
    assert o["irq_bad"] == "ValueError 'invalid handler'"
    assert o["irq_none"] == "-> None"
    assert o["peers_table"] == "-> {}"
    assert o["aio_is_espnow"] == "-> True"
    assert o["aio_methods"] == "-> [True, True, True]"


# -- network.WLAN ------------------------------------------------------------------------------


def test_wlan_config_keys_as_the_board():
    o = run(
        """
        sta = network.WLAN(network.STA_IF)
        ap = network.WLAN(network.AP_IF)
        t("bad_if", lambda: network.WLAN(2))
        t("sta_active_default", lambda: sta.active())
        t("ap_active_default", lambda: ap.active())
        t("channel_not_started", lambda: sta.config(channel=6))
        t("txpower_not_started", lambda: sta.config("txpower"))
        t("scan_not_active", lambda: sta.scan())
        t("connect_not_started", lambda: sta.connect("x"))
        t("disconnect_not_started", lambda: sta.disconnect())
        t("active_true", lambda: sta.active(True))
        t("both", lambda: sta.config("channel", channel=1))
        t("two_names", lambda: sta.config("channel", "pm"))
        t("unknown_get", lambda: sta.config("foo"))
        t("unknown_set", lambda: sta.config(foo=1))
        t("channel_6", lambda: sta.config(channel=6))
        t("channel", lambda: sta.config("channel"))
        t("channel_0", lambda: sta.config(channel=0))
        t("channel_15", lambda: sta.config(channel=15))
        t("txpower_default", lambda: sta.config("txpower"))
        t("txpower_8_5", lambda: sta.config(txpower=8.5))
        t("txpower", lambda: sta.config("txpower"))
        t("txpower_30", lambda: sta.config(txpower=30))
        t("pm_default", lambda: sta.config("pm"))
        t("pm_none", lambda: sta.config(pm=sta.PM_NONE))
        t("pm", lambda: sta.config("pm"))
        t("pm_bad", lambda: sta.config(pm=7))
        t("pm_consts", lambda: (sta.PM_NONE, sta.PM_PERFORMANCE, sta.PM_POWERSAVE))
        t("protocol_default", lambda: sta.config("protocol"))
        t("protocol_lr", lambda: sta.config(protocol=network.MODE_LR))
        t("protocol", lambda: sta.config("protocol"))
        t("protocol_bgnlr", lambda: sta.config(protocol=network.MODE_11B | network.MODE_11G
                                               | network.MODE_11N | network.MODE_LR))
        t("protocol_bad", lambda: sta.config(protocol=0x40))
        t("modes", lambda: (network.MODE_11B, network.MODE_11G, network.MODE_11N,
                            network.MODE_LR))
        t("reconnects_default", lambda: sta.config("reconnects"))
        t("reconnects_set", lambda: sta.config(reconnects=3))
        t("reconnects", lambda: sta.config("reconnects"))
        t("reconnects_ap", lambda: ap.config("reconnects"))
        t("reconnects_ap_set", lambda: ap.config(reconnects=1))
        t("hostname_default", lambda: sta.config("hostname"))
        t("hostname_set", lambda: sta.config(hostname="roam-a1"))
        t("hostname", lambda: network.hostname())
        t("hostname_ap", lambda: ap.config("hostname"))
        t("hostname_long", lambda: network.hostname("x" * 33))
        t("mac", lambda: sta.config("mac"))
        t("ap_mac", lambda: ap.config("mac"))
        t("mac_bad", lambda: sta.config(mac=b"\\x01"))
        t("ssid_on_sta", lambda: sta.config(ssid="x"))
        t("hidden_on_sta", lambda: sta.config("hidden"))
        t("security_on_sta", lambda: sta.config("security"))
        t("key_on_sta", lambda: sta.config(key="password"))
        t("ap_ssid", lambda: ap.config(ssid="roam-ap", key="password", security=3))
        t("ap_ssid_get", lambda: ap.config("ssid"))
        t("ap_security", lambda: ap.config("security"))
        t("ifname", lambda: (sta.config("ifname"), ap.config("ifname")))
        t("sec", lambda: (sta.SEC_OPEN, sta.SEC_WEP, sta.SEC_WPA, sta.SEC_WPA2,
                          sta.SEC_WPA_WPA2, sta.SEC_WPA2_ENT, sta.SEC_WPA3, sta.SEC_WPA2_WPA3,
                          sta.SEC_WAPI, sta.SEC_OWE))
        """
    )
    assert o["bad_if"] == "ValueError 'invalid WLAN interface identifier'"
    assert o["sta_active_default"] == "-> False"
    assert o["ap_active_default"] == "-> False"
    assert o["channel_not_started"] == "OSError 'Wifi Not Started'"
    assert o["txpower_not_started"] == "OSError 'Wifi Not Started'"
    assert o["scan_not_active"] == "OSError 'STA must be active'"
    assert o["connect_not_started"] == "OSError 'Wifi Not Started'"
    assert o["disconnect_not_started"] == "OSError 'Wifi Not Started'"
    assert o["active_true"] == "-> True"
    assert o["both"] == "TypeError 'either pos or kw args are allowed'"
    assert o["two_names"] == "TypeError 'can query only one param'"
    assert o["unknown_get"] == o["unknown_set"] == "ValueError 'unknown config param'"
    assert o["channel_6"] == "-> None" and o["channel"] == "-> 6"
    assert err(o["channel_0"], INVALID_ARG) and err(o["channel_15"], INVALID_ARG)
    assert o["txpower_default"] == "-> 20.0"
    assert o["txpower_8_5"] == "-> None" and o["txpower"] == "-> 8.5"
    assert err(o["txpower_30"], INVALID_ARG)
    assert o["pm_default"] == "-> 1"  # PM_PERFORMANCE
    assert o["pm"] == "-> 0"
    assert err(o["pm_bad"], INVALID_ARG)
    assert o["pm_consts"] == "-> (0, 1, 2)"
    assert o["protocol_default"] == "-> 7"  # 802.11 b/g/n
    assert o["protocol_lr"] == "-> None" and o["protocol"] == "-> 8"
    assert o["protocol_bgnlr"] == "-> None"
    assert err(o["protocol_bad"], INVALID_ARG)
    assert o["modes"] == "-> (1, 2, 4, 8)"
    assert o["reconnects_default"] == "-> -1"
    assert o["reconnects"] == "-> 3"
    assert o["reconnects_ap"] == o["reconnects_ap_set"] == "OSError 'STA required'"
    assert o["hostname_default"] == "-> 'mpy-esp32'"
    assert o["hostname"] == "-> 'roam-a1'"
    assert o["hostname_ap"] == "OSError 'STA required'"
    assert err(o["hostname_long"], "ValueError")
    assert o["mac"] == "-> %r" % b"\x02\x52\x4f\x00\x00\x01"
    assert o["ap_mac"] == "-> %r" % b"\x02\x52\x4f\x00\x00\x02"
    assert o["mac_bad"] == "ValueError 'invalid buffer length'"
    for k in ("ssid_on_sta", "hidden_on_sta", "security_on_sta", "key_on_sta"):
        assert o[k] == "OSError 'AP required'", k
    assert o["ap_ssid"] == "-> None"
    assert o["ap_ssid_get"] == "-> 'roam-ap'"
    assert o["ap_security"] == "-> 3"
    assert o["ifname"] == "-> ('sta', 'ap')"
    assert o["sec"] == "-> (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)"


def test_wlan_status_and_hostname_per_chip():
    o = run(
        """
        sta = network.WLAN(network.STA_IF)
        ap = network.WLAN(network.AP_IF)
        sta.active(True)
        t("status", lambda: sta.status())
        t("status_ap", lambda: ap.status())
        t("rssi_not_connected", lambda: sta.status("rssi"))
        t("stations_on_sta", lambda: sta.status("stations"))
        t("status_bad", lambda: sta.status("foo"))
        t("connect_bssid", lambda: sta.connect("x", "y", bssid=b"12"))
        t("connect_ap_only", lambda: (sta.active(False), ap.active(True), ap.connect("x")))
        t("isconnected_ap", lambda: ap.isconnected())
        t("hostname", lambda: network.hostname())
        t("stat", lambda: (network.STAT_IDLE, network.STAT_CONNECTING, network.STAT_GOT_IP,
                           network.STAT_NO_AP_FOUND, network.STAT_WRONG_PASSWORD))
        """,
        chip="esp32s3",
    )
    assert o["status"] == "-> 1000"  # STAT_IDLE
    assert o["status_ap"] == "-> None"
    assert o["rssi_not_connected"] == "OSError 'Wifi Not Connected'"
    assert o["stations_on_sta"] == "OSError 'AP required'"
    assert o["status_bad"] == "ValueError 'unknown status param'"
    assert err(o["connect_bssid"], "ValueError")
    assert o["connect_ap_only"] == "OSError 'Wifi Invalid Mode'"
    assert o["isconnected_ap"] == "-> False"
    assert o["hostname"] == "-> 'mpy-esp32s3'"
    assert o["stat"] == "-> (1000, 1001, 1010, 201, 202)"


# -- machine and the state after boot ------------------------------------------------------------


def test_machine_functions_the_firmware_uses():
    o = run(
        """
        t("unique_id", lambda: machine.unique_id())
        t("reset_cause", lambda: machine.reset_cause())
        t("causes", lambda: (machine.PWRON_RESET, machine.HARD_RESET, machine.WDT_RESET,
                             machine.DEEPSLEEP_RESET, machine.SOFT_RESET))
        t("pin", lambda: machine.Pin(0, machine.Pin.IN, machine.Pin.PULL_UP).value())
        t("freq", lambda: machine.freq())
        t("wdt_bad", lambda: machine.WDT(timeout=0))
        """
    )
    assert o["unique_id"] == "-> %r" % b"\x02\x52\x4f\x00\x00\x01"
    assert o["reset_cause"] == "-> 1"
    assert o["causes"] == "-> (1, 2, 3, 4, 5)"
    assert o["pin"] == "-> 1"  # pulled up, not held
    assert o["freq"] == "-> 160000000"
    assert err(o["wdt_bad"], "ValueError")


@pytest.fixture
def lab(tmp_path):
    with Lab(tmp_path, with_air=False) as lab:
        yield lab


def test_state_after_boot_and_reset_causes(lab):
    """What an ESP32 leaves its REPL in after boot: no boot.py on the board, so radio off (STA
    and AP inactive, ESP-NOW not initialised), sys.path with frozen modules before /lib, the
    cwd /, reset_cause() PWRON_RESET; after machine.reset() (esp_restart(): SW_CPU_RESET) it
    is SOFT_RESET, and a soft reset (Ctrl-D) leaves it as the last chip reset made it."""
    b = lab.board("a", "02:52:4f:00:00:09")
    seen: list[bytes] = []
    b.on_output = seen.append  # everything the board prints from now on
    code = (
        "import network, espnow, machine, sys, os\n"
        "print(network.WLAN(network.STA_IF).active(), network.WLAN(network.AP_IF).active(),"
        " espnow.ESPNow().active(), sys.path, os.getcwd(), machine.reset_cause())\n"
    )
    out = lab.mpremote(b, "exec", code)
    assert out.strip().splitlines()[-1] == "False False False ['', '.frozen', '/lib'] / 1"
    lab.mpremote(b, "exec", "--no-follow", "import machine; machine.reset()")
    time.sleep(1.5)
    out = lab.mpremote(b, "exec", "import machine; print(machine.reset_cause())")
    assert out.strip().splitlines()[-1] == "5"
    assert b"rst:0xc (SW_CPU_RESET)" in b"".join(seen)  # the ROM's line of esp_restart()
    n = len(b"".join(seen).split(b"rst:"))
    out = lab.mpremote(b, "soft-reset", "exec", "import machine; print(machine.reset_cause())")
    assert out.strip().splitlines()[-1] == "5"
    assert len(b"".join(seen).split(b"rst:")) == n  # a soft reset resets no chip


@pytest.fixture
def air_lab(tmp_path):
    with Lab(tmp_path) as lab:
        lab.air.add_access_point("lan", channel=6)
        yield lab


def test_scan_connect_encryption_and_watchdog_over_the_air(air_lab):
    """With an air: scan() lists the access point as the board does (ssid, bssid, channel,
    RSSI, security, hidden), connect() joins it and moves the radio to its channel, status()
    and status('rssi') follow; encrypted ESP-NOW reaches a peer with the same LMK and nothing
    else (the hardware drops what it cannot decrypt); a machine.WDT not fed resets the board,
    which then reports WDT_RESET."""
    lab = air_lab
    a = lab.board("a", "02:52:4f:00:00:0a", pos=(0, 0))
    b = lab.board("b", "02:52:4f:00:00:0b", pos=(5, 0))
    out = lab.mpremote(
        a,
        "exec",
        "import network\n"
        "sta = network.WLAN(network.STA_IF); sta.active(True)\n"
        "r = sta.scan(); print('scan', [(x[0], len(x[1]), x[2], x[4], x[5]) for x in r])\n"
        "print('rssi_type', type(r[0][3]).__name__)\n"
        "sta.connect('lan')\n"
        "print('connected', sta.isconnected(), sta.status(), sta.config('channel'))\n"
        "print('rssi', type(sta.status('rssi')).__name__)\n"
        "sta.connect('nowhere'); print('missing', sta.isconnected(), sta.status())\n",
    )
    assert "scan [(b'lan', 6, 6, 3, False)]" in out
    assert "rssi_type int" in out
    assert "connected True 1010 6" in out
    assert "rssi int" in out
    assert "missing False 201" in out  # STAT_NO_AP_FOUND
    lmk = "b'0123456789abcdef'"
    rx = lab.spawn(
        b,
        "exec",
        "import network, espnow\n"
        "network.WLAN(network.STA_IF).active(True)\n"
        "e = espnow.ESPNow(); e.active(True)\n"
        "e.add_peer(b'\\x02\\x52\\x4f\\x00\\x00\\x0a', %s)\n"
        "print('ready')\n"
        "for i in range(2):\n"
        "    print('got', e.recv(4000))\n" % lmk,
    )
    lab.wait_espnow("b")
    time.sleep(0.5)
    out = lab.mpremote(
        a,
        "exec",
        "import network, espnow\n"
        "network.WLAN(network.STA_IF).active(True)\n"
        "e = espnow.ESPNow(); e.active(True)\n"
        "pb = b'\\x02\\x52\\x4f\\x00\\x00\\x0b'\n"
        "e.add_peer(pb, b'wrong-key-000000')\n"
        "print('wrong', e.send(pb, b'secret-1'))\n"
        "e.mod_peer(pb, %s)\n"
        "print('right', e.send(pb, b'secret-2'))\n"
        "print('peer', e.get_peer(pb)[4])\n" % lmk,
    )
    assert "right True" in out and "peer True" in out
    got = rx.communicate(timeout=20)[0].decode()
    # the wrongly keyed frame was never delivered (the MAC may still ACK it, as the ESP32's
    # does before decryption); the right one was
    assert "secret-1" not in got
    assert "b'secret-2'" in got
    lab.mpremote(
        a,
        "exec",
        "--no-follow",
        "import machine, time\nw = machine.WDT(timeout=500)\ntime.sleep(5)\n",
    )
    time.sleep(2.5)
    out = lab.mpremote(a, "exec", "import machine; print('cause', machine.reset_cause())")
    assert "cause 3" in out  # WDT_RESET


def test_heap_is_calibrated_from_the_32_bit_measurement():
    """boards/heap64.json (bench/role_memory32.py --write-calibration) sets a virtual board's
    heap: the chip's budget x the measured 64/32 factor + the shims' heap."""
    import json
    import math

    from hosttools import vboard

    cal = json.loads(vboard.HEAP_CALIBRATION.read_text())
    assert 1.0 < cal["factor"] < 2.0  # code does not double at 64 bits
    assert cal["command"] == "python -m bench.role_memory32 --write-calibration"
    assert vboard.heap_word_factor() == cal["factor"]
    for chip, budget in (("esp32", 110), ("esp32c3", 130), ("esp32s3", 160)):
        expect = math.ceil(budget * cal["factor"]) + vboard.SHIM_HEAP_KB
        assert vboard.board_heap_kb(chip) == expect

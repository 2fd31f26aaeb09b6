"""The firmware type-check really uses the ESP32 stubs: wrong calls into the board's API fail.

Runs mypy twice on tiny files (about a second); `make typecheck` runs it on all of firmware/.
"""

import textwrap

from hosttools.typecheck import check

GOOD = """
import espnow
import machine
import network
import struct
import time


def start() -> None:
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    radio = espnow.ESPNow()
    radio.active(True)
    radio.add_peer(b"\\xff" * 6)
    radio.send(b"\\xff" * 6, b"hello")
    print(time.ticks_diff(time.ticks_ms(), 0), struct.pack(">H", 1))
    machine.Pin(2, machine.Pin.OUT)
"""

BAD = """
import espnow
import machine
import network

sta = network.WLAN(network.STA_IF)
sta.no_such_method()
radio = espnow.ESPNow()
radio.send(12345, 3.5)
machine.Pin(2, mode="out")
import hmac
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_correct_board_calls_type_check(tmp_path):
    done = check([_write(tmp_path, "good_board.py", GOOD)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_wrong_board_calls_are_reported(tmp_path):
    done = check([_write(tmp_path, "bad_board.py", BAD)])
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    # One error per wrong line: the attribute the board lacks, the bad espnow call, the bad
    # machine.Pin argument and the module MicroPython does not have.
    assert [line.split(":")[1] for line in errors] == ["7", "9", "10", "11"], done.stdout
    assert '"WLAN" has no attribute "no_such_method"' in errors[0]
    assert '"send" of "ESPNow"' in errors[1]
    assert '"mode" to "Pin"' in errors[2]
    assert '"hmac"' in errors[3]

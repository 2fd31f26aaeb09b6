"""MicroPython's documented espnow examples run unmodified on two virtual boards.

The examples are in tests/host/data/espnow_docs/ verbatim; they name the peers
aa:aa:aa:aa:aa:aa (the sender) and bb:bb:bb:bb:bb:bb (the receiver), so the boards get
those MACs.
"""

import time
from pathlib import Path

import pytest

from tests.host._vboards import Lab, read_until

DOCS = Path(__file__).parent / "data" / "espnow_docs"
AA = "b'\\xaa\\xaa\\xaa\\xaa\\xaa\\xaa'"
BB = "b'\\xbb\\xbb\\xbb\\xbb\\xbb\\xbb'"


@pytest.fixture
def lab(tmp_path):
    with Lab(tmp_path) as lab:
        yield lab


def _sent_to(lab, receiver):
    """The documentation's ``receiver`` example running on board bb (bb:bb:..), started with
    ``mpremote run``; then its sender.py run to the end on board aa (aa:aa:..), 10 m away: the
    receiver's process."""
    aa = lab.board("aa", "aa:aa:aa:aa:aa:aa", pos=(0, 0))
    bb = lab.board("bb", "bb:bb:bb:bb:bb:bb", pos=(10, 0))
    rx = lab.spawn(bb, "run", str(DOCS / receiver))
    lab.wait_espnow("bb")
    lab.mpremote(aa, "run", str(DOCS / "sender.py"))
    return rx


def test_sender_and_receiver_examples(lab):
    rx = _sent_to(lab, "receiver.py")
    out = rx.communicate(timeout=20)[0].decode()
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines[0] == AA + " b'Starting...'"
    assert lines[-1] == AA + " b'end'"
    # 10 m apart the radio model loses nothing after MAC retries: all 100 numbered messages
    for i in range(100):
        assert AA + " b'" + str(i) * 20 + "'" in lines
    assert len(lines) == 102


def test_receiver_times_out_and_sender_sees_no_ack_out_of_range(lab):
    aa = lab.board("aa", "aa:aa:aa:aa:aa:aa", pos=(0, 0))
    # a unicast MAC (aa:.. and bb:.. of the examples have the multicast bit set, and ESP-NOW
    # never waits for an ACK to a multicast address), far beyond the radio's range
    lab.board("far", "02:00:00:00:00:02", pos=(5000, 0))
    out = lab.mpremote(
        aa,
        "exec",
        "import network, espnow\n"
        "network.WLAN(network.STA_IF).active(True)\n"
        "e = espnow.ESPNow(); e.active(True)\n"
        "peer = b'\\x02\\x00\\x00\\x00\\x00\\x02'\n"
        "try:\n"
        "    e.send(peer, b'x')\n"
        "except OSError as err:\n"
        "    print('unregistered:', err.args[1])\n"
        "e.add_peer(peer)\n"
        "print('sync:', e.send(peer, b'hello', True))\n"
        "print('async:', e.send(peer, b'hello', False))\n"
        "print('recv:', e.recv(50))\n"
        "print('stats:', e.stats())\n",
    )
    assert "unregistered: ESP_ERR_ESPNOW_NOT_FOUND" in out
    assert "sync: False" in out
    assert "async: True" in out
    assert "recv: (None, None)" in out
    # tx_responses counts the sync send's answer (no ACK: also a failure), as modespnow.c's
    # send callback does; the async send's verdict is not waited for
    assert "stats: (2, 1, 1, 0, 0)" in out


def test_async_server_example_echoes(lab):
    server = _sent_to(lab, "async_server.py")
    # async for uses airecv(): msg is the reused bytearray, as on an ESP32
    out = read_until(server, b"Echo: bytearray(b'end')").decode()
    # The heartbeat pings its configured peer bb:bb:.. (a multicast address: send() is True).
    assert "Heartbeat: ping " + BB in out
    assert "Echo: bytearray(b'Starting...')" in out
    assert "Echo: bytearray(b'" + "42" * 20 + "')" in out
    # The echo went back: the sender board's ESP-NOW received them (its peers_table has bb).
    # asend(sync=None) is a synchronous send (modespnow.c takes None as True), but aa:.. is a
    # multicast address: no ACK to wait for, so the last echoes may still be on their way.
    st = lab.air.by_name["aa"]
    end = time.monotonic() + 5
    while st.frames_in < 100 and time.monotonic() < end:
        time.sleep(0.05)
    assert st.frames_in >= 100


def test_irq_callback_example_fires_while_the_program_sleeps(lab):
    rx = _sent_to(lab, "irq_receiver.py")
    # the callback has printed everything long before the receiver's 8 s sleep ends
    out = read_until(rx, AA.encode() + b" bytearray(b'end')", timeout=8).decode()
    lines = [ln for ln in out.splitlines() if ln.startswith(AA)]
    # irecv() hands out its reused bytearray, which print shows as such
    assert lines[0] == AA + " bytearray(b'Starting...')"
    for i in range(100):
        assert AA + " bytearray(b'" + str(i) * 20 + "')" in lines
    assert len(lines) == 102
    rx.kill()

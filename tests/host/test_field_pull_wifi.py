"""`roam logs --pull` over Wi-Fi when a board restarts while it sends its stored log again.

The pull (hosttools/field/pull.py WifiPull) on a real UDP socket on localhost; the board's side
is played by the test on another (127.0.0.77:4345, the board's backbone address): it checks
each REWIND with the board's log key and answers with real LOG frames (fieldlog/reader.py).
A REWIND can be lost while the board streams its live log (before: the pull, hearing the
board, never asked again and waited for ever: `make demo` under load hung there), and a restart
in the middle of a rewind loses it (the new boot streams from its own start, the ``log_rewind``
line never comes): the pull must ask again and finish, anchor the board's clock on the REWIND
it took, and give a board that restarts at every rewind up with a reason.
"""

from __future__ import annotations

import json
import socket
import threading
import time

from hosttools.field import pull
from hosttools.field.collector import Collector
from hosttools.field.transport import UdpTransport
from hosttools.firmware import fieldlog_reader, log_key
from hosttools.fleet import load_fleet, load_keys

BOARD_IP = "127.0.0.77"
SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
FLEET = (
    """
[defaults]
board = "esp32"

[[board]]
name = "a1"
role = "agent"
node_id = 1
address = "10.0.0.1"
wifi = { ssid = "field", ip = "%s", port = 4344 }
"""
    % BOARD_IP
)
KEYS = (
    """
[default]
cell = "00112233445566778899aabbccddeeff"
log = "%s"
"""
    % SECRET
)


class Board(threading.Thread):
    """Board a1's field socket: boot ``boot`` at first; each REWIND it takes (its key, a fresh
    counter, none while it is sending its log again) is answered by ``answer(self, counter)``;
    ``lose`` REWINDs are lost first; with ``live``, it streams a live line to ``collector``
    every 0.3 s for that many seconds."""

    def __init__(self, answer, collector, lose=0, live=0.0):
        super().__init__(daemon=True)
        self.reader = fieldlog_reader()
        self.key = log_key(bytes.fromhex(SECRET), 1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((BOARD_IP, 4345))
        self.sock.settimeout(0.2)
        self.answer = answer
        self.boot = 5
        self.frame = 0
        self.seq = 0
        self.rewinds = 0
        self.counter = 0  # the last REWIND counter taken in this boot
        self.rewinding = False
        self.to = collector
        self.lose = lose
        self.live_until = time.monotonic() + live
        self.taken_at = {}  # counter -> when the board took it (time.time())
        self.stop = threading.Event()

    def send(self, *events):
        """One LOG frame of this boot with a line for each event (its "ev" and fields)."""
        data = b""
        for ev in events:
            data += b'{"t":%d,"n":1,"b":%d,"s":%d,%s}\n' % (
                1000 + self.seq,
                self.boot,
                self.seq,
                ev.encode(),
            )
            self.seq += 1
        self.frame += 1
        msg = self.reader.encode_log(self.key, 1, self.boot, self.frame, 0, 1, 0, data)
        self.sock.sendto(msg, self.to)

    def restart(self):
        self.boot += 1
        self.counter = 0
        self.rewinding = False
        self.frame = 0
        self.seq = 0
        self.send('"ev":"start","role":"agent"')

    def run(self):
        live_at = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if now < self.live_until and now - live_at >= 0.3:
                self.send('"ev":"log_stats","stored":%d' % self.seq)
                live_at = now
            try:
                msg, addr = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            counter = int.from_bytes(msg[4:8], "big")
            if msg != self.reader.encode_rewind(self.key, 1, counter):
                continue  # not a REWIND for this board with its key
            if self.lose:
                self.lose -= 1
                continue
            if counter <= self.counter or self.rewinding:
                continue  # an old counter, or one while it is sending its log again
            self.counter = counter
            self.rewinding = True
            self.taken_at[counter] = time.time()
            self.rewinds += 1
            self.answer(self, counter)

    def rewound(self, counter):
        """The rewind's end: its log_rewind line, then the live log again."""
        self.send('"ev":"binding_up","load":1', '"ev":"log_rewind","counter":%d' % counter)
        self.rewinding = False

    def close(self):
        self.stop.set()
        self.join(5)
        self.sock.close()


def _pull(tmp_path, answer, **kw):
    (tmp_path / "fleet.toml").write_text(FLEET)
    (tmp_path / "keys.toml").write_text(KEYS)
    fleet = load_fleet(tmp_path / "fleet.toml")
    keys = load_keys(tmp_path / "keys.toml", fleet)
    transport = UdpTransport(0, "127.0.0.1")
    board = Board(answer, transport.sock.getsockname(), **kw)
    board.start()
    collector = Collector(fleet, keys, tmp_path / "run", live=False)
    said = []
    try:
        wp = pull.WifiPull(collector, transport, keys)
        t0 = time.monotonic()
        failed = wp.run(fleet.boards, lambda n, m: said.append((n, m)))
        return failed, wp, board, said, time.monotonic() - t0
    finally:
        transport.close()
        collector.close()
        board.close()


def test_a_board_that_restarts_mid_rewind_is_asked_again_and_the_pull_finishes(tmp_path):
    def answer(board, counter):
        if board.rewinds == 1:
            board.send('"ev":"binding_up","load":1', '"ev":"publish","seq":0')
            board.restart()  # the rewind's end (and its log_rewind line) is lost
        else:
            board.rewound(counter)

    failed, wp, board, said, took = _pull(tmp_path, answer)
    assert failed == {}, failed
    assert board.rewinds == 2
    assert wp.restarts == {"a1": 1}
    assert ("a1", "restarted (boot 6): asked again") in said
    assert took < pull.QUIET_S  # asked again at once, not after the board fell quiet


def test_a_board_that_restarts_at_every_rewind_is_given_up_with_the_reason(tmp_path):
    def answer(board, counter):
        board.send('"ev":"binding_up","load":1')
        board.restart()

    failed, wp, board, said, took = _pull(tmp_path, answer)
    n = pull.RESTARTS_MAX + 1
    assert failed == {"a1": "restarted %d times while it sent its stored log" % n}
    assert board.rewinds == n
    assert took < pull.QUIET_S


def test_a_lost_rewind_is_sent_again_while_the_board_streams_live(tmp_path):
    failed, wp, board, said, took = _pull(tmp_path, lambda b, c: b.rewound(c), lose=1, live=12)
    assert failed == {}, failed
    assert board.rewinds == 1
    assert took < pull.QUIET_S  # asked again after REWIND_EVERY_S, not after the live log ended
    # the board's clock is anchored on the REWIND it took (sent again, with its own counter)
    (counter, taken_at) = next(iter(board.taken_at.items()))
    lines = (tmp_path / "run").rglob("*.jsonl")
    anchors = [json.loads(x) for p in lines for x in p.read_text().splitlines() if '"anchor"' in x]
    assert len(anchors) == 1 and abs(anchors[0]["host"] - taken_at) < 0.5, anchors
    assert round(wp.sent_at[("a1", counter)], 6) == anchors[0]["host"]

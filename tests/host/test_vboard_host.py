"""The board host's loop survives whatever other threads do to its boards at the same time.

The lab, the tests and the loop thread all act on boards: power cuts, resets and closes from one
thread while the loop watches the same boards' pipes in another. A pipe closed by a reset between
the loop's look at a board and its registration of that fd once killed the loop thread
(`OSError: [Errno 9] Bad file descriptor` in `selectors.register`), and with it every board it
served. Here one thread hammers the boards in random order while the loop runs; afterwards the
loop is alive, no handler failed, and every board still answers at its REPL.
"""

from __future__ import annotations

import random
import threading
import time

import serial

from hosttools.vboard import BoardHost, VirtualBoard


def repl_answers(board: VirtualBoard, timeout: float = 10) -> bool:
    """Ctrl-C, then an expression at the friendly REPL: does the answer come back?"""
    s = serial.Serial(board.pty, timeout=0.1)
    try:
        end = time.monotonic() + timeout
        buf = b""
        while time.monotonic() < end:
            s.write(b"\x03\r\nprint(6*7)\r\n")
            t = time.monotonic() + 1.0
            while time.monotonic() < t:
                buf += s.read(4096)
                if b"42" in buf:
                    return True
        return False
    finally:
        s.close()


def test_the_loop_survives_resets_power_cuts_and_closes_from_another_thread(tmp_path):
    rng = random.Random(7)
    host = BoardHost().start_thread()
    boards = []
    try:
        for i in range(4):
            b = VirtualBoard(tmp_path / ("b%d" % i), mac="02:52:4f:00:01:%02x" % i, name="b%d" % i)
            host.boards.append(b)
            b.start()
            boards.append(b)
        spare = VirtualBoard(tmp_path / "spare", mac="02:52:4f:00:01:ff", name="spare")
        host.boards.append(spare)
        spare.start()

        def hammer(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                b = rng.choice(boards)
                act = rng.randrange(4)
                if act == 0:
                    b.reset()
                elif act == 1:
                    b.power_off()
                elif act == 2:
                    b.power_on()
                else:
                    b.power_off()
                    b.power_on()
                time.sleep(rng.uniform(0, 0.03))

        workers = [threading.Thread(target=hammer, args=(6.0,)) for _ in range(2)]
        for w in workers:
            w.start()
        time.sleep(2.0)
        spare.close()  # a board closed while the loop serves it
        for w in workers:
            w.join()
        assert host._thread.is_alive(), "the board host's loop thread died"
        assert host.failures == 0
        for b in boards:
            b.power_on()
        for b in boards:
            assert repl_answers(b), "%s does not answer after the storm" % b.name
    finally:
        host.close()


def wait_booted(board: VirtualBoard, timeout: float = 60) -> bool:
    end = time.monotonic() + timeout
    while not board.booted and time.monotonic() < end:
        time.sleep(0.02)
    return board.booted


def test_a_board_has_booted_once_its_process_reads_its_console(tmp_path):
    """`booted`, what `roam lab up` waits for before it hands the ports over, is False from a
    power-on or reset until the board's process says it runs a file or waits at its REPL (a
    Ctrl-C sent earlier waited unread while the process set up, on a busy machine for more
    than the 5 s a first probe listens); from then on the board answers."""
    host = BoardHost().start_thread()
    b = VirtualBoard(tmp_path / "b", mac="02:52:4f:00:02:01", name="b")
    host.boards.append(b)
    try:
        b.start()
        assert not b.booted  # (its process cannot have set up in the microseconds since)
        assert wait_booted(b)
        assert repl_answers(b)
        b.reset()
        assert not b.booted
        assert wait_booted(b)
        assert repl_answers(b)
    finally:
        host.close()

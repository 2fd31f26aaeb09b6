"""Helpers for tests that run virtual boards: an air and boards served in background threads,
always torn down (processes killed, ptys closed) by the fixtures that use them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from hosttools.air import Air
from hosttools.lab import BOARD_TYPE
from hosttools.vboard import BoardHost, VirtualBoard

MPREMOTE = str(Path(sys.executable).parent / "mpremote")


class Lab:
    def __init__(self, tmp: Path, with_air: bool = True, pcap=None):
        self.tmp = tmp
        self.air = Air(pcap=pcap).start() if with_air else None
        self.host = BoardHost()
        self.host.start_thread()
        self.procs: list[subprocess.Popen] = []

    def board(self, name: str, mac: str, pos=(0, 0), **kw) -> VirtualBoard:
        # the firmware runs on the lab's chip (an ESP32's calibrated heap is too small for it:
        # hosttools/lab.py BOARD_TYPE)
        kw.setdefault("chip", BOARD_TYPE)
        if self.air is not None:
            self.air.set_position(name, *pos)
        b = VirtualBoard(
            self.tmp / name, mac=mac, name=name, air=self.air.address if self.air else None, **kw
        )
        self.host.boards.append(b)
        b.start()
        return b

    def mpremote(self, board: VirtualBoard, *args: str, timeout: float = 30) -> str:
        r = subprocess.run(
            [MPREMOTE, "connect", board.pty, *args], capture_output=True, timeout=timeout, text=True
        )
        assert r.returncode == 0, "mpremote %s failed: %s %s" % (args, r.stdout, r.stderr)
        return r.stdout

    def spawn(self, board: VirtualBoard, *args: str) -> subprocess.Popen:
        p = subprocess.Popen(
            [MPREMOTE, "connect", board.pty, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(p)
        return p

    def wait_espnow(self, name: str, timeout: float = 10) -> None:
        """Wait until the board called `name` has ESP-NOW active (its program is receiving)."""
        assert self.air is not None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = self.air.by_name.get(name)
            if st is not None and st.flags & 2:
                return
            time.sleep(0.02)
        raise AssertionError("board %s never activated ESP-NOW" % name)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=5)
        self.host.close()
        if self.air is not None:
            self.air.stop()


def read_until(proc: subprocess.Popen, needle: bytes, timeout: float = 15) -> bytes:
    """Read a subprocess's stdout until `needle` appears (or fail after `timeout`)."""
    import os
    import select

    buf = b""
    end = time.monotonic() + timeout
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    while needle not in buf:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("did not see %r; got %r" % (needle, buf[-500:]))
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
    if needle not in buf:
        raise AssertionError("did not see %r; got %r" % (needle, buf[-500:]))
    return buf

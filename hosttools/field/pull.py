"""`roam logs --pull`: every board's own log, from its flash, into a run directory.

After the walk the boards' flash holds all they logged (firmware/fieldlog/store.py), while the
run directory holds what `roam field` received live. The pull fills the gaps:

* a board on USB (its port is there: the one in your hand, or a virtual board plugged back
  with ``roam lab plug``) is read with mpremote: the firmware is interrupted (it writes what
  waits in RAM first) and its interpreter soft-reset in the raw REPL (main.py does not run:
  the reading gets the whole heap, where the stopped firmware's tables would leave a plain
  ESP32's mobile node without a 1.3 KB block; the clock and the boot number go on), the
  ``logs/`` files are read, the board's clock is read as an anchor for the host's clock fit,
  and a soft reset starts it again;
* a board on the Wi-Fi backbone is sent a REWIND (firmware/fieldlog/wire.py): it streams its
  whole stored log once more, ending with a ``log_rewind`` line that says it is through; the
  REWIND's sending time is that line's anchor.

Lines already in the directory are not written twice (per board, boot and sequence number);
pulled lines carry no arrival time (``"pulled": true``): `roam report` places them by the clock
fit of their boot. Every gap that remains is named (``gaps.json`` and the closing lines).
"""

from __future__ import annotations

import json
import select
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hosttools.errors import RoamError
from hosttools.field.collector import BoardLog, Collector
from hosttools.fleet import Board, Fleet, Keys

# A REWIND is sent again, with a new counter, until the board's log_rewind line comes: a
# REWIND can be lost, and a board streams its live log meanwhile (hearing it says nothing of
# the REWIND). The board takes one while it is not sending its log again already, and its line
# names the counter it took: the time that one was sent anchors the board's clock.
REWIND_EVERY_S = 2.0
QUIET_S = 10.0  # a board that sends nothing for this long has stopped answering
# A board that restarts while it sends its stored log again cannot finish that rewind (its new
# boot streams from its own start): it is asked again, at most this many times.
RESTARTS_MAX = 3

# On the board: where its clock and boot stand, and which log files it has.
_LIST = """
import os, time
os.chdir('/')
try:
    _n = sorted(n for n in os.listdir('logs') if n.endswith('.jl'))
except OSError:
    _n = []
try:
    _b = int(open('epoch').read())
except (OSError, ValueError):
    _b = -1
print(repr((time.ticks_ms(), _b, [(n, os.stat('logs/' + n)[6]) for n in _n])))
"""


def lines_of(data: bytes, num: int) -> list[tuple[int, int, bytes]]:
    """The whole lines of a log file's bytes as (file, offset, line)."""
    out = []
    off = 0
    for raw in data.split(b"\n"):
        if raw:
            out.append((num, off, raw))
        off += len(raw) + 1
    return out


def pull_usb(port: str, bl: BoardLog, collector: Collector, progress: Callable[[str], None]) -> int:
    """Read board ``bl``'s log files over mpremote; returns the new lines."""
    from hosttools.boardio import board_exec, open_board, soft_reset

    new = 0
    with open_board(port, fresh=True) as t:
        out = board_exec(t, _LIST, port).decode().strip()
        host = time.time()
        try:
            ticks, boot, files = eval(out, {"__builtins__": {}})  # noqa: S307 - tuple literal
        except Exception:  # noqa: BLE001 - whatever it printed, it is not what we asked for
            raise RoamError("board on %s did not list its log (%r)" % (port, out[:80])) from None
        if boot >= 0:
            bl.write({"host": round(host, 6), "anchor": {"b": boot, "t": ticks}})
        for i, (name, size) in enumerate(files):
            progress("reading %s (%d of %d, %d KiB)" % (name, i + 1, len(files), size // 1024))
            data = t.fs_readfile("logs/" + name, chunk_size=1024)
            new += collector.take(bl, lines_of(bytes(data), int(name[:8])), pulled=True)
        soft_reset(t)
    return new


class WifiPull:
    """REWIND sent to backbone boards, their stored logs taken in as they stream."""

    def __init__(self, collector: Collector, transport: Any, keys: Keys) -> None:
        from hosttools.firmware import fieldlog_reader, fieldlog_wire, log_key

        self.collector = collector
        self.transport = transport
        self.reader = fieldlog_reader()
        self.log_type = fieldlog_wire().LOG
        self.keys = keys
        self.log_key = log_key
        self.counter = int(time.time() * 10) & 0x3FFFFFFF  # above any earlier pull's
        self.sent_at: dict[tuple[str, int], float] = {}  # (board, counter) -> when it went
        self.asked_at: dict[str, float] = {}  # board -> when its last REWIND went (monotonic)
        self.done: set[str] = set()
        self.boot: dict[str, int] = {}  # the boot a board's frames came from since it was asked
        self.restarts: dict[str, int] = {}
        collector.watch = self._watch

    def _watch(self, board: str, obj: dict[str, Any]) -> None:
        if obj.get("ev") != "log_rewind" or board in self.done:
            return
        sent = self.sent_at.get((board, obj.get("counter", -1)))
        if sent is None:
            return  # another pull's
        bl = next(b for b in self.collector.boards.values() if b.name == board)
        bl.write({"host": round(sent, 6), "anchor": {"b": obj["b"], "t": obj["t"]}})
        self.done.add(board)

    def rewind(self, b: Board) -> None:
        secret = self.keys.for_board(b.name).get("log")
        if secret is None or not b.backbone_ip:
            raise RoamError("%s: no log key or no backbone address" % b.name)
        key = self.log_key(bytes.fromhex(secret.reveal()), b.node)
        self.counter = (self.counter + 1) & 0x3FFFFFFF
        self.transport.sendto(
            self.reader.encode_rewind(key, b.node, self.counter), (b.backbone_ip, 4345)
        )
        self.sent_at[(b.name, self.counter)] = time.time()
        self.asked_at[b.name] = time.monotonic()

    def run(self, boards: list[Board], progress: Callable[[str, str], None]) -> dict[str, str]:
        """Pull every board of ``boards``; returns {name: why} of those that did not finish."""
        now = time.monotonic()
        last = {b.name: now for b in boards}
        name_of = {b.node: b.name for b in boards}
        gave_up: dict[str, str] = {}
        while True:
            now = time.monotonic()
            waiting = [b for b in boards if b.name not in self.done and b.name not in gave_up]
            quiet = [b.name for b in waiting if now - last[b.name] > QUIET_S]
            if len(quiet) == len(waiting):
                gave_up.update((n, "did not answer the pull over Wi-Fi (is it on?)") for n in quiet)
                return gave_up
            for b in waiting:
                if now - self.asked_at.get(b.name, -REWIND_EVERY_S) >= REWIND_EVERY_S:
                    if b.name not in self.asked_at:
                        progress(b.name, "asked for its stored log")
                    self.rewind(b)
            r, _, _ = select.select([self.transport.fileno()], [], [], 0.2)
            if not r:
                continue
            for _ in range(512):
                got = self.transport.recv()
                if got is None:
                    break
                data, src = got
                name = name_of.get((data[2] << 8) | data[3]) if len(data) >= 6 else None
                if name is None:
                    continue  # the live stream of a board not being pulled (relayed, say)
                last[name] = time.monotonic()
                progress(name, "receiving")
                self.collector.on_datagram(data, src, pulled=True)
                if data[0] == self.log_type:  # a LOG frame's boot is its sender's
                    self._restarted(name, (data[4] << 8) | data[5], gave_up, progress)

    def _restarted(
        self, name: str, boot: int, gave_up: dict[str, str], progress: Callable[[str, str], None]
    ) -> None:
        """A LOG frame of ``name`` from boot ``boot`` came: from another boot than its frames
        since it was asked, the board restarted and its rewind is lost: ask it again at once."""
        held = self.boot.setdefault(name, boot)
        if held == boot or name in self.done:
            return
        self.boot[name] = boot
        n = self.restarts[name] = self.restarts.get(name, 0) + 1
        if n > RESTARTS_MAX:
            gave_up[name] = "restarted %d times while it sent its stored log" % n
            return
        self.asked_at.pop(name, None)
        progress(name, "restarted (boot %d): asked again" % boot)


def pull(
    fleet: Fleet,
    keys: Keys,
    out: str | Path,
    boards: list[Board],
    port_present: Callable[[Board], str | None],
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Pull ``boards`` into ``out``; returns {"pulled": {name: new lines}, "failed": {name:
    why}, "gaps": {name: [...]}}."""
    collector = Collector(fleet, keys, out, live=False)
    by_name = {bl.name: bl for bl in collector.boards.values()}
    result: dict[str, Any] = {"pulled": {}, "failed": {}}
    wifi: list[Board] = []
    try:
        for b in boards:
            port = port_present(b)
            if port is not None:
                say("%s: over USB (%s)" % (b.name, port))

                def tell(m: str, n: str = b.name) -> None:
                    say("%s: %s" % (n, m))

                try:
                    result["pulled"][b.name] = pull_usb(port, by_name[b.name], collector, tell)
                except RoamError as e:
                    result["failed"][b.name] = str(e)
            elif b.backbone_ip:
                wifi.append(b)
            else:
                result["failed"][b.name] = (
                    "not on USB and not on the backbone: plug it in (roam lab plug %s)" % b.name
                )
        if wifi:
            from hosttools.field.cli import open_transport

            transport = open_transport(fleet)
            try:
                before = {b.name: by_name[b.name].n for b in wifi}
                wp = WifiPull(collector, transport, keys)
                result["failed"].update(wp.run(wifi, lambda n, m: None))
                for b in wifi:
                    if b.name not in result["failed"]:
                        result["pulled"][b.name] = by_name[b.name].n - before[b.name]
            finally:
                transport.close()
    finally:
        collector.close()
    result["gaps"] = collector.gaps()
    return result


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for name, n in sorted(result["pulled"].items()):
        gaps = result["gaps"].get(name, [])
        lines.append(
            "%-10s +%d lines%s"
            % (
                name,
                n,
                (
                    "; still missing: "
                    + ", ".join(
                        "boot %d lines %d-%d" % (g["boot"], g["from"], g["to"]) for g in gaps
                    )
                )
                if gaps
                else "",
            )
        )
    for name, why in sorted(result["failed"].items()):
        lines.append("%-10s FAILED: %s" % (name, why))
    return lines


def dump(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=1, sort_keys=True)

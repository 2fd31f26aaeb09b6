"""`roam logs`: collect every board's serial console at once.

One reader thread per board. Each line gets the host time at which its end reached the host
(``time.time()`` right after the read that delivered the newline), and is written twice:

* ``<board>.raw.txt``: ``<host seconds>\\t<line as received>``, the console as it was;
* ``<board>.jsonl``: one JSON object per line, ``{"host": t, "n": k, "json": {...}}`` for a
  line that is a JSON object (the firmware's structured events) or ``{"host": t, "n": k,
  "text": "..."}`` for anything else (boot messages, ``soft reboot``, tracebacks).

When the port goes away (unplug, reset of a USB-serial chip, a virtual board restarting) the
reader keeps what it had (a partial line is written, marked ``"partial": true``), then retries
the port until it is back, and writes a gap record ``{"host": t, "gap": {"from": t0, "to": t1,
"reason": ...}}`` (and ``# gap ...`` in the raw file). Ctrl-C or SIGTERM stop every reader; each
writes what it holds and flushes before the command exits. ``logs.json`` in the log directory
describes the session (boards, ports, start and stop) and marks the directory as a log
directory for `roam report`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import click
import serial

from hosttools.boardio import check_port_exists, describe_open_error, open_serial
from hosttools.errors import RoamError, RoamUsageError
from hosttools.targets import (
    duration_option,
    fleet_options,
    keys_option,
    maybe_fleet,
    maybe_keys,
    resolve,
)

LOGS_META = "logs.json"
FLUSH_EVERY_S = 0.25
RETRY_EVERY_S = 0.05
READ_TIMEOUT_S = 0.05


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object a board's line holds (one of its log events), or None."""
    s = text.strip()
    if not (s.startswith("{") and s.endswith("}")):
        return None
    try:
        obj = json.loads(s)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


@dataclass
class BoardStats:
    name: str
    port: str
    state: str = "starting"
    lines: int = 0
    events: int = 0
    gaps: int = 0
    last: str = ""
    errors: list[str] = field(default_factory=list)


class BoardReader(threading.Thread):
    """Reads one port until stopped, surviving the port going away and coming back."""

    def __init__(
        self, name: str, port: str, out_dir: Path, stop: threading.Event, baudrate: int = 115200
    ) -> None:
        super().__init__(name="roam-logs-" + name, daemon=True)
        self.board = name
        self.port = port
        self.baudrate = baudrate
        self.stop_event = stop
        self.stats = BoardStats(name, port)
        self._raw: IO[str] = open(out_dir / (name + ".raw.txt"), "a", encoding="utf-8")
        self._jsonl: IO[str] = open(out_dir / (name + ".jsonl"), "a", encoding="utf-8")
        self._pending = bytearray()
        self._n = 0
        self._last_flush = time.monotonic()

    # -- writing ----------------------------------------------------------------------------

    def _line(self, raw: bytes, t: float, partial: bool = False) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        self._n += 1
        self.stats.lines += 1
        self._raw.write("%.6f\t%s\n" % (t, text))
        rec: dict[str, Any] = {"host": round(t, 6), "n": self._n}
        obj = json_object(text)
        s = text.strip()
        if obj is not None:
            rec["json"] = obj
            self.stats.events += 1
            ev = obj.get("event") or obj.get("ev")
            if ev:
                self.stats.last = str(ev)
        else:
            rec["text"] = text
            if s:
                self.stats.last = s[:40]
        if partial:
            rec["partial"] = True
        self._jsonl.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def _gap(self, t0: float, t1: float, reason: str) -> None:
        self.stats.gaps += 1
        self._raw.write("# gap %.6f %.6f %s\n" % (t0, t1, reason))
        rec = {
            "host": round(t1, 6),
            "gap": {"from": round(t0, 6), "to": round(t1, 6), "reason": reason},
        }
        self._jsonl.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self.flush()

    def _feed(self, data: bytes, t: float) -> None:
        buf = self._pending
        buf += data
        start = 0
        while True:
            i = buf.find(b"\n", start)
            if i < 0:
                break
            self._line(bytes(buf[start:i]), t)
            start = i + 1
        if start:
            del buf[:start]

    def _flush_partial(self, t: float) -> None:
        if self._pending:
            self._line(bytes(self._pending), t, partial=True)
            self._pending.clear()

    def flush(self) -> None:
        self._raw.flush()
        self._jsonl.flush()
        self._last_flush = time.monotonic()

    # -- the port ---------------------------------------------------------------------------

    def _open(self) -> serial.Serial | None:
        try:
            return serial.serial_for_url(
                self.port, baudrate=self.baudrate, timeout=READ_TIMEOUT_S, exclusive=True
            )
        except (serial.SerialException, OSError) as exc:
            msg = describe_open_error(self.port, exc)
            if not self.stats.errors or self.stats.errors[-1] != msg:
                self.stats.errors.append(msg)
            return None

    def run(self) -> None:
        gap_from: float | None = None
        reason = ""
        try:
            while not self.stop_event.is_set():
                s = self._open()
                if s is None:
                    if gap_from is None:
                        gap_from, reason = time.time(), "port unavailable"
                    self.stats.state = "waiting for port"
                    self.stop_event.wait(RETRY_EVERY_S)
                    continue
                if gap_from is not None:
                    self._gap(gap_from, time.time(), reason)
                    gap_from = None
                self.stats.state = "connected"
                try:
                    self._read_until_gone(s)
                    if self.stop_event.is_set():
                        break
                    reason = "port closed"
                except (serial.SerialException, OSError) as exc:
                    reason = "disconnected: %s" % (exc.__class__.__name__,)
                finally:
                    try:
                        s.close()
                    except (serial.SerialException, OSError):
                        pass
                gap_from = time.time()
                self._flush_partial(gap_from)
                self.flush()
                self.stats.state = "reconnecting"
            if gap_from is not None and self.stats.lines:
                # Stopped while the port was away: the gap runs to the end of the session.
                self._gap(gap_from, time.time(), reason + " (until stop)")
        finally:
            self._flush_partial(time.time())
            self.flush()
            self._raw.close()
            self._jsonl.close()
            self.stats.state = "stopped"

    def _read_until_gone(self, s: serial.Serial) -> None:
        while not self.stop_event.is_set():
            n = s.in_waiting
            data = s.read(n if n > 0 else 1)
            if data:
                self._feed(data, time.time())
            elif not _port_present(self.port):
                return
            if time.monotonic() - self._last_flush > FLUSH_EVERY_S:
                self.flush()
        # Stop requested: take what the port still holds, without waiting for more.
        try:
            rest = s.read(s.in_waiting) if s.in_waiting else b""
        except (serial.SerialException, OSError):
            rest = b""
        if rest:
            self._feed(rest, time.time())


def _port_present(port: str) -> bool:
    return "://" in port or os.path.exists(port)


def _write_meta(out_dir: Path, meta: dict[str, Any]) -> None:
    tmp = out_dir / (LOGS_META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out_dir / LOGS_META)


def collect(
    boards: Sequence[tuple[str, str]],
    out_dir: str | os.PathLike[str],
    duration: float | None = None,
    stop: threading.Event | None = None,
    live: bool = False,
    install_signals: bool = True,
    identity: dict[str, dict[str, Any]] | None = None,
    signalled: list[int] | None = None,
    replace: bool = False,
) -> list[BoardStats]:
    """Collect logs from (name, port) pairs into out_dir until `duration` seconds have passed,
    `stop` is set, or SIGINT/SIGTERM arrives (its number is appended to `signalled`). Returns
    the per-board statistics. `replace`: out_dir holds an earlier log (check_out_dir), which is
    removed once the ports are known to be there."""
    if not boards:
        raise RoamError("no boards to collect logs from")
    names = [n for n, _ in boards]
    if len(set(names)) != len(names):
        raise RoamError("two boards share a name: %s" % names)
    for _, port in boards:
        check_port_exists(port)
    for _, port in boards:
        # A port that is busy or not ours at the start is a mistake to tell, not a gap to wait
        # out (later, while collecting, the readers wait for a port that went away).
        open_serial(port).close()
    out = Path(out_dir)
    if replace and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    stop = stop or threading.Event()
    meta: dict[str, Any] = {
        "kind": "roam-logs",
        "started": time.time(),
        "stopped": None,
        "boards": {n: dict((identity or {}).get(n, {}), port=p) for n, p in boards},
    }
    _write_meta(out, meta)
    readers = [BoardReader(n, p, out, stop) for n, p in boards]
    old: dict[signal.Signals, Any] = {}
    if install_signals and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, _stopper(stop, signalled))
    try:
        for r in readers:
            r.start()
        deadline = None if duration is None else time.monotonic() + duration
        if live:
            _live_summary(readers, stop, deadline)
        else:
            while not stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                stop.wait(0.1)
    finally:
        stop.set()
        for r in readers:
            r.join()
        for sig, h in old.items():
            signal.signal(sig, h)
        meta["stopped"] = time.time()
        for r in readers:
            meta["boards"][r.board].update(
                lines=r.stats.lines, events=r.stats.events, gaps=r.stats.gaps
            )
        _write_meta(out, meta)
    return [r.stats for r in readers]


def check_out_dir(out_dir: str, force: bool) -> bool:
    """A log directory is one run: never appended to (a second run into the same files mixed two
    runs while logs.json described only the last). An empty or missing directory is used; one
    with an earlier `roam logs` run is replaced with `force` (returns True), else refused;
    anything else is refused."""
    p = Path(out_dir)
    if not p.exists():
        return False
    if not p.is_dir():
        raise RoamUsageError("--out %s is a file, not a directory" % out_dir)
    if not any(p.iterdir()):
        return False
    try:
        kind = json.loads((p / LOGS_META).read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        kind = None
    if kind != "roam-logs":
        raise RoamUsageError(
            "--out %s is not empty and holds no earlier `roam logs` run: choose a new --out"
            % out_dir
        )
    if not force:
        raise RoamUsageError(
            "--out %s holds an earlier log: choose a new --out, or --force to replace it" % out_dir
        )
    return True


def _stopper(stop: threading.Event, signalled: list[int] | None) -> Any:
    def handler(signum: int, _frame: Any) -> None:
        if signalled is not None:
            signalled.append(signum)
        stop.set()

    return handler


def _live_summary(
    readers: Sequence[BoardReader], stop: threading.Event, deadline: float | None
) -> None:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    def render() -> Table:
        t = Table(box=None, show_header=True, header_style="bold")
        for col in ("board", "port", "state", "lines", "events", "gaps", "last"):
            t.add_column(col)
        for r in readers:
            s = r.stats
            t.add_row(s.name, s.port, s.state, str(s.lines), str(s.events), str(s.gaps), s.last)
        return t

    console = Console(stderr=True)
    if not console.is_terminal:
        # piped: no redrawing, the table once at the end, on lines of its own (Live leaves its
        # last row without a newline, and the summary on stdout ran into it)
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.25)
        console.print(render())
        console.file.flush()
        return
    with Live(render(), console=console, refresh_per_second=4) as lv:
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.25)
            lv.update(render())
        lv.update(render())


# -- the command --------------------------------------------------------------------------------


@click.command("logs")
@fleet_options
@click.option(
    "--out",
    "-o",
    "out_dir",
    metavar="DIR",
    default=None,
    help="Log directory (default: out/logs/YYYYmmdd-HHMMSS, a new one each run). One run a "
    "directory: an existing one with a log is refused (--force replaces it).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace the earlier `roam logs` run in --out (its files are removed first).",
)
@duration_option
@click.option("--quiet", "-q", is_flag=True, help="No live summary.")
@click.option(
    "--pull",
    is_flag=True,
    help="Fetch every board's stored log (USB, or Wi-Fi for backbone boards) into --out, "
    "a `roam field` run directory: nothing twice, every remaining gap named.",
)
@keys_option
def logs_cmd(
    port: str | None,
    fleet_path: str | None,
    board_name: str | None,
    out_dir: str | None,
    force: bool,
    duration: float | None,
    quiet: bool,
    pull: bool,
    keys_path: str | None,
) -> int | None:
    """Collect the serial logs of one board (--port) or every board of the fleet.

    Each line is stamped with the host time; raw text and JSON Lines per board go to the log
    directory. Boards that reset or are unplugged are reconnected, the gap is marked. Stop with
    Ctrl-C: nothing received is lost. Then `roam report DIR`.

    With --pull, fetch what the boards kept on flash instead (after a walk with `roam field`).
    """
    if pull:
        if force:
            raise click.UsageError("--force is for a new log, not --pull (which completes --out)")
        return _pull(fleet_path, board_name, out_dir, keys_path, quiet)
    targets, _ = resolve(port, fleet_path, board_name)
    if out_dir is None:
        out_dir = os.path.join("out", "logs", time.strftime("%Y%m%d-%H%M%S"))
    replace = check_out_dir(out_dir, force)
    # Node id and address go into logs.json so that `roam report` names nodes as the fleet does.
    identity = {
        t.label: {"node": t.board.node, "addr": t.board.addr, "role": t.board.role}
        for t in targets
        if t.board is not None
    }
    signalled: list[int] = []
    stats = collect(
        [(t.label, t.port) for t in targets],
        out_dir,
        duration=duration,
        live=not quiet,
        identity=identity,
        signalled=signalled,
        replace=replace,
    )
    for s in stats:
        click.echo(
            "%s: %d lines, %d events, %d gaps -> %s"
            % (s.name, s.lines, s.events, s.gaps, os.path.join(out_dir, s.name + ".jsonl"))
        )
    nothing = not any(s.lines for s in stats)
    if not nothing:
        click.echo("logs in %s (next: roam report %s)" % (out_dir, out_dir))
    # Ctrl-C is how a collection ends; what was received is written, and the exit status says
    # it was interrupted (130, SIGTERM 143), as every other command's does.
    if signalled:
        if nothing:
            click.echo("roam: warning: " + _nothing_collected(len(stats)), err=True)
        return 128 + signalled[0]
    if nothing:
        raise RoamError(_nothing_collected(len(stats)))
    return None


def _nothing_collected(n: int) -> str:
    which = "the board" if n == 1 else "any of the %d boards" % n
    return (
        "no line came from %s: are they running? (a lab's boards wait for `roam lab start`; "
        "a board at the REPL prints nothing)" % which
    )


def _pull(
    fleet_path: str | None,
    board_name: str | None,
    out_dir: str | None,
    keys_path: str | None,
    quiet: bool,
) -> int:
    from hosttools.field.pull import pull, summary_lines
    from hosttools.targets import serial_ports

    fleet = maybe_fleet(fleet_path, required=True)
    assert fleet is not None
    keys = maybe_keys(keys_path, fleet)
    if keys is None:
        raise RoamUsageError("--pull needs the keys file (--keys): the log key checks every line")
    if out_dir is None:
        raise RoamUsageError(
            "--pull needs --out DIR: the run directory of `roam field` to complete"
        )
    boards = [fleet.lookup(board_name)] if board_name else list(fleet)
    listed: list[Any] | None = None

    def port_of(b: Any) -> str | None:
        nonlocal listed
        if b.port:
            return b.port if _port_present(b.port) else None
        if b.serial:
            if listed is None:
                listed = serial_ports()
            for p in listed:
                if (p.serial_number or "").lower() == b.serial.lower():
                    return str(p.device)
        return None

    say = (lambda m: None) if quiet else (lambda m: click.echo(m, err=True))
    result = pull(fleet, keys, out_dir, boards, port_of, say)
    for line in summary_lines(result):
        click.echo(line)
    click.echo("logs in %s (next: roam report %s)" % (out_dir, out_dir))
    return 1 if result["failed"] else 0

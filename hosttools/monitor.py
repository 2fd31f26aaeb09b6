"""`roam monitor`: a live console of one or many boards, one coloured line per event.

Over serial (the boards' USB ports: ``--port``, or the fleet's boards, ``--board`` to pick some)
or from the stream of a running ``roam field`` (``--field URL``: its server-sent events), for
boards that are out on poles. A JSON log line is shown as ``time board event key=value ...``
(the time is the host's; ``--raw`` shows the line as the board printed it); anything else a
board prints (boot messages, tracebacks) is shown as it is. A board whose port goes away is
waited for and read again when it is back (a reset, a cable pulled and plugged). Ctrl-C stops.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

import click

from hosttools.errors import RoamError
from hosttools.logs import json_object
from hosttools.targets import duration_option, fleet_file_option, resolve, typed_port

COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta")
ALARM = {"crash", "config_error", "safe_mode", "backbone_error", "log_store_error", "epoch_error"}
WARN = {"reject", "drop", "agent_lost", "reg_timeout", "reg_refused", "log_stream_off", "unbound"}
GOOD = {"bound", "handoff", "binding_up", "start", "backbone_up"}
HEAD = ("t", "n", "b", "s", "ev")


def render(board: str, colour: str, text: str, t: float, raw: bool) -> str:
    """One console line in rich markup."""
    from rich.markup import escape

    stamp = time.strftime("%H:%M:%S", time.localtime(t)) + ".%03d" % int((t % 1) * 1000)
    head = "[dim]%s[/] [bold %s]%-8s[/]" % (stamp, colour, escape(board))
    obj = json_object(text)
    if obj is None or raw:
        return "%s [dim]%s[/]" % (head, escape(text))
    ev = str(obj.get("ev", obj.get("event", "?")))
    style = "bold red" if ev in ALARM else "yellow" if ev in WARN else "green" if ev in GOOD else ""
    fields = " ".join(
        "%s=%s" % (k, json.dumps(v, separators=(",", ":")) if not isinstance(v, str) else v)
        for k, v in obj.items()
        if k not in HEAD
    )
    name = "[%s]%s[/]" % (style, escape(ev)) if style else escape(ev)
    return "%s %s %s" % (head, name, escape(fields))


class SerialFeed(threading.Thread):
    """Lines of one board's serial port, surviving the port going away and coming back."""

    def __init__(self, board: str, port: str, out: queue.Queue, stop: threading.Event) -> None:
        super().__init__(daemon=True, name="monitor-" + board)
        self.board, self.port, self.out, self.stop_event = board, port, out, stop

    def run(self) -> None:
        import os

        import serial

        buf = b""
        said_gone = False
        while not self.stop_event.is_set():
            try:
                s = serial.Serial(self.port, 115200, timeout=0.1)
            except (serial.SerialException, OSError):
                if not said_gone:
                    self.out.put(
                        (self.board, "-- port %s is not there; waiting" % self.port, time.time())
                    )
                    said_gone = True
                self.stop_event.wait(0.2)
                continue
            if said_gone:
                self.out.put((self.board, "-- port %s is back" % self.port, time.time()))
                said_gone = False
            try:
                while not self.stop_event.is_set():
                    data = s.read(4096)
                    if not data:
                        if not os.path.exists(self.port):
                            break
                        continue
                    buf += data
                    *lines, buf = buf.split(b"\n")
                    now = time.time()
                    for ln in lines:
                        text = ln.decode("utf-8", "replace").rstrip("\r")
                        if text:
                            self.out.put((self.board, text, now))
            except (serial.SerialException, OSError):
                pass
            finally:
                s.close()


class StreamFeed(threading.Thread):
    """Lines from a running `roam field` (its /api/events), reconnecting when it restarts."""

    def __init__(self, url: str, boards: set[str] | None, out: queue.Queue, stop) -> None:
        super().__init__(daemon=True, name="monitor-stream")
        self.url = url.rstrip("/") + "/api/events"
        self.boards, self.out, self.stop_event = boards, out, stop

    def run(self) -> None:
        said = False
        while not self.stop_event.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    said = False
                    kind = None
                    for raw in r:
                        if self.stop_event.is_set():
                            return
                        line = raw.decode("utf-8", "replace").rstrip("\n")
                        if line.startswith("event: "):
                            kind = line[7:]
                        elif line.startswith("data: ") and kind == "line":
                            msg = json.loads(line[6:])
                            if self.boards is None or msg["board"] in self.boards:
                                text = json.dumps(msg["line"], separators=(",", ":"))
                                self.out.put((msg["board"], text, msg["host"]))
            except (OSError, urllib.error.URLError, ValueError):
                if not said:
                    self.out.put(
                        ("roam", "-- no roam field at %s; retrying" % self.url, time.time())
                    )
                    said = True
                self.stop_event.wait(1.0)


def monitor(
    feeds: Sequence[threading.Thread],
    out: queue.Queue,
    stop: threading.Event,
    raw: bool,
    duration: float | None,
) -> None:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    colour: dict[str, str] = {}
    for f in feeds:
        f.start()
    end = None if duration is None else time.monotonic() + duration
    try:
        while end is None or time.monotonic() < end:
            try:
                board, text, t = out.get(timeout=0.2)
            except queue.Empty:
                continue
            c = colour.setdefault(board, COLOURS[len(colour) % len(COLOURS)])
            console.print(render(board, c, text, t, raw))
    finally:
        stop.set()


@click.command("monitor")
@click.option(
    "--port",
    "-p",
    metavar="PORT",
    envvar="ROAM_PORT",
    show_envvar=True,
    help="The board on this serial port (default: the fleet's boards, or the one plugged in).",
)
@fleet_file_option()
@click.option(
    "--board",
    "boards",
    metavar="NAME",
    multiple=True,
    help="Only this board of the fleet (repeat for more).",
)
@click.option(
    "--field",
    "field_url",
    metavar="URL",
    default=None,
    help="Read the stream of a running `roam field` (e.g. http://localhost:8080) "
    "instead of serial ports.",
)
@click.option("--raw", is_flag=True, help="Show log lines as the boards printed them.")
@duration_option
def monitor_cmd(port, fleet_path, boards, field_url, raw, duration):
    """A live console: every line of one board (--port), the fleet's boards (--board NAME,
    repeatable), or a running `roam field` (--field URL), coloured, one line per event."""
    out: queue.Queue = queue.Queue()
    stop = threading.Event()
    feeds: list[threading.Thread]
    if field_url:
        if typed_port(port):
            raise click.UsageError("--field and --port do not go together")
        feeds = [StreamFeed(field_url, set(boards) or None, out, stop)]
    else:
        targets, fleet = resolve(port, fleet_path, None)
        if boards:
            if fleet is None:
                raise click.UsageError("--board needs a fleet file")
            names = [fleet.lookup(b).name for b in boards]
            targets = [t for t in targets if t.label in names]
        if not targets:
            raise RoamError("no boards to monitor")
        feeds = [SerialFeed(t.label, t.port, out, stop) for t in targets]
    try:
        monitor(feeds, out, stop, raw, duration)
    except KeyboardInterrupt:
        return 130
    return 0

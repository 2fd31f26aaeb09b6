"""Which boards a command acts on, and running it on all of them at once.

Every board command takes ``--port P`` (one board) or works on the whole fleet (``--fleet``,
optionally narrowed with ``--board NAME``). ``run_parallel`` runs one job per board in threads
with one rich progress bar per board, and turns the failures into one line.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hosttools.errors import RoamError, RoamUsageError
from hosttools.fleet import Board, Fleet, Keys, load_fleet, load_keys

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

DEFAULT_FLEET = "fleet.toml"
DEFAULT_KEYS = "keys.toml"

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
# --keys of the commands that reach the boards over the air too
UPDATE_KEYS_HELP = "Keys file (--ota: the fleet's update secret)."


@dataclass
class Target:
    """One board to act on: its port and, when the fleet knows it, its fleet entry."""

    port: str
    board: Board | None

    @property
    def label(self) -> str:
        return self.board.name if self.board else os.path.basename(self.port)


def fleet_file_option(help: str = "Fleet file (default: fleet.toml).") -> Decorator:
    """--fleet FILE (or $ROAM_FLEET), passed as ``fleet_path``."""
    return click.option(
        "--fleet", "fleet_path", metavar="FILE", envvar="ROAM_FLEET", show_envvar=True, help=help
    )


def keys_file_option(
    help: str = "Keys file, never printed (default: keys.toml).",
) -> Decorator:
    """--keys FILE (or $ROAM_KEYS), passed as ``keys_path``."""
    return click.option(
        "--keys", "keys_path", metavar="FILE", envvar="ROAM_KEYS", show_envvar=True, help=help
    )


def fleet_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--port / --fleet / --board, shared by every board command."""
    f = click.option(
        "--board",
        "board_name",
        metavar="NAME",
        help="Only this board of the fleet (name or node id).",
    )(f)
    f = fleet_file_option()(f)
    f = click.option(
        "--port",
        "-p",
        metavar="PORT",
        envvar="ROAM_PORT",
        show_envvar=True,
        help="Act on the board on this serial port only (default: the fleet's boards, or the "
        "one board plugged in when there is no fleet file).",
    )(f)
    return f


def keys_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return keys_file_option()(f)


def ota_option(help: str) -> Decorator:
    """--ota: the command reaches the fleet's boards over the air (``help``: what it does so)."""
    return click.option("--ota", is_flag=True, help=help)


def duration_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--duration SECONDS of a command that otherwise runs until Ctrl-C."""
    return click.option(
        "--duration",
        type=click.FloatRange(min=0),
        default=None,
        help="Stop after this many seconds (default: until Ctrl-C).",
    )(f)


def board_progress(console: Console, quiet: bool) -> Progress:
    """One progress bar a board (its name, the bar, what it is doing, the time), on
    ``console``; none when ``quiet`` or not on a terminal."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.fields[board]:<12}"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=quiet or not console.is_terminal,
    )


def maybe_fleet(fleet_path: str | None, required: bool) -> Fleet | None:
    """The fleet file: an explicit path must exist; the default one is optional unless
    the command needs it."""
    if fleet_path:
        return load_fleet(fleet_path)
    if Path(DEFAULT_FLEET).is_file():
        return load_fleet(DEFAULT_FLEET)
    if required:
        raise RoamUsageError(
            "no fleet file: pass --fleet FILE (or create fleet.toml, see "
            "docs/USER_GUIDE.md), or name one board with --port"
        )
    return None


def maybe_keys(keys_path: str | None, fleet: Fleet | None) -> Keys | None:
    if keys_path:
        return load_keys(keys_path, fleet)
    if Path(DEFAULT_KEYS).is_file():
        return load_keys(DEFAULT_KEYS, fleet)
    return None


def serial_ports() -> list[Any]:
    from serial.tools import list_ports

    return list(list_ports.comports())


def not_connected(serial: str) -> str:
    """The port shown for a board named by its USB serial number that is not plugged in (a
    dry run goes on without it)."""
    return "<USB serial %s: not connected>" % serial


def resolve(
    port: str | None,
    fleet_path: str | None,
    board_name: str | None,
    need_entry: bool = False,
    dry_run: bool = False,
) -> tuple[list[Target], Fleet | None]:
    """The targets of a command. need_entry: every target must have a fleet entry (provision).
    dry_run: a board that is not plugged in is no error (its port shows as not_connected).
    Without --port and without a fleet file: the one USB board plugged in, as mpremote does."""
    if port is None and not fleet_path and not Path(DEFAULT_FLEET).is_file():
        port = the_one_board()
    fleet = maybe_fleet(fleet_path, required=port is None)
    if port is not None:
        entry = None
        if fleet is not None:
            entry = fleet.lookup(board_name) if board_name else fleet.match(port, _serial_of(port))
        if need_entry and entry is None:
            where = fleet.path if fleet is not None else "no fleet file"
            raise RoamError(
                "port %s has no fleet entry (%s): add a [[board]] with port = %r or "
                "its USB serial number, or pass --board NAME" % (port, where, port)
            )
        return [Target(port, entry)], fleet
    assert fleet is not None
    boards = [fleet.lookup(board_name)] if board_name else list(fleet)
    ports = None
    targets = []
    for b in boards:
        if b.port:
            targets.append(Target(b.port, b))
            continue
        if ports is None:
            ports = serial_ports()
        want = str(b.serial).lower()
        found = [p.device for p in ports if (p.serial_number or "").lower() == want]
        if not found and dry_run:
            targets.append(Target(not_connected(str(b.serial)), b))
            continue
        if not found:
            raise RoamError(
                "board %r (USB serial %s) is not connected (`roam devices` lists "
                "what is)" % (b.name, b.serial)
            )
        targets.append(Target(found[0], b))
    return targets, fleet


def typed_port(port: str | None) -> str | None:
    """--port as typed on the command line; None when it only came from $ROAM_PORT (which
    --ota, going by the fleet file, does not take as a mistake)."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.get_parameter_source("port") == ParameterSource.ENVIRONMENT:
        return None
    return port


def the_one_board() -> str:
    """The port of the one USB serial board plugged in (said on stderr); a usage error naming
    what to do when there is none or more than one."""
    usb = sorted(
        (p for p in serial_ports() if getattr(p, "vid", None) is not None), key=lambda p: p.device
    )
    if len(usb) == 1:
        click.echo("roam: the one board plugged in: %s" % usb[0].device, err=True)
        return str(usb[0].device)
    if not usb:
        raise RoamUsageError(
            "no fleet file and no board plugged in: plug one in, pass --fleet FILE (or create "
            "fleet.toml, see docs/USER_GUIDE.md), or name one board with --port"
        )
    raise RoamUsageError(
        "no fleet file, and %d boards plugged in (%s): name one with --port, or describe them "
        "in fleet.toml (docs/USER_GUIDE.md)" % (len(usb), ", ".join(p.device for p in usb))
    )


def _serial_of(port: str) -> str | None:
    try:
        for p in serial_ports():
            if p.device == port or os.path.realpath(p.device) == os.path.realpath(port):
                return p.serial_number
    except Exception:  # noqa: BLE001 - port listing is best effort here
        return None
    return None


class BoardProgress:
    """What a job sees: update(fraction, text) moves its bar."""

    def __init__(self, cb: Callable[[float, str], None]) -> None:
        self._cb = cb

    def update(self, fraction: float, text: str = "") -> None:
        self._cb(max(0.0, min(1.0, fraction)), text)


def _describe(exc: Exception, port: str, what: str, doing: str) -> str:
    """One line for an exception a board job did not turn into a RoamError: a port that failed
    under it (pyserial's "device reports readiness to read but returned no data", mpremote's
    TransportError) is a board that went away, said so; anything else as it is."""
    if isinstance(exc, OSError) or type(exc).__name__ in ("TransportError", "TransportExecError"):
        return (
            "the board on %s went away during %s (at: %s): unplugged or reset? plug it in and "
            "run the command again, it goes on from what the board has" % (port, what, doing)
        )
    return "%s: %s" % (type(exc).__name__, " ".join(str(exc).split()))


def run_parallel(
    what: str,
    targets: Sequence[Target],
    job: Callable[[Target, BoardProgress], Any],
    quiet: bool = False,
) -> list[Any]:
    """Run job(target, progress) for every target at once, one progress bar each. Returns the
    results in target order; if any failed, raises one RoamError naming each failed board."""
    from rich.console import Console

    console = Console(stderr=True, quiet=quiet)
    results: list[Any] = [None] * len(targets)
    errors: list[tuple[str, str]] = []
    doing = [what] * len(targets)  # each board's last step, for a board that goes away
    lock = threading.Lock()
    with board_progress(console, quiet) as progress:
        ids = [progress.add_task(what, total=1.0, board=t.label) for t in targets]

        def one(i: int) -> None:
            t = targets[i]

            def cb(frac: float, text: str) -> None:
                doing[i] = text or what
                progress.update(ids[i], completed=frac, description=text or what)

            try:
                results[i] = job(t, BoardProgress(cb))
                progress.update(ids[i], completed=1.0, description="done")
            except RoamError as exc:
                progress.update(ids[i], description="[red]failed")
                with lock:
                    errors.append((t.label, str(exc)))
            except Exception as exc:  # noqa: BLE001 - one board's bug must not hide the others
                progress.update(ids[i], description="[red]failed")
                with lock:
                    errors.append((t.label, _describe(exc, t.port, what, doing[i])))

        if len(targets) == 1:
            one(0)
        else:
            with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
                list(pool.map(one, range(len(targets))))
    if errors:
        if len(targets) == 1:
            raise RoamError(errors[0][1])
        # Each failure on its own line first, then the one summary line the CLI prints.
        for label, msg in errors:
            print("roam: %s: %s" % (label, msg), file=sys.stderr)
        raise RoamError(
            "%s failed on %d of %d boards (%s)"
            % (what, len(errors), len(targets), ", ".join(sorted(lbl for lbl, _ in errors)))
        )
    return results

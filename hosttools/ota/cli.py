"""The ``--ota`` side of `roam deploy`, `roam provision`, `roam reset` and `roam devices`: the
fleet's boards reached over the field's access point (or, in the lab, through its air) instead
of USB, each with its own progress bar, all at once.

The laptop holds the fleet's update secret (keys file ``update = "<hex>"``); each board holds
only the key derived from it for itself (SPI 0x400, written by `roam provision`). The laptop
answers from UDP port 4346 (the collector keeps 4345), so `roam field` can run meanwhile.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import click

from hosttools.errors import RoamError, RoamUsageError
from hosttools.firmware import update_key
from hosttools.fleet import Board as FleetBoard
from hosttools.fleet import Fleet, Keys
from hosttools.ota import runner
from hosttools.ota.plan import Payload
from hosttools.ota.session import Session
from hosttools.targets import (
    UPDATE_KEYS_HELP,
    board_progress,
    fleet_options,
    keys_file_option,
    ota_option,
)

UPDATE_PORT = 4346  # the laptop's side
LAPTOP_OTA_MAC = bytes((0x02, 0x4C, 0x41, 0x50, 0x54, 0x02))  # in the lab's air: not the collector


def need_fleet(fleet: Fleet | None, what: str) -> Fleet:
    if fleet is None:
        raise RoamUsageError(
            "%s --ota needs the fleet file (--fleet): it says where each board is" % what
        )
    return fleet


def update_keys(keys: Keys | None, boards: list[FleetBoard]) -> dict[str, bytes]:
    """Each board's update key, derived from the keys file's update secret."""
    if keys is None:
        raise RoamUsageError(
            "no keys file: --ota needs one with the fleet's update secret (--keys FILE)"
        )
    out = {}
    for b in boards:
        secret = keys.for_board(b.name).get("update")
        if secret is None:
            raise RoamError(
                '%s has no update secret for %s: add update = "<32 hex digits>" to its '
                "[default] and provision the boards once over USB (docs/USER_GUIDE.md)"
                % (keys.path, b.name)
            )
        out[b.name] = update_key(bytes.fromhex(secret.reveal()), b.node)
    return out


def agents_of(fleet: Fleet) -> list[str]:
    """Backbone addresses of the agents: the boards that relay to radio-only boards."""
    return [b.backbone_ip for b in fleet if b.role == "agent" and b.backbone_ip]


def open_transport(fleet: Fleet) -> Any:
    """The laptop's UDP socket for updates: through the lab's air when the fleet names one."""
    from hosttools.field.cli import LAB_SSID
    from hosttools.field.transport import AirTransport, UdpTransport
    from hosttools.fleet import parse_hostport

    fc = fleet.field_cfg
    if fc.get("air"):
        collector = fc.get("collector")
        if not collector or collector == "auto":
            raise RoamError('%s: [field] air needs collector = "ip:port" too' % fleet.path)
        ip, _ = parse_hostport(collector, 4345)
        return AirTransport(
            parse_hostport(fc["air"], None),
            ip,
            UPDATE_PORT,
            fc.get("ssid", LAB_SSID),
            name="laptop-ota",
            mac=LAPTOP_OTA_MAC,
        )
    return UdpTransport(UPDATE_PORT)


def route(fleet: Fleet, b: FleetBoard) -> str:
    if b.backbone_ip:
        return "straight to %s" % b.backbone_ip
    n = len(agents_of(fleet))
    return "by ESP-NOW through the agent that relays its log (%d agents asked)" % n


def run_sessions(
    what: str,
    fleet: Fleet,
    boards: list[FleetBoard],
    make: Callable[[FleetBoard, float], Session],
    quiet: bool = False,
) -> list[runner.Board]:
    """Run one session per board, one progress bar each; returns them (finished)."""
    from rich.console import Console

    if not any(b.backbone_ip for b in boards) and not agents_of(fleet):
        raise RoamError("no board of the fleet is on the access point (wifi.ip): nothing to reach")
    now = time.monotonic()
    runs = []
    for b in boards:
        runs.append(
            runner.Board(
                b.name,
                make(b, now),
                b.backbone_ip,
                bytes(map(int, b.addr.split("."))),
                relay=b.role == "agent",
            )
        )
    transport = open_transport(fleet)
    console = Console(stderr=True, quiet=quiet)
    try:
        with board_progress(console, quiet) as progress:
            ids = {r.name: progress.add_task(what, total=1.0, board=r.name) for r in runs}

            def show(r: runner.Board) -> None:
                frac, text = r.session.progress()
                if r.session.state == "failed":
                    text = "[red]failed"
                progress.update(ids[r.name], completed=frac, description=text)

            runner.run(runs, transport, agents_of(fleet), show)
    finally:
        transport.close()
    return runs


def check_all(what: str, runs: list[runner.Board]) -> None:
    """One line per failed board on stderr, then one RoamError (exit 1) naming them."""
    failed = [r for r in runs if r.session.state == "failed"]
    if not failed:
        return
    for r in failed:
        print("roam: %s: %s" % (r.name, r.session.error), file=sys.stderr)
    raise RoamError(
        "%s failed on %d of %d boards (%s)"
        % (what, len(failed), len(runs), ", ".join(sorted(r.name for r in failed)))
    )


def update_boards(
    what: str,
    op: str,
    fleet: Fleet,
    boards: list[FleetBoard],
    keys: Keys | None,
    payloads: Callable[[FleetBoard, dict[str, Any]], Payload] | None,
    quiet: bool = False,
    give_up_s: float = 30.0,
) -> list[runner.Board]:
    """Ask every board its status, then (op firmware/config) send each its payload (chosen
    from that status: payloads(board, status)), or reset it (op reset)."""
    key = update_keys(keys, boards)

    def ask(b: FleetBoard, now: float) -> Session:
        return Session(
            b.node, key[b.name], "status", radio=not b.backbone_ip, now=now, give_up_s=give_up_s
        )

    if op == "status":
        return run_sessions(what, fleet, boards, ask, quiet)
    first = {r.name: r for r in run_sessions("asking", fleet, boards, ask, quiet)}
    reached = [b for b in boards if first[b.name].session.status is not None]

    def make(b: FleetBoard, now: float) -> Session:
        st = first[b.name].session.status
        assert st is not None
        p = payloads(b, st) if payloads is not None else None
        # firmware and configs: staged on every board first, then switched together
        return Session(
            b.node,
            key[b.name],
            op,
            p,
            radio=not b.backbone_ip,
            now=now,
            give_up_s=give_up_s,
            hold=op in ("firmware", "config"),
        )

    done = {r.name: r for r in run_sessions(what, fleet, reached, make, quiet)} if reached else {}
    # a board that did not answer is not waited for: the others go ahead, it is reported
    runs = [done.get(b.name) or first[b.name] for b in boards]
    check_all(what, runs)
    return runs


def fleet_boards(fleet: Fleet, board_name: str | None) -> list[FleetBoard]:
    return [fleet.lookup(board_name)] if board_name else list(fleet)


@click.command("reset")
@fleet_options
@keys_file_option(UPDATE_KEYS_HELP)
@ota_option("Over the air (the field's access point), not USB.")
@click.option("--dry-run", is_flag=True, help="Say which boards would be reset; touch none.")
def reset_cmd(
    port: str | None,
    fleet_path: str | None,
    board_name: str | None,
    keys_path: str | None,
    ota: bool,
    dry_run: bool,
) -> None:
    """Soft-reset one board (--port) or the fleet: over USB, or over the air (--ota)."""
    from hosttools.targets import maybe_keys, resolve, typed_port

    if ota:
        if typed_port(port):
            raise click.UsageError("--ota reaches boards by the fleet file, not --port")
        from hosttools.targets import maybe_fleet

        fleet = need_fleet(maybe_fleet(fleet_path, True), "reset")
        boards = fleet_boards(fleet, board_name)
        if dry_run:
            for b in boards:
                click.echo("%s: would soft-reset over the air, %s" % (b.name, route(fleet, b)))
            return
        keys = maybe_keys(keys_path, fleet)
        runs = update_boards("reset", "reset", fleet, boards, keys, None)
        for r in runs:
            click.echo("%s: %s" % (r.name, r.session.result))
        return
    targets, _ = resolve(port, fleet_path, board_name)
    if dry_run:
        for t in targets:
            click.echo("%s: would soft-reset over USB (%s)" % (t.label, t.port))
        return
    from hosttools.boardio import open_board, soft_reset
    from hosttools.targets import run_parallel

    def job(t: Any, progress: Any) -> None:
        progress.update(0.3, "connecting")
        with open_board(t.port) as tr:
            progress.update(0.7, "soft reset")
            if not soft_reset(tr):
                raise RoamError("%s did not answer the soft reset" % t.port)

    run_parallel("reset", targets, job)
    for t in targets:
        click.echo("%s: reset" % t.label)

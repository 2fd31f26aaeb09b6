"""`roam devices`: the boards connected to this computer, and the fleet entry each one is.

Serial ports come from pyserial's ``list_ports`` (port, USB serial number, VID:PID). The chip is
the fleet's board type's chip when the board is in the fleet, or what esptool detects when asked
(``--detect``: resets the board into its bootloader, so it is never done unasked). Virtual boards
of a running lab are listed too when the lab says where they are (hosttools/lab.py).
"""

from __future__ import annotations

import json
from typing import Any

import click

from hosttools.errors import RoamError
from hosttools.fleet import load_board_type
from hosttools.targets import (
    UPDATE_KEYS_HELP,
    fleet_file_option,
    keys_file_option,
    maybe_fleet,
    ota_option,
    serial_ports,
)


def lab_boards() -> list[dict[str, Any]]:
    """Virtual boards of a running lab, if the lab module exposes them."""
    try:
        from hosttools import lab
    except ImportError:
        return []
    fn = getattr(lab, "running_boards", None)
    if fn is None:
        return []
    try:
        return list(fn())
    except Exception:  # noqa: BLE001 - a stale lab state must not break the listing
        return []


def detect_chip_name(port: str) -> str | None:
    from esptool.cmds import detect_chip
    from esptool.util import FatalError

    try:
        esp = detect_chip(port=port, connect_attempts=1)
    except (FatalError, OSError):
        return None
    try:
        return str(esp.CHIP_NAME)
    finally:
        esp._port.close()


def list_devices(fleet_path: str | None, detect: bool = False) -> list[dict[str, Any]]:
    fleet = maybe_fleet(fleet_path, required=False)
    rows = []
    for p in sorted(serial_ports(), key=lambda p: p.device):
        if p.vid is None and not p.serial_number:
            continue  # a built-in UART with nothing behind it
        entry = fleet.match(p.device, p.serial_number) if fleet else None
        chip = None
        if entry is not None:
            try:
                chip = load_board_type(entry.board_type).chip
            except RoamError:
                chip = None
        if detect:
            chip = detect_chip_name(p.device) or chip
        rows.append(
            {
                "port": p.device,
                "serial": p.serial_number,
                "vid_pid": "%04x:%04x" % (p.vid, p.pid) if p.vid is not None else None,
                "description": p.description,
                "chip": chip,
                "fleet": entry.name if entry else None,
                "virtual": False,
            }
        )
    for vb in lab_boards():
        port = vb.get("port") or vb.get("pty")
        entry = fleet.match(port, None) if fleet and port else None
        rows.append(
            {
                "port": port,
                "serial": None,
                "vid_pid": None,
                "description": "virtual board %s" % vb.get("name", ""),
                "chip": vb.get("chip"),
                "fleet": entry.name if entry else vb.get("name"),
                "virtual": True,
            }
        )
    return rows


@click.command("devices")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@fleet_file_option("Fleet file to match boards against (default: fleet.toml if present).")
@click.option("--detect", is_flag=True, help="Ask esptool for the chip (resets the boards).")
@ota_option(
    "Ask the fleet's boards over the air: firmware and config they run, boot, uptime, "
    "previous version, last rollback."
)
@keys_file_option(UPDATE_KEYS_HELP)
@click.option("--board", "board_name", metavar="NAME", help="--ota: only this board.")
def devices_cmd(
    as_json: bool,
    fleet_path: str | None,
    detect: bool,
    ota: bool = False,
    keys_path: str | None = None,
    board_name: str | None = None,
) -> None:
    """List connected boards: port, USB serial number, chip, fleet entry. With --ota: the
    fleet's boards in the field, as they answer over the air."""
    if ota:
        from hosttools.ota.status import devices_ota

        devices_ota(fleet_path, keys_path, board_name, as_json)
        return
    rows = list_devices(fleet_path, detect)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no boards connected (plug one in over USB, or start a lab: roam lab up)")
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(box=None, header_style="bold")
    for col in ("port", "serial", "vid:pid", "chip", "fleet entry"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r["port"] or "-",
            r["serial"] or "-",
            r["vid_pid"] or "-",
            r["chip"] or "?",
            r["fleet"] or "-",
        )
    Console().print(t)

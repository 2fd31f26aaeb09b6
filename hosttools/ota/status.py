"""`roam devices --ota`: what every board of the fleet runs, as it says over the air."""

from __future__ import annotations

import json
from typing import Any

import click

from hosttools.errors import RoamError
from hosttools.ota import cli as ota
from hosttools.ota import plan as ota_plan


def local_versions(fleet: Any, keys: Any, boards: list[Any]) -> tuple[set[str], dict[str, str]]:
    """The firmware set hashes this checkout builds (as .mpy and as source), and each board's
    config hash as `roam provision` would write it now."""
    from hosttools.deploy import FIRMWARE_DIR, plans_for
    from hosttools.fleet import board_config
    from hosttools.provision import collector_address, validated

    plans = plans_for(FIRMWARE_DIR, "auto")
    fws = {ota_plan.firmware(items).short for items in plans.values()}
    cfgs = {}
    try:
        coll = collector_address(None, fleet)
    except RoamError:
        coll = None
    for b in boards:
        try:
            cfgs[b.name] = ota_plan.config(validated(board_config(b, keys, coll), b.name)).short
        except RoamError:
            pass
    return fws, cfgs


def rows(fleet: Any, keys: Any, boards: list[Any], runs: list[Any]) -> list[dict[str, Any]]:
    fws, cfgs = local_versions(fleet, keys, boards)
    out = []
    for b, r in zip(boards, runs, strict=True):
        st = r.session.status
        row: dict[str, Any] = {"board": b.name, "node": b.node, "role": b.role}
        if st is None:
            row.update(reached=False, error=r.session.error)
        else:
            row.update(
                reached=True,
                fw=st["fw"],
                fw_current=st["fw"] in fws,
                slot=st["slot"],
                previous_fw=st["previous_fw"],
                previous_slot=st["previous_slot"],
                config=st["config"],
                config_current=cfgs.get(b.name) == st["config"],
                boot=st["boot"],
                uptime_s=st["uptime_s"],
                pending=st["pending"],
                rollback=st["rollback"],
                romfs_kb=st["romfs_kb"],
                via=r.via or r.ip,
            )
        out.append(row)
    return out


def devices_ota(
    fleet_path: str | None, keys_path: str | None, board_name: str | None, as_json: bool
) -> None:
    from hosttools.targets import maybe_fleet, maybe_keys

    fleet = ota.need_fleet(maybe_fleet(fleet_path, True), "devices")
    boards = ota.fleet_boards(fleet, board_name)
    keys = maybe_keys(keys_path, fleet)
    runs = ota.update_boards(
        "asking", "status", fleet, boards, keys, None, quiet=as_json, give_up_s=6.0
    )
    table = rows(fleet, keys, boards, runs)
    if as_json:
        click.echo(json.dumps(table, indent=2))
    else:
        show(table)
    lost = [r["board"] for r in table if not r["reached"]]
    if lost:
        raise RoamError(
            "%d of %d boards did not answer: %s" % (len(lost), len(table), ", ".join(lost))
        )


def _rb(rb: dict[str, Any] | None) -> str:
    if not rb:
        return "-"
    if rb["what"] == "config":
        return "config, after %d boots" % rb["tries"]
    return "%s, after %d boots" % (rb["from"] or "?", rb["tries"])


def show(table: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(box=None, header_style="bold")
    for col in (
        "board",
        "firmware",
        "slot",
        "previous",
        "config",
        "boot",
        "up",
        "pending",
        "last rollback",
        "romfs",
    ):
        t.add_column(col)
    for r in table:
        if not r["reached"]:
            t.add_row(r["board"], "[red]no answer", "", "", "", "", "", "", r.get("error", ""), "")
            continue
        fw = (r["fw"] or "root (USB)") + ("" if r["fw_current"] else " [yellow](not this checkout)")
        cfg = (r["config"] or "-") + ("" if r["config_current"] else " [yellow](changed)")
        prev = (
            "-"
            if not r["previous_slot"]
            else "%s (%s)" % (r["previous_fw"] or "?", r["previous_slot"])
        )
        t.add_row(
            r["board"],
            fw,
            r["slot"] or "?",
            prev,
            cfg,
            str(r["boot"]),
            "%ds" % r["uptime_s"],
            r["pending"] or "-",
            _rb(r["rollback"]),
            "%d KiB" % r["romfs_kb"] if r["romfs_kb"] else "-",
        )
    Console().print(t)

"""`roam provision`: write a board's config.json from the fleet and keys files.

The config is validated on the host with the firmware's own ``config.validate`` before the
board is touched. On the board it goes to ``config.json.tmp`` first; the tmp file's SHA-256 is
checked against what was sent, only then is it renamed over ``config.json`` (the rename is
atomic on LittleFS; FAT gets remove-then-rename, which the firmware's ``config.load`` recovers
from), and the result is read back and compared. Key values are never printed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import click

from hosttools import firmware
from hosttools.boardio import board_exec, open_board
from hosttools.deploy import CLEAR_BOOT_COUNT
from hosttools.errors import RoamError, RoamUsageError
from hosttools.fleet import FIELD_PORT, Fleet, board_config, parse_hostport
from hosttools.targets import (
    BoardProgress,
    Target,
    fleet_options,
    keys_option,
    maybe_keys,
    ota_option,
    resolve,
    run_parallel,
    typed_port,
)

CONFIG = "config.json"


def validated(cfg: dict[str, Any], label: str) -> bytes:
    fc = firmware.config()
    try:
        fc.validate(cfg, "config for %s" % label)
    except fc.ConfigError as exc:
        raise RoamError(str(exc)) from None
    return json.dumps(cfg, sort_keys=True).encode()


# Runs on the board: hash the tmp file, rename it into place, then print the final content's
# hash. Only digests cross the serial line, never the keys.
_COMMIT = """
import os, hashlib, binascii
os.chdir('/')
def _h(p):
    h = hashlib.sha256()
    with open(p, 'rb') as f:
        while True:
            b = f.read(512)
            if not b:
                break
            h.update(b)
    return binascii.hexlify(h.digest()).decode()
if _h(%(tmp)r) != %(digest)r:
    os.remove(%(tmp)r)
    raise OSError('config.json.tmp does not match what was sent')
try:
    os.rename(%(tmp)r, %(dst)r)
except OSError:
    os.remove(%(dst)r)
    os.rename(%(tmp)r, %(dst)r)
print(_h(%(dst)r))
"""


def provision_board(port: str, cfg_bytes: bytes, progress: BoardProgress | None = None) -> None:
    step = progress.update if progress else (lambda f, t="": None)
    digest = hashlib.sha256(cfg_bytes).hexdigest()
    tmp = CONFIG + ".tmp"
    step(0.1, "connecting")
    with open_board(port, fresh=True) as t:
        step(0.3, "writing")
        try:
            t.fs_writefile(tmp, cfg_bytes)
        except Exception as exc:  # noqa: BLE001 - the board may fail in many ways mid-write
            try:
                board_exec(
                    t,
                    "import os\nos.chdir('/')\ntry:\n os.remove(%r)\n"
                    "except OSError:\n pass\n" % tmp,
                    port,
                )
            except RoamError:
                pass
            raise RoamError(
                "writing %s on %s failed (%s); the old config is untouched"
                % (CONFIG, port, type(exc).__name__)
            ) from None
        step(0.7, "checking")
        out = board_exec(t, _COMMIT % {"tmp": tmp, "dst": CONFIG, "digest": digest}, port)
        step(0.9, "reading back")
        if out.decode().strip() != digest:
            raise RoamError("%s on %s does not read back as written" % (CONFIG, port))
        # the reset that follows is not a crash (firmware/safemode.py counts boots)
        board_exec(t, "import os\nos.chdir('/')\n" + CLEAR_BOOT_COUNT, port)


def redacted(cfg_bytes: bytes) -> str:
    """The config as it would be written, each key value replaced by its length."""
    cfg = json.loads(cfg_bytes)
    if isinstance(cfg.get("keys"), dict):
        cfg["keys"] = {
            spi: "<%d-byte key>" % (len(v) // 2) if isinstance(v, str) else "<key>"
            for spi, v in cfg["keys"].items()
        }
    return json.dumps(cfg, sort_keys=True)


def collector_address(
    setting: str | None, fleet: Fleet | None, probe: Callable[[str], str] | None = None
) -> str | None:
    """The collector ("ip:port") the backbone boards send their logs to: --collector or the
    fleet's [field] collector; "auto" is this laptop's address on the way to the boards'
    access point (the address the system would send from to a backbone board)."""
    fc = fleet.field_cfg if fleet is not None else {}
    value = setting or fc.get("collector")
    if not value:
        return None
    port = int(fc.get("port", FIELD_PORT))
    if value != "auto":
        try:
            ip, p = parse_hostport(value, port)
        except ValueError as e:
            raise RoamError("collector: %s" % e) from None
        return "%s:%d" % (ip, p)
    targets = [b.backbone_ip for b in (fleet or []) if b.backbone_ip]
    if not targets:
        raise RoamError(
            "collector = auto: no board of the fleet has a Wi-Fi address (wifi.ip) to find "
            "the way to; name the laptop's address (--collector IP)"
        )
    return "%s:%d" % ((probe or local_address)(targets[0]), port)


def local_address(toward: str) -> str:
    """This host's address on the route to ``toward`` (no packet is sent: a UDP connect only
    chooses the route)."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((toward, FIELD_PORT))
        ip = s.getsockname()[0]
    except OSError as e:
        raise RoamError(
            "collector = auto: no route to the boards' network (%s): is the laptop on the field's"
            " access point?" % e.strerror
        ) from None
    finally:
        s.close()
    if ip.startswith("127."):
        raise RoamError(
            "collector = auto: the way to %s is the loopback: is the laptop on the field's "
            "access point?" % toward
        )
    return ip


@click.command("provision")
@fleet_options
@keys_option
@click.option(
    "--collector",
    metavar="IP[:PORT]|auto",
    default=None,
    help="Where backbone boards send their logs (the laptop running `roam field`); "
    "default: the fleet's [field] collector. auto: this laptop's address on the access point.",
)
@click.option(
    "--dry-run", is_flag=True, help="Check the config, print it (keys hidden), touch no board."
)
@ota_option(
    "Over the air to the fleet's boards (checked by the board before the switch, rolled "
    "back if the board does not start with it)."
)
def provision_cmd(
    port: str | None,
    fleet_path: str | None,
    board_name: str | None,
    keys_path: str | None,
    collector: str | None,
    dry_run: bool = False,
    ota: bool = False,
) -> None:
    """Write config.json (role, addresses, keys) to one board (--port) or the whole fleet.
    With --ota: over the air, to boards in the field."""
    if ota:
        if typed_port(port):
            raise click.UsageError("--ota reaches boards by the fleet file, not --port")
        provision_ota(fleet_path, board_name, keys_path, collector, dry_run)
        return
    targets, fleet = resolve(port, fleet_path, board_name, need_entry=True, dry_run=dry_run)
    keys = maybe_keys(keys_path, fleet)
    if keys is None:
        raise RoamUsageError(
            "no keys file: pass --keys FILE (or create keys.toml, see docs/USER_GUIDE.md)"
        )
    coll = collector_address(collector, fleet)
    configs = {}
    for t in targets:
        assert t.board is not None
        configs[t.port] = validated(board_config(t.board, keys, coll), t.board.name)
    if dry_run:
        for t in targets:
            click.echo(
                "%s: would write %s on %s (tmp file, hash check, rename, read back): %s"
                % (t.label, CONFIG, t.port, redacted(configs[t.port]))
            )
        return

    def job(t: Target, progress: BoardProgress) -> None:
        provision_board(t.port, configs[t.port], progress)

    run_parallel("provision", targets, job)
    for t in targets:
        assert t.board is not None
        n_keys = len(keys.for_board(t.board.name))
        click.echo(
            "%s: %s written (%s, node %d, %s, %d keys)"
            % (t.label, CONFIG, t.board.role, t.board.node, t.board.addr, n_keys)
        )


def provision_ota(
    fleet_path: str | None,
    board_name: str | None,
    keys_path: str | None,
    collector: str | None,
    dry_run: bool,
) -> None:
    """`roam provision --ota`: each board's config over the air."""
    from hosttools.ota import cli as ota
    from hosttools.ota import plan as ota_plan
    from hosttools.targets import maybe_fleet

    fleet = ota.need_fleet(maybe_fleet(fleet_path, True), "provision")
    boards = ota.fleet_boards(fleet, board_name)
    keys = maybe_keys(keys_path, fleet)
    if keys is None:
        raise RoamUsageError("no keys file: pass --keys FILE (or create keys.toml)")
    coll = collector_address(collector, fleet)
    configs = {b.name: validated(board_config(b, keys, coll), b.name) for b in boards}
    if dry_run:
        for b in boards:
            click.echo(
                "%s: would send %s over the air %s (checked on the board, then switched; rolled "
                "back if the board does not start with it): %s"
                % (b.name, CONFIG, ota.route(fleet, b), redacted(configs[b.name]))
            )
        return
    runs = ota.update_boards(
        "provision",
        "config",
        fleet,
        boards,
        keys,
        lambda b, st: ota_plan.config(configs[b.name]),
    )
    for r in runs:
        click.echo("%s: %s %s" % (r.name, CONFIG, r.session.result))

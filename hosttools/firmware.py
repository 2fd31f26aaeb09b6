"""The firmware's own modules on the host: the board config's checks and its roles
(firmware/config.py), the field log's wire format and key derivation (firmware/fieldlog), the
update service's messages (firmware/update), the protocol core (firmware/mobility). One code
path: the host imports the very files that run on a board.

``use()`` puts ``firmware/`` on ``sys.path`` (appended; the simulator's compiled core, when
hosttools.sim chose it, is found before sys.path: hosttools/corebuild.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from functools import cache
from types import ModuleType

from hosttools.paths import shipped

FIRMWARE_DIR = shipped("firmware")


def use() -> None:
    if str(FIRMWARE_DIR) not in sys.path:
        sys.path.append(str(FIRMWARE_DIR))


def module(name: str) -> ModuleType:
    """The firmware module ``name`` ("fieldlog.wire"), imported from firmware/."""
    use()
    return importlib.import_module(name)


@cache
def config() -> ModuleType:
    """firmware/config.py, loaded under its own name (a top-level ``config`` could be anyone's):
    its validate() is the contract for a board's config.json, its ROLE_CLASSES the roles a
    board runs."""
    spec = importlib.util.spec_from_file_location(
        "roam_firmware_config", FIRMWARE_DIR / "config.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@cache
def config_keys() -> frozenset[str]:
    """Every name the firmware reads from a board's config (``config.get("x")``,
    ``config["x"]``, ``cfg_int(config, "x", ...)`` in firmware/): what a fleet entry may set.
    Read from the sources, so that a key the firmware learns is known here at once; a name
    only a nested table holds (a region's ``members``) is let through too."""
    import re

    pattern = re.compile(
        r'(?:\bconfig|\bcfg)(?:\.get\(|\[)\s*"([a-z_][a-z_0-9]*)"'
        r'|cfg_int\(\s*(?:config|cfg)\s*,\s*"([a-z_][a-z_0-9]*)"'
    )
    found: set[str] = set()
    for path in FIRMWARE_DIR.rglob("*.py"):
        for a, b in pattern.findall(path.read_text(encoding="utf-8")):
            found.add(a or b)
    return frozenset(found)


def roles() -> tuple[str, ...]:
    """The roles a board runs (firmware/config.py ROLE_CLASSES): the only list of them."""
    return tuple(name for name, _cls in config().ROLE_CLASSES)


def core(name: str) -> ModuleType:
    """firmware/mobility/<name>.py: a module of the protocol core."""
    use()
    return importlib.import_module("mobility." + name)


def fieldlog_wire() -> ModuleType:
    """firmware/fieldlog/wire.py: the field service's messages."""
    return module("fieldlog.wire")


def fieldlog_reader() -> ModuleType:
    """firmware/fieldlog/reader.py: the collector's side of the messages."""
    return module("fieldlog.reader")


def update_wire() -> ModuleType:
    """firmware/update/wire.py: the update service's messages."""
    return module("update.wire")


def log_key(secret: bytes, node_id: int) -> bytes:
    """Board ``node_id``'s log key, derived from the fleet's log secret as the board holds it."""
    key: bytes = module("fieldlog.relay").node_key(secret, fieldlog_wire().PURPOSE_LOG, node_id)
    return key


def update_key(secret: bytes, node_id: int) -> bytes:
    """Board ``node_id``'s update key, derived from the fleet's update secret."""
    key: bytes = module("fieldlog.relay").node_key(secret, update_wire().PURPOSE_UPDATE, node_id)
    return key

"""The fleet file: which boards take part in a field test and what each one is.

A fleet is a TOML file (docs/USER_GUIDE.md)::

    [defaults]              # optional, copied into every board that lacks the key
    board = "esp32"
    region = ["fa1", "fa2"]
    channel = 1

    [[board]]
    name = "fa1"            # unique, used in log file names and messages
    serial = "5C8A1B2F"     # USB serial number (preferred: survives re-plugging), or
    port = "/dev/ttyUSB0"   # a port; one of the two is needed to find the board
    board = "esp32"         # board type: boards/<type>.toml
    role = "agent"          # agent | mobile | host | home | router
    node_id = 1             # node id (unique)
    address = "10.0.0.1"    # home address (unique)
    # any other key (channel, region, agent address, ...) goes into the board's config.json

Keys live in a separate file (TOML or JSON) that is never printed or logged::

    [default]               # keys every board gets, name -> hex (16..64 bytes)
    cell = "00112233..."    # names: cell (SPI 0x100), region (0x200), home (0x10000 + node id)
    region = "..."          # or an SPI number as the name: "65537" = "..."
    binding = "..."         # binding secret: agents hold it, a mobile node only its own K_X
    [node.fa1]              # per-board keys, override the defaults
    home = "..."

In the board's config.json the keys are {"<spi>": "hex"} (firmware/config.py).

Every problem in either file is reported as one line naming the file and the board; key values
never appear in a message, a repr or a log line (``Secret``).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hosttools import firmware, fleet_schema
from hosttools.errors import RoamError, RoamUsageError
from hosttools.paths import shipped

BOARDS_DIR = shipped("boards")


def boards_path() -> Path:
    """Where board definitions live (ROAM_BOARDS_DIR overrides, for tests and custom boards)."""
    return Path(os.environ.get("ROAM_BOARDS_DIR") or BOARDS_DIR)


ROLES = firmware.roles()  # firmware/config.py: the roles a board runs
# Keys of a board entry that only the host uses; the rest go into config.json. `pos` is where
# the board stands in the field, in metres (the dashboard's map).
HOST_ONLY = ("name", "serial", "port", "board", "node_id", "address", "pos")
# Keys by name: the core's cell and region keys, a node's home key (their SPIs: key_spi).
KEY_NAMES = ("cell", "region", "home")
# Fleet secrets a board holds only a key derived from (derived_keys): the log secret (each
# board its own log key, agents the secret too: they check what they relay), the update
# secret (each board its own update key) and the binding secret (a mobile node the binding key
# of its own address, K_X; agents the secret: they derive every node's).
DERIVED = ("log", "update", "binding")
# fieldlog/wire.py's FIELD_PORT (not imported: that would load the core's package from its
# sources before the simulator could choose its compiled build)
FIELD_PORT = 4345
# [field]: how the laptop reaches the field (docs/USER_GUIDE.md "The field without cables").
FIELD_KEYS = ("collector", "air", "ssid", "port")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{2})+$")
# what no two boards of a fleet may share
UNIQUE = ("name", "node_id", "address", "serial", "port")


class Secret:
    """A key value that never shows itself: repr/str print a placeholder."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class BoardType:
    """A board definition from boards/<type>.toml (written with the firmware)."""

    name: str
    chip: str  # esptool's chip name: "esp32", "esp32s3", "esp32c3", ...
    flash_offset: int
    data: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def download_url(self) -> str:
        url = self.data.get("download")
        if isinstance(url, str) and url:
            return url
        return "https://micropython.org/download/?mcu=" + self.chip


@dataclass(frozen=True)
class Board:
    """One board of the fleet."""

    name: str
    board_type: str
    role: str
    node: int
    addr: str
    serial: str | None = None
    port: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)  # what goes into config.json
    pos: tuple[float, float] | None = None  # where it stands in the field (metres)

    @property
    def backbone_ip(self) -> str | None:
        """Its static address on the access point (config wifi.ip), if it joins one."""
        w = self.config.get("wifi")
        return w.get("ip") if isinstance(w, dict) and isinstance(w.get("ip"), str) else None

    def where(self) -> str:
        return self.port or ("USB serial %s" % self.serial)


@dataclass
class Fleet:
    path: Path | None
    boards: list[Board]
    # [field]: "collector" (the laptop's address on the access point, "ip[:port]" or "auto"),
    # "air" (a lab's air, host:port: the laptop joins the lab's access point through it)
    field_cfg: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Board]:
        return iter(self.boards)

    def by_name(self, name: str) -> Board:
        for b in self.boards:
            if b.name == name:
                return b
        raise RoamUsageError("%s: no board named %r in the fleet" % (self._where(), name))

    def by_node(self, node: int) -> Board:
        for b in self.boards:
            if b.node == node:
                return b
        raise RoamUsageError("%s: no board with node id %d in the fleet" % (self._where(), node))

    def lookup(self, ident: str) -> Board:
        """A board by name or node id (what `make flash NODE=...` passes)."""
        if ident.isdigit():
            for b in self.boards:
                if b.node == int(ident):
                    return b
        return self.by_name(ident)

    def match(self, port: str | None, serial: str | None) -> Board | None:
        """The fleet entry for a connected port: by USB serial number first, then by port."""
        if serial:
            for b in self.boards:
                if b.serial and b.serial.lower() == serial.lower():
                    return b
        if port:
            rp = os.path.realpath(port)
            for b in self.boards:
                if b.port and (b.port == port or os.path.realpath(b.port) == rp):
                    return b
        return None

    def _where(self) -> str:
        return str(self.path) if self.path else "fleet"


class Keys:
    """The keys file: default keys plus per-board keys. Its repr shows names, never values."""

    def __init__(
        self, path: Path | None, default: dict[str, Secret], per_board: dict[str, dict[str, Secret]]
    ) -> None:
        self.path = path
        self._default = default
        self._per_board = per_board

    def for_board(self, name: str) -> dict[str, Secret]:
        out = dict(self._default)
        out.update(self._per_board.get(name, {}))
        return out

    def boards(self) -> list[str]:
        return sorted(self._per_board)

    def __repr__(self) -> str:
        return "Keys(%s: %d default, %d boards, values redacted)" % (
            self.path,
            len(self._default),
            len(self._per_board),
        )

    __str__ = __repr__


# -- board definitions --------------------------------------------------------------------------


def board_types(boards_dir: Path | None = None) -> list[str]:
    boards_dir = boards_dir or boards_path()
    return sorted(p.stem for p in boards_dir.glob("*.toml"))


def load_board_type(name: str, boards_dir: Path | None = None) -> BoardType:
    """boards/<name>.toml, or a RoamError naming the known types."""
    boards_dir = boards_dir or boards_path()
    if not NAME_RE.match(name or ""):
        raise RoamError("unknown board type %r (known: %s)" % (name, _known(boards_dir)))
    path = boards_dir / (name + ".toml")
    if not path.is_file():
        raise RoamError("unknown board type %r (known: %s)" % (name, _known(boards_dir)))
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RoamError("%s: %s" % (path, exc)) from None
    # The definition may nest its fields under [board]; accept both.
    d = data.get("board", data) if isinstance(data.get("board"), dict) else data
    chip = d.get("chip")
    offset = d.get("flash_offset", d.get("offset"))
    if isinstance(offset, str):
        try:
            offset = int(offset, 0)
        except ValueError:
            offset = None
    if not isinstance(chip, str) or not chip:
        raise RoamError("%s: missing 'chip' (esptool chip name such as esp32)" % path)
    if not isinstance(offset, int) or offset < 0:
        raise RoamError("%s: missing or bad 'flash_offset' (e.g. 0x1000)" % path)
    chip = chip.lower().replace("-", "")
    return BoardType(name=name, chip=chip, flash_offset=offset, data=d)


def _known(boards_dir: Path) -> str:
    boards_dir = boards_dir or boards_path()
    return ", ".join(board_types(boards_dir)) or "none in %s" % boards_dir


# -- the fleet file -----------------------------------------------------------------------------


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RoamError("%s file %s not found" % (what, path)) from None
    except OSError as exc:
        raise RoamError("cannot read %s file %s: %s" % (what, path, exc.strerror)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message names the line and column, never the value.
        raise RoamError("%s file %s is not valid TOML: %s" % (what, path, exc)) from None


def load_fleet(path: str | os.PathLike[str], boards_dir: Path | None = None) -> Fleet:
    p = Path(path)
    data = _read_toml(p, "fleet")
    return parse_fleet(data, p, boards_dir)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest of `known` (difflib), or ''."""
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    return " (did you mean %r?)" % close[0] if close else ""


def entry_keys() -> frozenset[str]:
    """What a [[board]] or [defaults] table may hold: the host's own keys (name, port, ...)
    and every config key the firmware reads (hosttools.firmware.config_keys)."""
    return frozenset(HOST_ONLY) | firmware.config_keys()


def _validator_class() -> Any:
    """jsonschema's draft 2020-12 validator, with TOML's notion of an integer: JSON Schema
    counts 3.0 as one, a node id or a port must not be a float. Imported when a fleet is read,
    not when roam starts."""
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool)
    )
    return validators.extend(Draft202012Validator, type_checker=checker)


def _format_checker() -> Any:
    """ipv4 (jsonschema's own) and the [field] addresses (parse_hostport, whose ValueError
    says what is wrong)."""
    from jsonschema import FormatChecker

    fc = FormatChecker(formats=("ipv4",))
    fc.checks("roam-collector", raises=ValueError)(
        lambda v: v == "auto" or bool(parse_hostport(v, FIELD_PORT))
    )
    fc.checks("roam-air", raises=ValueError)(lambda v: bool(parse_hostport(v, None)))
    return fc


def _errors(schema: dict[str, Any], instance: Any) -> list[Any]:
    cls = _validator_class()
    return list(cls(schema, format_checker=_format_checker()).iter_errors(instance))


def _unknown(label: str, err: Any, known: Iterable[str], hint: str = "") -> list[str]:
    """One line per key an additionalProperties error refused, each with its likely key."""
    return [
        "%s: unknown key %r%s%s" % (label, k, did_you_mean(k, known), hint)
        for k in sorted(set(err.instance) - set(err.schema.get("properties", {})))
    ]


def _document_problems(data: Mapping[str, Any]) -> tuple[list[str], dict[int, list[str]]]:
    """The file as written against fleet_schema.document: its problems, and those of each
    [[board]] table by its index."""
    schema = fleet_schema.document(entry_keys())
    general: dict[str, list[str]] = {s: [] for s in ("", "field", "defaults", "board")}
    per_board: dict[int, list[str]] = {}
    for err in sorted(_errors(schema, data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(err.absolute_path)
        section = str(path[0]) if path else ""
        if not path and err.validator == "additionalProperties":
            general[""] += [
                "unknown section %r%s (expected [defaults], [field] and [[board]])"
                % (k, did_you_mean(k, fleet_schema.SECTIONS))
                for k in sorted(set(err.instance) - set(fleet_schema.SECTIONS))
            ]
        elif not path and err.validator == "required":
            general["board"].append(schema["properties"]["board"]["description"])
        elif not path:
            general[""].append("the fleet file must be a table of sections")
        elif section == "board" and len(path) > 1:
            label = "board #%d" % (int(path[1]) + 1)
            name = err.instance.get("name") if isinstance(err.instance, dict) else None
            if isinstance(name, str) and NAME_RE.match(name):
                label = "board %r" % name
            if err.validator == "additionalProperties":
                # a misspelt key (chanel = 3) would go onto the board as it is, and be ignored
                msgs = _unknown(label, err, entry_keys())
            else:
                msgs = ["%s: must be a table" % label]
            per_board.setdefault(int(path[1]), []).extend(msgs)
        elif section == "field" and err.validator == "additionalProperties":
            fld = ", ".join(FIELD_KEYS)
            general["field"] += _unknown("[field]", err, FIELD_KEYS, " (known: %s)" % fld)
        elif section == "field" and err.validator == "format" and len(path) == 2:
            general["field"].append("[field] %s: %s" % (path[1], err.cause or err.message))
        elif len(path) == 2:  # [field] port, ssid
            sub = schema["properties"][section]
            general[section].append(fleet_schema.described(sub, str(path[1]), err.instance))
        elif section == "defaults" and err.validator == "additionalProperties":
            general["defaults"] += _unknown("[defaults]", err, entry_keys())
        else:  # a section of the wrong type, no [[board]] at all
            general[section].append(schema["properties"][section]["description"])
    problems = [p for s in ("", "field", "defaults", "board") for p in dict.fromkeys(general[s])]
    return problems, per_board


def _entry_problems(schema: dict[str, Any], label: str, e: Mapping[str, Any]) -> dict[str, str]:
    """One board, [defaults] copied in, against fleet_schema.entry: {key: its problem}, one
    line per key at most (a value both of the wrong type and out of range is one problem), in
    HOST_KEYS order."""
    found: dict[str, str] = {}
    for err in _errors(schema, e):
        if err.validator == "required":
            keys = [k for k in err.validator_value if k not in e]
        elif err.absolute_path:
            keys = [str(err.absolute_path[0])]
        else:
            continue
        for k in keys:
            if k == "board" and k in e and isinstance(e[k], str):
                msg = "unknown board type %r (known: %s)" % (
                    e[k],
                    ", ".join(schema["properties"]["board"]["enum"]) or "none",
                )
            else:
                msg = fleet_schema.described(schema, k, e.get(k))
            found.setdefault(k, "%s: %s" % (label, msg))
    order = fleet_schema.HOST_KEYS
    return {k: found[k] for k in sorted(found, key=lambda k: (order.index(k), k))}


def parse_fleet(
    data: Mapping[str, Any], path: Path | None = None, boards_dir: Path | None = None
) -> Fleet:
    """The fleet in ``data`` (a parsed fleet file), or a RoamError listing every problem: what
    the JSON Schema (hosttools/fleet_schema.py) finds, and names, node ids, addresses, serial
    numbers and ports used twice."""
    where = str(path) if path else "fleet"
    problems, per_board = _document_problems(data)
    fld = data.get("field", {})
    defaults = data.get("defaults", {})
    defaults = defaults if isinstance(defaults, dict) else {}
    entries = data.get("board", [])
    entries = entries if isinstance(entries, list) else []
    schema = fleet_schema.entry(board_types(boards_dir), ROLES)
    boards: list[Board] = []
    seen: dict[str, dict[Any, str]] = {k: {} for k in UNIQUE}
    for i, raw in enumerate(entries):
        if not isinstance(raw, dict):
            problems.extend(per_board.get(i, []))
            continue
        e = dict(defaults)
        e.update(raw)
        name = e.get("name")
        label = "board %r" % name if isinstance(name, str) and NAME_RE.match(name) else ""
        label = label or "board #%d" % (i + 1)
        wrong = _entry_problems(schema, label, e)
        mine = per_board.get(i, []) + list(wrong.values())
        for key in UNIQUE:
            val = e.get(key)
            if val is None or key in wrong:
                continue  # missing, or wrong already
            k = val.lower() if isinstance(val, str) and key == "serial" else val
            if k in seen[key]:
                mine.append("%s: %s %r is also used by %s" % (label, key, val, seen[key][k]))
            else:
                seen[key][k] = label
        problems.extend(mine)
        if problems:
            continue
        config = {k: v for k, v in e.items() if k not in HOST_ONLY}
        config["name"] = name
        pos = e.get("pos")
        boards.append(
            Board(
                name=str(name),
                board_type=str(e["board"]),
                role=str(e["role"]),
                node=int(e["node_id"]),
                addr=str(e["address"]),
                serial=e.get("serial"),
                port=e.get("port"),
                config=config,
                pos=(float(pos[0]), float(pos[1])) if pos is not None else None,
            )
        )
    if problems:
        # every problem at once: a fleet file is fixed in one go, not one error per run
        if len(problems) == 1:
            raise RoamError("%s: %s" % (where, problems[0]))
        raise RoamError(
            "%s: %d problems: %s"
            % (
                where,
                len(problems),
                "; ".join("(%d) %s" % (i, p) for i, p in enumerate(problems, 1)),
            )
        )
    return Fleet(path, boards, dict(fld))


def parse_hostport(text: Any, default_port: int | None) -> tuple[str, int]:
    """'a.b.c.d[:port]' -> (address, port); ValueError with a readable reason."""
    if not isinstance(text, str):
        raise ValueError("must be 'a.b.c.d:port', got %r" % (text,))
    host, sep, port = text.partition(":")
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise ValueError("%r is not an IPv4 address" % host) from None
    if not sep:
        if default_port is None:
            raise ValueError("%r needs a port (a.b.c.d:port)" % text)
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("port of %r must be 1..65535" % text)
    return host, int(port)


def fleet_problems(data: Mapping[str, Any], boards_dir: Path | None = None) -> list[str]:
    """Every problem of a fleet, one line each (for `roam fleet check`-style listings)."""
    try:
        parse_fleet(data, None, boards_dir)
    except RoamError as exc:
        return [str(exc)]
    return []


# -- the keys file ------------------------------------------------------------------------------


def load_keys(path: str | os.PathLike[str], fleet: Fleet | None = None) -> Keys:
    """Read a keys file (TOML, or JSON by its .json suffix). Messages never quote a value."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        try:
            text = p.read_text()
        except FileNotFoundError:
            raise RoamError("keys file %s not found" % p) from None
        except OSError as exc:
            raise RoamError("cannot read keys file %s: %s" % (p, exc.strerror)) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            # exc.msg and the position only: the document itself is never echoed.
            raise RoamError(
                "keys file %s is not valid JSON: %s at line %d column %d"
                % (p, exc.msg, exc.lineno, exc.colno)
            ) from None
    else:
        data = _read_toml(p, "keys")
    if not isinstance(data, dict):
        raise RoamError("keys file %s: must be a table/object with [default] and [node.NAME]" % p)
    unknown = sorted(set(data) - {"default", "node"})
    if unknown:
        raise RoamError(
            "keys file %s: unknown section(s) %s (expected default and node)"
            % (p, ", ".join(unknown))
        )
    default = _key_table(data.get("default", {}), p, "default")
    per_board: dict[str, dict[str, Secret]] = {}
    nodes = data.get("node", {})
    if not isinstance(nodes, dict):
        raise RoamError("keys file %s: [node] must hold one table per board name" % p)
    for name, table in nodes.items():
        per_board[name] = _key_table(table, p, "node." + name)
    if fleet is not None:
        names = {b.name for b in fleet}
        extra = sorted(set(per_board) - names)
        if extra:
            raise RoamError("keys file %s: keys for %s, which is not in the fleet" % (p, extra[0]))
    return Keys(p, default, per_board)


def _key_table(table: Any, p: Path, section: str) -> dict[str, Secret]:
    if not isinstance(table, dict):
        raise RoamError('keys file %s: [%s] must be a table of name = "hex"' % (p, section))
    out = {}
    for k, v in table.items():
        if not isinstance(v, str) or not HEX_RE.match(v) or not 16 <= len(v) // 2 <= 64:
            # Name the key, never its value.
            raise RoamError("keys file %s: [%s] %s must be 16..64 bytes of hex" % (p, section, k))
        if k not in KEY_NAMES + DERIVED:
            try:
                int(k, 0)
            except ValueError:
                raise RoamError(
                    "keys file %s: [%s] unknown key name %r (cell, region, home, log, "
                    "update, binding or an SPI number)" % (p, section, k)
                ) from None
        out[k] = Secret(v.lower())
    return out


def board_config(board: Board, keys: Keys | None, collector: str | None = None) -> dict[str, Any]:
    """The board's config.json content: its fleet entry (host-only keys removed) plus its keys,
    and, for a board on the access point, the collector's address (``collector``, the fleet's
    [field] collector resolved) unless its entry names one. The result holds key values in
    clear: write it to the board, never print or log it."""
    cfg = dict(board.config)
    cfg["role"] = board.role
    cfg["node_id"] = board.node
    cfg["address"] = board.addr
    if collector and board.backbone_ip and "collector" not in cfg:
        cfg["collector"] = collector
    if keys is not None:
        table = {}
        for k, s in sorted(keys.for_board(board.name).items()):
            if k in DERIVED:
                table.update(derived_keys(k, s.reveal(), board.node, board.role, board.addr))
            else:
                table[str(key_spi(k, board.node))] = s.reveal()
        cfg["keys"] = table
    return cfg


def derived_keys(
    name: str, secret_hex: str, node: int, role: str, address: str = ""
) -> dict[str, str]:
    """What a board holds of the fleet secret ``name`` (log, update, binding). {SPI: hex}, the
    SPI the firmware reads it by (firmware/update/wire.py SPI_UPDATE; mobility/auth.py)."""
    if name == "log":
        return log_keys(secret_hex, node, role)
    if name == "binding":
        return binding_keys(secret_hex, role, address)
    spi = firmware.update_wire().SPI_UPDATE
    return {str(spi): firmware.update_key(bytes.fromhex(secret_hex), node).hex()}


def log_keys(secret_hex: str, node: int, role: str) -> dict[str, str]:
    """What a board holds of the fleet's log secret: its own derived log key, and, on an
    agent, the secret itself (it checks the lines it relays). {SPI: hex}, the SPIs the firmware
    reads them by (firmware/fieldlog/wire.py SPI_LOG, SPI_LOG_SECRET)."""
    wire = firmware.fieldlog_wire()
    out = {str(wire.SPI_LOG): firmware.log_key(bytes.fromhex(secret_hex), node).hex()}
    if role == "agent":
        out[str(wire.SPI_LOG_SECRET)] = secret_hex
    return out


def binding_keys(secret_hex: str, role: str, address: str) -> dict[str, str]:
    """What a board holds of the fleet's binding secret (docs/CORE.md "Security rules"): an
    agent the secret itself (SPI_NODE_SECRET: it derives the key of every node that registers),
    a mobile node the binding key of its own home address only (SPI_NODE, K_X), other roles
    nothing."""
    auth = firmware.core("auth")
    if role == "agent":
        return {str(int(auth.SPI_NODE_SECRET)): secret_hex}
    if role == "mobile":
        home = bytes(int(x) for x in address.split("."))
        key: bytes = auth.node_key(bytes.fromhex(secret_hex), home)
        return {str(int(auth.SPI_NODE)): key.hex()}
    return {}


def key_spi(name: str, node_id: int) -> int:
    """The SPI a key name stands for (cell, region, home: the core's, firmware/mobility/auth.py;
    or the number itself)."""
    if name not in KEY_NAMES:
        return int(name, 0)
    auth = firmware.core("auth")
    if name == "home":
        return int(auth.spi_home(node_id))
    return int(auth.SPI_CELL if name == "cell" else auth.SPI_REGION)


def redact(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A config for display: key values replaced."""
    out = dict(cfg)
    if "keys" in out:
        out["keys"] = {k: "<redacted>" for k in out["keys"]}
    return out

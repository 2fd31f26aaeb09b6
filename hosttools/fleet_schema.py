"""The fleet file's JSON Schema (draft 2020-12): what hosttools.fleet.parse_fleet validates a
fleet with (the ``jsonschema`` library), every problem at once.

Two schemas, because [defaults] fill in what a [[board]] leaves out:

* ``document``: the file as written: its sections, [field], and which keys [defaults] and each
  [[board]] may hold (an unknown key is an error, reported with the key it was likely meant
  to be: a misspelt ``chanel = 3`` would otherwise go onto the board as it is, and be ignored
  there);
* ``entry``: one board once [defaults] are copied in: what it must have and what each host
  key must look like.

What no JSON Schema can say stays in hosttools.fleet: that names, node ids, addresses, serial
numbers and ports are unique across the boards.

Each property's ``description`` is the sentence a problem with it is reported as (``{got!r}``:
the value found, None when missing), so a rule and its message are written in one place. The
known board types, roles and config keys come from the board files and the firmware's sources,
so the schemas are built per call, not stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SECTIONS = ("defaults", "board", "field")
# '1-32 letters...' as fleet.NAME_RE (a JSON Schema pattern is an ECMA-262 regex; this one reads
# the same in both)
NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,32}$"
# the host's own keys in the order a board's problems are listed
HOST_KEYS = ("name", "board", "role", "node_id", "address", "serial", "port", "pos")


def document(entry_keys: Iterable[str]) -> dict:
    """The fleet file as written."""
    table = {
        "type": "object",
        "properties": {k: {} for k in sorted(entry_keys)},
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "roam fleet file",
        "type": "object",
        "properties": {
            "defaults": dict(table, description="[defaults] must be a table"),
            "board": {
                "type": "array",
                "minItems": 1,
                "items": dict(table, description="must be a table"),
                "description": "no boards: add at least one [[board]] table",
            },
            "field": {
                "type": "object",
                "description": "[field] must be a table",
                "properties": {
                    # "ip[:port]" or "auto" (formats checked by hosttools.fleet)
                    "collector": {"format": "roam-collector"},
                    "air": {"format": "roam-air"},
                    "ssid": {"type": "string", "description": "[field] ssid must be a string"},
                    "port": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 65535,
                        "description": "[field] port must be 1..65535, got {got!r}",
                    },
                },
                "additionalProperties": False,
            },
        },
        "required": ["board"],
        "additionalProperties": False,
    }


def entry(board_types: Iterable[str], roles: Iterable[str]) -> dict:
    """One [[board]] with [defaults] copied in."""
    types = sorted(board_types)
    roles = list(roles)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "roam fleet board",
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "pattern": NAME_PATTERN,
                "description": "'name' must be 1-32 letters, digits, '_', '-' or '.'",
            },
            "board": {
                "type": "string",
                "enum": types,
                "description": "missing 'board' (board type, one of %s)"
                % (", ".join(types) or "boards/*.toml"),
            },
            "role": {
                "enum": roles,
                "description": "'role' must be one of %s, got {got!r}" % ", ".join(roles),
            },
            "node_id": {
                "type": "integer",
                "minimum": 1,
                "maximum": 65535,
                "description": "'node_id' must be an integer 1..65535, got {got!r}",
            },
            "address": {
                "type": "string",
                "format": "ipv4",
                "description": "'address' must be an IPv4 address such as 10.0.0.1, got {got!r}",
            },
            "serial": {
                "type": "string",
                "minLength": 1,
                "description": "'serial' must be a non-empty string",
            },
            "port": {
                "type": "string",
                "minLength": 1,
                "description": "'port' must be a non-empty string",
            },
            "pos": {
                "type": "array",
                "prefixItems": [{"type": "number"}, {"type": "number"}],
                "minItems": 2,
                "maxItems": 2,
                "description": "'pos' must be [x, y] in metres, got {got!r}",
            },
        },
        "required": ["name", "board", "role", "node_id", "address"],
    }


def described(schema: dict[str, Any], key: str, got: Any) -> str:
    """The sentence of ``schema``'s property ``key`` with the value found."""
    return str(schema["properties"][key]["description"]).format(got=got)

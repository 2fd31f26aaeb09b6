"""The board's config.json: read and validate it with clear messages; write it atomically.

A config write must never leave a board without a readable config, whatever moment the power
goes: the new content goes to ``config.json.tmp`` first (written, flushed, closed), then a rename
puts it in place. The rename is atomic on LittleFS. On a filesystem whose rename refuses an
existing target (FAT) the old file is removed first; a power cut between the two leaves only the
complete ``.tmp``, which ``load()`` then finishes renaming. So at any moment either the old or
the new config is complete on the board.
"""

import json
import os

PATH = "config.json"
# The roles a board runs (the config's "role"), each with the protocol core's class that runs it,
# in the module mobility.<role> (start.py builds it). The one list of role names: the host checks
# fleet files and scenarios against it too (hosttools/firmware.py).
ROLE_CLASSES = (
    ("agent", "Agent"),
    ("mobile", "MobileNode"),
    ("host", "Host"),
    ("home", "HomeAgent"),
    ("router", "Router"),
)


class ConfigError(ValueError):
    """The config is missing or wrong; the message says what and where."""


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _read(path):
    with open(path) as f:
        text = f.read()
    try:
        cfg = json.loads(text)
    except ValueError:
        raise ConfigError("%s is not valid JSON (%d bytes)" % (path, len(text))) from None
    return validate(cfg, path)


def _dotted(v):
    if not isinstance(v, str):
        return False
    parts = v.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p.isdigit() or int(p) > 255:
            return False
    return True


def validate(cfg, where=PATH):
    """Return cfg when it is a usable board config; ConfigError naming the field otherwise."""
    if not isinstance(cfg, dict):
        raise ConfigError("%s must hold a JSON object, not %s" % (where, type(cfg).__name__))
    for name in ("role", "node_id", "address", "keys"):
        if name not in cfg:
            raise ConfigError("%s: missing %r (need role, node_id, address, keys)" % (where, name))
    _class_name(cfg["role"], where)
    nid = cfg["node_id"]
    if not isinstance(nid, int) or isinstance(nid, bool) or not 0 <= nid <= 0xFFFF:
        raise ConfigError("%s: node_id must be an integer 0..65535, got %r" % (where, nid))
    if not _dotted(cfg["address"]):
        raise ConfigError(
            "%s: address must be a dotted IPv4 address, got %r" % (where, cfg["address"])
        )
    if not isinstance(cfg["keys"], dict) or not cfg["keys"]:
        raise ConfigError("%s: keys must be a non-empty object {spi: hex key}" % where)
    ch = cfg.get("channel", 1)
    if not isinstance(ch, int) or not 1 <= ch <= 14:
        raise ConfigError("%s: channel must be 1..14, got %r" % (where, ch))
    for name, lo, hi in LOG_INTS:
        v = cfg.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi):
            raise ConfigError("%s: %s must be an integer %d..%d, got %r" % (where, name, lo, hi, v))
    if "collector" in cfg and not _collector_ok(cfg["collector"]):
        raise ConfigError(
            "%s: collector must be 'a.b.c.d' or 'a.b.c.d:port' (the laptop running roam field),"
            " got %r" % (where, cfg["collector"])
        )
    return cfg


def _class_name(role, where):
    for name, cls in ROLE_CLASSES:
        if name == role:
            return cls
    roles = ", ".join([r[0] for r in ROLE_CLASSES])
    raise ConfigError("%s: role %r is not one of %s" % (where, role, roles))


def role_import(role, where=PATH):
    """(module, class name) of the protocol core's class that runs ``role``, not imported yet
    (start.py imports it once this module is dropped); ConfigError when ``role`` is not one of
    ROLE_CLASSES."""
    return "mobility." + role, _class_name(role, where)


def role_class(role, where=PATH):
    """The protocol core's class that runs ``role`` (imported now); ConfigError when ``role``
    is not one of ROLE_CLASSES."""
    module, cls = role_import(role, where)
    return getattr(__import__(module, None, None, (cls,)), cls)


# The log in the field (docs/FIRMWARE.md): name, lowest, highest.
LOG_INTS = (
    ("log_store_kb", 8, 4096),
    ("log_files", 2, 64),
    ("log_flush_ms", 50, 60000),
    ("log_rate", 1, 200),
    ("log_queue", 256, 65536),
    ("log_behind", 1024, 1048576),
    ("log_stats_ms", 1000, 3600000),
)


def _collector_ok(v):
    if isinstance(v, dict):
        ip, port = v.get("ip"), v.get("port", 4345)
    elif isinstance(v, str):
        ip, _, port = v.partition(":")
        if port:
            if not port.isdigit():
                return False
            port = int(port)
        else:
            port = 4345
    else:
        return False
    return _dotted(ip) and isinstance(port, int) and 0 < port < 65536


def load(path=PATH):
    """The validated config. Finishes an interrupted save() first (see the module doc)."""
    tmp = path + ".tmp"
    if _exists(path):
        try:
            cfg = _read(path)
        except ConfigError:
            if not _exists(tmp):
                raise
            # config.json is damaged (should not happen with save()); a complete .tmp wins
            cfg = _read(tmp)
            _replace(tmp, path)
            return cfg
        if _exists(tmp):
            os.remove(tmp)  # a save() that did not get to its rename: the old config stands
        return cfg
    if _exists(tmp):
        cfg = _read(tmp)  # raises when the interrupted write was not complete
        _replace(tmp, path)
        return cfg
    raise ConfigError("no %s on the board: provision it (roam provision)" % path)


def _replace(src, dst):
    try:
        os.rename(src, dst)
    except OSError:
        # FAT refuses to rename over an existing file: remove, then rename (load() recovers
        # from a power cut in between).
        os.remove(dst)
        os.rename(src, dst)


EPOCH_PATH = "epoch"


def next_epoch(path=EPOCH_PATH):
    """Count this boot: the board's boot counter (16 bits, wraps), kept in flash.

    The protocol core takes it as ``epoch``: publications carry it, and an agent's boot nonce
    starts with it, so other nodes tell a restart (newer epoch) from a replay of an earlier boot
    (docs/PROTOCOL.md "Replay protection"). Written like the config: temp file, then rename; a
    damaged or missing counter starts again from a random value, never from a fixed 0.
    """
    n = None
    for p in (path, path + ".tmp"):
        try:
            with open(p) as f:
                n = int(f.read().strip())
            break
        except (OSError, ValueError):
            pass
    if n is None:
        r = os.urandom(2)  # a hardware random start: unlikely to repeat an earlier boot's epoch
        n = (r[0] << 8) | r[1]
    n = (n + 1) & 0xFFFF
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(n))
    _replace(tmp, path)
    return n


def save(cfg, path=PATH):
    """Write cfg atomically (validated first: a bad config is never written)."""
    validate(cfg, "new config")
    tmp = path + ".tmp"
    data = json.dumps(cfg)
    with open(tmp, "w") as f:
        f.write(data)
        if hasattr(f, "flush"):
            f.flush()
    # read back before the rename: a short write (full flash) must not replace a good config
    _read(tmp)
    _replace(tmp, path)

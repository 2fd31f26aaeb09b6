"""What a role's constructor reads from its config: ints within bounds, MACs, keys, link
addresses, the region's addresses and periods; a ValueError naming the key otherwise.

Boot-time code, as config.py and start.py: the roles' constructors import it where they use
it, and on a board start.py drops it once the board is built (``drop``): an .mpy's code
lives in the heap there. An address an application hands in at run time is read by node.parse_addr,
which stays loaded.
"""

import sys

from mobility import auth, ipv4
from mobility.compat import const
from mobility.node import parse_addr

_MAX_PUBLISHED = const(512)  # a region member's published bindings by default


def require(config, names):
    """``config`` is a dict holding every key of ``names``."""
    if not isinstance(config, dict):
        raise ValueError("config must be a dict, not %r" % (config,))
    for name in names:
        if name not in config:
            raise ValueError("config is missing %r" % name)


def cfg_int(config, name, default, lo, hi):
    """config[name] (or default) as an int in lo..hi; ValueError naming the key otherwise."""
    value = config.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError("config %r must be an int in %d..%d, not %r" % (name, lo, hi, value))
    return value


def parse_mac(value, what="MAC"):
    """6 bytes, 'aa:bb:cc:dd:ee:ff' or 'aabbccddeeff' -> 6 bytes."""
    if isinstance(value, str):
        text = value.replace(":", "").replace("-", "")
        if len(text) == 12:
            try:
                return bytes(int(text[i : i + 2], 16) for i in range(0, 12, 2))
            except ValueError:
                pass
    elif isinstance(value, (bytes, bytearray)) and len(value) == 6:
        return bytes(value)
    raise ValueError("%s must be 6 bytes or 'aa:bb:cc:dd:ee:ff', not %r" % (what, value))


def parse_keys(table):
    """{spi: key} with spi an int (or its decimal/0x string) and key bytes (or a hex string)."""
    if not isinstance(table, dict) or not table:
        raise ValueError("keys must be a non-empty dict {spi: key bytes}, not %r" % (table,))
    keys = auth.Keys()
    for spi in table:
        key = table[spi]
        num = spi
        if isinstance(spi, str):
            try:
                num = int(spi, 16) if spi.startswith("0x") else int(spi)
            except ValueError:
                raise ValueError("key SPI %r is not a number" % (spi,)) from None
        if isinstance(key, str):
            try:
                key = bytes(int(key[i : i + 2], 16) for i in range(0, len(key), 2))
            except ValueError:
                raise ValueError("key for SPI %r is not hex" % (spi,)) from None
        keys.set(num, key)
    return keys


def region_addr(value, what="address"):
    """A region config's 4-byte address from bytes or dotted text (node.parse_addr, with the
    region config's messages)."""
    try:
        return parse_addr(value, what)
    except ValueError:
        if isinstance(value, str):
            raise ValueError(
                "region config: %s %r is not an IPv4 address" % (what, value)
            ) from None
        raise ValueError(
            "region config: %s must be 'a.b.c.d' or 4 bytes, not %r" % (what, value)
        ) from None


def parse_link(value, what="link address"):
    """A 6-byte link address from bytes, 12 hex digits (an ESP-NOW MAC, ':' allowed) or
    'a.b.c.d:port' (a Wi-Fi backbone peer: its IPv4 address and UDP port)."""
    if isinstance(value, str) and "." in value:
        i = value.rfind(":")
        if i > 0:
            port = value[i + 1 :]
            if port.isdigit() and 0 < int(port) < 65536:
                p = int(port)
                return region_addr(value[:i], what) + bytes((p >> 8, p & 0xFF))
    else:
        try:
            return parse_mac(value, what)
        except ValueError:
            pass
    raise ValueError(
        "region config: %s must be 6 bytes, 12 hex digits or 'a.b.c.d:port', not %r" % (what, value)
    )


def region_peers(config, member, own):
    """A region config's neighbours (members) then hosts (not members): (addresses,
    interfaces, link addresses, is a member), each checked; ``member(addr, 0)`` says whether an
    address is a member (its index, or -1)."""
    addr, iface, mac, is_member = [], [], [], []
    for key, want in (("neighbours", True), ("hosts", False)):
        what = "neighbour" if want else "host"
        for n in config.get(key, ()):
            if not isinstance(n, dict):
                raise ValueError("region config: each %s is a dict {addr, iface, mac}" % what)
            a = region_addr(n.get("addr"), what + " addr")
            if want != (member(a, 0) >= 0):
                raise ValueError(
                    "region config: %s %s %s a member"
                    % (what, ipv4.ntoa(a), "is not" if want else "is")
                )
            if a in addr or a == own:
                raise ValueError("region config: %s %s listed twice" % (what, ipv4.ntoa(a)))
            i = n.get("iface", 1)
            if i not in (0, 1):
                raise ValueError("region config: %s iface must be 0 or 1, not %r" % (what, i))
            addr.append(a)
            iface.append(i)
            mac.append(parse_link(n.get("mac"), what + " mac"))
            is_member.append(want)
    return addr, iface, mac, is_member


def region_routes(config, peer):
    """A region config's static routes {"dst": "a.b.c.d/len", "via": a neighbour or host}, as
    (prefix, length, peer index); ``peer(addr, 0)`` gives a peer's index, or -1."""
    routes = []
    for r in config.get("routes", ()):
        if not isinstance(r, dict) or not isinstance(r.get("dst"), str) or "/" not in r["dst"]:
            raise ValueError("region config: a route is {'dst': 'a.b.c.d/len', 'via': addr}")
        net, plen = r["dst"].split("/")
        if not plen.isdigit() or int(plen) > 32:
            raise ValueError("region config: bad prefix length in %r" % r["dst"])
        via = peer(region_addr(r.get("via"), "route via"), 0)
        if via < 0:
            raise ValueError(
                "region config: route via %r is not a neighbour or host" % r.get("via")
            )
        routes.append((region_addr(net, "route dst"), int(plen), via))
    return routes


def positive_ms(cfg, name, default):
    """A region config's period (or count) ``name``: a positive int."""
    v = cfg.get(name, default)
    if not isinstance(v, int) or v <= 0:
        raise ValueError("region config: %s must be a positive int (ms), not %r" % (name, v))
    return v


def cell(config, interval_ms, reg_lifetime_s, capacity, cell_iface, answer_gap_ms):
    """What an agent's cell reads of its config, the defaults given: (adv_interval_ms,
    adv_lifetime_s, reg_lifetime_s, capacity, services, cell_iface, solicit_answer_gap_ms).
    (Read here rather than in agent.py: the keys are strings of more than 10 characters, which
    a board holds as heap objects while their module is loaded, and this one is dropped.)"""
    interval_ms = cfg_int(config, "adv_interval_ms", interval_ms, 20, 600000)
    return (
        interval_ms,
        cfg_int(config, "adv_lifetime_s", (3 * interval_ms + 999) // 1000, 1, 9000),
        cfg_int(config, "reg_lifetime_s", reg_lifetime_s, 1, 65535),
        cfg_int(config, "capacity", capacity, 0, 255),
        cfg_int(config, "services", 0, 0, 0x07),
        cfg_int(config, "cell_iface", cell_iface, 0, 1),
        cfg_int(config, "solicit_answer_gap_ms", answer_gap_ms, 0, 60000),
    )


def region_periods(config, hold_off_ms, republish_ms, dup_hold_ms):
    """A region config's (hold_off_ms, republish_ms, dup_hold_ms, max_published), the
    defaults given (read here for the reason of ``cell``)."""
    return (
        positive_ms(config, "hold_off_ms", hold_off_ms),
        positive_ms(config, "republish_ms", republish_ms),
        positive_ms(config, "dup_hold_ms", dup_hold_ms),
        max_published(config),
    )


def policy(config, where="config"):
    """A config's ``policy``: "roam" (the default) or "mip4", the Mobile IPv4 baseline (no
    publication, everything through the home agent); ``where`` names the config in the error."""
    value = config.get("policy", "roam")
    if value not in ("roam", "mip4"):
        raise ValueError("%s 'policy' must be 'roam' or 'mip4', not %r" % (where, value))
    return value


def region_config(config, keys):
    """Check what a Region reads of its config (a dict, the policy) and that the member holds
    the region key; returns the policy."""
    if not isinstance(config, dict):
        raise ValueError("region config must be a dict, not %r" % (config,))
    value = policy(config, "region config")
    if keys.get(auth.SPI_REGION) is None:
        raise ValueError("region member without the region key (SPI 0x200)")
    return value


def region_members(config, own, most):
    """The region's members (4-byte addresses, as listed), at most ``most``; ``own`` among
    them."""
    members = config.get("members")
    if not members:
        raise ValueError("region config: 'members' must list the region's agents and routers")
    if len(members) > most:
        raise ValueError("region config: at most %d members" % most)
    out = [region_addr(m, "member") for m in members]
    if own not in out:
        raise ValueError("region config: own address %s is not a member" % ipv4.ntoa(own))
    return out


def outage(config):
    """A role config's planned ``outage`` as (start_in_s, duration_s), or None."""
    plan = config.get("outage")
    if plan is None:
        return None
    if not isinstance(plan, dict) or "start_in_s" not in plan or "duration_s" not in plan:
        raise ValueError("config 'outage' must be {'start_in_s': s, 'duration_s': s}")
    return plan["start_in_s"], plan["duration_s"]


def cell_key(keys):
    """The cell key (SPI 0x100) of a role's key table, which every role needs."""
    key = keys.get(auth.SPI_CELL)
    if key is None:
        raise ValueError("keys must hold the cell key (SPI 0x%x)" % auth.SPI_CELL)
    return key


def max_published(config):
    """A region config's ``max_published``: the capacity of the member's published-binding
    table (512 by default)."""
    return positive_ms(config, "max_published", _MAX_PUBLISHED)


def published_table_bytes(config):
    """The bytes of the published-binding table the region config ``config`` asks for, or
    None when it does not say usably (the Region then says why): a board's start allocates the
    table before the role's modules load and hands it over as the region config's ``_table``
    (start.py)."""
    from mobility.published import table_bytes

    try:
        return table_bytes(max_published(config))
    except (AttributeError, ValueError):
        return None


def drop():
    """Forget this module (start.py calls it once the board is built): its code is freed."""
    import mobility

    sys.modules.pop("mobility.settings", None)
    try:
        delattr(mobility, "settings")
    except AttributeError:
        pass

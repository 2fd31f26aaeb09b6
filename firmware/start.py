"""A board's start: read config.json, build the links, the role, the field log and the driver;
the coroutine that runs them (driver.main runs it).

Boot-time code, like config.py: on a board a deployed module's code lives in the heap, so
driver.main drops this module once it has built the board (about 2 KB at 32 bits, every role's).
The other boot-time modules go as early as they can, but not before the blocks that must be
whole are allocated: config.py and the field log's set-up before the role's modules load (the
published table taken first), mobility/settings.py (what the roles' constructors read of their
config) once the role is built, the set-up again once the driver is built. Nothing built here
refers back to it: the job it returns is the driver's own coroutine (Driver.run_board).
"""

import gc
import sys
import time

from driver import Driver

from mobility import ipv4

# A hole kept from the start of the boot for a region member's big table (its published
# bindings: 5.3 KB in one block for the default 512): reading the config fragments the heap
# first, and an agent booting after a rollback once found no such block and crashed at start
# (docs/LAB.md "Heap"). Once the config is read the hole is freed and the table allocated at
# once, where the hole was, before the role's modules load: freed only just before the role
# was built, the hole went to the first small blocks of the role's construction (the modules
# its constructors import) and a C3 whose firmware is in its heap found no room for the table.
# Freed at once when the config holds no region (the other roles have no such table).
_HOLE_BYTES = 7 * 1024
_hole = []  # type: list[bytearray]
# And one for what is built after the role (the field log's set-up, the driver): by then the
# free heap of a board whose firmware is in its heap is the garbage of loading the role's
# modules, pieces among them, and a plain ESP32 router found no 368- or 592-byte block with
# 20 KB free. Taken with the table, before the role's modules load; freed once the role is built.
_LATE_BYTES = 4 * 1024


def build(boot=None):
    """(job, log): the board's coroutine and its log, or (None, log closed) when config.json
    cannot be read (the board stays at its REPL). ``boot``: the version slots.select() chose."""
    _hole.append(bytearray(_HOLE_BYTES))
    import random

    import config

    from fieldlog import setup

    cfg = None
    try:
        cfg = config.load()
    except (config.ConfigError, OSError) as e:
        err = str(e)
    # the boot is counted and the flash log opened first, so that every line is kept
    log = setup.boot_log(cfg or {})
    setup.drop()  # (imported again for the field log's stream, once the role is built)
    del setup
    if cfg is None:
        _hole.clear()  # (at the REPL: all of the heap is the user's)
        log.event("config_error", {"error": err, "repl": True})
        log.close()
        return None, log
    # where the protocol core's class for the role is (config.ROLE_CLASSES; load() checked
    # the name); config.py is boot-time code, heap on a board: dropped before the role's
    # modules load, so that its blocks do not end up scattered among theirs (an update that
    # writes a config imports it again)
    role_module, role_name = config.role_import(cfg["role"])
    del config
    sys.modules.pop("config", None)
    if "epoch" not in cfg:
        cfg["epoch"] = log.boot  # this boot's number (restart vs replay)
    if boot is not None and boot.get("rolled_back"):
        rb = boot.get("rollback") or {}
        log.event(
            "ota_rollback", {"from": rb.get("from"), "to": rb.get("to"), "tries": rb.get("tries")}
        )
    try:
        _reserve_table(cfg.get("region"))
        role_class = getattr(__import__(role_module, None, None, (role_name,)), role_name)
        return _build(cfg, log, random.getrandbits, boot or {}, role_class), log
    except BaseException:
        log.close()  # the batch in RAM goes to flash before main.py logs the crash
        raise


def _reserve_table(region_cfg):
    """A region member's published table, allocated where the hole was, before the role's
    modules load (handed over as the region config's ``_table``); the hole goes in any case,
    and the late reserve (_LATE_BYTES) is taken after the table, until the role is built."""
    n = None
    if isinstance(region_cfg, dict):
        from mobility import settings  # (it and the table's module load around the hole)

        n = settings.published_table_bytes(region_cfg)
        del settings
    _hole.clear()
    if n is not None:
        gc.collect()
        region_cfg["_table"] = bytearray(n)  # Region takes it (published.BindingTable)
    _hole.append(bytearray(_LATE_BYTES))


def _build(cfg, log, rand, boot, role_class):
    wdt = None
    if cfg.get("watchdog_ms", 0):
        try:
            import machine

            wdt = machine.WDT(timeout=cfg["watchdog_ms"])
        except (ImportError, AttributeError, ValueError):
            wdt = None
    backbone = None
    wifi = cfg.get("wifi")
    if wifi:
        # Join the access point first: the radio then sits on its channel, which ESP-NOW uses.
        import link_wifi

        try:
            backbone = link_wifi.WifiLink(
                wifi["ssid"],
                wifi.get("key"),
                cfg.get("channel", 1),
                port=wifi.get("port", link_wifi.PORT),
                log=log.event,
                ip=wifi.get("ip"),
                netmask=wifi.get("netmask", "255.255.255.0"),
                gateway=wifi.get("gateway"),
            )
        except OSError as e:
            # the cell keeps working without the backbone (delivery inside the cell)
            log.event("backbone_error", {"error": str(e)})
    import link_espnow

    radio = link_espnow.EspNowLink(cfg.get("channel", 1), log=log.event)
    now = time.ticks_ms()
    # the radio's MAC: registrations name it inside their signed data (docs/PROTOCOL.md)
    cfg["mac"] = radio.mac
    # a mobile node logs the signal of the agents it hears once a second, for the report
    cfg.setdefault("rssi_log_ms", 1000)
    gc.collect()
    role = role_class(cfg, rand, now)
    _hole.clear()  # (the late reserve: for what follows)
    # the roles' config reading (their constructors imported it) goes before the field log's
    # set-up: left for the end, its code held a plain ESP32 agent's start at 8 KB free, no
    # 600-byte block for the stream (the boot-time code it leaves room for is ours)
    from mobility import settings

    settings.drop()
    del settings
    gc.collect()
    # after the role: its tables are the big blocks, allocated before the heap fragments
    from fieldlog import setup

    net = setup.backbone(cfg, log, radio, now) if backbone is not None else None
    field = setup.stream(cfg, log, radio, role, net, now)
    # what the tasks need of the config, taken out of it: the config dict itself (its keys as
    # hex text alone are kilobytes on a board) goes once driver.main has what this returns
    flows = list(cfg.get("flows", ()))
    if cfg.get("traffic"):
        flows.append(cfg["traffic"])
    healthy_ms = cfg.get("healthy_ms", 10000)
    version = {"fw": boot.get("set"), "slot": boot.get("active")}
    # on probation: a change an update switched to, which proves itself by running healthy_ms
    pending = bool(boot.get("pending"))
    drv = Driver(
        role,
        radio,
        log,
        backbone=backbone,
        wdt=wdt,
        lateness_every_ms=cfg.get("lateness_every_ms", 10000),
        field=field,
        net=net,
    )
    drv.node = cfg["node_id"]
    drv.address = ipv4.aton(cfg["address"])
    drv.rand = rand
    key = cfg["keys"].get("1024")  # the update key (SPI 0x400): without it, no update is taken
    drv.update_key = bytes.fromhex(key) if key else None
    if net is not None:
        net.on_update = drv.on_update
        net.clock = drv.clock
    # The boot-time code goes only now, once every long-lived block of the board is allocated:
    # its blocks lie among the resident modules', and what it leaves free are small holes
    # there, which small objects fill. Dropped before the driver's buffers, those holes were
    # all the free heap there was on an ESP32 whose firmware is in its heap: 32 KB free, not
    # one 2 KB block for the driver's lateness counts.
    setup.drop()  # the field log's set-up
    del setup
    gc.collect()
    log.event(
        "start",
        {
            "role": cfg["role"],
            "mac": radio.mac,
            "channel": radio.channel,
            "backbone": backbone.ip if backbone is not None else None,
            "heap_free": gc.mem_free(),
            "heap_used": gc.mem_alloc(),
            "fw": boot.get("set"),  # the version: None for what `roam deploy` put on the root
            "slot": boot.get("active", "root"),
        },
    )
    return drv.run_board(flows, healthy_ms, version, pending)

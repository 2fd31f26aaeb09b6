"""The log in the field, set up at boot: the boot counted, the flash ring opened, the stream
and (on a backbone board) the field socket and relay built from the config. Only boot runs
this: the driver drops the module afterwards (``drop``), so its code, heap on a board, is freed.
Problems are logged, never raised: a board without its log still does its job."""

import os
import sys

from fieldlog import store as store_mod
from fieldlog import stream as stream_mod
from fieldlog import wire


def boot_log(cfg):
    """This boot's logsink.LogSink: the boot counted (``epoch`` file), the flash ring opened
    with the config's sizes (defaults when the config is missing or wrong, so that even a
    ``config_error`` line is kept)."""
    import config
    import logsink

    problems = []
    try:
        boot = config.next_epoch()
    except OSError as e:
        boot = 0
        problems.append(("epoch_error", {"error": str(e)}))
    nid = cfg.get("node_id", 0)
    log = logsink.LogSink(node_id=nid if isinstance(nid, int) else 0, boot=boot)
    try:
        log.store, repaired = open_store(
            "logs",
            cfg.get("log_store_kb", store_mod.DEFAULT_TOTAL_KB),
            cfg.get("log_files", store_mod.DEFAULT_FILES),
        )
        if repaired:
            problems.append(("log_repaired", {"lines": 1}))
    except (OSError, ValueError, TypeError) as e:
        log.store = None
        problems.append(("log_store_error", {"error": str(e)}))
    for name, fields in problems:
        log.event(name, fields)
    return log


def open_store(root, total_kb, files, batch=store_mod.DEFAULT_BATCH):
    """The ring on flash (started when there is none), its newest file ready to append to;
    and whether a partial last line (a power cut in a batch) had to be ended."""
    st = store_mod.LogStore(root, total_kb, files, batch)
    try:
        os.mkdir(root)
    except OSError:
        pass
    for name in os.listdir(root):
        if len(name) == 11 and name.endswith(".jl") and name[:8].isdigit():
            st.nums.append(int(name[:8]))
    st.nums.sort()
    if not st.nums:
        st.nums.append(1)
    num = st.nums[-1]
    st.f = open(st.path(num), "ab")
    st.size = os.stat(st.path(num))[6]
    repaired = False
    if st.size:
        with open(st.path(num), "rb") as f:
            f.seek(st.size - 1)
            repaired = f.read(1) != b"\n"
        if repaired:
            st._write(b"\n", 0)
    st.start = (num, st.size)
    return st, repaired


def backbone(cfg, log, radio, now):
    """The field socket on port 4345 (with the collector's address and, on an agent, the
    relay), or None when the socket cannot be had."""
    import socket

    from fieldlog import backbone as bb

    try:
        collector = None
        c = cfg.get("collector")  # checked by config.py: "a.b.c.d[:port]" or {"ip", "port"}
        if c:
            if isinstance(c, dict):
                ip, port = c["ip"], c.get("port")
            else:
                ip, _, port = c.partition(":")
            collector = socket.getaddrinfo(ip, int(port or wire.FIELD_PORT))[0][-1]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(socket.getaddrinfo("0.0.0.0", wire.FIELD_PORT)[0][-1])
        sock.setblocking(False)
    except OSError as e:
        log.event("log_stream_off", {"reason": "field socket: %s" % e})
        return None
    key = cfg["keys"].get(str(wire.SPI_LOG))
    secret = cfg["keys"].get(str(wire.SPI_LOG_SECRET))
    relayer = None
    if secret and collector and cfg["role"] == "agent":
        from fieldlog import relay

        relayer = relay.Relay(bytes.fromhex(secret), now=now)
    net = bb.Backbone(
        log, cfg["node_id"], bytes.fromhex(key) if key else None, sock, collector, relayer
    )
    net.radio = radio
    return net


def stream(cfg, log, radio, role, net, now):
    """The board's stream (fieldlog/stream.py) with its links; None without a flash log."""
    if log.store is None:
        log.event("log_stream_off", {"reason": "no flash log"})
        return None
    key = cfg["keys"].get(str(wire.SPI_LOG))
    if key is None:
        log.event("log_stream_off", {"reason": "no log key (SPI 0x300)"})
    elif net is not None and net.collector is None:
        log.event("log_stream_off", {"reason": "no collector"})
        key = None
    s = stream_mod.Stream(
        log.store,
        None if key is None else bytes.fromhex(key),
        cfg["node_id"],
        log.boot,
        600 if net is not None else 250,  # a UDP datagram, or one ESP-NOW frame
        0 if net is not None else 28,  # on the radio: IPv4 and UDP headers first
        cfg.get("log_rate", stream_mod.DEFAULT_RATE),
        cfg.get("log_behind", stream_mod.DEFAULT_BEHIND),
        now,
    )
    import asyncio

    from mobility import ipv4

    s.log = log
    s.radio = radio
    s.role = role
    s.net = net  # fieldlog.backbone.Backbone on a backbone board, else None
    s.addr = ipv4.aton(cfg["address"])
    s.flush_ms = cfg.get("log_flush_ms", 1000)
    s.stats_ms = cfg.get("log_stats_ms", 10000)
    s.wake = log.wake = asyncio.Event()  # set by each new line
    s.to = None  # the MAC the last radio frame went to: a new one is tried at once
    if net is not None:
        net.stream = s
    return s


def safe_mode(reason):
    """Safe mode's one line: on the console and in the flash log, and, on a backbone board
    with a collector, sent to it once, so the field's dashboard shows the board at the REPL."""
    import config

    try:
        cfg = config.load()
    except (config.ConfigError, OSError):
        cfg = {}
    log = boot_log(cfg)
    st = log.store
    at = (st.nums[-1], st.size + st.n) if st is not None else (0, 0)
    text = log.event("safe_mode", {"reason": reason, "repl": True})
    log.close()
    if cfg.get("wifi") and cfg.get("collector"):
        try:
            from fieldlog import announce

            announce.announce(cfg, log.boot, at, text.encode() + b"\n")
        except Exception as e:  # noqa: BLE001 - safe mode reaches the REPL whatever happens
            sys.stdout.write("safe mode: could not tell the collector (%r)\n" % (e,))


def drop():
    """Forget this module (the driver calls it once the role runs): its code is freed."""
    import fieldlog

    sys.modules.pop("fieldlog.setup", None)
    try:
        delattr(fieldlog, "setup")
    except AttributeError:
        pass

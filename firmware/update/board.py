"""The update service on the board: the driver's side of it, loaded by the first update
message (driver.Driver.on_update) and dropped with the service after a quiet minute, so that
a board that is not being updated holds none of it.

The driver keeps ``update`` (the service, or None), ``update_key``, ``node``, ``address`` and
``rand``; this module builds the service, sends its answers, resets the board after a COMMIT or
RESET it took, and answers a radio-only board's messages by ESP-NOW to the agent that sent them.
"""

import sys
import time

from mobility import ipv4, ticks


def handle(drv, msg, send):
    now = drv.clock()
    try:
        svc = drv.update
        if svc is None:
            from update import service

            svc = drv.update = service.Service(
                drv.node, drv.update_key, lambda: info(drv), drv.rand, now
            )
            drv.log.event("ota_service", {"on": True}, now)
        reply = svc.handle(now, msg)
    except MemoryError:
        # the heap is short just now: the message is dropped (the laptop sends it again,
        # what was on flash stays as it was), the board and its role go on
        import gc

        gc.collect()
        net = getattr(drv, "net", None)
        if net is not None:
            net.oom += 1  # in log_stats as rx_oom: a field datagram dropped for want of heap
        return
    if reply is None:
        return
    if svc.after:
        # said before the answer: the laptop's next step (the agents' COMMIT after the other
        # boards') follows this line, whatever the schedulers make of the two boards
        drv.log.event("ota_reset", {"why": "commit" if svc.after == "reset" else "reset"})
    try:
        send(reply)
    except (OSError, ValueError) as e:
        drv.log.event("send_error", {"error": str(e)}, now)
    if svc.after:
        drv.log.close()  # the batch in RAM goes to flash first
        time.sleep_ms(100)  # the answer on its way
        import machine

        if svc.after == "reset":
            machine.reset()  # a new version: as after a power cycle
        else:
            machine.soft_reset()


def radio_reply(drv, mac, msg):
    """How to answer an update message that came by radio in IPv4/UDP ``msg``: to the agent
    that sent it (``mac``), addressed back to the laptop (the message's source address)."""
    to = bytes(msg[12:16])

    def send(reply):
        frame = bytearray(28 + len(reply))
        ipv4.udp_head(frame, drv.address, to, 4345, 4345, len(reply))
        frame[28:] = reply
        drv.radio.send(mac, frame)

    return send


def info(drv):
    """(config hash, boot, uptime s, .mpy version) for STATUS."""
    from update import stage

    try:
        # (config.PATH: config.py, boot-time code, is not loaded again for this)
        h = stage.file_hash("config.json")
    except OSError:
        import hashlib

        h = hashlib.sha256().digest()
    up = ticks.diff(drv.clock(), drv.started) // 1000
    return h, drv.log.boot, up, getattr(sys.implementation, "_mpy", 0)


def idle(drv, now):
    """A quiet minute since the last update message: the service and this module go."""
    from update import service

    svc = drv.update
    if ticks.diff(now, svc.last) < service.IDLE_MS:
        return
    drv.update = None
    drv.log.event("ota_service", {"on": False, "taken": svc.taken, "refused": svc.refused}, now)
    # the package, slots and config too (boot dropped them; the service loaded them again)
    for m in (
        "update.service",
        "update.stage",
        "update.wire",
        "update.board",
        "update",
        "slots",
        "romimage",
        "config",
    ):
        sys.modules.pop(m, None)

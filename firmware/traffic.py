"""A board's application traffic: the flows of its config (``traffic``, ``flows``), datagrams
a correspondent sends in the lab or in a field test. Only a board with flows loads this
module (Driver.run): on a board a module's code lives in the heap.
"""

import asyncio

from mobility import ipv4, ticks


async def flow(drv, dst, every_ms, size, start_ms=0, stop_ms=0):
    """Application datagrams from the board that ``drv`` (driver.Driver) runs to ``dst``
    every ``every_ms`` (a correspondent's flow), from ``start_ms`` after its boot until
    ``stop_ms`` after it (0: for ever), each logged as ``app_tx``."""
    dst = bytes(int(x) for x in dst.split("."))
    seq = 0
    payload = bytearray(max(4, size))
    t0 = drv.started
    if start_ms:
        await asyncio.sleep_ms(max(0, start_ms - ticks.diff(drv.clock(), t0)))
    while True:
        await asyncio.sleep_ms(every_ms)
        if stop_ms and ticks.diff(drv.clock(), t0) >= stop_ms:
            return
        seq += 1
        payload[0:4] = seq.to_bytes(4, "big")
        now = drv.clock()
        try:
            drv.role.on_send(now, dst, bytes(payload))
            drv.log.event("app_tx", {"dst": ipv4.ntoa(dst), "seq": seq}, now)
        except ValueError as e:
            drv.log.event("app_tx_error", {"error": str(e)}, now)
        drv.run_actions(now)
        drv.kick.set()

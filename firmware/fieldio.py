"""The log in the field on a board: the flash store, the live stream to the collector and its
numbers, in one asyncio task (docs/FIRMWARE.md "The log in the field").

The stream (fieldlog/uplink.py) goes by UDP to the collector on a backbone board
(fieldlog/backbone.py, which also relays and answers pulls), else by ESP-NOW to the serving
agent or gateway (``role.uplink()``) as UDP to port 4345. Radio frames for that port are taken
out by the driver before the protocol core sees them (``is_field``: a few byte compares); the
core never learns about the log. Small on purpose: every byte of code is heap on a board.
"""

import asyncio
import gc

from fieldlog import uplink, wire
from mobility import ipv4, ticks


def is_field(msg):
    """A radio frame that is IPv4/UDP to port 4345 (0x10F9), without IP options."""
    return len(msg) > 28 and msg[0] == 0x45 and msg[9] == 17 and msg[22] == 0x10 and msg[23] == 0xF9


def key_of(cfg, spi):
    k = cfg["keys"].get(str(spi))
    return None if k is None else bytes.fromhex(k)


class FieldIO:
    def __init__(self, cfg, log, radio, role, net, now):
        self.log = log
        self.radio = radio
        self.role = role
        self.net = net  # fieldlog.backbone.Backbone on a backbone board, else None
        self.addr = ipv4.aton(cfg["address"])
        self.flush_ms = cfg.get("log_flush_ms", 1000)
        self.stats_ms = cfg.get("log_stats_ms", 10000)
        self.wake = asyncio.Event()
        self.to = None  # the MAC the last radio frame went to: a new one is tried at once
        self.up = None
        key = key_of(cfg, wire.SPI_LOG)
        why = None
        if key is None:
            why = "no log key (SPI 0x300)"
        elif log.store is None:
            why = "no flash log"
        elif net is not None and net.collector is None:
            why = "no collector"
        else:
            self.up = uplink.Uplink(
                log.store,
                key,
                cfg["node_id"],
                log.boot,
                600 if net is not None else 250,  # a UDP datagram, or one ESP-NOW frame
                0 if net is not None else 28,  # on the radio: IPv4 and UDP headers first
                cfg.get("log_rate", uplink.DEFAULT_RATE),
                cfg.get("log_hold_ms", uplink.DEFAULT_HOLD_MS),
                cfg.get("log_behind", uplink.DEFAULT_BEHIND),
                now,
            )
            log.wake = self.wake
            if net is not None:
                net.up = self.up
        if why:
            log.event("log_stream_off", {"reason": why})

    def on_radio(self, now, msg):
        """A radio frame that is_field(): another board's log, relayed on a backbone board."""
        if self.net is not None:
            self.net.relay(now, msg)

    def _send(self, n):
        """The stream's frame (n bytes in up.buf after its headroom) to the collector."""
        buf = self.up.buf
        if self.net is not None:
            return self.net.send(memoryview(buf)[:n])
        way = self.role.uplink()
        if way is None:
            return None  # no agent: the lines wait on flash
        total = ipv4.udp_head(buf, self.addr, way[1] or ipv4.BCAST_ADDR, 4345, 4345, n)
        try:
            return self.radio.send(way[0], memoryview(buf)[:total])
        except (OSError, ValueError):
            return False

    async def run(self, clock):
        """Flush the store, send the stream, log the numbers: one task for all three."""
        store = self.log.store
        up = self.up
        now = clock()
        flush_at = ticks.add(now, self.flush_ms)
        stats_at = ticks.add(now, self.stats_ms)
        while True:
            now = clock()
            if up is not None and self.net is None:
                way = self.role.uplink()
                if (way and way[0]) != self.to:
                    self.to = way and way[0]  # another agent: a waiting frame goes at once
                    up.retry_now(now)
            wait = min(ticks.diff(flush_at, now), ticks.diff(stats_at, now))
            due = None if up is None else up.due_in(now)
            if due is not None:
                wait = min(wait, due)
            if wait > 0:
                self.wake.clear()
                try:
                    await asyncio.wait_for_ms(self.wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
                continue
            if due == 0:
                n = up.next_frame(now)
                if n:
                    ok = self._send(n)
                    if ok is None:
                        up.next_at = ticks.add(now, 200)  # no way yet: look again soon
                    else:
                        up.sent(ok, clock())
            if store is not None and ticks.diff(now, flush_at) >= 0:
                store.flush()
                flush_at = ticks.add(now, self.flush_ms)
            if ticks.diff(now, stats_at) >= 0:
                self.log.event("log_stats", self.stats())
                stats_at = ticks.add(now, self.stats_ms)
            await asyncio.sleep_ms(0)

    def stats(self):
        st = self.log.store
        up = self.up
        f = {"heap_free": gc.mem_free()}
        if st is not None:
            f["stored"] = st.lines
            f["lost"] = st.lost
        if up is not None:
            f["sent"] = up.sent_bytes
            f["behind"] = max(0, st.behind(up.num, up.off))
            f["skipped"] = up.skipped
        if self.net is not None:
            self.net.stats(f)
        return f

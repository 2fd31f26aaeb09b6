"""The live copy of a board's log on its way to the collector, and the one asyncio task that
keeps the log in the field going (flush the store, send the stream, log the numbers).

The stream is a position in the flash ring (fieldlog/store.py), not a copy of the lines: it
starts where this boot's lines begin and follows the log as it grows, one signed LOG frame at
a time, built in place in one preallocated buffer (no allocation per frame but the HMAC's), at
most ``rate`` frames a second, so it never crowds out data traffic; lines written meanwhile share
the next frame. A frame carries whole lines (a line longer than a frame goes in parts). A frame
is sent again unchanged until the link takes it (a radio frame acknowledged,
a datagram handed to the stack), with a growing pause; a relay recognises such a copy by its
number. When the way to the collector was gone so long that the stream is more than
``max_behind`` bytes behind, it jumps to the present (the collector names the gap; ``roam logs
--pull`` fills it from flash). A REWIND (fieldlog/backbone.py) sends the whole ring again, four
times as fast (``roam logs --pull`` over Wi-Fi), without jumping until it has caught up.

A backbone board sends by UDP to the collector (fieldlog/backbone.py); a radio-only board by
ESP-NOW to its serving agent or gateway (``role.uplink()``) as IPv4/UDP to port 4345, which the
agent relays. ``due_in``, ``next_frame`` and ``sent`` are sans-I/O (tests drive them with a clock);
``run`` and ``stats`` are the board's side, whose links fieldlog/setup.py gives it
at boot (``log``, ``radio``, ``role``, ``net``, ``addr``, ``flush_ms``, ``stats_ms``,
``wake``, ``to``). One object for all of it: on a board every byte of code and every object is
heap.
"""

import asyncio
import gc

from fieldlog import wire
from mobility import ipv4, ticks
from mobility.compat import const

DEFAULT_RATE = const(16)  # frames a second
DEFAULT_BEHIND = const(16384)  # bytes: some 10 s of a busy mobile node's log
RETRY_MS = const(100)


class Stream:
    def __init__(self, store, key, node, boot, max_frame, pre, rate, max_behind, now):
        self.store = store
        self.key = key  # None: no log key, nothing is sent (the store is still flushed)
        self.node = node
        self.boot = boot
        self.buf = bytearray(max_frame)  # [pre bytes for the caller][the LOG frame]
        self.pre = pre
        self.room = max_frame - pre - wire.LOG_HEAD - wire.TAG  # log bytes in one frame
        self.gap_ms = 1000 // rate
        self.max_behind = max_behind
        self.num, self.off = store.start  # the next byte to send
        self.cont = False  # (num, off) is inside a line whose start went in an earlier frame
        self.frame = 0
        self.size = 0  # bytes of the frame in buf (after pre) while one is in flight
        self.after = None  # (num, off, cont) once that frame has gone
        self.next_at = now
        self.backoff = RETRY_MS
        self.sent_bytes = 0  # log bytes the link took
        self.skipped = 0  # bytes jumped over after a long absence
        self.rewound = False  # sending the ring again: no jumping, 4x the rate

    # -- the stream, sans-I/O ----------------------------------------------------------------

    def due_in(self, now):
        """Milliseconds until next_frame() has something (0: now); None: nothing to send."""
        if self.key is None:
            return None
        if not self.size and self.store.behind(self.num, self.off) <= 0:
            self.rewound = False
            return None
        return max(0, ticks.diff(self.next_at, now))

    def next_frame(self, now):
        """The length of the frame now in buf[pre:] to send, or 0. Report with sent()."""
        if self.due_in(now) != 0:
            return 0
        st = self.store
        if not self.size:
            if st.behind(self.num, self.off) > self.max_behind and not self.rewound:
                self.skipped += st.behind(self.num, self.off)
                self.num, self.off, self.cont = st.nums[-1], st.size + st.n, False
                return 0
            head = self.pre + wire.LOG_HEAD
            mv = memoryview(self.buf)[head : head + self.room]
            num, off, n = st.readinto(self.num, self.off, mv)
            if not n:
                return 0
            flags = wire.FLAG_CONT if self.cont and (num, off) == (self.num, self.off) else 0
            end = n
            while end and mv[end - 1] != 10:  # back to the last whole line
                end -= 1
            if end:
                self.after = (num, off + end, False)
            else:
                end = n  # a line longer than a frame: this part now, the rest after
                flags |= wire.FLAG_MORE
                self.after = (num, off + n, True)
            self.size = wire.sign_log(
                memoryview(self.buf)[self.pre :],
                self.key,
                self.node,
                self.boot,
                self.frame,
                flags,
                num,
                off,
                end,
            )
        self.next_at = ticks.add(now, self.gap_ms >> 2 if self.rewound else self.gap_ms)
        return self.size

    def sent(self, ok, now):
        """The last frame went (ok), or the link refused it: sent again later, unchanged."""
        if not ok:
            self.next_at = ticks.add(now, self.backoff)
            self.backoff = min(1000, self.backoff * 2)
        elif self.size:
            self.num, self.off, self.cont = self.after
            self.sent_bytes += self.size - wire.LOG_HEAD - wire.TAG
            self.size = 0
            self.backoff = RETRY_MS
            self.frame = (self.frame + 1) & 0x3FFFFFFF  # a small int on a board

    # -- on a board ------------------------------------------------------------------------

    def _send(self, n):
        buf = self.buf
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
        now = clock()
        flush_at = ticks.add(now, self.flush_ms)
        stats_at = ticks.add(now, self.stats_ms)
        while True:
            now = clock()
            if self.net is None:
                way = self.role.uplink()
                if (way and way[0]) != self.to:
                    self.to = way and way[0]  # another agent: a waiting frame goes at once
                    self.next_at = now
                    self.backoff = RETRY_MS
            wait = min(ticks.diff(flush_at, now), ticks.diff(stats_at, now))
            due = self.due_in(now)
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
                n = self.next_frame(now)
                if n:
                    ok = self._send(n)
                    if ok is None:
                        self.next_at = ticks.add(now, 200)  # no way yet: look again soon
                    else:
                        self.sent(ok, clock())
            if ticks.diff(now, flush_at) >= 0:
                self.store.flush()
                flush_at = ticks.add(now, self.flush_ms)
            if ticks.diff(now, stats_at) >= 0:
                self.log.event("log_stats", self.stats())
                stats_at = ticks.add(now, self.stats_ms)
            await asyncio.sleep_ms(0)

    def stats(self):
        st = self.store
        gc.collect()  # the free heap that counts: garbage left uncollected says nothing
        f = {
            "heap_free": gc.mem_free(),
            "stored": st.lines,
            "lost": st.lost,
            "sent": self.sent_bytes,
            "behind": max(0, st.behind(self.num, self.off)),
            "skipped": self.skipped,
        }
        if self.net is not None:
            self.net.stats(f)
        return f

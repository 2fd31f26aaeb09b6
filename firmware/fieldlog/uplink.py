"""The live copy of a board's log on its way to the collector (sans-I/O: the caller sends).

The stream is a position in the flash ring (fieldlog/store.py), not a copy of the lines: it
starts where this boot's lines begin and follows the log as it grows, one signed LOG frame at
a time, built in place in one preallocated buffer (no allocation per frame but the HMAC's), at
most ``rate`` frames a second, so it never crowds out data traffic. A frame carries whole lines
(a line longer than a frame goes in parts); a line waits up to ``hold_ms`` for others to share
its frame. A frame is sent again unchanged until the link takes it (a radio frame acknowledged,
a datagram handed to the stack), with a growing pause; a relay recognises such a copy by its
number. When the way to the collector was gone so long that the stream is more than
``max_behind`` bytes behind, it jumps to the present (the collector names the gap; ``roam logs
--pull`` fills it from flash). ``rewind`` sends the whole ring again, four times as fast
(``roam logs --pull`` over Wi-Fi), without jumping until it has caught up.
"""

from fieldlog import wire
from mobility import ticks

try:
    from micropython import const
except ImportError:

    def const(x):  # type: ignore[misc]
        return x


DEFAULT_RATE = const(16)  # frames a second
DEFAULT_HOLD_MS = const(40)
DEFAULT_BEHIND = const(16384)  # bytes: some 10 s of a busy mobile node's log
RETRY_MS = const(100)


class Uplink:
    def __init__(self, store, key, node, boot, max_frame, pre, rate, hold_ms, max_behind, now):
        self.store = store
        self.key = key
        self.node = node
        self.boot = boot
        self.buf = bytearray(max_frame)  # [pre bytes for the caller][the LOG frame]
        self.pre = pre
        self.room = max_frame - pre - wire.LOG_HEAD - wire.TAG  # log bytes in one frame
        self.gap_ms = 1000 // rate
        self.hold_ms = hold_ms
        self.max_behind = max_behind
        self.num, self.off = store.start  # the next byte to send
        self.cont = False  # (num, off) is inside a line whose start went in an earlier frame
        self.frame = 0
        self.size = 0  # bytes of the frame in buf (after pre) while one is in flight
        self.after = None  # (num, off, cont) once that frame has gone
        self.next_at = now
        self.backoff = RETRY_MS
        self.seen_at = None  # when unsent lines were first seen (they wait hold_ms)
        self.sent_bytes = 0  # log bytes the link took
        self.skipped = 0  # bytes jumped over after a long absence
        self.rewound = False  # sending the ring again: no jumping, 4x the rate

    def due_in(self, now):
        """Milliseconds until next_frame() has something (0: now); None: nothing to send."""
        wait = ticks.diff(self.next_at, now)
        if not self.size:
            behind = self.store.behind(self.num, self.off)
            if behind <= 0:
                self.seen_at = None
                self.rewound = False
                return None
            if self.seen_at is None:
                self.seen_at = now
            if behind < self.room // 2:
                wait = max(wait, self.hold_ms - ticks.diff(now, self.seen_at))
        return max(0, wait)

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
            cont = self.cont and (num, off) == (self.num, self.off)
            flags = wire.FLAG_CONT if cont else 0
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
            self.seen_at = None
            self.backoff = RETRY_MS
            self.frame = (self.frame + 1) & 0x3FFFFFFF  # a small int on a board

    def rewind(self):
        """Send the whole ring again from its oldest line (a frame in flight goes first)."""
        start = (self.store.nums[0], 0, False)
        if self.size:
            self.after = start
        else:
            self.num, self.off, self.cont = start
        self.rewound = True

    def retry_now(self, now):
        """The way changed (another agent serves the board): a waiting frame goes at once."""
        self.next_at = now
        self.backoff = RETRY_MS

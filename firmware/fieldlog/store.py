"""The board's own log on flash: a bounded ring of files, written in batches, read by position.

Lines wait in a preallocated batch buffer until the driver's log task writes them (every
``log_flush_ms``) or the buffer is full, never on the forwarding path. A batch is appended to
the newest file and flushed (on LittleFS a flush commits the file), so a power cut loses at most
the batch in RAM and an append never rewrites what is already on flash. A batch cut mid-write
can leave a partial last line: ``open`` ends it with a newline at the next boot, so it stays one
damaged line (readers skip what is not JSON) and the new boot's lines start clean
(fieldlog/setup.py opens the ring at boot).

The ring is ``files`` files ``logs/NNNNNNNN.jl`` of ``total_kb / files`` KiB. A new file is
started before a line that would not fit, so a line's position (file number, byte offset) never
changes once it is appended, in the batch or on flash; numbers only grow, and the oldest file
beyond ``files`` is removed. The live stream reads the ring by position (``readinto``): it
needs no copy of the lines in RAM. Small on purpose: on a board this code is heap.
"""

import os

from mobility.compat import const

DEFAULT_TOTAL_KB = const(192)
DEFAULT_FILES = const(6)
DEFAULT_BATCH = const(512)


class LogStore:
    def __init__(
        self, root="logs", total_kb=DEFAULT_TOTAL_KB, files=DEFAULT_FILES, batch=DEFAULT_BATCH
    ):
        if files < 2:
            raise ValueError("log_files must be at least 2, not %r" % (files,))
        self.root = root
        self.n_files = files
        self.file_max = max(1024, total_kb * 1024 // files)
        self.buf = bytearray(batch)
        self.n = 0  # bytes waiting in buf: they belong to the newest file, after `size`
        self.waiting = 0  # lines waiting in buf
        self.nums = []  # file numbers on flash, oldest first
        self.f = None  # the newest file, open for appending
        self.size = 0  # its bytes on flash
        self.lines = 0  # lines written to flash in this boot
        self.lost = 0  # lines flash refused (full, broken)
        self.start = (0, 0)  # where this boot's lines begin (setup.open_store sets it)

    def path(self, num):
        return "%s/%08d.jl" % (self.root, num)

    def append(self, line):
        """One line (bytes, no newline) for the next batch."""
        need = len(line) + 1
        if self.size + self.n + need > self.file_max and self.size + self.n:
            # the line starts the next file: what waits goes to this one first
            self.flush()
            self.f.close()
            num = self.nums[-1] + 1
            self.nums.append(num)
            self.f = open(self.path(num), "ab")
            self.size = 0
            while len(self.nums) > self.n_files:
                try:
                    os.remove(self.path(self.nums.pop(0)))
                except OSError:
                    pass
        if self.n + need > len(self.buf):
            self.flush()
            if need > len(self.buf):
                self._write(line + b"\n", 1)
                return
        n = self.n
        self.buf[n : n + need - 1] = line
        self.buf[n + need - 1] = 10
        self.n = n + need
        self.waiting += 1

    def flush(self):
        """Write the batch and commit it (the log task calls this every log_flush_ms)."""
        if self.n:
            self._write(memoryview(self.buf)[: self.n], self.waiting)
            self.n = 0
            self.waiting = 0

    def _write(self, data, lines):
        try:
            self.f.write(data)
            self.f.flush()
            self.size += len(data)
            self.lines += lines
        except (OSError, AttributeError):  # AttributeError: the store never opened
            self.lost += lines

    # -- reading by position ----------------------------------------------------------------

    def readinto(self, num, off, mv):
        """Fill ``mv`` with the log from (num, off): from flash, then the batch of the newest
        file. A file that is gone moves on to the oldest one, the end of an older file to the
        next one. Returns (num, off, n): where the bytes start and how many (0: none yet)."""
        if num < self.nums[0]:
            num, off = self.nums[0], 0
        while True:
            last = num == self.nums[-1]
            got = 0
            if not last or off < self.size:
                try:
                    with open(self.path(num), "rb") as f:
                        f.seek(off)
                        got = f.readinto(mv) or 0
                except MemoryError:
                    # no block for the open file's buffer (some 600 bytes) on a heap that is
                    # tight just now: nothing read yet, the stream asks again for its next
                    # frame (a plain ESP32 agent crashed here at a log rewind)
                    return num, off, 0
                except OSError:
                    pass
            k = off + got - self.size
            if last and got < len(mv) and 0 <= k < self.n:
                m = min(self.n - k, len(mv) - got)
                mv[got : got + m] = memoryview(self.buf)[k : k + m]
                got += m
            if got or last:
                return num, off, got
            for n in self.nums:
                if n > num:
                    num, off = n, 0
                    break

    def behind(self, num, off):
        """Bytes from (num, off) to the end of the log."""
        total = self.size + self.n - off
        if num != self.nums[-1]:  # a file behind (just after a new one began): rare, exact
            for n in self.nums[:-1]:
                if n >= num:
                    try:
                        total += os.stat(self.path(n))[6]
                    except OSError:
                        pass
        return total

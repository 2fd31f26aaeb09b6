"""A one-way message ring between two processes in shared memory, read by spinning.

The world and its worker exchange a message per window each way, some 200,000 a simulated
minute in the city. Through a pipe each one costs a system call and, as the other side sleeps
in read(), a wake-up on the other processor: about 25 us a message on a virtual machine, more
than the work of a quiet window. Here the writer copies the message into memory both processes
map (an anonymous shared mmap made before the fork) and then advances a counter; the reader
spins on that counter. Each side has a processor of its own, so spinning costs nothing that
would otherwise run; after a while without news the reader yields the processor (os.sched_yield)
and checks that the other process is still alive, so a crash never leaves a process spinning.

Single producer, single consumer. Layout: the write counter at 0, the read counter at 64 (its
own cache line), data from 128. Both counters count bytes since the start and only grow. A
message is a 4-byte length, 4 bytes of padding and the payload, padded to 8 bytes; one that does
not fit before the end of the data area is preceded by a wrap marker and starts at 0. The
writer copies the payload first and stores the counter after it (one aligned 8-byte store); the
reader loads the counter before the payload. x86-64 keeps stores, and loads, in program order,
so the reader never sees a counter ahead of its payload; elsewhere the world uses a pipe
(cores.make_link).
"""

import ctypes
import mmap
import os
import struct

_HEAD = 0  # bytes written so far (by the writer)
_TAIL = 64  # bytes read so far (by the reader)
_DATA = 128
_WRAP = 0xFFFFFFFF
_I = struct.Struct("<I")  # a message's length (written before the counter publishes it)
SPINS = 20000  # busy polls before yielding the processor between polls
ALIVE_EVERY = 2000  # polls between checks that the other side still lives, once yielding


class RingClosed(Exception):
    """The other process is gone."""


class Ring:
    """One direction. Make it before the fork; one process writes, the other reads."""

    def __init__(self, capacity=16 << 20):
        self.cap = capacity
        self.mm = mmap.mmap(-1, _DATA + capacity)
        # the counters as ctypes integers on the shared memory: one aligned 8-byte load or
        # store each (struct.pack_into zero-fills its target first, so a counter read while
        # it is written could be seen as 0)
        self._head = ctypes.c_int64.from_buffer(self.mm, _HEAD)
        self._tail = ctypes.c_int64.from_buffer(self.mm, _TAIL)
        self.head = 0  # the writer's (or the reader's last seen) write counter
        self.tail = 0  # the reader's (or the writer's last seen) read counter
        self.alive = None  # () -> bool: is the other side still there (set by the owner)

    def close(self):
        del self._head, self._tail  # (ctypes views keep the mapping from closing)
        self.mm.close()

    def _idle(self, n):
        """The n-th poll without news: spin first, then yield the processor between polls and
        now and then make sure the other side is still there."""
        if n > SPINS:
            os.sched_yield()
            if n % ALIVE_EVERY == 0 and self.alive is not None and not self.alive():
                raise RingClosed("the other process is gone")

    # -- writer --------------------------------------------------------------------------

    def send(self, payload):
        n = len(payload)
        need = 8 + ((n + 7) & ~7)
        if need > self.cap // 2:
            raise ValueError("a %d-byte message does not fit a %d-byte ring" % (n, self.cap))
        mm, cap = self.mm, self.cap
        pos = self.head % cap
        skip = cap - pos if pos + need > cap else 0
        end = self.head + skip + need

        n_polls = 0
        while end - self.tail > cap:  # (the reader frees space as it reads)
            self.tail = self._tail.value
            n_polls += 1
            self._idle(n_polls)
        if skip:
            _I.pack_into(mm, _DATA + pos, _WRAP)  # (pos is a multiple of 8: 4 bytes fit)
            pos = 0
        _I.pack_into(mm, _DATA + pos, n)
        mm[_DATA + pos + 8 : _DATA + pos + 8 + n] = payload
        self.head = end
        self._head.value = end  # publish: after the payload

    # -- reader --------------------------------------------------------------------------

    def ready(self):
        """True when recv() would return at once."""
        return self.head != self.tail or self._head.value != self.tail

    def recv(self):
        mm, cap = self.mm, self.cap
        if self.head == self.tail:
            counter = self._head
            tail = self.tail
            head = counter.value
            n_polls = 0
            while head == tail:
                n_polls += 1
                if n_polls > SPINS:
                    self._idle(n_polls)
                head = counter.value
            self.head = head
        pos = self.tail % cap
        n = _I.unpack_from(mm, _DATA + pos)[0]
        if n == _WRAP:
            self.tail += cap - pos
            pos = 0
            n = _I.unpack_from(mm, _DATA)[0]
        out = mm[_DATA + pos + 8 : _DATA + pos + 8 + n]
        self.tail += 8 + ((n + 7) & ~7)
        self._tail.value = self.tail  # the space is free again
        return out

"""The collector's side of the field-service messages (fieldlog/wire.py): decoding LOG, putting
the lines of a board's frames together, building REWIND (and whole LOG frames, for tests).
Boards never load it; it lives with the firmware so that one place defines each message, and
runs on MicroPython too (tests/firmware)."""

import struct

from fieldlog import wire
from mobility import auth


def encode_log(key, node, boot, frame, flags, num, off, data):
    """A signed LOG frame carrying ``data`` (bytes of the log file ``num`` from ``off``)."""
    buf = bytearray(wire.LOG_HEAD + len(data) + wire.TAG)
    buf[wire.LOG_HEAD : wire.LOG_HEAD + len(data)] = data
    wire.sign_log(buf, key, node, boot, frame, flags, num, off, len(data))
    return bytes(buf)


class LogFrame:
    """A decoded LOG frame: ``data`` is the bytes of log file ``num`` from offset ``off``;
    ``cont``: they start inside a line, ``more``: they end inside one."""

    def __init__(self, node, boot, frame, flags, num, off, data):
        self.node = node
        self.boot = boot
        self.frame = frame
        self.cont = bool(flags & wire.FLAG_CONT)
        self.more = bool(flags & wire.FLAG_MORE)
        self.num = num
        self.off = off
        self.data = data


def decode_log(msg):
    end = len(msg) - wire.TAG
    if end < wire.LOG_HEAD or msg[0] != wire.LOG:
        raise wire.FieldError("not a log frame")
    _t, flags, node, boot, frame, num, off = struct.unpack_from(">BBHHIII", msg, 0)
    data = bytes(msg[wire.LOG_HEAD : end])
    if not data:
        raise wire.FieldError("log frame without log bytes")
    if not (flags & wire.FLAG_MORE) and data[-1] != 10:
        raise wire.FieldError("log frame ends inside a line without saying so")
    return LogFrame(node, boot, frame, flags, num, off, data)


class Lines:
    """Whole lines out of one collector's LOG frames, whatever their order and copies: a line
    cut across frames is joined by its file position. ``add`` returns the lines a frame
    completed as (file, offset, bytes without the newline)."""

    MAX_PARTS = 256

    def __init__(self):
        self.parts = {}  # (node, file, end offset) -> (start offset, bytes so far)

    def add(self, f):
        out = []
        data = f.data
        start = f.off
        i = 0
        head = None
        if f.cont:
            head = self.parts.pop((f.node, f.num, f.off), None)
        while i < len(data):
            j = data.find(b"\n", i)
            piece = data[i:] if j < 0 else data[i:j]
            if i == 0 and f.cont:
                if head is None:
                    piece = None  # the line's start never came: it waits for another copy
                else:
                    start, piece = head[0], head[1] + piece
            if j < 0:
                if piece is not None:
                    if len(self.parts) >= self.MAX_PARTS:
                        self.parts.pop(next(iter(self.parts)))
                    self.parts[(f.node, f.num, f.off + len(data))] = (start, piece)
                break
            if piece is not None:
                out.append((f.num, start, piece))
            i = j + 1
            start = f.off + i
        return out


def encode_rewind(key, node, counter):
    """REWIND: board ``node`` sends its whole stored log again; ``counter`` must exceed the
    last one it took in this boot (30 bits: a small int on a board)."""
    body = struct.pack(">BBHI", wire.REWIND, 0, node, counter & 0x3FFFFFFF)
    return body + auth.tag(key, body)

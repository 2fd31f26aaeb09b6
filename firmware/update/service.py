"""A board's update service: the laptop's authenticated commands (update/wire.py) applied to
the board's flash (update/stage.py). Sans-I/O: ``handle`` takes a message and answers the reply
to send, or None; the caller sends it and, when ``after`` says so, resets the board.

One session per service: its number is drawn when the service starts (at the first update
message after a boot) and never changes; every command carries it and a counter above the last
one taken, so a command recorded earlier (this boot or another) is dropped unanswered. HELLO
changes nothing: it answers the status with the session and its last counter, so a laptop that
was interrupted carries on above it. A message that fails its tag gets no answer at all.

The driver imports this module on the first update message and drops it after a quiet minute
(driver.Driver.on_update): a board that is not being updated does not hold it.
"""

import struct

from update import wire

IDLE_MS = 60000  # no update message for this long: the driver drops the service


class Service:
    def __init__(self, node, key, info, rand, now):
        self.node = node
        self.key = key  # this board's update key (SPI 0x400), or None: every message refused
        self.info = info  # () -> (config hash, boot, uptime s, mpy version)
        self.session = rand(32) or 1
        self.counter = 0
        self.stage = None
        self.after = None  # "reset" (after COMMIT) or "soft" (after RESET), once replied
        self.last = now
        self.taken = 0
        self.refused = 0

    def handle(self, now, msg):
        try:
            t, node, session, counter = wire.head(msg)
        except ValueError:
            self.refused += 1
            return None
        if node != self.node or t in (wire.STATUS, wire.ACK) or not wire.verify(self.key, msg):
            self.refused += 1
            return None
        if t == wire.HELLO:
            self.last = now
            return self.status(counter)
        if session != self.session or counter <= self.counter:
            self.refused += 1  # a replay, or a command of another boot's session
            return None
        before = self.counter
        self.counter = counter
        self.last = now
        try:
            code, value, text = self.command(t, wire.body(msg))
        except MemoryError:
            # not taken: the laptop's resend of this very message must not look like a replay
            self.counter = before
            raise
        self.taken += 1
        return wire.ack(self.key, self.node, self.session, counter, code, value, text)

    def status(self, nonce):
        import slots

        from update import stage

        cfg_hash, boot, up, mpy = self.info()
        rom_kb = stage.rom_size() // 1024
        b = wire.pack_status(slots.read(), cfg_hash, boot, up, mpy, self.counter, rom_kb)
        return wire.sign(self.key, wire.STATUS, self.node, self.session, nonce, b)

    def command(self, t, b):
        """(code, value, text) of one authentic, fresh command."""
        from update import stage

        try:
            if t == wire.BEGIN:
                if len(b) != 2 + wire.SET_LEN:
                    return wire.BAD, 0, "begin"
                self.stage = stage.Stage()
                return self.stage.begin(b[0], b[2:], b[1]) + ("",)
            if t == wire.RESET:
                self.after = "soft"
                return wire.OK, 0, ""
            if t == wire.COMMIT and self.after == "reset":
                return wire.OK, 0, ""  # taken already (its answer was lost): the reset is due
            st = self.stage
            if st is None:
                return wire.NO_BEGIN, 0, ""
            if t == wire.FILE:
                if len(b) < 38:
                    return wire.BAD, 0, "file"
                size = struct.unpack_from(">I", b, 1)[0]
                return st.file(b[0], size, bytes(b[5:37]), str(bytes(b[37:]), "utf-8")) + ("",)
            if t == wire.DATA:
                if len(b) < 5:
                    return wire.BAD, 0, "data"
                return st.data(b[0], struct.unpack_from(">I", b, 1)[0], b[5:]) + ("",)
            if t == wire.COMMIT:
                code, value = st.commit()
                if code == wire.OK:
                    self.after = "reset"
                    self.stage = None
                return code, value, st.error if code == wire.BAD_CONFIG else ""
        except UnicodeError:
            return wire.BAD, 0, "path"
        except OSError as e:
            # a full or failing flash: the command changed nothing that the next cannot redo
            return wire.NO_SPACE, 0, str(e)
        return wire.BAD, 0, "type"

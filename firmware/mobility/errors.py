"""The errors of the wire layer.

A decoder raises only ``DecodeError``, whatever the bytes; an encoder raises ``FrameTooLarge``
rather than build a packet that an ESP-NOW frame cannot carry (it would be truncated on the air),
and ``ValueError`` for a field out of its range.

A wire error names the failed check with a short code, not a sentence, and carries what was
found as numbers: ``DecodeError("ip sum")``, ``DecodeError("udp length", 12, 30)``; its text is
the code and the numbers (``ip length 300 250``), as a ``drop`` event logs it. The reason: on
a board with a stock image a module's constants live in its heap, and MicroPython keeps a string
of at most 10 characters as a shared name but a longer one as an object of its own, some 50
bytes at 32 bits each; the wire modules' sentences took 5.7 KB of an agent's heap. So every code
is at most 10 characters. docs/PROTOCOL.md "Decode errors" says what each one means.
"""

# One ESP-NOW frame carries at most 250 bytes: the largest IPv4 packet the project builds.
MAX_FRAME = 250


class DecodeError(ValueError):
    """The bytes are not a well-formed message of the expected kind (the one decode error):
    ``DecodeError(code, value, ...)``."""

    def __str__(self):
        return " ".join(map(str, self.args))


class FrameTooLarge(ValueError):
    """An encoder was asked to build a packet larger than one frame (MAX_FRAME bytes)."""


def check_frame(size, what="packet"):
    """Raise FrameTooLarge when a packet of ``size`` bytes does not fit one frame."""
    if size > MAX_FRAME:
        raise FrameTooLarge(
            "%s of %d bytes exceeds the %d-byte frame limit by %d bytes"
            % (what, size, MAX_FRAME, size - MAX_FRAME)
        )


def check_uint(value, bits, what):
    """``value``, when it is an int that fits ``bits`` bits unsigned, else ValueError naming
    the field ``what`` (the encoders' one range check)."""
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise ValueError("%s must be an int in 0..%d, not %r" % (what, (1 << bits) - 1, value))
    return value

"""The errors of the wire layer.

A decoder raises only ``DecodeError``, whatever the bytes; an encoder raises ``FrameTooLarge``
rather than build a packet that an ESP-NOW frame cannot carry (it would be truncated on the air).
"""

# One ESP-NOW frame carries at most 250 bytes: the largest IPv4 packet the project builds.
MAX_FRAME = 250


class DecodeError(ValueError):
    """The bytes are not a well-formed message of the expected kind (the one decode error)."""


class FrameTooLarge(ValueError):
    """An encoder was asked to build a packet larger than one frame (MAX_FRAME bytes)."""


def check_frame(size, what="packet"):
    """Raise FrameTooLarge when a packet of ``size`` bytes does not fit one frame."""
    if size > MAX_FRAME:
        raise FrameTooLarge(
            "%s of %d bytes exceeds the %d-byte frame limit by %d bytes"
            % (what, size, MAX_FRAME, size - MAX_FRAME)
        )

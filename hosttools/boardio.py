"""Talking to one MicroPython board over its serial port, with errors a user can act on.

Everything that runs code on a board (deploy, provision, test) goes through ``open_board``,
which turns the ways a port can fail into one clear ``RoamError``: the port does not exist,
another program holds it (pyserial's exclusive open, the lock mpremote and `roam logs` take
too), or nothing answers on it: nothing at all comes back within PROBE_S (no MicroPython
behind the port: told at once), or the board prints but gives no raw REPL within the timeout.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import serial

from hosttools.errors import RoamError

# A MicroPython board answers Ctrl-C / Ctrl-A within milliseconds once it runs: its REPL echoes
# a prompt, a running program prints its KeyboardInterrupt, a board that is rebooting prints its
# boot lines. But a board that a deploy has just reset is still importing its firmware (an ESP32
# takes about a second; a virtual board, a fresh process, several on a busy laptop: 2 s was too
# short there), so a port from which not one byte comes back for this long has no MicroPython
# behind it.
PROBE_S = 5.0
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"


def check_port_exists(port: str) -> None:
    if "://" in port:  # a pyserial URL (rfc2217://, socket://): cannot stat it
        return
    if not os.path.exists(port):
        raise RoamError(
            "port %s does not exist (is the board plugged in? `roam devices` "
            "lists the connected boards)" % port
        )


def open_serial(port: str, baudrate: int = 115200, timeout: float | None = 0.1) -> serial.Serial:
    """Open a port exclusively; a port another process holds is reported as busy."""
    check_port_exists(port)
    try:
        return serial.serial_for_url(port, baudrate=baudrate, timeout=timeout, exclusive=True)
    except serial.SerialException as exc:
        raise RoamError(describe_open_error(port, exc)) from None
    except OSError as exc:
        raise RoamError(describe_open_error(port, exc)) from None


def describe_open_error(port: str, exc: BaseException) -> str:
    text = str(exc)
    err = getattr(exc, "errno", None)
    if (
        err in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY)
        or "lock" in text.lower()
        or "busy" in text.lower()
    ):
        return (
            "port %s is busy: another program has it open (close mpremote, a serial "
            "monitor or `roam logs` first)" % port
        )
    if err == errno.ENOENT or "No such file" in text:
        return "port %s does not exist (is the board plugged in?)" % port
    if err == errno.EACCES or "Permission denied" in text:
        return "no permission to open port %s (add yourself to the 'dialout' group)" % port
    return "cannot open port %s: %s" % (port, text)


def port_busy(port: str) -> bool:
    """True when another process holds the port (we try the same exclusive lock)."""
    try:
        s = open_serial(port)
    except RoamError as exc:
        if "busy" in str(exc):
            return True
        raise
    s.close()
    return False


@contextmanager
def open_board(port: str, timeout: float | None = None, fresh: bool = False) -> Iterator[Any]:
    """An mpremote SerialTransport in raw REPL on `port`; closed (and out of raw REPL) after.
    timeout: how long a board may take to answer (default 10 s, or $ROAM_BOARD_TIMEOUT).
    fresh: soft-reset in the raw REPL first (as mpremote does), which skips main.py: the heap
    is the board's whole heap again, not what the stopped firmware still holds (its asyncio
    tasks keep its tables alive after Ctrl-C), so writing a file cannot run out of memory."""
    if timeout is None:
        timeout = float(os.environ.get("ROAM_BOARD_TIMEOUT") or 10.0)
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    check_port_exists(port)
    # Probe first with our own exclusive open: mpremote turns every open failure into one
    # vague "failed to access" message.
    open_serial(port).close()
    try:
        t = SerialTransport(port, baudrate=115200, exclusive=True, timeout=1)
    except TransportError as exc:
        raise RoamError("cannot open port %s: %s" % (port, exc)) from None
    try:
        try:
            heard = _enter_raw_repl(t, timeout)
        except (OSError, serial.SerialException) as exc:
            raise RoamError("board on %s went away: %s" % (port, exc)) from None
        if heard is False:
            raise RoamError(
                "board on %s does not answer (nothing came back within %gs: is it the right "
                "port? is MicroPython flashed? try `roam flash`)" % (port, min(PROBE_S, timeout))
            )
        if heard is None:
            raise RoamError(
                "board on %s does not answer (it prints, but no MicroPython REPL within %gs: "
                "a program that ignores Ctrl-C? hold the boot button, or `roam flash`)"
                % (port, timeout)
            )
        if fresh:
            raw_soft_reset(t, port, timeout)
        # From here mpremote reads: its raw-paste handshake reads the board's 2-byte answer
        # with one read() bounded by the port's timeout, and on a short read it falls back to
        # waiting for a banner that never comes ("could not enter raw repl"). A board slowed
        # by a busy machine answered after the 1 s the probe uses: the board's own timeout.
        t.serial.timeout = timeout
        yield t
    finally:
        try:
            if t.in_raw_repl:
                t.exit_raw_repl()
        except Exception:  # noqa: BLE001 - the board may be gone; closing must not hide why
            pass
        try:
            t.close()
        except Exception:  # noqa: BLE001
            pass


def _enter_raw_repl(t: Any, timeout: float) -> bool | None:
    """Into the raw REPL as mpremote's enter_raw_repl does (Ctrl-C to stop a running program,
    Ctrl-A, wait for the banner), retried until `timeout`: a board that is just rebooting drops
    what it is sent meanwhile. Returns True once in the raw REPL, False when not one byte came
    back within PROBE_S (nothing to wait for), None when the board printed but never gave the
    raw REPL within `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    heard = False
    ser = t.serial
    attempts = 0
    while True:
        attempts += 1
        ser.write(b"\r\x03")
        stale = b""
        while ser.in_waiting:  # what the board said before: not an answer to this attempt
            stale += ser.read(ser.in_waiting)
        ser.write(b"\r\x01")
        left = deadline - time.monotonic()
        window = min(left, 2.0 if heard else PROBE_S)
        data = _read_until(ser, RAW_BANNER, time.monotonic() + max(0.2, window))
        if data.endswith(RAW_BANNER):
            t.in_raw_repl = True
            if attempts > 1:
                # A board that was busy may answer the earlier attempts' Ctrl-A too, later:
                # skip those banners, up to the output of a command sent after all of them.
                mark = b"roam-sync-%d" % int(time.monotonic() * 1000)
                ser.write(b"print(%r)\x04" % mark.decode())
                until = max(deadline, time.monotonic() + 2.0)
                if not _read_until(ser, mark + b"\r\n\x04\x04", until).endswith(b"\x04\x04"):
                    return None
            return True
        heard = heard or bool(stale) or bool(data)
        if not heard:
            return False
        if time.monotonic() >= deadline:
            return None


def raw_soft_reset(t: Any, port: str, timeout: float) -> None:
    """Ctrl-D in the raw REPL: the board reboots its interpreter (boot.py, not main.py) and is
    back in the raw REPL, its heap whole again."""
    import time

    t.serial.write(b"\x04")
    until = time.monotonic() + timeout
    if not _read_until(t.serial, b"soft reboot\r\n", until).endswith(b"soft reboot\r\n"):
        raise RoamError("board on %s did not soft-reset in the raw REPL" % port)
    # boot.py may print before the raw REPL is back
    if not _read_until(t.serial, RAW_BANNER, until).endswith(RAW_BANNER):
        raise RoamError("board on %s did not come back to the raw REPL after a reset" % port)


def board_exec(t: Any, code: str, port: str, timeout: float = 10.0) -> bytes:
    """Run code in the raw REPL; a Python error on the board becomes a RoamError."""
    from mpremote.transport import TransportError

    try:
        out, err = t.exec_raw(code, timeout=timeout)
    except TransportError as exc:
        raise RoamError("board on %s stopped answering: %s" % (port, exc)) from None
    except (OSError, serial.SerialException) as exc:
        raise RoamError("board on %s went away: %s" % (port, exc)) from None
    if err:
        last = err.decode("utf-8", "replace").strip().splitlines()
        raise RoamError("board on %s: %s" % (port, last[-1] if last else "error"))
    return bytes(out)


def board_eval(t: Any, expr: str, port: str, timeout: float = 10.0) -> str:
    return board_exec(t, "print(repr(%s))" % expr, port, timeout).decode().strip()


def soft_reset(t: Any, timeout: float = 5.0) -> bool:
    """Ctrl-D from the friendly REPL: the board reboots its firmware (boot.py, main.py).

    Waits until the board says "soft reboot": what the next connection sends must reach the
    rebooted firmware, not the REPL that is going away (it would be lost with it, and that
    connection would wait for an answer that never comes). True when the board said it."""
    t.exit_raw_repl()
    t.serial.write(b"\x04")
    import time

    data = _read_until(t.serial, b"soft reboot\r\n", time.monotonic() + timeout)
    return data.endswith(b"soft reboot\r\n")


def _read_until(ser: Any, ending: bytes, until: float) -> bytes:
    """Bytes from the port until they end with `ending` or time.monotonic() passes `until`.
    (mpremote's read_until checks its overall timeout only while the port is quiet: a board
    that keeps printing would hold it for ever.) Reads only what has arrived, a byte at a time
    (nothing after `ending` is taken from the next reader), so the port's own timeout, the
    board's once open_board hands it over, never holds it past `until`."""
    import time

    data = bytearray()
    while True:
        if ser.in_waiting:
            data += ser.read(1)
            if data.endswith(ending):
                break
        elif time.monotonic() >= until:
            break
        else:
            time.sleep(0.002)
    return bytes(data)

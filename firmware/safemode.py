"""Safe mode: decide at boot whether to start the role or only the REPL.

Safe mode when the boot button is held (GPIO0 low on ESP32 boards) or after a crash loop: the
boot counter in ``boot.count`` counts boots that did not reach a healthy run (``healthy()`` after
the role ran for a while sets it back to 0); more than MAX_CRASHES in a row means safe mode.
Entering safe mode clears the counter, so the next reset tries the role again.
"""

import os

BOOT_PIN = 0
MAX_CRASHES = 3
COUNT_FILE = "boot.count"

SAFE = False
REASON = ""


def _read_count():
    try:
        with open(COUNT_FILE) as f:
            return int(f.read().strip() or "0")
    except (OSError, ValueError):
        return 0


def _write_count(n):
    tmp = COUNT_FILE + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(n))
    try:
        os.rename(tmp, COUNT_FILE)
    except OSError:
        try:
            os.remove(COUNT_FILE)
        except OSError:
            pass
        os.rename(tmp, COUNT_FILE)


def button_held(pin=BOOT_PIN):
    try:
        import machine

        return machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP).value() == 0
    except (ImportError, AttributeError, ValueError):
        return False


def decide(pin=BOOT_PIN):
    """Set and return SAFE (and REASON); counts this boot."""
    global SAFE, REASON
    if button_held(pin):
        SAFE, REASON = True, "boot button held"
    else:
        n = _read_count() + 1
        if n > MAX_CRASHES:
            SAFE, REASON = True, "crash loop: %d boots without a healthy run" % (n - 1)
            n = 0
        _write_count(n)
    return SAFE


def healthy():
    """The role has run long enough: this boot was not part of a crash loop."""
    _write_count(0)

# Virtual-board stand-in for the ESP32's `machine` module: unique_id (from the board's MAC),
# reset/soft_reset, reset_cause, freq, idle/sleeps, a watchdog the host enforces, and pins as
# no-ops that log to the host (stderr), with input levels set by the host (VB_PINS, e.g. the
# boot button held: "0=0").

import os
import sys
import time

import _air

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

_cause = int(os.getenv("VB_CAUSE") or PWRON_RESET)
_levels = {}
for _item in (os.getenv("VB_PINS") or "").split(","):
    if "=" in _item:
        _k, _v = _item.split("=")
        _levels[int(_k)] = int(_v)
_ctl = None


def _control(msg):
    # fd 3 is the host's control pipe (see _vboard.py); the watchdog talks over it.
    global _ctl
    if _ctl is None:
        _ctl = open(3, "wb")
    _ctl.write(msg)


def _log(text):
    sys.stderr.write("[machine] " + text + "\n")


def unique_id():
    return _air.MAC


def reset():
    _log("reset()")
    sys.exit(11)  # EXIT_HARD_RESET: the host restarts the board as after a power cycle


def soft_reset():
    raise SystemExit


def reset_cause():
    return _cause


def freq(hz=None):
    if hz is None:
        return 160000000


def idle():
    time.sleep_ms(1)


def lightsleep(time_ms=None):
    time.sleep_ms(time_ms or 0)


def deepsleep(time_ms=None):
    _log("deepsleep(%r)" % (time_ms,))
    if time_ms:
        time.sleep_ms(time_ms)
    sys.exit(11)


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


def bootloader():
    _log("bootloader() ignored on a virtual board")


class WDT:
    """The host resets the board when feed() is not called within `timeout` ms."""

    def __init__(self, id=0, timeout=5000):
        if timeout < 1:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        _control(b"W%d\n" % timeout)

    def feed(self):
        _control(b"F")


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None, **kwargs):
        self.id = id
        self._value = _levels.get(id, 1 if pull == Pin.PULL_UP else 0)
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None, **kwargs):
        self.mode = mode
        if value is not None:
            self.value(value)

    def value(self, x=None):
        if x is None:
            return _levels.get(self.id, self._value)
        self._value = 1 if x else 0
        _log("pin %s = %d" % (self.id, self._value))

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=3, **kwargs):
        return None


class Signal:
    def __init__(self, pin, invert=False):
        self.pin = pin if isinstance(pin, Pin) else Pin(pin, Pin.OUT)
        self.invert = invert

    def value(self, x=None):
        if x is None:
            return self.pin.value() ^ self.invert
        self.pin.value(bool(x) ^ self.invert)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

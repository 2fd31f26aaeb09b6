# roam main.py: the version to run (slots.py: the root's, or one an over-the-air update staged,
# rolled back after failed boots), then the configured role, or safe mode (only the REPL, with a
# clear log line) when the boot button is held or after a crash loop (see safemode.py).
# This file and slots.py are the bootstrap: only `roam deploy` over USB changes them.
import gc

import slots

BOOT = slots.select()
slots.drop()  # boot-time code (heap on a board): freed before the role's big tables
del slots
gc.collect()
import safemode  # noqa: E402 - from the version slots.select() chose

if BOOT.get("rolled_back"):
    safemode.healthy()  # the old version gets its own chances
if safemode.decide():
    from fieldlog import setup

    setup.safe_mode(safemode.REASON)
else:
    # boot-time code too (heap on a board, for the whole run if kept): the driver imports it
    # again for the proof of health
    del safemode
    import sys

    sys.modules.pop("safemode", None)
    try:
        import driver

        driver.main(BOOT)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - a version that fails to start: a try is counted
        import time

        sys.print_exception(e)
        print('{"ev":"crash","error":%r,"at":"start"}' % repr(e))
        time.sleep_ms(1000)
        import machine

        machine.reset()

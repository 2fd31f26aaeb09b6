# roam main.py: start the configured role, or safe mode (only the REPL, with a clear log line)
# when the boot button is held or after a crash loop (see safemode.py).
import safemode

if safemode.decide():
    from fieldlog import setup

    setup.safe_mode(safemode.REASON)
else:
    import driver

    driver.main()

"""Where a crash was raised, for the ``crash`` line of the board's log (driver.serve): a field
board's log has no console to print the traceback on. Imported only when the board crashed.
"""

import sys


def where(e, frames=4):
    """Where ``e`` was raised: its innermost ``frames`` frames, "module:function", innermost
    first, or None when the traceback names none. (It allocates: the caller takes a
    MemoryError, the crash may have been one.)"""
    import io

    s = io.StringIO()
    sys.print_exception(e, s)
    out = []
    for line in s.getvalue().split("\n"):
        if line.startswith("  File "):  # '  File "mobility.cell", line 1, in _advertise'
            parts = line.split('"')
            fn = line.rsplit(" in ", 1)
            out.append("%s:%s" % (parts[1] if len(parts) > 2 else "?", fn[-1]))
    return " < ".join(reversed(out[-frames:])) if out else None

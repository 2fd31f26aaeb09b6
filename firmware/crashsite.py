"""Where a crash was raised, for the ``crash`` line of the board's log (driver.serve): a field
board's log has no console to print the traceback on. Imported only when the board crashed.
"""

import sys


def where(e, frames=4):
    """Where ``e`` was raised: its innermost ``frames`` frames, "module:function", innermost
    first (a field board's log has no console: the crash line says where). None when even that
    finds no heap (the crash may be a MemoryError)."""
    try:
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
    except MemoryError:
        return None

"""The virtual-time simulator (docs/SIMULATOR.md).

What it runs is chosen here, once per process, before any of its modules is imported: the
compiled build of the core and of the simulator's hot modules when there is one for the sources
as they are now, else the Python sources (hosttools/corebuild.py, ``select()``). CORE says
which: "compiled" or "python" (the same results; summary.json's ``core``).
"""

from hosttools import corebuild as _corebuild

CORE = _corebuild.select()

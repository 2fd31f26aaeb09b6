"""The virtual-time simulator (docs/SIMULATOR.md)."""

from hosttools import corebuild as _corebuild

# before any of its modules is imported: the compiled core and simulator modules, when built
# for the sources as they are (hosttools/corebuild.py), else the Python sources
CORE = _corebuild.activate()

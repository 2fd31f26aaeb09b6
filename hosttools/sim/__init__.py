"""The virtual-time simulator (docs/SIMULATOR.md)."""

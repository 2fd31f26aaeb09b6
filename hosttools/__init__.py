"""Host side of roam: the `roam` CLI and the libraries behind it (simulator, lab, tools)."""

__version__ = "0.1.0"

"""Where the files roam ships beside its code are: the firmware, the board types and the tests a
board runs, and where roam keeps what it downloads or builds.

``shipped("firmware")``, ``shipped("boards")``, ``shipped("tests")`` is the one way the host
finds them:

* from a source checkout (``make venv``'s editable install, or PYTHONPATH on the checkout) they
  are the checkout's own ``firmware/``, ``boards/`` and ``tests/``, edited in place;
* from an installed wheel (``pipx install``, ``pip install .``) they are package data in
  ``hosttools/_data/``: pyproject.toml maps the package ``hosttools._data`` onto the checkout's
  root and lists which of its files go into the wheel (``[tool.setuptools.package-data]``), so
  the repository keeps its layout and the wheel carries copies of the very files.

An installed package has ``_data/`` beside its modules and a checkout never does; that is the
whole test. ``checkout()`` is the checkout (None when installed), for what only a checkout has
(its ``.venv``, ``build/``, ``out/``).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
INSTALLED_DATA = PACKAGE_DIR / "_data"


@cache
def checkout() -> Path | None:
    """The source checkout this package runs from, or None for an installed wheel."""
    return None if INSTALLED_DATA.is_dir() else PACKAGE_DIR.parent


def shipped(*parts: str) -> Path:
    """A file or directory of the shipped data: ``shipped("boards", "esp32.toml")``."""
    root = checkout() or INSTALLED_DATA
    return root.joinpath(*parts)


def user_cache(*parts: str) -> Path:
    """A path in roam's user cache directory: $XDG_CACHE_HOME/roam (default ~/.cache/roam), as
    the XDG base directory specification says (a relative XDG_CACHE_HOME is to be ignored)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root.joinpath("roam", *parts)

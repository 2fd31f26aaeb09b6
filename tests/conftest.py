"""pytest set-up shared by every test directory.

* ``firmware/`` goes on ``sys.path`` so that tests import the firmware as on a board
  (``from mobility import ipv4``), the same way ``tests/run_mpy.py`` does on MicroPython.
* ``@pytest.mark.tshark`` (or the ``tshark`` fixture, which returns the executable's path) marks a
  test that needs Wireshark's ``tshark``. Without it such a test is skipped with a reason, except
  when ``ROAM_REQUIRE_TSHARK=1`` (set by ``.ci/run``): then it fails, so CI cannot pass silently.
"""

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parent.parent
FIRMWARE_DIR = REPO_DIR / "firmware"
# ROAM_TSHARK names another executable (or a missing one, to test the gate itself).
TSHARK = os.environ.get("ROAM_TSHARK", "/usr/bin/tshark")

if str(FIRMWARE_DIR) not in sys.path:
    sys.path.insert(0, str(FIRMWARE_DIR))

try:
    from mobility import reprs  # noqa: E402  (the messages' reprs: a board's core has none)
except ImportError:  # (a copy of this file elsewhere: tests/host/test_tshark_gate.py)
    pass
else:
    reprs.install()


def tshark_path() -> str | None:
    """The tshark executable, or None when it is not installed."""
    if os.access(TSHARK, os.X_OK):
        return TSHARK
    if "ROAM_TSHARK" in os.environ:
        return None
    return shutil.which("tshark")


def tshark_required() -> bool:
    return os.environ.get("ROAM_REQUIRE_TSHARK") == "1"


def _tshark_or_skip() -> str:
    path = tshark_path()
    if path is None:
        reason = "tshark is not installed (apt-get install tshark, or run .ci/run)"
        if tshark_required():
            pytest.fail("ROAM_REQUIRE_TSHARK=1 but " + reason, pytrace=False)
        pytest.skip(reason)
    return path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tshark: needs tshark; skipped without it unless ROAM_REQUIRE_TSHARK=1"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("tshark") is not None:
        _tshark_or_skip()


@pytest.fixture
def tshark() -> str:
    """Path of the tshark executable (skips, or fails in CI, when it is missing)."""
    return _tshark_or_skip()

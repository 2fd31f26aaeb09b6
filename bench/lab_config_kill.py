"""Pull the plug on a virtual board at random moments while it rewrites its config (issue 6).

    python bench/lab_config_kill.py [--rounds 100]

Every round: the board runs a loop of config.save() calls, is killed at a random moment, then
boots the real firmware; it must come up in its role (or in safe mode with a clear line) with a
valid config. Reports rounds done, boots into the role and into safe mode.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import figure, write_result  # noqa: E402
from tests.host.test_vboard_firmware import kill_during_config_writes  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    a = ap.parse_args()
    out = kill_during_config_writes(Path(tempfile.mkdtemp(prefix="roam-kill-")), a.rounds)
    write_result(
        "lab_config_kill",
        {
            "rounds": figure(out["rounds"], "rounds"),
            "booted_role": figure(out["role"], "boots"),
            "booted_safe_mode": figure(out["safe_mode"], "boots"),
            "corrupt_configs": figure(out["rounds"] - out["role"] - out["safe_mode"], "configs"),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The tshark gate of tests/conftest.py: skip without tshark, fail instead in CI."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"

NEEDS_TSHARK = """
import pytest

@pytest.mark.tshark
def test_marked():
    pass

def test_fixture(tshark):
    assert tshark
"""


def run_pytest(tmp_path, **env):
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_needs_tshark.py").write_text(NEEDS_TSHARK)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ROAM_")}
    environment.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


def test_missing_tshark_skips_with_reason(tmp_path):
    status, output = run_pytest(tmp_path, ROAM_TSHARK=str(tmp_path / "no-tshark"))
    assert status == 0, output
    assert "2 skipped" in output
    assert "tshark is not installed" in output


def test_missing_tshark_fails_when_required(tmp_path):
    status, output = run_pytest(
        tmp_path, ROAM_TSHARK=str(tmp_path / "no-tshark"), ROAM_REQUIRE_TSHARK="1"
    )
    assert status == 1, output
    assert "2 failed" in output or "2 errors" in output, output
    assert "ROAM_REQUIRE_TSHARK=1 but tshark is not installed" in output


def test_present_tshark_runs(tmp_path):
    fake = tmp_path / "tshark"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    status, output = run_pytest(tmp_path, ROAM_TSHARK=str(fake), ROAM_REQUIRE_TSHARK="1")
    assert status == 0, output
    assert "2 passed" in output

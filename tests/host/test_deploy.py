"""`roam deploy` on a virtual board: .mpy when the board takes it, only changed files the second
time, the manifest on the board, soft reset; errors as one line."""

import json
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from vbhelp import virtual_board

from hosttools import deploy
from hosttools.cli import main


def test_deploy_then_only_changes(tmp_path):
    """A board without a romfs partition (micropython.org's partition table): the modules go
    to its filesystem."""
    src = tmp_path / "fw"
    shutil.copytree(deploy.FIRMWARE_DIR, src, ignore=shutil.ignore_patterns("__pycache__"))
    with virtual_board(tmp_path / "root", romfs_kb=0) as vb:
        r1 = deploy.deploy_board(vb.pty, src)
        n_files = len(deploy.local_files(src))
        assert r1["mpy"] is True and r1["sent"] == n_files and r1["unchanged"] == 0
        root = tmp_path / "root"
        assert (root / "main.py").is_file() and (root / "boot.py").is_file()
        assert (root / "mobility" / "ipv4.mpy").is_file() and not (root / "driver.py").exists()
        assert not (root / "manifest.py").exists() and not (root / "manifest.mpy").exists()
        manifest = json.loads((root / ".roam_manifest.json").read_text())
        assert len(manifest) == n_files
        assert not list(root.rglob("*.tmp"))
        # Change one module, remove another: one file sent, one removed.
        (src / "logsink.py").write_text((src / "logsink.py").read_text() + "\nX_CHANGED = 1\n")
        (src / "link_wifi.py").unlink()
        r2 = deploy.deploy_board(vb.pty, src)
        assert (r2["sent"], r2["removed"], r2["unchanged"]) == (1, 1, n_files - 2)
        assert not (root / "link_wifi.mpy").exists()
        # Source mode replaces every .mpy by its .py.
        r3 = deploy.deploy_board(vb.pty, src, mpy="never")
        # boot.py and main.py are source either way: unchanged.
        assert r3["mpy"] is False and r3["sent"] == n_files - 1 - 2
        assert (root / "driver.py").is_file() and not (root / "driver.mpy").exists()


def test_deploy_cli_missing_port_and_busy(tmp_path):
    r = CliRunner().invoke(main, ["deploy", "--port", str(tmp_path / "ttyX")])
    assert r.exit_code == 1 and "does not exist" in r.output
    import serial

    with virtual_board(tmp_path / "root") as vb:
        holder = serial.Serial(vb.pty, exclusive=True)
        try:
            r = CliRunner().invoke(main, ["deploy", "--port", vb.pty])
        finally:
            holder.close()
        assert r.exit_code == 1 and "is busy" in r.output
        assert not (tmp_path / "root" / ".roam_manifest.json").exists()
        r = CliRunner().invoke(main, ["deploy", "--port", vb.pty, "--no-reset"])
        assert r.exit_code == 0, r.output
        assert "sent" in r.output and "as .mpy" in r.output


def test_entry_points_last_and_a_lost_board_said_in_words(tmp_path, capsys):
    """Issue 18 item 5: boot.py and main.py are written after every module they import (a
    deploy cut off mid-way left a main.py importing a 'safemode' not there yet), and a board
    that goes away mid-way is one readable line, not pyserial's SerialException."""
    import serial

    from hosttools.errors import RoamError
    from hosttools.targets import BoardProgress, Target, run_parallel

    sent = []

    class Rec(BoardProgress):
        def __init__(self):
            super().__init__(lambda f, t: sent.append(t[8:]) if t.startswith("sending ") else None)

    with virtual_board(tmp_path / "root", romfs_kb=0) as vb:
        deploy.deploy_board(vb.pty, progress=Rec(), reset=False)
    assert len(sent) == len(deploy.local_files()) > 10
    assert sorted(sent[-2:]) == ["boot.py", "main.py"], sent[-5:]

    def job(t, progress):
        progress.update(0.5, "sending driver.mpy")
        raise serial.SerialException(
            "device reports readiness to read but returned no data (device disconnected or "
            "multiple access on port?)"
        )

    targets = [Target("/dev/ttyACM%d" % i, None) for i in range(2)]
    with pytest.raises(RoamError) as exc:
        run_parallel("deploy", targets, job, quiet=True)
    assert str(exc.value) == "deploy failed on 2 of 2 boards (ttyACM0, ttyACM1)"
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(" went away during deploy " in ln for ln in lines), lines
    with pytest.raises(RoamError) as exc:
        run_parallel("deploy", targets[:1], job, quiet=True)
    msg = str(exc.value)
    assert msg.startswith(
        "the board on /dev/ttyACM0 went away during deploy (at: sending driver.mpy): unplugged"
    ), msg
    assert "SerialException" not in msg and "readiness" not in msg


def test_deploy_and_provision_reset_the_crash_counter(tmp_path):
    """Their resets are not crashes (firmware/safemode.py counts boots without a healthy run):
    a board reset by deploy, provision and lab start came up in safe mode."""
    from vbhelp import write_fleet, write_keys

    from hosttools import provision
    from hosttools.fleet import board_config, load_fleet, load_keys

    root = tmp_path / "root"
    with virtual_board(root) as vb:
        (root / "boot.count").write_text("3")
        deploy.deploy_board(vb.pty, reset=False)
        assert not (root / "boot.count").exists()
        (root / "boot.count").write_text("3")
        fleet = load_fleet(write_fleet(tmp_path / "fleet.toml", vb.pty))
        keys = load_keys(write_keys(tmp_path / "keys.toml"), fleet)
        cfg = provision.validated(board_config(fleet.by_name("fa1"), keys, None), "fa1")
        provision.provision_board(vb.pty, cfg)
        assert not (root / "boot.count").exists()


def test_firmware_goes_without_line_numbers_tests_keep_theirs(tmp_path):
    """On a board without a romfs a module's code lives in the heap, and its line-number table
    with it (3-4 KB of an agent's): the firmware's .mpy leave them out, a traceback names the
    module and the function (under the module's name, which the board interns anyway, not one
    more name for the file). `roam test`'s modules keep theirs (a failure points at its line)."""
    from bench.common import MICROPYTHON

    src = tmp_path / "src" / "failing.py"
    src.parent.mkdir()
    src.write_text(
        "def outer():\n    x = 1\n    return inner(x)\n\n\ndef inner(x):\n    raise ValueError(x)\n"
    )
    shown = {}
    for lines in (False, True):
        d = tmp_path / ("lines" if lines else "bare")
        d.mkdir()
        (d / "failing.mpy").write_bytes(deploy.compile_mpy(src, "failing.py", lines=lines))
        done = subprocess.run(
            [MICROPYTHON, "-c", "import failing; failing.outer()"],
            cwd=d,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "ValueError: 1" in done.stdout + done.stderr
        shown[lines] = done.stdout + done.stderr
    assert 'File "failing.py", line 7, in inner' in shown[True]
    assert 'File "failing.py", line 3, in outer' in shown[True]
    assert "line 7" not in shown[False] and "line 3" not in shown[False]
    assert "in inner" in shown[False] and "in outer" in shown[False]
    assert 'File "failing", line 1, in inner' in shown[False]  # (no line numbers: 1)

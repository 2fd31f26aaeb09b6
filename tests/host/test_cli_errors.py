"""Every bad input of the board commands: one line `roam: error: ...` on stderr, exit 2, and
nothing written (no log directory, no config on the board, no files on disk)."""

import os
import subprocess
import sys
import tty
from pathlib import Path

import pytest
import serial
from vbhelp import virtual_board, write_boards, write_fleet, write_keys

ROAM = str(Path(sys.executable).parent / "roam")


def roam(*args, cwd, env=None):
    e = dict(os.environ, **(env or {}))
    done = subprocess.run([ROAM, *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def one_line_error(code, err, expect):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("roam: error: "), err
    assert expect in err, err


@pytest.fixture
def env(tmp_path):
    return {
        "ROAM_BOARDS_DIR": str(write_boards(tmp_path / "boards")),
        "ROAM_BOARD_TIMEOUT": "1.5",
        "ROAM_FIRMWARE_CACHE": str(tmp_path / "cache"),
    }


@pytest.mark.parametrize("cmd", ["deploy", "provision", "logs", "test", "flash"])
def test_no_fleet_and_no_port(tmp_path, env, cmd):
    code, _, err = roam(cmd, cwd=tmp_path, env=env)
    one_line_error(code, err, "no fleet file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boards"]


def test_malformed_fleet_and_keys(tmp_path, env):
    (tmp_path / "fleet.toml").write_text("[[board]\nname = 'x'\n")
    for cmd in ("deploy", "logs", "provision", "flash", "test"):
        code, _, err = roam(cmd, cwd=tmp_path, env=env)
        one_line_error(code, err, "fleet file fleet.toml is not valid TOML")
    write_fleet(tmp_path / "fleet.toml", "/dev/null")
    (tmp_path / "keys.json").write_text('{"default": {"cell": "00112233445566778899aabbccddeeff"')
    code, _, err = roam("provision", "--keys", "keys.json", cwd=tmp_path, env=env)
    one_line_error(code, err, "keys file keys.json is not valid JSON")
    assert "00112233" not in err


def test_unknown_board_type_and_missing_entry(tmp_path, env):
    write_fleet(tmp_path / "fleet.toml", "/dev/ttyUSB9", board="esp8266")
    code, _, err = roam("deploy", cwd=tmp_path, env=env)
    one_line_error(code, err, "unknown board type 'esp8266' (known: esp32)")
    write_fleet(tmp_path / "fleet.toml", "/dev/ttyUSB9")
    code, _, err = roam("deploy", "--board", "nobody", cwd=tmp_path, env=env)
    one_line_error(code, err, "no board named 'nobody' in the fleet")
    write_keys(tmp_path / "keys.toml")
    code, _, err = roam("provision", "--port", "/dev/null", cwd=tmp_path, env=env)
    one_line_error(code, err, "port /dev/null has no fleet entry")


def test_missing_port(tmp_path, env):
    write_fleet(tmp_path / "fleet.toml", str(tmp_path / "ttyGONE"))
    write_keys(tmp_path / "keys.toml")
    for cmd in ("deploy", "provision", "logs", "test"):
        code, _, err = roam(cmd, cwd=tmp_path, env=env)
        one_line_error(code, err, "port %s does not exist" % (tmp_path / "ttyGONE"))
    assert not (tmp_path / "out").exists()


def test_busy_port_and_board_not_answering(tmp_path, env):
    m, s = os.openpty()
    tty.setraw(s)
    port = os.ttyname(s)
    try:
        write_fleet(tmp_path / "fleet.toml", port)
        write_keys(tmp_path / "keys.toml")
        for cmd in ("deploy", "provision", "test"):
            code, _, err = roam(cmd, cwd=tmp_path, env=env)
            one_line_error(code, err, "board on %s does not answer" % port)
        holder = serial.Serial(port, exclusive=True)
        try:
            for cmd in ("deploy", "provision", "test"):
                code, _, err = roam(cmd, cwd=tmp_path, env=env)
                one_line_error(code, err, "port %s is busy" % port)
        finally:
            holder.close()
    finally:
        os.close(m)
        os.close(s)


def test_fleet_with_one_bad_board_reports_each(tmp_path, env):
    """Two boards, one gone: the good one is deployed, the command fails naming the bad one."""
    with virtual_board(tmp_path / "root") as vb:
        fleet = tmp_path / "fleet.toml"
        fleet.write_text(
            '[defaults]\nboard = "esp32"\n'
            '[[board]]\nname = "good"\nport = "%s"\nrole = "agent"\nnode_id = 1\n'
            'address = "10.0.0.1"\n'
            '[[board]]\nname = "gone"\nport = "%s"\nrole = "agent"\nnode_id = 2\n'
            'address = "10.0.0.2"\n' % (vb.pty, tmp_path / "ttyGONE")
        )
        code, out, err = roam("deploy", "--no-reset", cwd=tmp_path, env=env)
    assert code == 2
    assert err.splitlines()[-1] == "roam: error: deploy failed on 1 of 2 boards (gone)"
    assert (tmp_path / "root" / ".roam_manifest.json").is_file()

"""Every bad input of the board commands: one line `roam: error: ...` on stderr, exit 2 for a
wrong command line and 1 for a failure (tests/host/test_exit_codes.py), and nothing written (no
log directory, no config on the board, no files on disk)."""

import os
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest
import serial
from vbhelp import virtual_board, write_boards, write_fleet, write_keys

from hosttools import boardio

ROAM = str(Path(sys.executable).parent / "roam")


def roam(*args, cwd, env=None):
    e = dict(os.environ, **(env or {}))
    done = subprocess.run([ROAM, *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def roam_at_once(runs, env=None):
    """Several roam commands at the same time: [(cwd, args...)] -> [(code, out, err)]."""
    e = dict(os.environ, **(env or {}))
    procs = [
        subprocess.Popen(
            [ROAM, *args], cwd=cwd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for cwd, *args in runs
    ]
    done = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        done.append((p.returncode, out, err))
    return done


def one_line_error(code, out, err, expect, status=1):
    assert code == status, err
    assert err.count("\n") == 1 and err.startswith("roam: error: "), err
    assert expect in err, err


@pytest.fixture
def env(tmp_path):
    return {
        "ROAM_BOARDS_DIR": str(write_boards(tmp_path / "boards")),
        "ROAM_FIRMWARE_CACHE": str(tmp_path / "cache"),
    }


@pytest.mark.parametrize("cmd", ["deploy", "provision", "logs", "test", "flash"])
def test_no_fleet_and_no_port(tmp_path, env, cmd):
    code, out, err = roam(cmd, cwd=tmp_path, env=env)
    one_line_error(code, out, err, "no fleet file", 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boards"]


def test_malformed_fleet_and_keys(tmp_path, env):
    (tmp_path / "fleet.toml").write_text("[[board]\nname = 'x'\n")
    cmds = ("deploy", "logs", "provision", "flash", "test")
    for code, out, err in roam_at_once([(tmp_path, cmd) for cmd in cmds], env):
        one_line_error(code, out, err, "fleet file fleet.toml is not valid TOML")
    write_fleet(tmp_path / "fleet.toml", "/dev/null")
    (tmp_path / "keys.json").write_text('{"default": {"cell": "00112233445566778899aabbccddeeff"')
    code, out, err = roam("provision", "--keys", "keys.json", cwd=tmp_path, env=env)
    one_line_error(code, out, err, "keys file keys.json is not valid JSON")
    assert "00112233" not in err


def test_unknown_board_type_and_missing_entry(tmp_path, env):
    write_fleet(tmp_path / "fleet.toml", "/dev/ttyUSB9", board="esp8266")
    code, out, err = roam("deploy", cwd=tmp_path, env=env)
    one_line_error(code, out, err, "unknown board type 'esp8266' (known: esp32)")
    write_fleet(tmp_path / "fleet.toml", "/dev/ttyUSB9")
    code, out, err = roam("deploy", "--board", "nobody", cwd=tmp_path, env=env)
    one_line_error(code, out, err, "no board named 'nobody' in the fleet", 2)
    write_keys(tmp_path / "keys.toml")
    code, out, err = roam("provision", "--port", "/dev/null", cwd=tmp_path, env=env)
    one_line_error(code, out, err, "port /dev/null has no fleet entry")


def test_missing_port(tmp_path, env):
    write_fleet(tmp_path / "fleet.toml", str(tmp_path / "ttyGONE"))
    write_keys(tmp_path / "keys.toml")
    cmds = ("deploy", "provision", "logs", "test")
    for code, out, err in roam_at_once([(tmp_path, cmd) for cmd in cmds], env):
        one_line_error(code, out, err, "port %s does not exist" % (tmp_path / "ttyGONE"))
    assert not (tmp_path / "out").exists()


def test_busy_port_and_board_not_answering(tmp_path, env):
    """A port with nothing behind it (a pty nobody serves) is told at once, whatever the board
    timeout (here 60 s): not one byte comes back to Ctrl-C / Ctrl-A within boardio.PROBE_S.
    Each command on its own port, all at once; then each port held by another program."""
    # (a board timeout far above the probe: on a busy machine three commands take seconds to
    # start, and what is shown is that none waits for the board timeout)
    env = dict(env, ROAM_BOARD_TIMEOUT="60")
    cmds = ("deploy", "provision", "test")
    ptys = [os.openpty() for _ in cmds]
    try:
        ports = []
        for cmd, (_m, s) in zip(cmds, ptys, strict=True):
            tty.setraw(s)
            ports.append(os.ttyname(s))
            (tmp_path / cmd).mkdir()
            write_fleet(tmp_path / cmd / "fleet.toml", ports[-1])
            write_keys(tmp_path / cmd / "keys.toml")
        t0 = time.monotonic()
        done = roam_at_once([(tmp_path / cmd, cmd) for cmd in cmds], env)
        took = time.monotonic() - t0
        for (code, out, err), port in zip(done, ports, strict=True):
            one_line_error(code, out, err, "board on %s does not answer (nothing came back" % port)
        assert took < boardio.PROBE_S + 25, took  # PROBE_S and the commands' start, not 60 s
        for cmd in cmds:  # nothing written on disk
            assert sorted(p.name for p in (tmp_path / cmd).iterdir()) == ["fleet.toml", "keys.toml"]
        holders = [serial.Serial(port, exclusive=True) for port in ports]
        try:
            # roam logs too: a port busy at the start is an error, not a gap to wait out
            runs = [(tmp_path / cmd, cmd) for cmd in cmds] + [(tmp_path / "deploy", "logs")]
            done = roam_at_once(runs, env)
        finally:
            for h in holders:
                h.close()
        for (code, out, err), port in zip(done, ports + ports[:1], strict=True):
            one_line_error(code, out, err, "port %s is busy" % port)
        assert not (tmp_path / "deploy" / "out").exists()  # no log directory
    finally:
        for m, s in ptys:
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
    assert code == 1
    assert err.splitlines()[-1] == "roam: error: deploy failed on 1 of 2 boards (gone)"
    assert (tmp_path / "root" / ".roam_manifest.json").is_file()


def test_a_board_that_prints_is_waited_for(tmp_path):
    """The quick verdict is only for a silent port: a board that prints but ignores Ctrl-C for
    longer than boardio.PROBE_S is waited for, and reached once its program ends."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.py").write_text(
        "import time\n"
        "t = time.time()\n"
        "while time.time() - t < %r:\n"
        "    try:\n"
        "        print('busy')\n"
        "        time.sleep(0.2)\n"
        "    except KeyboardInterrupt:\n"
        "        pass\n" % (boardio.PROBE_S + 0.5)
    )
    with virtual_board(root) as vb:
        t0 = time.monotonic()
        with boardio.open_board(vb.pty, timeout=boardio.PROBE_S + 8) as t:
            took = time.monotonic() - t0
            assert boardio.board_eval(t, "1 + 1", vb.pty) == "2"
    assert boardio.PROBE_S < took < boardio.PROBE_S + 8, took
    # and one that never gives its REPL gets the full timeout and says it prints
    (root / "main.py").write_text(
        "while True:\n    try:\n        print('busy')\n        import time\n"
        "        time.sleep(0.2)\n    except KeyboardInterrupt:\n        pass\n"
    )
    with virtual_board(root) as vb:
        t0 = time.monotonic()
        with pytest.raises(boardio.RoamError, match="it prints, but no MicroPython REPL"):
            with boardio.open_board(vb.pty, timeout=1):
                pass
        assert 1 <= time.monotonic() - t0 < 4

"""`roam provision` on a virtual board: config.json from fleet + keys, validated with the
firmware's own rules, written atomically, read back; keys never printed; errors leave the board's
config untouched."""

import json

from click.testing import CliRunner
from vbhelp import virtual_board, write_boards, write_fleet, write_keys

from hosttools.cli import main


def run(*args, env=None):
    r = CliRunner().invoke(main, list(args), env=env)
    return r.exit_code, r.output


def test_provision_writes_and_reads_back(tmp_path):
    env = {"ROAM_BOARDS_DIR": str(write_boards(tmp_path / "boards"))}
    keys = write_keys(tmp_path / "keys.toml", cell="ab" * 16)
    with virtual_board(tmp_path / "root") as vb:
        fleet = write_fleet(tmp_path / "fleet.toml", vb.pty)
        code, out = run("provision", "--fleet", str(fleet), "--keys", str(keys), env=env)
        assert code == 0, out
        assert "ab" * 8 not in out and "fa1: config.json written (agent, node 1" in out
        cfg = json.loads((tmp_path / "root" / "config.json").read_text())
        assert cfg["role"] == "agent" and cfg["node_id"] == 1 and cfg["address"] == "10.0.0.1"
        assert cfg["keys"] == {"256": "ab" * 16, "512": "22" * 16} and cfg["channel"] == 1
        assert "port" not in cfg and "board" not in cfg
        assert not (tmp_path / "root" / "config.json.tmp").exists()


def test_bad_input_leaves_the_board_untouched(tmp_path):
    env = {"ROAM_BOARDS_DIR": str(write_boards(tmp_path / "boards"))}
    keys = write_keys(tmp_path / "keys.toml")
    with virtual_board(tmp_path / "root") as vb:
        (tmp_path / "root" / "config.json").write_text('{"old": true}')
        # A config the firmware would refuse (channel 15): refused on the host.
        fleet = write_fleet(tmp_path / "f1.toml", vb.pty, extra="")
        fleet.write_text(fleet.read_text().replace("channel = 1", "channel = 15"))
        code, out = run("provision", "--fleet", str(fleet), "--keys", str(keys), env=env)
        assert code == 1 and "channel must be 1..14" in out and out.count("\n") == 1
        # Malformed keys file: one line, no value echoed.
        bad = tmp_path / "bad.toml"
        bad.write_text('[default]\ncell = "zz%s"\n' % ("9" * 30))
        fleet = write_fleet(tmp_path / "f2.toml", vb.pty)
        code, out = run("provision", "--fleet", str(fleet), "--keys", str(bad), env=env)
        assert code == 1 and "cell must be 16..64 bytes of hex" in out and "9999" not in out
        # A port with no fleet entry.
        code, out = run("provision", "--port", vb.pty, "--keys", str(keys), env=env)
        assert code == 1 and "has no fleet entry" in out
        assert json.loads((tmp_path / "root" / "config.json").read_text()) == {"old": True}


def test_board_not_answering(tmp_path):
    """A pty with nothing behind it: the board does not answer."""
    import os
    import tty

    env = {"ROAM_BOARDS_DIR": str(write_boards(tmp_path / "boards")), "ROAM_BOARD_TIMEOUT": "1.5"}
    m, s = os.openpty()
    tty.setraw(s)
    try:
        fleet = write_fleet(tmp_path / "fleet.toml", os.ttyname(s))
        keys = write_keys(tmp_path / "keys.toml")
        code, out = run("provision", "--fleet", str(fleet), "--keys", str(keys), env=env)
    finally:
        os.close(m)
        os.close(s)
    assert code == 1 and "does not answer" in out


def test_the_collector_comes_from_the_fleet_or_the_option_and_auto_finds_the_laptop(tmp_path):
    from hosttools.errors import RoamError
    from hosttools.fleet import load_fleet
    from hosttools.provision import collector_address

    fleet_path = tmp_path / "fleet.toml"
    fleet_path.write_text(
        '[field]\ncollector = "auto"\n\n[[board]]\nname = "a1"\nport = "/dev/null"\n'
        'board = "esp32"\nrole = "agent"\nnode_id = 1\naddress = "10.0.0.1"\n'
        'wifi = { ssid = "ap", ip = "192.168.4.11" }\n'
    )
    fleet = load_fleet(fleet_path)
    asked = []

    def probe(toward):
        asked.append(toward)
        return "192.168.4.2"

    assert collector_address(None, fleet, probe) == "192.168.4.2:4345"
    assert asked == ["192.168.4.11"]  # the way to a backbone board
    assert collector_address("10.1.2.3", fleet) == "10.1.2.3:4345"
    assert collector_address("10.1.2.3:9000", fleet) == "10.1.2.3:9000"
    try:
        collector_address("nowhere", fleet)
    except RoamError as e:
        assert "not an IPv4 address" in str(e)
    else:
        raise AssertionError("a bad collector was taken")

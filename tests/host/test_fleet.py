"""Fleet and keys files: what they give, one clear line per problem, keys never shown."""

from pathlib import Path

import pytest
from vbhelp import write_boards

from hosttools.errors import RoamError
from hosttools.fleet import board_config, load_fleet, load_keys, redact

FLEET = """
[defaults]
board = "esp32"
channel = 6

[[board]]
name = "fa1"
serial = "5C8A1B2F"
role = "agent"
node_id = 1
address = "10.0.0.1"

[[board]]
name = "mn1"
port = "/dev/ttyUSB3"
role = "mobile"
node_id = 9
address = "10.0.0.9"
"""


@pytest.fixture(autouse=True)
def boards(tmp_path, monkeypatch):
    monkeypatch.setenv("ROAM_BOARDS_DIR", str(write_boards(tmp_path / "boards")))


def test_fleet_and_keys_make_the_board_config(tmp_path):
    (tmp_path / "f.toml").write_text(FLEET)
    fleet = load_fleet(tmp_path / "f.toml")
    assert [b.name for b in fleet] == ["fa1", "mn1"]
    assert fleet.match(None, "5c8a1b2f").name == "fa1"
    assert fleet.match("/dev/ttyUSB3", None).name == "mn1"
    assert fleet.lookup("9").name == "mn1"
    (tmp_path / "k.json").write_text(
        '{"default": {"cell": "%s"}, "node": {"mn1": {"home": "%s"}}}' % ("aa" * 16, "bb" * 32)
    )
    keys = load_keys(tmp_path / "k.json", fleet)
    cfg = board_config(fleet.by_name("mn1"), keys)
    assert cfg == {
        "name": "mn1",
        "role": "mobile",
        "node_id": 9,
        "address": "10.0.0.9",
        "channel": 6,
        "keys": {"256": "aa" * 16, str(0x10000 + 9): "bb" * 32},
    }
    assert "aa" * 16 not in repr(keys) + str(keys) + repr(keys.for_board("mn1"))
    assert redact(cfg)["keys"] == {"256": "<redacted>", "65545": "<redacted>"}


def test_binding_secret_gives_agents_the_secret_and_each_node_only_its_own_key(tmp_path):
    from hosttools import firmware

    auth = firmware.core("auth")
    (tmp_path / "f.toml").write_text(FLEET)
    fleet = load_fleet(tmp_path / "f.toml")
    secret = "cc" * 16
    (tmp_path / "k.json").write_text(
        '{"default": {"cell": "%s", "binding": "%s"}}' % ("aa" * 16, secret)
    )
    keys = load_keys(tmp_path / "k.json", fleet)
    agent = board_config(fleet.by_name("fa1"), keys)["keys"]
    mobile = board_config(fleet.by_name("mn1"), keys)["keys"]
    assert agent == {"256": "aa" * 16, str(auth.SPI_NODE_SECRET): secret}
    k9 = auth.node_key(bytes.fromhex(secret), bytes((10, 0, 0, 9))).hex()
    assert mobile == {"256": "aa" * 16, str(auth.SPI_NODE): k9}
    assert secret not in mobile.values()


@pytest.mark.parametrize(
    "edit,message",
    [
        (
            lambda s: s.replace("node_id = 9", "node_id = 1"),
            "node_id 1 is also used by board 'fa1'",
        ),
        (lambda s: s.replace('"10.0.0.9"', '"10.0.0.999"'), "'address' must be an IPv4 address"),
        (lambda s: s.replace('role = "mobile"', 'role = "boss"'), "'role' must be one of"),
        (lambda s: s.replace('board = "esp32"', 'board = "esp99"'), "unknown board type 'esp99'"),
        (
            lambda s: s + "\n[[board]]\nname = 'x'\n",
            "3 problems: (1) board 'x': 'role' must be one of",
        ),
        (lambda s: s.replace("[[board]]", "[[boards]]"), "unknown section 'boards' (did you mean"),
        (lambda s: s.replace('name = "fa1"', "name = fa1"), "is not valid TOML"),
    ],
)
def test_fleet_problems_are_one_line(tmp_path, edit, message):
    (tmp_path / "f.toml").write_text(edit(FLEET))
    with pytest.raises(RoamError) as exc:
        load_fleet(tmp_path / "f.toml")
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert str(tmp_path / "f.toml") in str(exc.value)


@pytest.mark.parametrize(
    "text,suffix,message",
    [
        ('[default]\ncell = "%s"\n' % ("a" * 31), ".toml", "cell must be 16..64 bytes of hex"),
        ('[default]\ncell = "%s' % ("a" * 32), ".toml", "is not valid TOML"),
        ('{"default": {"cell": "%s"' % ("a" * 32), ".json", "is not valid JSON"),
        ('[default]\nwifi = "%s"\n' % ("a" * 32), ".toml", "unknown key name 'wifi'"),
        ('[node.ghost]\ncell = "%s"\n' % ("a" * 32), ".toml", "ghost, which is not in the fleet"),
        ("[secrets]\n", ".toml", "unknown section(s) secrets"),
    ],
)
def test_key_problems_never_show_values(tmp_path, text, suffix, message):
    (tmp_path / "f.toml").write_text(FLEET)
    p = tmp_path / ("k" + suffix)
    p.write_text(text)
    with pytest.raises(RoamError) as exc:
        load_keys(p, load_fleet(tmp_path / "f.toml"))
    assert message in str(exc.value)
    assert "aaaa" not in str(exc.value)


def test_missing_files(tmp_path):
    with pytest.raises(RoamError, match="fleet file .* not found"):
        load_fleet(tmp_path / "nope.toml")
    with pytest.raises(RoamError, match="keys file .* not found"):
        load_keys(tmp_path / "nope.json")


def test_every_problem_at_once_and_unknown_keys_refused(tmp_path):
    """Issue 18: a misspelt key (chanel = 3) went onto the board as it was; now it is refused
    with the key it was meant to be, and every problem of the file is listed in one go."""
    text = FLEET.replace('name = "mn1"', 'name = "mn1"\nchanel = 3\nadv_intervall_ms = 100', 1)
    text = text.replace("node_id = 9", "node_id = 1").replace(
        "[defaults]", "[defaults]\nchanell = 2"
    )
    text += '\n[field]\ncolector = "auto"\n'
    (tmp_path / "f.toml").write_text(text)
    with pytest.raises(RoamError) as exc:
        load_fleet(tmp_path / "f.toml")
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("%s: 5 problems: (1) " % (tmp_path / "f.toml")), msg
    for said in (
        "[field]: unknown key 'colector' (did you mean 'collector'?)",
        "[defaults]: unknown key 'chanell' (did you mean 'channel'?)",
        "board 'mn1': unknown key 'adv_intervall_ms' (did you mean 'adv_interval_ms'?)",
        "board 'mn1': unknown key 'chanel' (did you mean 'channel'?)",
        "board 'mn1': node_id 1 is also used by board 'fa1'",
    ):
        assert said in msg, (said, msg)


def test_every_key_the_lab_and_the_guide_write_is_known(tmp_path, monkeypatch):
    """The keys the firmware reads (found in its sources) cover every key a fleet file the lab
    writes holds, for every built-in scenario the lab runs, and the guide's example."""
    from hosttools import lab
    from hosttools.fleet import entry_keys
    from hosttools.sim import scenario as sc_mod

    for name in sc_mod.builtin_names():
        try:
            configs = lab.build_configs(lab.load_scenario(name, None, 6.0), 1, 6.0)
        except RoamError:
            continue  # a scenario only the simulator runs (attackers, groups)
        for c in configs:
            assert set(c.config) <= entry_keys(), (name, c.name, set(c.config) - entry_keys())
    guide = (Path(__file__).resolve().parents[2] / "docs" / "USER_GUIDE.md").read_text()
    example = guide.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "f.toml").write_text(example)
    monkeypatch.delenv("ROAM_BOARDS_DIR")  # the checkout's boards/: esp32 and esp32s3
    assert [b.name for b in load_fleet(tmp_path / "f.toml")] == ["fa1", "mn1"]


def test_the_schema_is_json_schema_and_every_problem_of_a_board_is_listed(tmp_path):
    """The fleet's rules are a JSON Schema (hosttools/fleet_schema.py) that jsonschema accepts
    as one, and a board wrong in every host key gets a line for each, in one error."""
    from jsonschema import Draft202012Validator

    from hosttools import fleet_schema
    from hosttools.fleet import entry_keys

    Draft202012Validator.check_schema(fleet_schema.document(entry_keys()))
    Draft202012Validator.check_schema(fleet_schema.entry(["esp32"], ["agent", "mobile"]))
    (tmp_path / "f.toml").write_text(
        '[[board]]\nboard = "esp32"\nrole = "boss"\nnode_id = 2.0\naddress = "10.0.0.999"\n'
        'serial = ""\npos = [1, "x"]\n\n[field]\nport = 0\nair = "10.0.0.1"\n'
    )
    with pytest.raises(RoamError) as exc:
        load_fleet(tmp_path / "f.toml")
    msg = str(exc.value)
    assert "\n" not in msg and ": 8 problems: " in msg, msg
    for said in (
        "[field] air: '10.0.0.1' needs a port",
        "[field] port must be 1..65535, got 0",
        "board #1: 'name' must be 1-32 letters",
        "board #1: 'role' must be one of agent, mobile, host, home, router, got 'boss'",
        "board #1: 'node_id' must be an integer 1..65535, got 2.0",  # TOML's float is no id
        "board #1: 'address' must be an IPv4 address such as 10.0.0.1, got '10.0.0.999'",
        "board #1: 'serial' must be a non-empty string",
        "board #1: 'pos' must be [x, y] in metres, got [1, 'x']",
    ):
        assert said in msg, (said, msg)

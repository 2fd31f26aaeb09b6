"""`roam lab` up/status/down and its errors, on a small field (no firmware deployed): a clear
line for an unknown scenario, a lab already up, no lab up; `down` leaves no process behind;
the fleet and keys files it writes are read by hosttools/fleet.py as a user's would be."""

from __future__ import annotations

import json

import pytest

from hosttools.fleet import board_config, load_fleet, load_keys
from tests.host._labhelp import roam, wait_no_lab_processes


@pytest.fixture
def lab_dir(tmp_path):
    d = tmp_path / "lab"
    yield d
    roam(d, "lab", "down", check=False, timeout=30)
    assert not wait_no_lab_processes(d)


def test_up_status_down_and_errors(lab_dir):
    r = roam(lab_dir, "lab", "up", "no-such-scenario", check=False)
    assert r.returncode == 2 and "no scenario 'no-such-scenario'" in r.stderr
    r = roam(lab_dir, "lab", "status", check=False)
    assert r.returncode == 1 and "no lab is up" in r.stderr
    r = roam(lab_dir, "lab", "up", "walk", "--nodes", "a1,zz", check=False)
    assert r.returncode == 2 and "no node 'zz'" in r.stderr

    r = roam(lab_dir, "lab", "up", "walk", "--nodes", "a1,a2,ha,m1")
    assert "lab up: 4 boards" in r.stdout
    # the hint: the log collection starts before the clock (a board's boot and first binding
    # are logged at `roam lab start`)
    hint = r.stdout.splitlines()[-1]
    assert hint.startswith("next: roam deploy"), hint
    assert -1 < hint.index("roam field") < hint.index("roam lab start"), hint
    assert -1 < hint.index("roam logs") < hint.index("roam lab start"), hint
    r = roam(lab_dir, "lab", "up", "walk", check=False)
    assert r.returncode == 1 and "already up" in r.stderr

    st = json.loads(roam(lab_dir, "lab", "status", "--json").stdout)
    assert [b["name"] for b in st["boards"]] == ["a1", "a2", "ha", "m1"]
    assert all(b["alive"] for b in st["boards"])
    assert all(b["booted"] for b in st["boards"])  # `up` returned once each reads its console
    assert len({b["pty"] for b in st["boards"]}) == 4
    assert len(wait_no_lab_processes(lab_dir, timeout=0)) == 5  # the daemon and 4 boards

    fleet = load_fleet(lab_dir / "fleet.toml")
    keys = load_keys(lab_dir / "keys.toml", fleet)
    by = {b.name: b for b in fleet}
    assert by["m1"].role == "mobile" and by["m1"].port == st["boards"][3]["link"]
    a1 = board_config(by["a1"], keys)
    assert a1["wifi"]["ip"] == "10.0.0.1" and a1["region"]["name"] == "line"
    # cell and region keys; the binding secret (258: it derives each node's binding key); its
    # own log key and, as an agent, the log secret (it relays); its own update key (never the
    # fleet's update secret)
    assert set(a1["keys"]) == {"256", "258", "512", "768", "769", "1024"}
    m1 = board_config(by["m1"], keys)
    assert m1["home_agent"] == "10.0.0.6" and str(0x10000 + m1["node_id"]) in m1["keys"]
    # a mobile node: its own binding key (257), never the secret
    assert "257" in m1["keys"] and "258" not in m1["keys"]
    assert m1["keys"]["1024"] != a1["keys"]["1024"]
    assert keys.for_board("m1")["update"].reveal() not in json.dumps(m1)

    r = roam(lab_dir, "lab", "down")
    assert "4 boards stopped" in r.stdout
    assert not wait_no_lab_processes(lab_dir)
    r = roam(lab_dir, "lab", "down")  # idempotent: no lab running is what was asked
    assert r.stdout.startswith("lab down: no lab running in")

    # down and up again: the boards were stopped, not crashed (issue 18 item 4: after down/up,
    # deploy, provision and start, every board came up in safe mode, "crash loop: 3 boots")
    for b in ("a1", "m1"):
        (lab_dir / "boards" / b / "boot.count").write_text("3")
    roam(lab_dir, "lab", "up", "walk", "--nodes", "a1,a2,ha,m1")
    assert not list((lab_dir / "boards").glob("*/boot.count"))
    roam(lab_dir, "lab", "down")


def test_the_boards_type_and_romfs_partition(lab_dir):
    """`--board TYPE --romfs-kb 0`: the lab's boards as micropython.org's image on that chip
    has them (no ROMFS: the firmware runs from the filesystem), in the fleet file and on the
    boards; a type that does not exist, or a partition below 0 or not of whole 4 KiB sectors, is
    one line and exit 2."""
    r = roam(lab_dir, "lab", "up", "walk", "--nodes", "a1,a2", "--board", "nosuch", check=False)
    assert r.returncode == 2 and "unknown board type 'nosuch'" in r.stderr, r.stderr
    for bad in ("-1", "6"):
        r = roam(lab_dir, "lab", "up", "walk", "--nodes", "a1", "--romfs-kb", bad, check=False)
        assert r.returncode == 2 and "--romfs-kb must be 0" in r.stderr, r.stderr
    assert not (lab_dir / "lab.json").exists()
    roam(lab_dir, "lab", "up", "walk", "--nodes", "a1,a2", "--board", "esp32c3", "--romfs-kb", "0")
    assert {b.board_type for b in load_fleet(lab_dir / "fleet.toml")} == {"esp32c3"}
    st = json.loads(roam(lab_dir, "lab", "status", "--json").stdout)
    assert st["board"] == "esp32c3"
    assert not list((lab_dir / "boards").glob("*.romfs"))  # no partition beside any board
    roam(lab_dir, "lab", "down")
    roam(lab_dir, "lab", "up", "walk", "--nodes", "a1", "--board", "esp32")
    assert [p.stat().st_size for p in (lab_dir / "boards").glob("a1.romfs")] == [256 * 1024]
    roam(lab_dir, "lab", "down")


def test_boards_of_another_type_by_role(lab_dir):
    """`--board esp32,agent=esp32c3`: the agents C3s, every other board (here the home agent)
    a plain ESP32 (a field of stock images: docs/USER_GUIDE.md "Which role on which board"), in
    the fleet file, in the state and on the boards (their calibrated heaps); a role that is not
    one, a role given twice or an unknown type is one line and exit 2."""
    from hosttools.vboard import board_heap_kb

    for bad, said in (
        ("esp32,pilot=esp32c3", "'pilot' is not a role"),
        ("esp32,agent=esp32c3,agent=esp32s3", "each role once"),
        ("esp32,agent=nosuch", "unknown board type 'nosuch'"),
        ("esp32,agent=", "each role once"),
    ):
        r = roam(lab_dir, "lab", "up", "walk", "--nodes", "a1,ha", "--board", bad, check=False)
        assert r.returncode == 2 and said in r.stderr, (bad, r.stderr)
    assert not (lab_dir / "lab.json").exists()
    roam(lab_dir, "lab", "up", "walk", "--nodes", "a1,ha", "--board", "esp32,agent=esp32c3")
    by = {b.name: b.board_type for b in load_fleet(lab_dir / "fleet.toml")}
    assert by == {"a1": "esp32c3", "ha": "esp32"}
    st = json.loads(roam(lab_dir, "lab", "status", "--json").stdout)
    assert {b["name"]: b["board"] for b in st["boards"]} == by
    # each board's heap is its own type's (calibrated: hosttools/vboard.py; no firmware in
    # the romfs yet)
    heap = {b["name"]: b["heap_kb"] for b in st["boards"]}
    assert heap == {"a1": board_heap_kb("esp32c3"), "ha": board_heap_kb("esp32")}
    roam(lab_dir, "lab", "down")


def test_a_part_of_a_scenario_keeps_its_numbers():
    """`roam lab up --nodes`: each board keeps the node id, address and MAC it has in the whole
    scenario (m1 is node 9 with or without the others), so logs and reports of a part and of
    the whole name the same node the same way."""
    from hosttools import lab

    whole = {c.name: c for c in lab.build_configs(lab.load_scenario("walk"))}
    part = lab.build_configs(lab.load_scenario("walk", ["a1", "a2", "ha", "m1"]))
    assert [c.name for c in part] == ["a1", "a2", "ha", "m1"]
    for c in part:
        w = whole[c.name]
        assert (c.node_id, c.address, c.mac) == (w.node_id, w.address, w.mac), c.name
    m1 = {c.name: c for c in part}["m1"]
    assert m1.node_id == 9 and m1.config["home_agent"] == whole["ha"].address
    assert m1.config["home_agent"] == whole["m1"].config["home_agent"]


def test_status_shows_safe_mode(tmp_path):
    """A board whose last boot printed safe_mode (and not start) is in safe mode, said by
    `roam lab status` instead of its last binding."""
    from hosttools import lab

    console = tmp_path / "m1.log"
    console.write_text(
        '{"t":5,"ev":"start","role":"mobile"}\n{"t":9,"ev":"bound","agent":"10.0.0.1"}\n'
        "soft reboot\n"
        '{"t":1,"ev":"safe_mode","reason":"crash loop: 3 boots without a healthy run",'
        '"repl":true}\nMicroPython v1.24\n>>> \n'
    )
    assert lab.safe_mode_reason(console) == "crash loop: 3 boots without a healthy run"
    console.write_text(console.read_text() + '{"t":2,"ev":"start","role":"mobile"}\n')
    assert lab.safe_mode_reason(console) is None
    assert lab.safe_mode_reason(tmp_path / "none.log") is None

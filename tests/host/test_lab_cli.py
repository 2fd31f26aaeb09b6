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
    assert r.returncode == 2 and "no lab is up" in r.stderr
    r = roam(lab_dir, "lab", "up", "walk", "--nodes", "a1,zz", check=False)
    assert r.returncode == 2 and "no node 'zz'" in r.stderr

    r = roam(lab_dir, "lab", "up", "walk", "--nodes", "a1,a2,ha,m1")
    assert "lab up: 4 boards" in r.stdout
    r = roam(lab_dir, "lab", "up", "walk", check=False)
    assert r.returncode == 2 and "already up" in r.stderr

    st = json.loads(roam(lab_dir, "lab", "status", "--json").stdout)
    assert [b["name"] for b in st["boards"]] == ["a1", "a2", "ha", "m1"]
    assert all(b["alive"] for b in st["boards"])
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
    assert m1["home_agent"] == "10.0.0.3" and str(0x10000 + m1["node_id"]) in m1["keys"]
    # a mobile node: its own binding key (257), never the secret
    assert "257" in m1["keys"] and "258" not in m1["keys"]
    assert m1["keys"]["1024"] != a1["keys"]["1024"]
    assert keys.for_board("m1")["update"].reveal() not in json.dumps(m1)

    r = roam(lab_dir, "lab", "down")
    assert "4 boards stopped" in r.stdout
    assert not wait_no_lab_processes(lab_dir)
    r = roam(lab_dir, "lab", "down", check=False)
    assert r.returncode == 2 and "no lab is up" in r.stderr

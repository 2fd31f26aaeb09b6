"""roam monitor: a live console of boards, over serial and from roam field's stream, and a lab
board whose cable is pulled and plugged back (its port vanishes and returns; it runs on)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.host._labhelp import REPO, ROAM, lab_down, roam

NODES = "a1,r1,ha,c1,m1"


@pytest.fixture
def lab(tmp_path):
    d = tmp_path / "lab"
    roam(d, "lab", "up", "walk", "--nodes", NODES, "--speed", "6")
    roam(d, "deploy", "--fleet", str(d / "fleet.toml"), timeout=120)
    roam(d, "provision", "--fleet", str(d / "fleet.toml"), "--keys", str(d / "keys.toml"))
    yield d
    lab_down(d)


def _monitor(lab, *args, seconds=8):
    env = dict(os.environ, ROAM_LAB_DIR=str(lab), COLUMNS="200")
    return subprocess.run(
        [ROAM, "monitor", *args, "--duration", str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        env=env,
        cwd=str(REPO),
    )


def test_monitor_reads_boards_over_serial_and_survives_a_pulled_cable(lab):
    fleet = str(lab / "fleet.toml")
    roam(lab, "lab", "start")
    env = dict(os.environ, ROAM_LAB_DIR=str(lab), COLUMNS="200")
    mon = subprocess.Popen(
        [ROAM, "monitor", "--fleet", fleet, "--board", "m1", "--board", "a1", "--duration", "14"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(REPO),
    )
    time.sleep(4)
    roam(lab, "lab", "unplug", "m1")
    link = lab / "tty" / "m1"
    assert not link.exists()  # the port vanished
    st = json.loads(roam(lab, "lab", "status", "--json").stdout)
    m1 = next(b for b in st["boards"] if b["name"] == "m1")
    assert m1["alive"] and m1["pty"] is None and not m1["plugged"]
    time.sleep(3)
    roam(lab, "lab", "plug", "m1")
    assert link.exists()
    out, err = mon.communicate(timeout=40)
    assert mon.returncode == 0, err
    lines = out.splitlines()
    # one line per event, both boards, the board name and the event name on each
    assert any(" m1 " in ln and " rssi " in ln for ln in lines), out[-2000:]
    # (a1's binding may come before the monitor opened its port: any of its events will do)
    assert any(
        " a1 " in ln and ("lateness" in ln or "log_stats" in ln or "binding" in ln) for ln in lines
    ), out[-2000:]
    gone = [i for i, ln in enumerate(lines) if "m1" in ln and "is not there" in ln]
    back = [i for i, ln in enumerate(lines) if "m1" in ln and "is back" in ln]
    assert gone and back and back[0] > gone[0], out[-2000:]
    assert any(" m1 " in ln and i > back[0] and "rssi" in ln for i, ln in enumerate(lines))
    # the board ran on meanwhile: its console (the lab's capture) has lines from the whole time
    con = [json.loads(t) for t in (lab / "console" / "m1.jsonl").read_text().splitlines()]
    rssi = [r["host"] for r in con if (r.get("json") or {}).get("ev") == "rssi"]
    assert (
        max(rssi) - min(rssi) > 9 and max(b - a for a, b in zip(rssi, rssi[1:], strict=False)) < 3
    )


def test_monitor_follows_roam_field(lab):
    fleet, keys = str(lab / "fleet.toml"), str(lab / "keys.toml")
    roam(lab, "lab", "unplug", "--all")
    env = dict(os.environ, ROAM_LAB_DIR=str(lab))
    field = subprocess.Popen(
        [ROAM, "field", "--fleet", fleet, "--keys", keys, "--out", str(lab.parent / "run")]
        + ["--duration", "16", "--http-port", "8098", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(REPO),
    )
    try:
        # (on a busy machine `roam field` takes a while to serve: until then the monitor says
        # "-- no roam field at ...; retrying" under the name roam, which is not a board)
        end = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen("http://127.0.0.1:8098/", timeout=2).close()
                break
            except OSError:
                assert field.poll() is None, field.communicate()
                assert time.monotonic() < end, "roam field never served"
                time.sleep(0.2)
        roam(lab, "lab", "start")
        r = _monitor(lab, "--field", "http://127.0.0.1:8098", "--board", "m1", seconds=10)
        assert r.returncode == 0, r.stderr
        names = {ln.split()[1] for ln in r.stdout.splitlines() if len(ln.split()) > 2}
        assert names == {"m1"}, r.stdout[-1500:]
        assert sum(" rssi " in ln for ln in r.stdout.splitlines()) >= 3
    finally:
        field.communicate(timeout=40)


def test_monitor_errors_are_one_line(tmp_path):
    r = subprocess.run(
        [ROAM, "monitor", "--port", str(tmp_path / "nothing"), "--field", "http://x"],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert Path(sys.executable).exists()

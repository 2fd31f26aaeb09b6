"""The field test without cables, end to end on virtual boards, checked against the lab's own
records.

The CLI as a field tester runs it, every step a real `roam` process: `roam lab up` (the `walk`
scenario shortened: the agents a1..a3, the router, the home agent, the correspondent c1 and the
mobile node m1, six times walking speed), `roam deploy` and `roam provision` over USB, every
cable pulled (`roam lab unplug --all`), `roam field` collecting over the air while `roam lab
start` runs the walk, the carried board plugged back (`roam lab plug --radio-only`: m1), `roam
logs --pull` (m1 over USB, the backbone boards over Wi-Fi), `roam report`.

Then the run is compared with what the lab recorded on its own (bench/field_common.py):

* the console capture: of the lines the boards printed during the walk (until 2 s before the
  collector stopped), >= 99.5 % arrived live, and 100 % are in the run after the pull;
* the air's captures (`air.pcap`, `air-rx.pcap`), decoded with the firmware's own decoders,
  for the flow c1 -> m1 (a datagram every 100 ms): the report's `sent`, `delivered` and
  `handoffs` equal the air's counts. They can be equal, not merely close, because nothing is in
  flight at either end of the collector's window: the flow runs from 3 s to 28 s after the
  boot, the collector from before the boot to 4 s after the flow's end.

A second test stops the collector for 20 s in the middle of the walk and starts it again on the
same run directory: the dashboard's state names the gap, and after the pull nothing is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request

import pytest

from bench import field_common as fc
from tests.host._labhelp import REPO, ROAM, lab_down, roam

NODES = "a1,a2,a3,r1,ha,c1,m1"
SPEED = 6
FLOW_START_S = 18  # scenario seconds (3 s at 6x): c1 is on the backbone by then
DURATION_S = 168  # scenario seconds (28 s at 6x): the flow stops there; m1 has passed a3
FIELD_SECONDS = 32


def _scenario(tmp_path):
    """walk.toml, shortened: the flow c1 -> m1 runs from 3 s to 28 s (at 6x)."""
    from hosttools.sim import scenario as sc_mod

    text = open(sc_mod.resolve("walk")).read()
    for old, new in (
        ("duration_s = 300\n", "duration_s = %d\n" % DURATION_S),
        (
            'src = "c1"\ndst = "m1"\ninterval_ms = 100\n',
            'src = "c1"\ndst = "m1"\ninterval_ms = 100\nstart_s = %d\n' % FLOW_START_S,
        ),
    ):
        assert text.count(old) == 1, "walk.toml changed: %r" % old
        text = text.replace(old, new)
    path = tmp_path / "walk_short.toml"
    path.write_text(text)
    return path


@pytest.fixture
def lab_dir(tmp_path):
    d = tmp_path / "lab"
    yield d
    lab_down(d)


def _up(lab_dir, tmp_path, nodes=NODES):
    fleet, keys = lab_dir / "fleet.toml", lab_dir / "keys.toml"
    r = roam(
        lab_dir, "lab", "up", str(_scenario(tmp_path)), "--nodes", nodes, "--speed", str(SPEED)
    )
    assert "lab up: %d boards" % len(nodes.split(",")) in r.stdout, r.stdout
    r = roam(lab_dir, "deploy", "--fleet", str(fleet), timeout=120)
    assert r.stdout.count("as .mpy") == len(nodes.split(",")), r.stdout
    roam(lab_dir, "provision", "--fleet", str(fleet), "--keys", str(keys), timeout=60)
    roam(lab_dir, "lab", "unplug", "--all")
    # unplugged: roam devices lists none of the lab's boards any more
    rows = json.loads(roam(lab_dir, "devices", "--json", "--fleet", str(fleet)).stdout)
    assert not [r for r in rows if r["virtual"]], rows
    return fleet, keys


def _field(lab_dir, fleet, keys, run_dir, seconds, port):
    env = dict(os.environ, ROAM_LAB_DIR=str(lab_dir))
    return subprocess.Popen(
        [ROAM, "field", "--fleet", str(fleet), "--keys", str(keys), "--out", str(run_dir)]
        + ["--duration", str(seconds), "--http-port", str(port), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(REPO),
    )


def _walk_start(lab_dir):
    for line in (lab_dir / "events.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("clock") == "start":
            return rec["wall"]
    raise AssertionError("the lab never started its clock")


def test_field_test_without_cables_agrees_with_the_lab(lab_dir, tmp_path):
    t_begin = time.monotonic()
    fleet, keys = _up(lab_dir, tmp_path)
    st = json.loads(roam(lab_dir, "lab", "status", "--json").stdout)
    boards = {b["name"]: b for b in st["boards"]}
    agents = {b["address"] for b in st["boards"] if b["role"] == "agent"}
    run_dir = tmp_path / "run"
    field = _field(lab_dir, fleet, keys, run_dir, FIELD_SECONDS, 8094)
    try:
        time.sleep(1.5)
        roam(lab_dir, "lab", "start")
        time.sleep(12)
        # the dashboard's state against the lab's own: every board, its role, m1's agent
        agree = None
        for _ in range(20):
            api = _api_state(8094)
            lab_st = json.loads(roam(lab_dir, "lab", "status", "--json").stdout)
            names = {b["address"]: b["name"] for b in lab_st["boards"]}
            truth = {b["name"]: b for b in lab_st["boards"]}
            assert {n: v["role"] for n, v in api["boards"].items()} == {
                n: b["role"] for n, b in truth.items()
            }
            assert all(v["mode"] == "running" for v in api["boards"].values()), api["boards"]
            agree = api["boards"]["m1"]["agent"] == names.get(truth["m1"]["bound"])
            if agree:
                break
            time.sleep(0.3)  # (a hand-off between the two readings)
        assert agree, (api["boards"]["m1"], truth["m1"])
        out, err = field.communicate(timeout=FIELD_SECONDS + 30)
    finally:
        if field.poll() is None:
            field.kill()
            field.wait()
    assert field.returncode == 0, out + err
    meta = json.loads((run_dir / "logs.json").read_text())
    ref = fc.console_lines(lab_dir / "console", _walk_start(lab_dir), meta["stopped"] - 2.0)
    printed, live, _, _ = fc.coverage(ref, fc.run_lines(run_dir))

    r = roam(lab_dir, "lab", "plug", "--radio-only")
    assert "plugged: m1" in r.stdout
    r = _pull(lab_dir, fleet, keys, run_dir)
    assert "FAILED" not in r.stdout, r.stdout
    printed, _, pulled, missing = fc.coverage(ref, fc.run_lines(run_dir))
    roam(lab_dir, "report", str(run_dir), timeout=60)
    summary = json.loads((run_dir / "summary.json").read_text())
    roam(lab_dir, "lab", "down")  # closes the air's captures

    sent, delivered = fc.air_flow(
        lab_dir,
        boards["c1"]["address"],
        boards["m1"]["address"],
        boards["m1"]["mac"],
        meta["started"],
        meta["stopped"],
    )
    handoffs = fc.air_handoffs(
        lab_dir,
        boards["m1"]["address"],
        boards["m1"]["mac"],
        agents,
        meta["started"],
        meta["stopped"],
    )
    print(
        "lines: %d printed, %d live, %d after the pull | report: sent %d delivered %d "
        "hand-offs %d | air: sent %d delivered %d hand-offs %d | %.1f s"
        % (
            printed,
            live,
            pulled,
            summary["sent"],
            summary["delivered"],
            summary["handoffs"],
            len(sent),
            len(delivered),
            handoffs,
            time.monotonic() - t_begin,
        )
    )
    assert printed > 300  # a real walk: c1's and m1's lines, every board's
    assert live >= 0.995 * printed, (live, printed)
    assert pulled == printed, missing
    # a real run: the whole flow (25 s at 10/s), m1 walked past a2 and a3
    assert len(sent) >= 200 and handoffs >= 2
    assert summary["sent"] == len(sent)
    assert summary["delivered"] == len(delivered)
    assert summary["handoffs"] == handoffs
    assert (run_dir / "report.html").stat().st_size > 0


def _pull(lab_dir, fleet, keys, run_dir):
    """`roam logs --pull` into run_dir (the radio-only boards plugged back first)."""
    args = ("--fleet", str(fleet), "--keys", str(keys), "--out", str(run_dir))
    return roam(lab_dir, "logs", "--pull", *args, timeout=120)


def _api_state(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/api/state" % port, timeout=5) as r:
        return json.loads(r.read())


def test_a_collector_away_for_20_s_leaves_a_gap_the_pull_fills(lab_dir, tmp_path):
    nodes = "a1,a2,r1,ha,c1,m1"
    fleet, keys = _up(lab_dir, tmp_path, nodes)
    run_dir = tmp_path / "run"
    first = _field(lab_dir, fleet, keys, run_dir, 8, 8095)
    time.sleep(1.5)
    roam(lab_dir, "lab", "start")
    assert first.wait(timeout=40) == 0, first.communicate()
    time.sleep(20)  # the collector is away; the boards log on
    # (long enough for c1's next line to reach it on a busy machine, where the collector takes
    # seconds to start: the gap shows when a line after it comes)
    second = _field(lab_dir, fleet, keys, run_dir, 20, 8096)
    try:
        state = None
        end = time.monotonic() + 30
        while time.monotonic() < end:
            time.sleep(1)
            try:
                state = _api_state(8096)
            except OSError:
                continue
            if state["gaps"].get("c1"):
                break
        # the page's state names the boards whose lines are missing, c1 (100 ms flow) first
        assert state is not None and state["gaps"].get("c1"), state and state["gaps"]
        lost = sum(g["lines"] for g in state["gaps"]["c1"])
        assert lost > 100, state["gaps"]["c1"]  # 20 s of c1's log
        assert second.wait(timeout=40) == 0
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    gaps = json.loads((run_dir / "gaps.json").read_text())
    assert gaps.get("c1")
    roam(lab_dir, "lab", "plug", "--radio-only")
    r = _pull(lab_dir, fleet, keys, run_dir)
    assert "FAILED" not in r.stdout and "still missing" not in r.stdout, r.stdout
    assert json.loads((run_dir / "gaps.json").read_text()) == {}

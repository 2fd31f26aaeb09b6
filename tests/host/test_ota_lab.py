"""Over-the-air updates end to end on virtual boards with every cable pulled, every step a real
`roam` process: `roam devices --ota`, `roam deploy --ota` of a changed firmware (straight to the
boards on the access point, through an agent to the radio-only mobile node), a firmware that
raises at import (rolled back by the boards themselves, reported by `roam devices --ota`),
`roam provision --ota` and `roam reset --ota`, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.common import firmware_variant
from hosttools.errors import EXIT_FAILURE
from tests.host._labhelp import console_events, lab_down, roam

NODES = "a1,a2,a3,a4,r1,ha,c1,m1"
BOARDS = NODES.split(",")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    d = tmp_path_factory.mktemp("otalab")
    roam(
        d,
        "lab",
        "up",
        "walk",
        "--dir",
        str(d),
        "--nodes",
        NODES,
        "--speed",
        "6",
        timeout=90,
    )
    try:
        fleet, keys = str(d / "fleet.toml"), str(d / "keys.toml")
        roam(d, "deploy", "--fleet", fleet, timeout=240)
        roam(d, "provision", "--fleet", fleet, "--keys", keys, timeout=120)
        roam(d, "lab", "unplug", "--all", "--dir", str(d))
        roam(d, "lab", "start", "--dir", str(d))
        yield d, fleet, keys
    finally:
        lab_down(d, timeout=60)


def _firmware(tmp: Path, name: str, line: str) -> Path:
    """This checkout's firmware with one line added to driver.py."""
    return firmware_variant(tmp / name, "\n" + line + "\n")


def _reset_times(d: Path, board: str) -> list[float]:
    """The board's own times (ticks ms) of its `ota_reset` lines (its console's JSON lines
    file). The lab's boards share one clock (the machine's monotonic one); the host's time of
    a line is when the lab read it, which a loaded machine delays for every board alike (once
    the same instant for all eight)."""
    times = []
    for ln in (d / "console" / (board + ".jsonl")).read_text(errors="replace").splitlines():
        try:
            rec = json.loads(ln)
        except ValueError:
            continue
        j = rec.get("json")
        if isinstance(j, dict) and j.get("ev") == "ota_reset":
            times.append(j["t"])
    return times


def _after(t: int, ref: int) -> int:
    """ms from ``ref`` to ``t``, both ticks (wrapping at 2**30, as MicroPython's)."""
    return (t - ref + (1 << 29)) % (1 << 30) - (1 << 29)


def _devices(d, fleet, keys, check=True):
    r = roam(d, "devices", "--ota", "--json", "--fleet", fleet, "--keys", keys, check=check)
    return r, {row["board"]: row for row in json.loads(r.stdout)}


def test_devices_ota_reports_every_board_over_the_air(lab):
    d, fleet, keys = lab
    _, rows = _devices(d, fleet, keys)
    assert set(rows) == set(BOARDS)
    for row in rows.values():
        assert row["reached"], row
        assert row["slot"] == "root" and row["fw_current"] and row["config_current"], row
        assert row["pending"] is None and row["rollback"] is None, row
    assert rows["m1"]["via"].startswith("10.0.0.")  # through an agent
    assert rows["a1"]["via"] == "10.0.0.1"


def test_a_changed_firmware_reaches_every_board(lab, tmp_path):
    d, fleet, keys = lab
    fw = _firmware(tmp_path, "fw1", 'FIELD_NOTE = "changed over the air"')
    r = roam(
        d, "deploy", "--ota", "--firmware", str(fw), "--fleet", fleet, "--keys", keys, timeout=120
    )
    out = {ln.split(":")[0]: ln for ln in r.stdout.splitlines()}
    for name in BOARDS:
        assert "healthy" in out[name], r.stdout
    _, rows = _devices(d, fleet, keys)
    fws = {row["fw"] for row in rows.values()}
    assert len(fws) == 1 and None not in fws
    for name, row in rows.items():
        assert row["slot"] == "a" and row["previous_slot"] == "root", row
        assert not row["fw_current"]  # not this checkout's: the changed one
        events = console_events(d, name)
        start = events[0]
        assert start["ev"] == "start" and start["slot"] == "a", start
        assert start["fw"].startswith(row["fw"])
        assert any(e["ev"] == "ota_healthy" for e in events), name
    # the switch in two waves: every board but the agents first, the agents after them
    resets = {name: _reset_times(d, name) for name in BOARDS}
    agents = [n for n in BOARDS if n.startswith("a")]
    assert all(resets.values()), resets
    ref = resets[agents[0]][-1]
    assert max(_after(resets[n][-1], ref) for n in BOARDS if n not in agents) < min(
        _after(resets[n][-1], ref) for n in agents
    ), resets
    # nothing to do the second time
    r = roam(
        d, "deploy", "--ota", "--firmware", str(fw), "--fleet", fleet, "--keys", keys, timeout=60
    )
    assert r.stdout.count("already running") == len(BOARDS), r.stdout


def test_a_firmware_that_raises_at_import_is_rolled_back(lab, tmp_path):
    d, fleet, keys = lab
    _, before = _devices(d, fleet, keys)
    fw = _firmware(tmp_path, "broken", 'raise RuntimeError("broken on purpose")')
    r = roam(
        d,
        "deploy",
        "--ota",
        "--board",
        "a2",
        "--firmware",
        str(fw),
        "--fleet",
        fleet,
        "--keys",
        keys,
        timeout=120,
        check=False,
    )
    assert r.returncode == EXIT_FAILURE, (r.stdout, r.stderr)
    assert "rolled back after 2 boots" in r.stderr, r.stderr
    r, rows = _devices(d, fleet, keys)
    a2 = rows["a2"]
    assert a2["fw"] == before["a2"]["fw"] and a2["slot"] == before["a2"]["slot"], a2
    assert a2["rollback"]["what"] == "firmware" and a2["rollback"]["tries"] == 2, a2
    # the boot counter counts runs of the role: the broken version never got that far
    assert a2["boot"] == before["a2"]["boot"] + 1
    events = console_events(d, "a2")
    assert events[0]["slot"] == "a"
    text = (d / "console" / "a2.log").read_text(errors="replace")
    assert '"ev":"ota_rollback"' in text
    assert "broken on purpose" in text


def test_provision_and_reset_over_the_air(lab):
    d, fleet, keys = lab
    _, before = _devices(d, fleet, keys)
    # a changed config: the fleet file says so, provision --ota sends it
    text = Path(fleet).read_text()
    changed = text.replace('"adv_interval_ms" = 167', '"adv_interval_ms" = 170', 1)
    assert changed != text
    Path(fleet).write_text(changed)
    r = roam(d, "provision", "--ota", "--board", "a1", "--fleet", fleet, "--keys", keys, timeout=90)
    assert "healthy" in r.stdout, r.stdout
    _, rows = _devices(d, fleet, keys)
    assert rows["a1"]["config"] != before["a1"]["config"] and rows["a1"]["config_current"]
    assert rows["a2"]["config"] == before["a2"]["config"]
    r = roam(d, "reset", "--ota", "--board", "m1", "--fleet", fleet, "--keys", keys, timeout=60)
    assert "reset (boot" in r.stdout, r.stdout
    _, after = _devices(d, fleet, keys)
    assert after["m1"]["boot"] == rows["m1"]["boot"] + 1


def test_errors_are_one_line(lab, tmp_path):
    d, fleet, keys = lab
    r = roam(d, "deploy", "--ota", "--port", "/dev/null", "--fleet", fleet, check=False)
    assert r.returncode == 2 and "--ota" in r.stderr
    bad_keys = tmp_path / "keys.toml"
    bad_keys.write_text("[default]\n")
    r = roam(d, "devices", "--ota", "--fleet", fleet, "--keys", str(bad_keys), check=False)
    assert r.returncode == EXIT_FAILURE and "update secret" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = roam(d, "deploy", "--ota", "--dry-run", "--fleet", fleet, "--keys", keys)
    assert r.stdout.count("would send firmware") == len(BOARDS)
    assert "through the agent" in r.stdout

"""Merging board logs: the clock fit (offset, 0.3 % drift, wraps, reboots, late lines) and the
merged timeline in the simulator's event schema."""

import json
import random

import numpy as np
import pytest

from hosttools.errors import RoamError
from hosttools.timeline import PERIOD, fit_clock, merge_dir, split_boots, write_run


def synthetic_board(rng, n, drift, tick0, host0, period_s=0.05, late_share=0.05):
    """(records as `roam logs` writes them, true print times). Arrival = print time + a USB
    latency (>= 1 ms, a few ms of jitter) and, for a share of lines, a long delay."""
    recs, truth = [], []
    for i in range(n):
        true_h = host0 + i * period_s + rng.uniform(0, period_s / 2)
        ticks = int(tick0 + (true_h - host0) * 1000.0 * (1.0 + drift)) % PERIOD
        lat = 0.001 + rng.expovariate(1 / 0.0015)
        if rng.random() < late_share:
            lat += rng.uniform(0.02, 0.3)
        recs.append({"host": true_h + lat, "n": i + 1,
                     "json": {"t": ticks, "node": 3, "event": "tick", "i": i}})
        truth.append(true_h)
    recs.sort(key=lambda r: r["host"])
    truth = [truth[r["json"]["i"]] for r in recs]
    return recs, truth


@pytest.mark.parametrize("drift", [0.003, -0.003])
def test_fit_within_5ms_with_0_3_percent_drift(drift):
    rng = random.Random(7)
    recs, truth = synthetic_board(rng, 6000, drift, tick0=123456, host0=1.7e9)
    segs = split_boots("b", recs)
    assert len(segs) == 1
    seg = segs[0]
    seg.fit()
    err = np.abs(seg.to_host(np.asarray(seg.ticks)) - np.asarray(truth)) * 1000.0
    assert err.max() <= 5.0, err.max()
    assert abs(seg.b * 1000.0 - 1.0 / (1.0 + drift)) < 2e-5
    # A plain least-squares line would be pulled by the late lines: the robust one is not.
    b, a = np.polyfit(np.asarray(seg.ticks) - seg.ticks[0], np.asarray(seg.host) - seg.host[0], 1)
    naive = a + b * (np.asarray(seg.ticks) - seg.ticks[0]) + seg.host[0]
    assert np.abs(naive - np.asarray(truth)).max() * 1000.0 > 5.0


def test_ticks_wrap_is_not_a_reboot():
    rng = random.Random(1)
    # Start 100 s before the wrap, run 300 s: the ticks wrap once.
    recs, truth = synthetic_board(rng, 3000, 0.003, tick0=PERIOD - 100_000, host0=1.7e9,
                                  period_s=0.1, late_share=0.0)
    assert any(r["json"]["t"] < 1000 for r in recs)
    segs = split_boots("b", recs)
    assert len(segs) == 1
    segs[0].fit()
    err = np.abs(segs[0].to_host(np.asarray(segs[0].ticks)) - np.asarray(truth)) * 1000.0
    assert err.max() <= 5.0


def test_reboots_split_the_fit():
    rng = random.Random(2)
    a, ta = synthetic_board(rng, 500, 0.003, tick0=50_000, host0=1000.0, late_share=0.0)
    # Reboot: ticks restart near 0; a 'soft reboot' line in between for the second, and none
    # (only ticks going backwards) for the third.
    b, tb = synthetic_board(rng, 500, 0.003, tick0=10, host0=1030.0, late_share=0.0)
    c, tc = synthetic_board(rng, 500, -0.002, tick0=5, host0=1060.0, late_share=0.0)
    recs = a + [{"host": 1029.0, "n": 0, "text": "MPY: soft reboot"}] + b + c
    segs = split_boots("b", recs)
    assert [len(s.events) for s in segs] == [500, 500, 500]
    for seg, truth in zip(segs, (ta, tb, tc)):
        seg.fit()
        err = np.abs(seg.to_host(np.asarray(seg.ticks)) - np.asarray(truth)) * 1000.0
        assert err.max() <= 5.0


def write_logdir(path, boards, started=1000.0, stopped=None):
    path.mkdir()
    meta = {"kind": "roam-logs", "started": started, "stopped": stopped,
            "boards": {name: info for name, (info, _) in boards.items()}}
    (path / "logs.json").write_text(json.dumps(meta))
    for name, (_, recs) in boards.items():
        with open(path / (name + ".jsonl"), "w") as f:
            for r in recs:
                f.write(json.dumps(r) + "\n")


def test_merge_orders_boards_on_one_clock_and_writes_sim_schema(tmp_path):
    # Two boards with very different tick origins print events at known host instants.
    def rec(host, ticks, node, ev, **kw):
        return {"host": host, "n": 0, "json": dict({"t": ticks, "node": node, "event": ev}, **kw)}

    fa = [rec(1000.0 + i, 900_000 + i * 1000, 1, "adv") for i in range(50)]
    fa.append(rec(1010.5, 900_000 + 10_500, 1, "binding_up", home="10.0.0.9"))
    mn = [rec(1000.2 + i, 5 + i * 1000, 9, "hello") for i in range(50)]
    mn.append(rec(1010.7, 5 + 10_500, 9, "bound", agent="10.0.0.1"))
    mn.insert(3, {"host": 1002.9, "n": 0, "text": "some console text"})
    logdir = tmp_path / "logs"
    write_logdir(logdir, {"fa1": ({"port": "/dev/x", "node": 1, "addr": "10.0.0.1"}, fa),
                          "mn1": ({"port": "/dev/y", "node": 9, "addr": "10.0.0.9"}, mn)},
                 started=1000.0, stopped=1050.0)
    records, report = merge_dir(logdir)
    assert [r["t"] for r in records] == sorted(r["t"] for r in records)
    bu = next(r for r in records if r["event"] == "binding_up")
    bd = next(r for r in records if r["event"] == "bound")
    assert bu == {"t": 10500, "node": 1, "event": "binding_up", "home": "10.0.0.9",
                  "board": "fa1"}
    assert bd["t"] == 10700 and bd["node"] == 9 and bd["agent"] == "10.0.0.1"
    summary = write_run(logdir, tmp_path / "run")
    lines = (tmp_path / "run" / "events.jsonl").read_text().splitlines()
    assert len(lines) == 102 and json.loads(lines[0])["t"] == 0
    assert summary["binding_changes"] == 1 and summary["sim_s"] == 50.0
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))


def test_summary_has_the_simulator_keys(tmp_path):
    from hosttools.sim import metrics  # noqa: F401 - the keys come from its Collector.summary

    logdir = tmp_path / "logs"
    write_logdir(logdir, {"a": ({"node": 1}, [{"host": 1001.0, "json": {"t": 1, "event": "x"}}])})
    summary = write_run(logdir)
    col = metrics.Collector()
    sim_keys = set(col.summary([], 0, {"control_frames": 0, "control_bytes": 0}, 0.0))
    assert sim_keys <= set(summary)


def test_not_a_log_dir_is_a_clear_error(tmp_path):
    with pytest.raises(RoamError, match="not a log directory"):
        merge_dir(tmp_path)
    write_logdir(tmp_path / "l", {"a": ({}, [])})
    (tmp_path / "l" / "a.jsonl").write_text("{oops\n")
    with pytest.raises(RoamError, match="line 1 is not JSON"):
        merge_dir(tmp_path / "l")
    assert not (tmp_path / "l" / "events.jsonl").exists()


def test_fit_of_one_point():
    a, b, n, _ = fit_clock([100.0], [5.0])
    assert n == 1 and abs(a + b * 100.0 - 5.0) < 1e-9

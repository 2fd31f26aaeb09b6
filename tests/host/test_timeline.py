"""Merging board logs: the clock fit (offset, 0.3 % drift, wraps, reboots, late lines) and the
merged timeline in the simulator's event schema."""

import json
import os
import random
import shutil
import subprocess

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
        recs.append(
            {
                "host": true_h + lat,
                "n": i + 1,
                "json": {"t": ticks, "node": 3, "event": "tick", "i": i},
            }
        )
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
    recs, truth = synthetic_board(
        rng, 3000, 0.003, tick0=PERIOD - 100_000, host0=1.7e9, period_s=0.1, late_share=0.0
    )
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
    for seg, truth in zip(segs, (ta, tb, tc), strict=False):
        seg.fit()
        err = np.abs(seg.to_host(np.asarray(seg.ticks)) - np.asarray(truth)) * 1000.0
        assert err.max() <= 5.0


def write_logdir(path, boards, started=1000.0, stopped=None):
    path.mkdir()
    meta = {
        "kind": "roam-logs",
        "started": started,
        "stopped": stopped,
        "boards": {name: info for name, (info, _) in boards.items()},
    }
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
    write_logdir(
        logdir,
        {
            "fa1": ({"port": "/dev/x", "node": 1, "addr": "10.0.0.1"}, fa),
            "mn1": ({"port": "/dev/y", "node": 9, "addr": "10.0.0.9"}, mn),
        },
        started=1000.0,
        stopped=1050.0,
    )
    records, report = merge_dir(logdir)
    assert [r["t"] for r in records] == sorted(r["t"] for r in records)
    bu = next(r for r in records if r["event"] == "binding_up")
    bd = next(r for r in records if r["event"] == "bound")
    assert bu == {"t": 10500, "node": 1, "event": "binding_up", "home": "10.0.0.9", "board": "fa1"}
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
    # a line cut off is left out and named (roam report warns), not the end of the merge
    records, report = merge_dir(tmp_path / "l")
    assert records == [] and len(report["skipped"]) == 1
    assert "a.jsonl line 1 is not JSON (cut off?): {oops" in report["skipped"][0]
    assert not (tmp_path / "l" / "events.jsonl").exists()


def test_fit_of_one_point():
    a, b, n, _ = fit_clock([100.0], [5.0])
    assert n == 1 and abs(a + b * 100.0 - 5.0) < 1e-9


# -- `roam report LOGDIR`: the merged logs rendered, and the page seen in headless Chromium ----

CHROMIUM = os.environ.get("ROAM_CHROMIUM") or shutil.which("chromium") or ""


def field_logdir(path):
    """A small field test as `roam logs` would have written it: two agents, a mobile node that
    hands off from fa1 to fa2 at ~20 s, a correspondent sending every 500 ms."""
    rng = random.Random(3)
    boards = {
        name: ({"node": node, "addr": "10.0.0.%d" % node}, [])
        for name, node in (("fa1", 1), ("fa2", 2), ("mn1", 9), ("cn1", 5))
    }
    origin = {"fa1": 1000, "fa2": 500_000, "mn1": 77, "cn1": PERIOD - 10_000}
    drift = {"fa1": 0.003, "fa2": -0.002, "mn1": 0.001, "cn1": 0.0}

    def emit(board, at, ev, **kw):
        ticks = int(origin[board] + (at - 1000.0) * 1000.0 * (1 + drift[board])) % PERIOD
        obj = dict({"t": ticks, "n": boards[board][0]["node"], "ev": ev}, **kw)
        boards[board][1].append({"host": at + 0.001 + rng.random() * 0.002, "n": 0, "json": obj})

    for b in boards:
        emit(b, 1000.0, "start", role="x")
    emit("fa1", 1001.0, "binding_up", home="10.0.0.9", load=1)
    emit("mn1", 1001.0, "bound", agent="10.0.0.1")
    emit("fa2", 1020.0, "binding_up", home="10.0.0.9", load=1)
    emit("mn1", 1020.0, "handoff", agent="10.0.0.2")
    emit("mn1", 1020.0, "bound", agent="10.0.0.2")
    emit("fa1", 1020.3, "binding_down", home="10.0.0.9", load=0)
    for i in range(1, 80):
        at = 1000.5 + i * 0.5
        emit("cn1", at, "app_tx", dst="10.0.0.9", seq=i)
        if not 19.9 < at - 1000 < 20.6:  # two datagrams lost in the hand-off
            emit("mn1", at + 0.02, "app_rx", src="10.0.0.5", seq=i, len=16)
    for b in boards:
        boards[b][1].sort(key=lambda r: r["host"])
    write_logdir(path, boards, started=1000.0, stopped=1041.0)


def test_report_of_a_log_dir(tmp_path):
    from click.testing import CliRunner

    from hosttools.cli import main

    field_logdir(tmp_path / "logs")
    r = CliRunner().invoke(main, ["report", str(tmp_path / "logs")])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "logs" / "summary.json").read_text())
    # 79 sent, the last one a second before the end and delivered 20 ms after it was sent
    # (nothing in flight), 2 lost in the hand-off
    assert (summary["sent"], summary["delivered"], summary["in_flight"]) == (79, 77, 0)
    assert summary["handoffs"] == 1 and summary["lost_in_handoff"] == 2
    assert summary["undelivered"] == 2 and summary["lost_by_cause"]["handoff"] == 2
    assert summary["binding_changes"] == 3
    page = (tmp_path / "logs" / "report.html").read_text()
    assert page.count("<svg") >= 2


def test_report_renders_in_headless_chromium(tmp_path):
    if not CHROMIUM:
        if os.environ.get("ROAM_REQUIRE_CHROMIUM") == "1":
            pytest.fail("ROAM_REQUIRE_CHROMIUM=1 but chromium is not installed", pytrace=False)
        pytest.skip("chromium is not installed (apt-get install chromium, or run .ci/run)")
    from click.testing import CliRunner

    from hosttools.cli import main

    field_logdir(tmp_path / "logs")
    assert CliRunner().invoke(main, ["report", str(tmp_path / "logs")]).exit_code == 0
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--user-data-dir=%s" % (tmp_path / "profile"),
            "--window-size=1200,1600",
            "--screenshot=%s" % shot,
            (tmp_path / "logs" / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.is_file(), done.stderr[-2000:]
    # Decode the PNG (zlib + filters) just enough to count non-white pixels: plots are lines and
    # fills, so a page whose plots rendered has many coloured pixels, a blank one has none.
    rows = png_rows(shot.read_bytes())
    coloured = sum(
        1
        for row in rows
        for i in range(0, len(row) - 2, 3)
        if abs(row[i] - row[i + 1]) + abs(row[i + 1] - row[i + 2]) > 30
    )
    dark = sum(1 for row in rows for i in range(0, len(row), 3) if row[i] < 128)
    assert coloured > 500, coloured  # coloured plot lines (every 4th row sampled)
    assert dark > 2000, dark  # text and axes


def png_rows(data):
    """RGB rows of an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes)."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        prev = line
        if y % 4 == 0:  # every 4th row is plenty for counting
            rows.append(
                bytes(line)
                if bpp == 3
                else bytes(v for j in range(0, stride, 4) for v in line[j : j + 3])
            )
    return rows


def test_report_survives_a_cut_line_and_says_what_is_wrong(tmp_path):
    """Issue 18 item 12: a truncated line is skipped with a warning naming it (the rest of the
    report is made); a missing directory says so; a bad --out names the user's path; a log
    with no events gives an empty report and a warning (item 1)."""
    from click.testing import CliRunner

    from hosttools.cli import main

    run = CliRunner().invoke
    logs = tmp_path / "logs"
    field_logdir(logs)
    mn1 = logs / "mn1.jsonl"
    lines = mn1.read_text().splitlines(keepends=True)
    mn1.write_text("".join(lines[:40]) + '{"host": 1021.5, "n": 0, "js\n' + "".join(lines[40:]))
    r = run(main, ["report", str(logs)])
    assert r.exit_code == 0, r.output
    assert r.stderr.startswith("roam: warning: %s line 41 is not JSON (cut off?)" % mn1), r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.rstrip().endswith("skipped"), r.stderr
    assert json.loads((logs / "summary.json").read_text())["handoffs"] == 1
    # a simulator run directory whose events.jsonl was cut off mid-line
    ev = logs / "events.jsonl"
    ev.write_text(ev.read_text() + '{"t": 41000, "node"')
    del_log = logs / "logs.json"
    del_log.unlink()
    r = run(main, ["report", str(logs)])
    assert r.exit_code == 0, r.output
    n = ev.read_text().count("\n") + 1
    said = 'roam: warning: events line %d is not JSON: {"t": 41000, "node": skipped\n' % n
    assert r.stderr == said, r.stderr
    # a directory that is not there; an --out that cannot be written
    r = run(main, ["report", str(tmp_path / "nope")])
    assert r.exit_code == 1 and r.stderr == "roam: error: report: no directory %s\n" % (
        tmp_path / "nope"
    )
    bad = tmp_path / "no-such-dir" / "r.html"
    r = run(main, ["report", str(logs), "--out", str(bad)])
    assert r.exit_code == 1 and "cannot write %s: No such file or directory" % bad in r.stderr
    assert ".tmp" not in r.stderr
    # boards that printed nothing: an empty report, said
    empty = tmp_path / "empty"
    write_logdir(empty, {"a1": ({"node": 1}, []), "m1": ({"node": 9}, [])})
    r = run(main, ["report", str(empty)])
    assert r.exit_code == 0, r.output
    assert "roam: warning: %s holds no events: the report is empty" % empty in r.stderr


def test_handoffs_counted_from_the_mobile_nodes_when_no_agent_logged():
    """Issue 18 item 14: a log with only the mobile nodes' lines (no agent's binding lines)
    said `handoffs 0` while its report drew the hand-offs the mobile nodes logged."""
    from hosttools.timeline import summarize_rows

    def row(t, ev, node, home=None):
        return (t, ev, node, None, None, None, home, None)

    only_mobiles = [row(1000, "handoff", 9), row(5000, "handoff", 9), row(7000, "handoff", 10)]
    assert summarize_rows(only_mobiles, 10_000)["handoffs"] == 3
    # with the agents' view, theirs counts (a hand-off the mobile began but no agent took)
    agents = [
        row(900, "binding_up", 1, "10.64.0.9"),
        row(1100, "binding_up", 2, "10.64.0.9"),
        row(1200, "binding_down", 1, "10.64.0.9"),
    ]
    rows = sorted(agents + only_mobiles, key=lambda r: r[0])
    assert summarize_rows(rows, 10_000)["handoffs"] == 1

"""`roam sim sweep`: the claims over seeds (hosttools/sim/claims.py, sweep.py), and runs on Dask
that give what `run.run` gives in this process: on a local cluster and on a real `dask scheduler`
with two `dask worker` processes on localhost."""

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from hosttools.sim import claims, run, scenario, sweep

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENV = dict(
    os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
)
SEEDS = [1, 2, 3]
DURATION_S = 12


def roam(*args, timeout=300):
    done = subprocess.run(
        [str(BIN / "roam"), *args], env=ENV, capture_output=True, text=True, timeout=timeout
    )
    return done.returncode, done.stdout, done.stderr


# --- the claims over seeds, on made-up summaries ---

TABLE = {
    "windows": {"cell": {"range": [5, 10]}},
    "recovery_after_s": {"heal": 60},
    "delivery_ratio_min": 0.99,
    "interruption_median_ms_max": 50,
    "cell_delivery_ratio_min": 0.9,
    "heal_recovery_ms_max": 5000,
    "mip4_interruption_factor_min": 20,
}


def made_up(ratio, median, cell, heal):
    return {
        "delivery_ratio": ratio,
        "interruption_ms": {"median": median, "p95": None},
        "windows": {"cell": {"delivery_ratio": cell}},
        "recovery_ms": {"heal": heal},
    }


def test_claim_names_read_the_summary():
    by_key = {c.key: c for c in claims.parse(TABLE)}
    assert list(by_key) == [k for k in TABLE if k not in claims.SETTINGS]  # the file's order
    assert by_key["delivery_ratio_min"].path == ("delivery_ratio",)
    assert by_key["interruption_median_ms_max"].path == ("interruption_ms", "median")
    assert by_key["cell_delivery_ratio_min"].path == ("windows", "cell", "delivery_ratio")
    assert by_key["heal_recovery_ms_max"].path == ("recovery_ms", "heal")
    assert by_key["mip4_interruption_factor_min"].policies == ("roam", "mip4")
    c = by_key["delivery_ratio_min"]
    assert claims.holds(c, 0.99) and not claims.holds(c, 0.989) and not claims.holds(c, None)
    m = by_key["interruption_median_ms_max"]
    assert claims.holds(m, 50) and not claims.holds(m, 50.5)


@pytest.mark.parametrize(
    "table, expect",
    [
        ({"delivery_ratio": 0.9}, "is not a claim"),
        ({"last_agent_off_s": 20}, "is not a claim"),
        ({"delivery_ratio_min": "high"}, "must be a number"),
        ({"delivery_ratio_min": True}, "must be a number"),
        ({"nosuch_min": 1}, "no figure 'nosuch'"),
        ({"west_delivery_ratio_min": 0.9}, "no figure 'west_delivery_ratio'"),  # no such window
        ({"delivery_ratio_min": {"limit": 0.999, "may_fail": 1}}, "a claim table is"),
        (
            {"delivery_ratio_min": {"limit": 0.999, "may_fail": 1, "floor": 0.9, "x": 1}},
            "a claim table is",
        ),
        ({"delivery_ratio_min": {"limit": 0.999, "may_fail": 0, "floor": 0.99}}, "may_fail"),
        ({"delivery_ratio_min": {"limit": 0.999, "may_fail": 1, "floor": 1}}, "must be below"),
        ({"wall_s_max": {"limit": 60, "may_fail": 1, "floor": 50}}, "must be above"),
        ({"delivery_ratio_min": {"limit": "x", "may_fail": 1, "floor": 0.9}}, "limit must be"),
    ],
)
def test_bad_claims_are_refused_when_loading(table, expect):
    with pytest.raises(claims.ClaimError, match=expect):
        claims.parse(table)
    data = {
        "duration_s": 1,
        "node": [{"id": "a", "role": "agent", "pos": [0, 0]}],
        "claims": table,
    }
    with pytest.raises(scenario.ScenarioError, match=r"x\.toml \[claims\]: .*" + expect):
        scenario.from_dict(data, "x.toml")


def test_every_builtin_claim_is_understood():
    for name in scenario.builtin_names():
        sc = scenario.load(name)
        assert claims.parse(sc.claims), name  # each has claims, each one readable


def test_report_min_median_max_failing_seeds_and_verdict():
    sc = SimpleNamespace(name="made-up", claims=TABLE)
    roam = {
        1: made_up(1.0, 0.0, 1.0, 100.0),
        2: made_up(0.98, 10.0, 0.95, None),  # never recovered: fails
        3: made_up(0.995, 60.0, 0.5, 4000.0),
        4: made_up(None, None, 0.9, 5000.0),  # nothing sent: fails, left out of min/median/max
    }
    mip4 = {s: made_up(0.5, 500.0, 0.4, None) for s in roam}
    mip4[3]["interruption_ms"]["median"] = 1000.0
    summaries = {("made-up", "roam", s): v for s, v in roam.items()}
    summaries.update({("made-up", "mip4", s): v for s, v in mip4.items()})
    seeds = sorted(roam)
    rec = sweep.report([sc], seeds, ["roam"], summaries)
    assert rec["verdict"] == "fail" and rec["seeds"] == seeds
    assert rec["scenarios"]["made-up"]["verdict"] == "fail"
    assert list(rec["scenarios"]["made-up"]["policies"]) == ["roam"]  # mip4 ran, not asked for
    got = rec["scenarios"]["made-up"]["policies"]["roam"]["claims"]
    d = got["delivery_ratio_min"]
    assert (d["min"], d["median"], d["max"]) == (0.98, 0.995, 1.0)
    assert d["failing_seeds"] == [2, 4] and d["verdict"] == "fail"
    assert d["values"] == {"1": 1.0, "2": 0.98, "3": 0.995, "4": None}
    i = got["interruption_median_ms_max"]
    assert (i["min"], i["median"], i["max"], i["failing_seeds"]) == (0.0, 10.0, 60.0, [3, 4])
    c = got["cell_delivery_ratio_min"]
    assert (c["median"], c["failing_seeds"]) == (0.925, [3])
    h = got["heal_recovery_ms_max"]
    assert (h["min"], h["median"], h["max"], h["failing_seeds"]) == (100.0, 4000.0, 5000.0, [2])
    f = got["mip4_interruption_factor_min"]  # roam's median taken as at least 1 ms
    assert f["values"] == {"1": 500.0, "2": 50.0, "3": 1000.0 / 60.0, "4": None}
    assert f["failing_seeds"] == [3, 4]
    # every seed passes: the verdict is pass; the baseline's figures come without a verdict
    good = {k: made_up(1.0, 0.0, 1.0, 10.0) for k in summaries if k[1] == "roam"}
    good.update({k: made_up(0.5, 900.0, 0.5, None) for k in summaries if k[1] == "mip4"})
    rec = sweep.report([sc], seeds, ["roam", "mip4"], good)
    assert rec["verdict"] == "pass"
    base = rec["scenarios"]["made-up"]["policies"]["mip4"]["claims"]
    assert "mip4_interruption_factor_min" not in base
    assert base["delivery_ratio_min"]["verdict"] is None
    assert base["delivery_ratio_min"]["failing_seeds"] == seeds
    # nothing judged (no roam runs asked for): no verdict
    only = sweep.report([sc], seeds, ["mip4"], good)
    assert only["verdict"] is None and only["scenarios"]["made-up"]["verdict"] is None


def test_a_claim_with_an_allowance_lets_that_many_seeds_miss_the_limit_above_the_floor():
    # walk's delivery (issue 16): >= 99.9 % in 19 of 20 seeds and >= 99.8 % in all
    (c,) = claims.parse({"delivery_ratio_min": {"limit": 0.999, "may_fail": 1, "floor": 0.998}})
    assert (c.limit, c.may_fail, c.floor) == (0.999, 1, 0.998)
    assert claims.holds(c, 0.999) and not claims.holds(c, 0.9985)  # one seed: the limit
    values = {s: 1.0 for s in range(1, 21)}
    values[7] = 0.9985
    one = claims.over_seeds(c, values)
    assert one["failing_seeds"] == [7] and one["verdict"] == "pass"
    assert (one["may_fail"], one["floor"]) == (1, 0.998)
    values[9] = 0.9989
    assert claims.over_seeds(c, values)["verdict"] == "fail"  # two seeds miss it
    values[9] = 1.0
    values[7] = 0.9979
    assert claims.over_seeds(c, values)["verdict"] == "fail"  # one, below the floor
    values[7] = None
    assert claims.over_seeds(c, values)["verdict"] == "fail"  # nothing measured
    # a plain claim lets none miss it
    (p,) = claims.parse({"delivery_ratio_min": 0.999})
    values[7] = 0.9985
    assert claims.over_seeds(p, values)["verdict"] == "fail"


def test_seeds_and_policies():
    assert sweep.parse_seeds("1-3") == [1, 2, 3]
    assert sweep.parse_seeds("7, 1-2,2") == [1, 2, 7]
    for bad in ("5-2", "x", "1-", "-3", ""):
        with pytest.raises(ValueError):
            sweep.parse_seeds(bad)
    assert sweep.parse_policies("mip4,roam,mip4") == ["mip4", "roam"]
    with pytest.raises(ValueError, match="not a policy"):
        sweep.parse_policies("roam,olsr")


@pytest.mark.parametrize(
    "args, expect",
    [
        (["walk", "--seeds", "5-2"], "'5-2' is not a range"),
        (["nosuch", "--seeds", "1"], "no scenario 'nosuch'"),
        (["walk", "--policy", "olsr"], "'olsr' is not a policy"),
    ],
)
def test_bad_arguments_one_line_and_exit_2(tmp_path, args, expect):
    code, out, err = roam("sim", "sweep", *args, "--out", str(tmp_path / "o"), timeout=60)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("roam: error: ") and expect in err, err
    assert not (tmp_path / "o").exists()


# --- real sweeps: the same summaries as runs in this process ---


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """ha-down cut to DURATION_S seconds, with a claim that holds on every seed and one that
    fails on every seed."""
    text = Path(scenario.builtin_path("ha-down")).read_text()
    for old, new in (
        ('name = "ha-down"', 'name = "tiny"'),
        ("duration_s = 300", "duration_s = %d" % DURATION_S),
        ("delivery_ratio_min = 0.995", "delivery_ratio_min = 0.5\nsent_max = 10"),
    ):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path_factory.mktemp("scenario") / "tiny.toml"
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def in_process(tiny):
    sc = scenario.load(tiny)
    return {seed: run.run(sc, seed, "", write=False, jobs=1)[0] for seed in SEEDS}


def same_as_in_process(out, in_process):
    for seed in SEEDS:
        path = Path(out) / "tiny" / "roam" / ("seed-%d" % seed) / "summary.json"
        got = json.loads(path.read_text())
        want = json.loads(json.dumps(in_process[seed]))  # as written: tuples become lists
        assert run.run_figures(got) == run.run_figures(want), seed


def check_record(rec, workers):
    assert rec["seeds"] == SEEDS and rec["verdict"] == "fail"
    got = rec["scenarios"]["tiny"]["policies"]["roam"]["claims"]
    assert got["delivery_ratio_min"]["verdict"] == "pass"
    assert got["sent_max"]["failing_seeds"] == SEEDS
    assert rec["machine"]["workers"] == workers and rec["runs"]["count"] == len(SEEDS)
    least, most = rec["machine"]["machine_ref_ms"]  # the machine's speed over the sweep
    assert 0 < least <= most


def test_sweep_on_a_local_cluster(tmp_path, tiny, in_process):
    out = str(tmp_path / "sweep")
    with sweep.dask_client(workers=2) as client:
        rec = sweep.sweep([scenario.load(tiny)], SEEDS, ["roam"], out, client)
    check_record(rec, 2)
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text()) == rec
    for seed in SEEDS:
        d = tmp_path / "sweep" / "tiny" / "roam" / ("seed-%d" % seed)
        assert sorted(p.name for p in d.iterdir()) == [
            "capture.pcap",
            "events.jsonl",
            "summary.json",
        ]
    same_as_in_process(out, in_process)


def start(*args):
    return subprocess.Popen(
        [str(BIN / "dask"), *args],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sweep_on_a_dask_scheduler_and_two_workers(tmp_path, tiny, in_process):
    from distributed import Client

    address_file = tmp_path / "scheduler.json"
    procs = [
        start(
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",  # a free port, read back from the scheduler file
            "--no-dashboard",
            "--scheduler-file",
            str(address_file),
        )
    ]
    try:
        deadline = time.monotonic() + 120
        while not address_file.exists() or not address_file.read_text().strip():
            assert time.monotonic() < deadline, "the scheduler did not start"
            assert procs[0].poll() is None, "the scheduler exited"
            time.sleep(0.2)
        address = json.loads(address_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for _ in range(2):
            procs.append(
                start("worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard")
            )
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=180)
        out = tmp_path / "sweep"
        code, stdout, err = roam(
            "sim", "sweep", tiny, "--seeds", "1-3", "--scheduler", address, "--no-files",
            "--quiet", "--out", str(out),
        )  # fmt: skip
        assert code == 1, err  # sent_max fails
        assert "sent" in stdout and "fail" in stdout and "wrote" in stdout
        check_record(json.loads((out / "sweep.json").read_text()), 2)
        for seed in SEEDS:  # --no-files: the summaries only
            assert [p.name for p in (out / "tiny" / "roam" / ("seed-%d" % seed)).iterdir()] == [
                "summary.json"
            ]
        same_as_in_process(out, in_process)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# --- a worker runs one scenario after another ---


def worlds_alive():
    from hosttools.sim.world import World

    return sum(1 for o in gc.get_objects() if isinstance(o, World))


def test_a_run_in_a_process_of_many_leaves_no_world_behind(tiny):
    # a world is a web of reference cycles that only a full collection frees: a sweep's
    # worker kept each city run's world (its resident set past 2 GiB by the seventh run)
    sc = scenario.load(tiny)
    gc.collect()  # (worlds other tests left as garbage)
    before = worlds_alive()
    sweep.run_alone(sc, "roam", 1, None)
    assert worlds_alive() == before


def test_a_runs_peak_memory_is_its_own(tiny):
    # before, the process's peak since it started: a worker's later runs reported the
    # largest of every run before them (city seeds 15, 17, 19 "over 2 GiB")
    sc = scenario.load(tiny)
    alone = run.run(sc, 1, "", write=False, jobs=1)[0]["peak_rss_mib"]
    ballast = b"\x01" * (int(alone) + 300) * 2**20  # touched, so resident
    del ballast
    again = run.run(sc, 1, "", write=False, jobs=1)[0]["peak_rss_mib"]
    assert again < alone + 150, (alone, again)

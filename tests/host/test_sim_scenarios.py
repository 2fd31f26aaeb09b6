"""Each built-in scenario's claim (issue 5), checked on a short variant of the scenario so CI
stays fast; bench/sim_scenarios.py runs the full-length scenarios. Seed 1 throughout."""

import copy
import tomllib

from hosttools.sim import run, scenario

SEED = 1


def short(name, duration_s, **changes):
    with open(scenario.builtin_path(name), "rb") as f:
        data = tomllib.load(f)
    data["duration_s"] = duration_s
    data.update(copy.deepcopy(changes))
    return scenario.from_dict(data, name + ".toml", scenario.BUILTIN_DIR)


def go(sc, policy="roam"):
    summary, world = run.run(sc, SEED, "/nonexistent", policy=policy, write=False)
    return summary, world


def test_same_seed_same_summary_on_a_real_scenario():
    a, _ = go(short("walk", 40))
    b, _ = go(short("walk", 40))
    assert run.run_figures(a) == run.run_figures(b)


def test_walk_delivery_and_interruption():
    s, _ = go(short("walk", 100))
    assert s["handoffs"] >= 2
    assert s["delivery_ratio"] >= 0.999
    assert s["interruption_ms"]["median"] <= 50
    assert s["interruption_ms"]["p95"] <= 200


def test_ha_down_roam_delivers_and_the_baseline_does_not():
    s, _ = go(short("ha-down", 80))
    assert s["delivery_ratio"] >= 0.995
    b, _ = go(short("ha-down", 80), "mip4")
    assert b["delivery_ratio"] < 0.5


def test_isolated_agent_cell_keeps_working():
    s, _ = go(short("isolated-agent", 40))
    assert s["windows"]["cell"]["sent"] > 500
    assert s["windows"]["cell"]["delivery_ratio"] >= 0.999


def test_no_agent_downgrade_to_host_to_host():
    s, world = go(short("no-agent", 40))
    assert s["windows"]["after_downgrade"]["delivery_ratio"] >= 0.99
    assert s["recovery_ms"]["agents_off"] <= 3000
    assert any(e[2] == "downgrade" for e in world.events)


def test_partition_inside_parts_and_recovery_after_heal():
    with open(scenario.builtin_path("partition"), "rb") as f:
        data = tomllib.load(f)
    faults = [dict(data["fault"][0], at_s=20), dict(data["fault"][1], at_s=40)]
    claims = dict(data["claims"])
    claims["windows"] = {
        "west": {"range": [20, 40], "flows": [0]},
        "east": {"range": [20, 40], "flows": [1]},
    }
    claims["recovery_after_s"] = {"heal": 40}
    s, _ = go(short("partition", 60, fault=faults, claims=claims))
    assert s["windows"]["west"]["delivery_ratio"] >= 0.99
    assert s["windows"]["east"]["delivery_ratio"] >= 0.99
    assert s["recovery_ms"]["heal"] is not None and s["recovery_ms"]["heal"] <= 5000


def test_attacker_changes_nothing():
    s, _ = go(short("attacker", 60))
    assert s["forged_sent"] > 50 and s["replayed_sent"] > 10
    assert s["forged_accepted"] == 0
    assert s["delivery_ratio"] >= 0.999


def test_attacker_replays_accepted_none():
    s, _ = go(short("attacker", 60))
    assert s["replayed_accepted"] == 0


def test_city_shape_runs_briefly():
    s, _ = go(short("city", 2))
    assert s["nodes"] == 1106
    assert s["air"]["radio_frames"] > 1000


def test_agent_crash_nodes_bind_elsewhere_and_traffic_flows_again():
    # seed 1: a3 crashes at 30 s (m5 bound to it), a6 at 64 s (m2, m7)
    s, world = go(short("agent-crash", 75))
    assert s["crashes"] == 2
    assert [e[2] for e in world.events if e[2] == "sim_crash"] == ["sim_crash"] * 3  # off, on, off
    rec = s["crash_recovery_ms"]
    assert rec["count"] >= 2 and rec["never"] == 0
    assert rec["median"] <= 2000 and rec["max"] <= 5000
    assert s["crash_stale_after_recovery"] <= 2
    assert [c["agent"] for c in s["crash_log"]] == ["a3", "a6"]

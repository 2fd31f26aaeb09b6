"""Each built-in scenario's claim (issue 5), checked on a short variant of the scenario so CI
stays fast; bench/sim_scenarios.py runs the full-length scenarios. Seed 1, except for the
full-length runs of the seeds whose recovery issue 16 found null (one run a test)."""

import copy
import tomllib

import pytest

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
    # before the agents go off, nodes of the two agents reach each other (relay, issue 16)
    assert s["windows"]["before_off"]["delivery_ratio"] >= 0.999
    assert not [
        e
        for e in world.events
        if e[2] == "drop"
        and e[3].get("reason") == "no_route"
        and e[0] < 20000
        and e[1].startswith("a")
    ]
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
    # every kind, each counter: tests/host/test_sim_attacker.py
    s, _ = go(short("attacker", 60))
    assert s["forged_sent"] > 10 and s["replayed_sent"] > 2 and s["insider_sent"] > 10
    assert s["forged_accepted"] == 0 and s["replayed_accepted"] == 0
    assert s["insider_accepted"] == 0 and s["mac_hijacks"] == 0
    assert s["delivery_ratio"] >= 0.999


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


def _full(name, seed):
    summary, world = run.run(scenario.load(name), seed, "/nonexistent", write=False)
    return summary, world


# the seeds whose recovery was null before the in-flight tail was counted apart (issue 16),
# and one (4) whose 600 datagrams across the partition counted as lost in a hand-off
PARTITION_SEEDS = (4, 6, 7, 9, 12, 14, 18)


@pytest.mark.parametrize("seed", PARTITION_SEEDS)
def test_partition_recovers_and_its_losses_are_the_partitions(seed):
    s, world = _full("partition", seed)
    col = world.collector
    assert s["recovery_ms"]["heal"] is not None and s["recovery_ms"]["heal"] <= 5000
    assert sum(s["lost_by_cause"].values()) == s["undelivered"]
    assert s["lost_in_handoff"] == s["lost_by_cause"]["handoff"]
    # flow 2 (ce in the east to mw in the west) during the partition: every datagram lost is
    # the partition's, none a hand-off's
    across = [k for k, t in col.sent.items() if k[0] == 2 and 60e6 <= t < 120e6]
    lost = [k for k in across if k not in col.deliv]
    assert len(lost) > 0.9 * len(across)
    assert {col.causes[k] for k in lost} == {"partition"}
    # inside each part nothing is lost to the partition
    assert not any(col.causes.get(k) == "partition" for k in col.sent if k[0] != 2)
    # what is left at the end was on its way: counted apart, not lost
    tail = [k for k, c in col.causes.items() if c == "in_flight_at_end"]
    assert s["in_flight"] == len(tail)
    assert all(col.sent[k] > 179e6 for k in tail)


# their recovery was null when only the tail was undelivered (the last datagram sent a few ms
# before the end; whether a seed ends so moves with any change to the core: the rule itself is
# tested on made-up events in test_sim_metrics.py)
@pytest.mark.parametrize("seed", (9, 12))
def test_no_agent_recovers_on_the_seeds_that_ended_mid_flight(seed):
    s, _ = _full("no-agent", seed)
    assert s["recovery_ms"]["agents_off"] is not None
    assert s["recovery_ms"]["agents_off"] <= 3000


def test_radio_losses_are_named_by_the_world():
    # walk: every datagram lost to the radio has the world's sim_radio_loss event naming it
    # (180 s: since a node checks an overdue agent, issue 16 part 3, seed 1's first unicast
    # datagram to fail comes at 147 s)
    s, world = go(short("walk", 180))
    named = {(f["flow"], f["seq"]) for _, _, e, f in world.events if e == "sim_radio_loss"}
    radio = {k for k, c in world.collector.causes.items() if c == "radio"}
    assert radio <= named
    assert s["lost_by_cause"]["radio"] == len(radio)
    assert sum(s["lost_by_cause"].values()) == s["undelivered"]
    assert named, "no unicast datagram failed in 180 s of walk"
    # each names a datagram that was sent, once per unicast that failed (or queue overflow)
    events = [e for e in world.events if e[2] == "sim_radio_loss"]
    assert named <= set(world.collector.sent)
    assert len(events) <= s["air"]["link_failures"] + s["air"]["txq_drops"]


def test_a_node_without_an_agent_reaches_a_bound_node_in_its_range():
    # issue 16 part 4: s hears d but no agent; d is bound to a, which s does not hear. s
    # downgrades to host-to-host contact and d answers it although bound (before: 0 delivered,
    # a bound node never answered a host-level solicitation). Shadowing off: the geometry says
    # who hears whom (s-a 142 m: below sensitivity - 5 dB; s-d and d-a 71 m: -87 dBm).
    data = {
        "name": "direct-to-bound",
        "duration_s": 40,
        "radio": {"tx_power_dbm": 5.0, "shadowing_db": 0.0, "fading_db": 0.0},
        "claims": {"windows": {"direct": {"range": [5, 40]}}},
        "node": [
            {"id": "a", "role": "agent", "pos": [0, 0]},
            {"id": "d", "role": "mobile", "pos": [71, 0]},
            {"id": "s", "role": "mobile", "pos": [142, 0]},
        ],
        "flow": [{"src": "s", "dst": "d", "interval_ms": 100}],
    }
    s, world = go(scenario.from_dict(data, "direct-to-bound.toml", scenario.BUILTIN_DIR))
    assert s["windows"]["direct"]["sent"] > 300
    assert s["windows"]["direct"]["delivery_ratio"] >= 0.99
    events = [(e[1], e[2]) for e in world.events]
    assert ("d", "bound") in events and ("d", "unbound") not in events
    assert ("s", "bound") not in events

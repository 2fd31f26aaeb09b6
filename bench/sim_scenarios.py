"""Every built-in simulator scenario with its claim (issue 5), seeds stated; writes
out/bench/sim_scenarios.json.

    .venv/bin/python -m bench.sim_scenarios            # seed 1
    SIM_SEED=3 .venv/bin/python -m bench.sim_scenarios

`city` runs last, alone, in a child process (`roam sim run city`, which uses both processor
cores: hosttools.sim.cores) so that its wall time and peak memory (the largest resident set of
that process and its worker) are its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

try:
    from bench.common import REPO_DIR, figure, write_result
except ImportError:  # run as a script from bench/
    from common import REPO_DIR, figure, write_result  # type: ignore[no-redef]

from hosttools.sim import run, scenario
from hosttools.sim.metrics import ATTACK_COUNTERS

SEED = int(os.environ.get("SIM_SEED", "1"))
OUT = REPO_DIR / "out" / "bench" / "sim"


def one(name, policy="roam"):
    sc = scenario.load(name)
    summary, _world = run.run(sc, SEED, str(OUT / name / policy), policy=policy)
    return summary


def ratio(x):
    return x if x is not None else float("nan")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    roam = str(Path(sys.executable).with_name("roam"))
    t0 = time.perf_counter()
    f = {"seed": figure(SEED, "seed")}
    walk = one("walk")
    walk_mip4 = one("walk", "mip4")
    f["walk_delivery_ratio"] = figure(ratio(walk["delivery_ratio"]), "ratio")
    f["walk_interruption_median_ms"] = figure(ratio(walk["interruption_ms"]["median"]), "ms")
    f["walk_interruption_p95_ms"] = figure(ratio(walk["interruption_ms"]["p95"]), "ms")
    f["walk_handoffs"] = figure(walk["handoffs"], "count")
    f["walk_mip4_interruption_median_ms"] = figure(
        ratio(walk_mip4["interruption_ms"]["median"]), "ms"
    )
    f["walk_mip4_delivery_ratio"] = figure(ratio(walk_mip4["delivery_ratio"]), "ratio")
    # the factor against a 1 ms floor: roam's median is often 0 (no gap beyond the interval)
    f["walk_mip4_over_roam_median"] = figure(
        ratio(walk_mip4["interruption_ms"]["median"])
        / max(1.0, ratio(walk["interruption_ms"]["median"])),
        "x",
    )
    f["walk_convergence_median_ms"] = figure(ratio(walk["convergence_ms"]["median"]), "ms")
    had = one("ha-down")
    had_mip4 = one("ha-down", "mip4")
    f["ha_down_delivery_ratio"] = figure(ratio(had["delivery_ratio"]), "ratio")
    f["ha_down_mip4_delivery_ratio"] = figure(ratio(had_mip4["delivery_ratio"]), "ratio")
    iso = one("isolated-agent")
    f["isolated_agent_cell_delivery_ratio"] = figure(
        ratio(iso["windows"]["cell"]["delivery_ratio"]), "ratio"
    )
    na = one("no-agent")
    f["no_agent_delivery_ratio_after_downgrade"] = figure(
        ratio(na["windows"]["after_downgrade"]["delivery_ratio"]), "ratio"
    )
    f["no_agent_delivery_ratio_before_off"] = figure(
        ratio(na["windows"]["before_off"]["delivery_ratio"]), "ratio"
    )
    f["no_agent_recovery_ms"] = figure(ratio(na.get("recovery_ms", {}).get("agents_off")), "ms")
    part = one("partition")
    f["partition_west_delivery_ratio"] = figure(
        ratio(part["windows"]["west"]["delivery_ratio"]), "ratio"
    )
    f["partition_east_delivery_ratio"] = figure(
        ratio(part["windows"]["east"]["delivery_ratio"]), "ratio"
    )
    f["partition_recovery_after_heal_ms"] = figure(
        ratio(part.get("recovery_ms", {}).get("heal")), "ms"
    )
    att = one("attacker")
    for key in ATTACK_COUNTERS:  # sent and accepted per class, the effects (docs/METRICS.md)
        f["attacker_" + key] = figure(att[key], "frames")
    f["attacker_delivery_ratio"] = figure(ratio(att["delivery_ratio"]), "ratio")
    city = subprocess.run(
        [roam, "sim", "run", "city", "--seed", str(SEED), "--out", str(OUT / "city"), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if city.returncode != 0:
        raise SystemExit("city failed: %s" % city.stderr.strip()[-500:])
    with open(OUT / "city" / "summary.json") as fh:
        cs = json.load(fh)
    f["city_wall_s"] = figure(cs["wall_s"], "s")
    f["city_jobs"] = figure(cs["jobs"], "processes")
    # both processes' peaks added (an upper bound: the forked worker shares pages)
    f["city_peak_rss_mib"] = figure(cs["peak_rss_total_mib"], "MiB")
    f["city_publications_per_binding_change"] = figure(
        ratio(cs["publications_per_binding_change"]), "ratio"
    )
    f["city_handoffs"] = figure(cs["handoffs"], "count")
    f["city_delivery_ratio"] = figure(ratio(cs["delivery_ratio"]), "ratio")
    f["bench_wall_s"] = figure(round(time.perf_counter() - t0, 1), "s")
    write_result("sim_scenarios", f)


if __name__ == "__main__":
    main()

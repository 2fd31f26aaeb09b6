"""The built-in scenarios' claims over seeds 1-20 (`roam sim sweep`, policy roam, on a local Dask
cluster of this machine's processors); writes out/bench/sim_sweep.json: per scenario and claim
the min, median and max of its figure over the seeds and the count of seeds on which it fails.

    .venv/bin/python -m bench.sim_sweep                  # seeds 1-20
    SIM_SEEDS=1-5 .venv/bin/python -m bench.sim_sweep

The runs' summaries and the sweep's own record stay in out/bench/sim_sweep/ (sweep.json: the
figure of every seed). A failing claim is a measurement here, not an error: the bench exits 0
once it measured (`roam sim sweep` itself exits 1).
"""

from __future__ import annotations

import os
import time

try:
    from bench.common import REPO_DIR, figure, write_result
except ImportError:  # run as a script from bench/
    from common import REPO_DIR, figure, write_result  # type: ignore[no-redef]

from rich.console import Console

from hosttools.sim import scenario, sweep
from hosttools.sim.cli import sweep_table

SCENARIOS = (
    "walk",
    "attacker",
    "ha-down",
    "no-agent",
    "partition",
    "isolated-agent",
    "agent-crash",
)
SEEDS = os.environ.get("SIM_SEEDS", "1-20")
OUT = REPO_DIR / "out" / "bench" / "sim_sweep"


def unit(figure_name: str) -> str:
    if figure_name.endswith("_ms"):
        return "ms"
    if figure_name.endswith("ratio"):
        return "ratio"
    if figure_name == "mip4_interruption_factor":
        return "x"
    return "count"


def main() -> None:
    t0 = time.perf_counter()
    seeds = sweep.parse_seeds(SEEDS)
    scs = [scenario.load(name) for name in SCENARIOS]
    with sweep.dask_client() as client:
        record = sweep.sweep(scs, seeds, ["roam"], str(OUT), client, files=False, where="local")
    Console(width=160).print(sweep_table(record))
    f = {"seeds": figure(len(seeds), "seeds"), "runs": figure(record["runs"]["count"], "runs")}
    for name, sc in record["scenarios"].items():
        for key, c in sc["policies"]["roam"]["claims"].items():
            for stat in ("min", "median", "max"):
                if c[stat] is not None:  # null on every seed: no figure, every seed fails
                    f["%s.%s.%s" % (name, key, stat)] = figure(c[stat], unit(c["figure"]))
            f["%s.%s.failing_seeds" % (name, key)] = figure(len(c["failing_seeds"]), "seeds")
    f["workers"] = figure(record["machine"]["workers"], "processes")
    f["bench_wall_s"] = figure(round(time.perf_counter() - t0, 1), "s")
    write_result("sim_sweep", f)


if __name__ == "__main__":
    main()

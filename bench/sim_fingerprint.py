"""The simulator's outputs, byte for byte, against another commit's, and the city's wall time
side by side: the check a refactor of the core or the simulator must pass (issue 19).

    .venv/bin/python -m bench.sim_fingerprint                   # against HEAD (the last commit)
    .venv/bin/python -m bench.sim_fingerprint --base f34ee87    # against that commit
    .venv/bin/python -m bench.sim_fingerprint --no-wall         # outputs only (quicker)
    .venv/bin/python -m bench.sim_fingerprint --here            # this tree's fingerprints only

For each of walk, partition, attacker (whole scenario) and the first 20 s of city, seed 1, the
sha256 of summary.json (without the machine's fields: wall time, memory, jobs, core),
events.jsonl and capture.pcap. The base commit is checked out into out/bench/fingerprint-base/
(a git worktree, with its own compiled core) and runs the same scenarios in its own process; the
two trees then run city (20 s) in turn, three times each, alternating, so that a busy machine
slows both alike. Exits 1 when any output differs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

try:
    from bench.common import REPO_DIR, figure, write_result
except ImportError:  # run as a script from bench/
    from common import REPO_DIR, figure, write_result  # type: ignore[no-redef]

RUNS = (("walk", None), ("partition", None), ("attacker", None), ("city", 20.0))
CITY_S = 20.0
CITY_TURNS = 3
BASE_DIR = REPO_DIR / "out" / "bench" / "fingerprint-base"

# run in a tree's own interpreter environment, from that tree: prints one JSON object
_FINGERPRINT = r"""
import hashlib, json, sys, tempfile, os
from hosttools.sim import run, scenario
runs = json.loads(sys.argv[1])
out = {}
for name, duration in runs:
    sc = scenario.load(name, duration_s=duration)
    d = tempfile.mkdtemp(prefix="fp-")
    summary, _w = run.run(sc, 1, d, jobs=1)
    digest = {"summary": hashlib.sha256(
        json.dumps(run.run_figures(summary), sort_keys=True).encode()).hexdigest()}
    for f in ("events.jsonl", "capture.pcap"):
        with open(os.path.join(d, f), "rb") as fh:
            digest[f] = hashlib.sha256(fh.read()).hexdigest()
    digest["delivery_ratio"] = summary.get("delivery_ratio")
    out[name] = digest
print(json.dumps(out))
"""

_CITY = r"""
import sys, tempfile, time
from hosttools.sim import run, scenario
sc = scenario.load("city", duration_s=float(sys.argv[1]))
t0 = time.perf_counter()
run.run(sc, 1, tempfile.mkdtemp(prefix="fp-city-"), write=False)
print(time.perf_counter() - t0)
"""


def _env(tree: Path) -> dict[str, str]:
    # the base tree has no .venv of its own: the same interpreter, that tree's sources first
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    return env


def fingerprints(tree: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _FINGERPRINT, json.dumps(RUNS)],
        cwd=tree,
        env=_env(tree),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit("fingerprints in %s failed:\n%s" % (tree, done.stderr[-3000:]))
    return json.loads(done.stdout.strip().splitlines()[-1])


def city_wall(tree: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _CITY, str(CITY_S)],
        cwd=tree,
        env=_env(tree),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit("city in %s failed:\n%s" % (tree, done.stderr[-3000:]))
    return float(done.stdout.strip().splitlines()[-1])


def compile_core(tree: Path) -> None:
    """The tree's compiled core, as `make venv` builds it (each tree runs its own build)."""
    subprocess.run(
        [sys.executable, "-m", "hosttools.corebuild"], cwd=tree, env=_env(tree), check=True
    )


def checkout(base: str) -> Path:
    """A worktree of `base` at BASE_DIR (replaced when it holds another commit)."""
    want = subprocess.run(
        ["git", "rev-parse", base], cwd=REPO_DIR, capture_output=True, text=True, check=True
    ).stdout.strip()
    if BASE_DIR.exists():
        have = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=BASE_DIR, capture_output=True, text=True
        ).stdout.strip()
        if have == want:
            return BASE_DIR
        subprocess.run(["git", "worktree", "remove", "--force", str(BASE_DIR)], cwd=REPO_DIR)
    subprocess.run(["git", "worktree", "prune"], cwd=REPO_DIR, check=True)
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(BASE_DIR), want],
        cwd=REPO_DIR,
        check=True,
        capture_output=True,
    )
    return BASE_DIR


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD", help="the commit to compare with (default HEAD)")
    ap.add_argument("--here", action="store_true", help="this tree's fingerprints only")
    ap.add_argument("--no-wall", action="store_true", help="outputs only, no city wall times")
    args = ap.parse_args(argv)
    f: dict = {}
    if args.here:
        here = fingerprints(REPO_DIR)
        print(json.dumps(here, indent=2))
        return 0
    base_tree = checkout(args.base)
    compile_core(base_tree)
    compile_core(REPO_DIR)
    here = fingerprints(REPO_DIR)
    base = fingerprints(base_tree)
    differ = []
    for name, _d in RUNS:
        for part in ("summary", "events.jsonl", "capture.pcap"):
            same = here[name][part] == base[name][part]
            f["%s_%s_same" % (name, part.split(".")[0])] = figure(int(same), "bool")
            if not same:
                differ.append("%s %s" % (name, part))
    walls: dict[str, list[float]] = {"base": [], "here": []}
    for _turn in range(0 if args.no_wall else CITY_TURNS):
        walls["base"].append(city_wall(base_tree))
        walls["here"].append(city_wall(REPO_DIR))
    for side in ("base", "here") if walls["here"] else ():
        f["city_%ds_wall_%s_median_s" % (CITY_S, side)] = figure(
            round(statistics.median(walls[side]), 3), "s"
        )
        f["city_%ds_wall_%s_min_s" % (CITY_S, side)] = figure(round(min(walls[side]), 3), "s")
    if walls["here"]:
        ratio = round(min(walls["here"]) / min(walls["base"]), 3)
        f["city_wall_here_over_base"] = figure(ratio, "x")
    write_result("sim_fingerprint", f)
    print(
        "compared with %s: %s"
        % (
            args.base,
            "outputs differ: " + ", ".join(differ)
            if differ
            else "every output the same, byte for byte",
        )
    )
    return 1 if differ else 0


if __name__ == "__main__":
    t0 = time.perf_counter()
    rc = main()
    print("(%.0f s)" % (time.perf_counter() - t0))
    sys.exit(rc)

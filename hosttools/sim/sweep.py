"""Sweeps: the claims of scenarios over many seeds, the runs spread over a Dask cluster.

    roam sim sweep walk ha-down --seeds 1-20 --out out/sweep [--policy roam,mip4]
                   [--scheduler tcp://host:8786] [--no-files]

A run is one (scenario, policy, seed). It runs in a Dask worker as `roam sim run` runs it
(`run.run`, in one process: jobs=1), so its summary is the one `roam sim run` gives, wherever it
ran (the machine's fields aside: `run.MACHINE_FIELDS`); every result carries a digest of what
results depend on (`sources_digest`), and a worker whose digest differs from this process's is
an error, not a silently different figure. `report` then sums each claim up over the seeds
(`claims.over_seeds`) into the record written as OUT/sweep.json (docs/SIMULATOR.md, "Sweeps over
seeds"). The cluster is a local one on this machine's processors, or an existing one
(`dask_client`).
"""

from __future__ import annotations

import functools
import gc
import glob
import hashlib
import logging
import os
import platform
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hosttools import corebuild
from hosttools.sim import claims, run
from hosttools.sim.scenario import Scenario

SWEEP_FILE = "sweep.json"
CONNECT_S = 10  # how long to try to reach an existing scheduler
WAIT_WORKERS_S = 60  # how long to wait for a worker to join it


class SweepError(Exception):
    """A sweep that cannot run or finish; the message is for the user."""


def parse_seeds(text: str) -> list[int]:
    """ "1-20", "3", "1,4,7-9" -> the sorted distinct seeds; ValueError with a readable reason."""
    seeds: set[int] = set()
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ValueError("%r is not a seed or a range of seeds like 1-20" % part) from None
        if a < 0 or b < a:
            raise ValueError("%r is not a range from a low seed to a higher one" % part)
        seeds.update(range(a, b + 1))
    return sorted(seeds)


def parse_policies(text: str) -> list[str]:
    """ "roam,mip4" -> ["roam", "mip4"]; ValueError naming an unknown one."""
    out = []
    for p in text.split(","):
        p = p.strip()
        if p not in run.POLICIES:
            raise ValueError("%r is not a policy (%s)" % (p, ", ".join(run.POLICIES)))
        if p not in out:
            out.append(p)
    return out


def policies_to_run(sc: Scenario, policies: list[str]) -> list[str]:
    """The policies `policies` asks for, plus those its claims read when roam's are checked."""
    out = list(policies)
    if claims.POLICY in policies:
        for c in claims.parse(sc.claims):
            out.extend(p for p in c.policies if p not in out)
    return out


def run_dir(out: str, name: str, policy: str, seed: int) -> str:
    return os.path.join(out, name, policy, "seed-%d" % seed)


@functools.cache
def sources_digest() -> str:
    """What a run's figures depend on besides its scenario and seed: the sources of the core and
    of the simulator, the versions of Python, numpy and numba. The same in every process that
    would give the same summary."""
    import numba
    import numpy

    h = hashlib.sha256(
        ("%s|%s|%s" % (platform.python_version(), numpy.__version__, numba.__version__)).encode()
    )
    paths = sorted(glob.glob(os.path.join(corebuild.SOURCES, "*.py")))
    paths += sorted(glob.glob(os.path.join(corebuild.SIM_DIR, "*.py")))
    host = os.path.dirname(corebuild.SIM_DIR)  # the radio model and the capture, per frame
    paths += [os.path.join(host, m) for m in ("radio.py", "radio_kernels.py", "pcap.py")]
    corebuild.hash_files(h, paths)
    return h.hexdigest()[:16]


def run_one(sc: Scenario, policy: str, seed: int, out_dir: str | None) -> tuple[dict, str, str]:
    """One run, in a worker: (summary, sources_digest(), the worker's address). Writes the run
    directory (summary, events, capture) when `out_dir` is given."""
    from distributed import get_worker

    summary = run_alone(sc, policy, seed, out_dir)
    return summary, sources_digest(), get_worker().address


def run_alone(sc: Scenario, policy: str, seed: int, out_dir: str | None) -> dict:
    """One run in a process that runs one after another: its world is freed before the next
    run starts. A world is a web of reference cycles (nodes, cores, the engine's timers) that
    only a full collection frees, which a worker otherwise rarely makes: each city run left
    its world behind (a worker's resident set grew by ~290 MiB a run, past 2 GiB by its
    seventh)."""
    summary, world = run.run(
        sc, seed, out_dir or "", policy=policy, write=out_dir is not None, jobs=1
    )
    del world
    gc.collect()
    return summary


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A Dask client: of a local cluster of `workers` processes (default: one per processor),
    one thread each, or of the existing scheduler at address `scheduler`. Closed at the end."""
    from distributed import Client, LocalCluster

    quiet = logging.ERROR  # the cluster's own chatter (start, stop, closed connections)
    if scheduler is None:
        n = workers or os.cpu_count() or 1
        # the worker processes start with Ctrl-C ignored (an ignored signal stays ignored in a
        # child): this process answers it, cancels the runs and stops them
        sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=quiet,
            )
        finally:
            signal.signal(signal.SIGINT, sigint)
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    logging.getLogger("distributed").setLevel(quiet)
    try:
        client = Client(scheduler, timeout="%ds" % CONNECT_S)
    except (OSError, TimeoutError, ValueError) as e:
        raise SweepError("cannot reach the Dask scheduler at %s: %s" % (scheduler, e)) from None
    with client:
        try:
            client.wait_for_workers(1, timeout=WAIT_WORKERS_S)
        except TimeoutError:
            raise SweepError(
                "no Dask worker joined the scheduler at %s within %d s"
                % (scheduler, WAIT_WORKERS_S)
            ) from None
        yield client


def run_all(
    client: Any,
    jobs: list[tuple[Scenario, str, int]],
    out: str,
    files: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict[tuple[str, str, int], dict]:
    """Run `jobs` ((scenario, policy, seed)) on the client's cluster; write each run's
    summary.json (and with `files` its events and capture, written by the worker) under `out`.
    Returns {(scenario name, policy, seed): summary}. `progress(done, total)` after each run."""
    from distributed import as_completed

    here = sources_digest()
    tag = uuid.uuid4().hex[:8]  # keys of this sweep's tasks, apart from any other client's
    futures = {}
    for sc, policy, seed in jobs:
        d = run_dir(out, sc.name, policy, seed)
        key = "roam-sim-%s-%s-%s-%d" % (tag, sc.name, policy, seed)
        f = client.submit(run_one, sc, policy, seed, d if files else None, key=key, pure=False)
        futures[f] = (sc.name, policy, seed)
    results = {}
    try:
        for f in as_completed(list(futures)):
            name, policy, seed = futures[f]
            what = "%s (%s, seed %d)" % (name, policy, seed)
            try:
                summary, digest, worker = f.result()
            except Exception as e:  # the run's own error, raised again here by Dask
                raise SweepError("%s failed: %s: %s" % (what, type(e).__name__, e)) from None
            if digest != here:
                raise SweepError(
                    "%s ran on worker %s, whose sources or versions differ from this tree's "
                    "(digest %s, here %s): start the workers with this tree on their Python path"
                    % (what, worker, digest, here)
                )
            d = run_dir(out, name, policy, seed)
            os.makedirs(d, exist_ok=True)
            run.write_json(os.path.join(d, "summary.json"), summary)
            results[(name, policy, seed)] = summary
            if progress is not None:
                progress(len(results), len(futures))
    finally:
        client.cancel([f for f in futures if not f.done()])
    return results


def report(
    scenarios: list[Scenario],
    seeds: list[int],
    policies: list[str],
    summaries: dict[tuple[str, str, int], dict],
) -> dict:
    """The sweep's record (sweep.json without "machine"): per scenario, per policy asked for,
    per claim its figures over the seeds (claims.over_seeds); verdicts for roam's runs only (the
    claims are the product's; other policies' figures are there for comparison)."""
    out: dict[str, Any] = {"seeds": seeds, "policies": policies, "scenarios": {}}
    for sc in scenarios:
        cl = claims.parse(sc.claims)
        ran = policies_to_run(sc, policies)
        per_policy = {}
        for policy in policies:
            judged = policy == claims.POLICY
            res = {}
            for c in cl:
                if not judged and c.figure == claims.FACTOR:
                    continue  # roam against the baseline: no figure of another policy
                values = {}
                for seed in seeds:
                    runs = {p: summaries[(sc.name, p, seed)] for p in ran}
                    values[seed] = claims.measure(c, runs, policy)
                res[c.key] = claims.over_seeds(c, values, judged)
            per_policy[policy] = {"claims": res}
        verdict = _overall(c["verdict"] for r in per_policy.values() for c in r["claims"].values())
        out["scenarios"][sc.name] = {"verdict": verdict, "policies": per_policy}
    out["verdict"] = _overall(s["verdict"] for s in out["scenarios"].values())
    return out


def _overall(verdicts):
    """ "fail" when one is, "pass" when some are and none fails, None when none was judged (no
    claims, or no roam runs asked for)."""
    got = set(verdicts)
    return "fail" if "fail" in got else ("pass" if "pass" in got else None)


def sweep(
    scenarios: list[Scenario],
    seeds: list[int],
    policies: list[str],
    out: str,
    client: Any,
    files: bool = True,
    progress: Callable[[int, int], None] | None = None,
    where: str = "",
) -> dict:
    """Run every (scenario, policy, seed), write OUT/<scenario>/<policy>/seed-N/ and
    OUT/sweep.json; return the sweep.json record. `where` says in the record where it ran."""
    names = [sc.name for sc in scenarios]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SweepError("scenario name(s) given twice: %s" % ", ".join(twice))
    jobs = [
        (sc, policy, seed)
        for sc in scenarios
        for policy in policies_to_run(sc, policies)
        for seed in seeds
    ]
    t0 = time.perf_counter()
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise SweepError("cannot create %s: %s" % (out, e.strerror)) from None
    # the workers write the run directories: a path that does not depend on their directory
    summaries = run_all(client, jobs, os.path.abspath(out), files, progress)
    record = report(scenarios, seeds, policies, summaries)
    cores: dict[str, int] = {}
    for s in summaries.values():
        cores[s["core"]] = cores.get(s["core"], 0) + 1
    record["runs"] = {"count": len(jobs), "files": files}
    record["machine"] = {
        "where": where,
        "workers": len(client.nthreads()),
        "cores": cores,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    refs = sorted(s["machine_ref_ms"] for s in summaries.values() if "machine_ref_ms" in s)
    if refs:  # the machine's speed over the sweep (run.machine_ref_ms): least, most
        record["machine"]["machine_ref_ms"] = [refs[0], refs[-1]]
    # in the record's order: seeds in order, scenarios as given, claims as in their files
    run.write_json(os.path.join(out, SWEEP_FILE), record, sort_keys=False)
    return record

"""One simulator run: build the world for a scenario, run it, write the run directory.

A run directory holds ``summary.json`` (docs/METRICS.md), ``events.jsonl`` (docs/EVENTS.md: one
JSON object per line, the core's events with node id and time, plus the simulator's own
``sim_*`` and ``app_*`` events) and ``capture.pcap`` (every frame on the air and the backbone,
LINKTYPE_RAW).
"""

import json
import os
import resource
import time

from hosttools import corebuild
from hosttools.pcap import LINKTYPE_RAW, PcapWriter
from hosttools.sim import metrics, scenario, sharing
from hosttools.sim.world import World

POLICIES = ("roam", "mip4")
# summary fields about the machine that ran it, not about the run: two runs of the same
# scenario and seed agree on everything else
MACHINE_FIELDS = ("wall_s", "jobs", "core", "peak_rss_mib", "peak_rss_total_mib", "machine_ref_ms")
# The machine's Python speed at the run, measured by a fixed loop of the simulator's kind of work
# (dict stores of small tuples), the least of REF_TURNS: this shared virtual machine ran the same
# city in 115 s one day and 71 s the next, so a wall time is read beside it (wall_s / ref).
REF_LOOP = 200000
REF_TURNS = 3


def run_figures(summary):
    """The summary without MACHINE_FIELDS."""
    return {k: v for k, v in summary.items() if k not in MACHINE_FIELDS}


def machine_ref_ms():
    """The reference loop's time on this machine now, ms (the least of REF_TURNS)."""
    best = None
    for _ in range(REF_TURNS):
        t0 = time.perf_counter()
        d = {}
        for i in range(REF_LOOP):
            d[i & 1023] = (i, i + 1)
        t = time.perf_counter() - t0
        best = t if best is None or t < best else best
    return round(best * 1000.0, 1)


def gateways(sc):
    """{node id: its configured gateway's node id} (hosts): whom a node without an agent sends
    through, for the losses' causes (metrics.attribute_losses)."""
    out = {}
    for n in sc.nodes:
        gw = (n.config or {}).get("gateway")
        if isinstance(gw, str) and gw in sc.by_id:
            out[n.id] = gw
    return out


def make_factory(policy):
    from hosttools.sim.roles import RoleFactory

    return RoleFactory(policy)


# from this many nodes on a run uses a second process when there is a second processor
# (hosttools.sim.cores; the results are the same): below it the exchange costs more than it saves
AUTO_JOBS_NODES = 200


def auto_jobs(sc):
    return 2 if (os.cpu_count() or 1) >= 2 and len(sc.nodes) >= AUTO_JOBS_NODES else 1


def run(sc, seed, out_dir, policy="roam", factory=None, progress=None, write=True, jobs=None):
    """Run scenario `sc` (a loaded Scenario) and return the summary dict. Writes the run
    directory when `write` is true. The summary is also kept on the returned world. `jobs`:
    processes to run the nodes' cores in (1 or 2; None: auto_jobs); it changes the wall time
    only, never a result."""
    if policy not in POLICIES:
        raise scenario.ScenarioError("policy must be one of %s, got %r" % (POLICIES, policy))
    if factory is None:
        factory = make_factory(policy)
    if write:
        os.makedirs(out_dir, exist_ok=True)
    pcap = PcapWriter(os.path.join(out_dir, "capture.pcap"), LINKTYPE_RAW) if write else None
    col = metrics.Collector()
    ref = machine_ref_ms()  # before the run: its garbage and caches are not the loop's
    _reset_peak_rss()
    t0 = time.perf_counter()
    try:
        if jobs is None:
            jobs = auto_jobs(sc)
        if jobs not in (1, 2):
            raise scenario.ScenarioError("jobs must be 1 or 2, got %r" % (jobs,))
        sharing.install()  # the cores of this process share decodings (sharing.py)
        world = World(sc, factory, seed, pcap=pcap, collector=col, jobs=jobs)
        col.by_addr = world.by_addr
        col.is_on = lambda idx: world.nodes[idx].on
        world.run(progress)
    finally:
        if pcap is not None:
            pcap.close()
    wall = time.perf_counter() - t0
    windows = []
    for name, w in sorted(sc.claims.get("windows", {}).items()):
        windows.append((name, tuple(w["range"]), w.get("flows")))
    recovery = sorted(sc.claims.get("recovery_after_s", {}).items())
    summary = col.summary(
        sc.flows,
        int(sc.duration_s * 1e6),
        world.stats,
        round(wall, 3),
        windows,
        recovery,
        gateways(sc),
    )
    summary["scenario"] = sc.name
    summary["seed"] = seed
    summary["policy"] = policy
    summary["nodes"] = len(sc.nodes)
    summary["jobs"] = jobs
    summary["core"] = corebuild.selected()  # "compiled" or "python" (the same results)
    summary["machine_ref_ms"] = ref
    # peak memory (resident set, MiB): this process, and with the worker's added (an upper
    # bound: a forked worker shares pages with this process)
    rss = _peak_rss_kib()
    summary["peak_rss_mib"] = round(rss / 1024.0, 1)
    worker = world.remote.peak_rss_kib if world.remote is not None else None
    summary["peak_rss_total_mib"] = round((rss + (worker or 0)) / 1024.0, 1)
    summary["air"] = dict(world.stats)
    if write:
        write_events(os.path.join(out_dir, "events.jsonl"), world, col)
        write_json(os.path.join(out_dir, "summary.json"), summary)
    world.summary = summary
    world.collector = col
    return summary, world


def _reset_peak_rss():
    """Start this process's resident-set high-water mark afresh (Linux: /proc/self/clear_refs),
    so that a process running one scenario after another (a sweep's worker) reports each run's
    own peak, not the largest of all it ran before."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # (another system: the process's peak, as getrusage gives it)


def _peak_rss_kib():
    """The resident set's high-water mark since _reset_peak_rss, in KiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def write_json(path, record, sort_keys=True):
    """Write `record` to `path` as the run's summary.json is written (indented, keys sorted
    unless not `sort_keys`), whole or not at all (a temporary file renamed)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2, sort_keys=sort_keys)
        f.write("\n")
    os.replace(tmp, path)


_PLAIN = (str, int, float, bool, type(None))  # values JSON takes as they are


def _jsonable(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


def event_records(world, col):
    """The run's events as dicts in time order: core events, then (merged by time) the
    application sends and deliveries."""
    recs = []
    plain = _PLAIN
    for t_ms, node, name, fields in world.events:
        r = {"t": t_ms, "node": node, "event": name}
        for k, v in fields.items():
            if k not in r:
                r[k] = v if type(v) in plain else _jsonable(v)
        recs.append(r)
    flows = world.sc.flows
    for (f, s), t in col.sent.items():
        recs.append(
            {
                "t": t // 1000,
                "node": flows[f].src,
                "event": "app_send",
                "flow": f,
                "seq": s,
                "dst": flows[f].dst,
            }
        )
    for (f, s), t in col.deliv.items():
        recs.append(
            {
                "t": t // 1000,
                "node": flows[f].dst,
                "event": "app_deliver",
                "flow": f,
                "seq": s,
                "src": flows[f].src,
            }
        )
    recs.sort(key=lambda r: r["t"])  # stable: same-time events keep their order
    return recs


def write_events(path, world, col):
    tmp = path + ".tmp"
    # one encoder for every line (json.dumps with options makes a new one per call)
    encode = json.JSONEncoder(separators=(",", ":")).encode
    with open(tmp, "w") as f:
        for r in event_records(world, col):
            f.write(encode(r))
            f.write("\n")
    os.replace(tmp, path)

"""`roam sim`: virtual-time field tests (docs/SIMULATOR.md)."""

import importlib.util
import os
import time

import click

from hosttools.errors import RoamError, RoamUsageError
from hosttools.sim import claims
from hosttools.sim import scenario as scenario_mod

TABLE_ROWS = (
    ("delivery_ratio", "delivery ratio", "{:.4%}"),
    ("sent", "sent", "{}"),
    ("delivered", "delivered", "{}"),
    ("handoffs", "hand-offs", "{}"),
    ("interruption_ms.median", "interruption median (ms)", "{:.1f}"),
    ("interruption_ms.p95", "interruption p95 (ms)", "{:.1f}"),
    ("interruption_ms.max", "interruption max (ms)", "{:.1f}"),
    ("lost_in_handoff", "lost in hand-off", "{}"),
    ("lost_by_cause", "lost by cause", "{}"),
    ("control_frames", "control frames", "{}"),
    ("control_bytes", "control bytes", "{}"),
    ("publications_per_binding_change", "publications / binding change", "{:.3f}"),
    ("convergence_ms.median", "convergence median (ms)", "{:.1f}"),
    ("convergence_ms.p95", "convergence p95 (ms)", "{:.1f}"),
    ("forged_accepted", "forged accepted", "{}"),
    ("replayed_accepted", "replayed accepted", "{}"),
    ("sim_s", "simulated (s)", "{:.1f}"),
    ("wall_s", "wall (s)", "{:.2f}"),
    ("machine_ref_ms", "machine reference (ms)", "{:.1f}"),
    ("core", "core", "{}"),
)


def _get(summary, dotted):
    return claims.at(summary, dotted.split("."))


def _fmt(v, fmt):
    if v is None:
        return "-"
    if isinstance(v, dict):  # counts by name: the ones that are not 0
        return ", ".join("%s %s" % kv for kv in v.items() if kv[1]) or "0"
    try:
        return fmt.format(v)
    except (ValueError, TypeError):
        return str(v)


def _load(name, duration):
    try:
        return scenario_mod.load(name, duration_s=duration)
    except scenario_mod.UnknownScenario as e:
        raise RoamUsageError(str(e)) from None
    except (scenario_mod.ScenarioError, OSError) as e:
        raise RoamError(str(e)) from None


def _run(sc, seed, out, policy, quiet=False, jobs=None):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from hosttools.sim import run as run_mod

    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise RoamError("cannot create %s: %s" % (out, e.strerror)) from None
    total = sc.duration_s
    start = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("sim {task.fields[sim]:>7.1f} s / real {task.fields[real]:>6.1f} s"),
        TimeElapsedColumn(),
        disable=quiet,
        transient=False,
    ) as bar:
        task = bar.add_task(
            "%s (%s, seed %d)" % (sc.name, policy, seed), total=total, sim=0.0, real=0.0
        )

        def progress(t_us):
            bar.update(task, completed=t_us / 1e6, sim=t_us / 1e6, real=time.perf_counter() - start)

        try:
            summary, _world = run_mod.run(
                sc, seed, out, policy=policy, progress=progress, jobs=jobs
            )
        except (scenario_mod.ScenarioError, ValueError) as e:
            raise RoamError("scenario %s: %s" % (sc.name, e)) from None
    return summary


# The simulator's compiled machinery, pyproject.toml's `sim` extra: the radio's kernels (numba),
# the compiled core (Cython, hosttools/corebuild.py) and `roam sim sweep`'s cluster (Dask). A
# roam installed without it flashes, deploys and runs the lab; `roam sim` says how to add it.
SIM_EXTRA = ("numba", "Cython", "dask", "distributed")
# pipx inject, not `pipx install 'roam[sim]'`: it adds to roam's venv whatever roam was
# installed from (a wheel, a checkout), where an install by name would fetch another roam
INSTALL_SIM = (
    "pip install 'roam[sim]' (a pipx install: pipx inject roam numba cython 'dask[distributed]')"
)


def missing_extra():
    """The modules of the `sim` extra this Python cannot import (found, not imported)."""
    return [name for name in SIM_EXTRA if importlib.util.find_spec(name) is None]


@click.group(name="sim")
def sim():
    """Virtual-time field tests: the protocol core under a radio model, mobility and faults."""
    missing = missing_extra()
    if missing:
        raise RoamError(
            "the simulator needs %s, which roam installs with its `sim` extra: %s"
            % (", ".join(missing), INSTALL_SIM)
        )


@sim.command("scenarios")
def scenarios_cmd():
    """List the built-in scenarios."""
    for name in scenario_mod.builtin_names():
        _n, desc = scenario_mod.describe(scenario_mod.builtin_path(name))
        click.echo("%-16s %s" % (name, " ".join(desc.split())))


_seed = click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
_out = click.option(
    "--out", "out", type=click.Path(file_okay=False), required=True, help="Run directory to write."
)
_duration = click.option(
    "--duration",
    # checked here, so that a bad value is blamed on the option, not on the scenario file
    type=click.FloatRange(min=0.001),
    default=None,
    metavar="SECONDS",
    help="Simulated seconds (overrides the scenario's duration_s).",
)


@sim.command("run")
@click.argument("scenario")
@_seed
@_out
@click.option(
    "--policy",
    type=click.Choice(["roam", "mip4"]),
    default="roam",
    show_default=True,
    help="roam, or the plain Mobile IPv4 baseline.",
)
@_duration
@click.option(
    "--jobs",
    type=click.IntRange(1, 2),
    default=None,
    help="Processes for the nodes' cores (same results; default: 2 from 200 nodes on).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def run_cmd(scenario, seed, out, policy, duration, jobs, quiet):
    """Run SCENARIO (a built-in name or a TOML file); write summary.json, events.jsonl and
    capture.pcap into --out."""
    sc = _load(scenario, duration)
    summary = _run(sc, seed, out, policy, quiet, jobs)
    for key, label, fmt in TABLE_ROWS:
        click.echo("%-32s %s" % (label, _fmt(_get(summary, key), fmt)))
    note = core_note(summary.get("core"))
    if note:
        click.echo(note, err=True)
    click.echo("wrote %s" % os.path.join(out, "summary.json"))


def core_note(core):
    """A line for runs whose core (summary.json's ``core``) ran from the Python sources without
    being asked to (ROAM_CORE=python): most often they changed since the last build. Their wall
    time is not the compiled simulator's (the city's is some 15-20 % more). None otherwise."""
    if core != "python" or os.environ.get("ROAM_CORE") == "python":
        return None
    return (
        "roam: the core ran from its Python sources, not compiled, so wall (s) is not the "
        "simulator's (python -m hosttools.corebuild --where says why)"
    )


@sim.command("compare")
@click.argument("scenario")
@_seed
@_out
@_duration
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def compare_cmd(scenario, seed, out, duration, quiet):
    """Run SCENARIO with roam and with the Mobile IPv4 baseline; write OUT/roam and OUT/mip4
    and print the figures side by side."""
    sc = _load(scenario, duration)
    res = {}
    for policy in ("roam", "mip4"):
        res[policy] = _run(sc, seed, os.path.join(out, policy), policy, quiet)
    click.echo("%-32s %16s %16s" % ("", "roam", "mip4"))
    for key, label, fmt in TABLE_ROWS:
        click.echo(
            "%-32s %16s %16s"
            % (label, _fmt(_get(res["roam"], key), fmt), _fmt(_get(res["mip4"], key), fmt))
        )


def _parsed(parse):
    """A click callback: `parse(value)` from hosttools.sim.sweep, its ValueError a bad value."""

    def callback(_ctx, _param, value):
        from hosttools.sim import sweep as sweep_mod

        try:
            return getattr(sweep_mod, parse)(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None

    return callback


def _num(v):
    if v is None:
        return "-"
    return str(v) if isinstance(v, int) else "%.6g" % v


def sweep_table(record):
    """The sweep's record as a rich Table: a row per scenario, policy and claim."""
    from rich.table import Table

    table = Table(title="claims over seeds %s" % _seed_list(record["seeds"]))
    for col in ("scenario", "policy", "claim", "limit", "min", "median", "max"):
        table.add_column(
            col, justify="right" if col in ("limit", "min", "median", "max") else "left"
        )
    table.add_column("failing seeds")
    table.add_column("verdict")
    for name, sc in record["scenarios"].items():
        for policy, res in sc["policies"].items():
            for c in res["claims"].values():
                fail = c["failing_seeds"]
                verdict = c["verdict"] or "-"
                style = {"fail": "bold red", "pass": "green"}.get(verdict, "")
                table.add_row(
                    name,
                    policy,
                    c["figure"],
                    _limit(c),
                    _num(c["min"]),
                    _num(c["median"]),
                    _num(c["max"]),
                    "%d: %s" % (len(fail), _seed_list(fail)) if fail else "0",
                    "[%s]%s[/]" % (style, verdict) if style else verdict,
                )
    return table


def _limit(c):
    """ ">= 0.999", or with an allowance ">= 0.999 (1 may miss; all >= 0.998)"."""
    op = ">=" if c["bound"] == "min" else "<="
    text = "%s %s" % (op, _num(c["limit"]))
    if c.get("floor") is not None:
        text += " (%d may miss; all %s %s)" % (c["may_fail"], op, _num(c["floor"]))
    return text


def _seed_list(seeds):
    """[1, 2, 3, 7] -> "1-3, 7"."""
    parts = []
    for s in seeds:
        if parts and parts[-1][1] == s - 1:
            parts[-1][1] = s
        else:
            parts.append([s, s])
    return ", ".join(str(a) if a == b else "%d-%d" % (a, b) for a, b in parts)


@sim.command("sweep")
@click.argument("scenarios", nargs=-1, required=True)
@click.option(
    "--seeds",
    default="1-20",
    show_default=True,
    callback=_parsed("parse_seeds"),
    help="Seeds to run: a range 1-20, or a list 1,4,7-9.",
)
@click.option(
    "--policy",
    "policies",
    default="roam",
    show_default=True,
    callback=_parsed("parse_policies"),
    help="Policies to run, comma-separated (roam,mip4); the claims are roam's.",
)
@_out
@_duration
@click.option(
    "--scheduler",
    default=None,
    help="Address of an existing Dask scheduler (tcp://host:port); default: a local cluster.",
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=None,
    help="Processes of the local cluster (default: one per processor).",
)
@click.option(
    "--no-files", is_flag=True, help="Keep only each run's summary.json (no events, no capture)."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def sweep_cmd(scenarios, seeds, policies, out, duration, scheduler, workers, no_files, quiet):
    """Run each SCENARIO (built-in names or TOML files) over --seeds on a Dask cluster; write
    OUT/<scenario>/<policy>/seed-N/ and OUT/sweep.json (every claim's min, median and max over
    the seeds, the seeds that fail, a verdict). Exit status 1 when a claim fails."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hosttools.sim import sweep as sweep_mod

    if scheduler is not None and workers is not None:
        raise RoamUsageError("--workers sizes the local cluster: not with --scheduler")
    scs = [_load(name, duration) for name in scenarios]
    where = scheduler or "local cluster (%d workers)" % (workers or os.cpu_count() or 1)
    with Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeElapsedColumn(),
        disable=quiet,
    ) as bar:
        task = bar.add_task("sweep", total=None)

        def progress(done, total):
            bar.update(task, completed=done, total=total)

        try:
            with sweep_mod.dask_client(scheduler, workers) as client:
                record = sweep_mod.sweep(
                    scs, seeds, policies, out, client, not no_files, progress, where
                )
        except sweep_mod.SweepError as e:
            raise RoamError(str(e)) from None
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(sweep_table(record))
    on_sources = record["machine"]["cores"].get("python", 0)
    note = core_note("python") if on_sources else None
    if note:
        click.echo("%s (%d of the runs)" % (note, on_sources), err=True)
    click.echo("wrote %s" % os.path.join(out, sweep_mod.SWEEP_FILE))
    return 1 if record["verdict"] == "fail" else 0

"""A scenario's claims: which figure of a run each one reads, and whether it holds.

The ``[claims]`` table of a scenario file (docs/SIMULATOR.md, "Claims") holds two kinds of keys:

* settings of what the summary measures (``SETTINGS``): ``windows`` and ``recovery_after_s``;
* claims: ``<figure>_min = x`` (the figure must be at least x) or ``<figure>_max = x`` (at most
  x), or a table ``{ limit = x, may_fail = n, floor = y }``: over a sweep's seeds at most n may
  miss x, and none may miss y (walk's delivery: 99.9 % in 19 of 20 seeds, 99.8 % in all),
  where ``<figure>`` is one of

  - a number of ``summary.json`` by its key (``SCALARS``): ``delivery_ratio``,
    ``forged_accepted``, ``publications_per_binding_change``, ``wall_s``, ...;
  - ``<distribution>_<statistic>_ms`` (``DISTRIBUTIONS``): ``interruption_median_ms`` is
    ``interruption_ms.median``;
  - ``<window>_<figure>`` for a window of ``windows`` (``WINDOW_FIGURES``):
    ``cell_delivery_ratio`` is ``windows.cell.delivery_ratio``;
  - ``<instant>_recovery_ms`` for an instant of ``recovery_after_s``: ``heal_recovery_ms`` is
    ``recovery_ms.heal``;
  - ``mip4_interruption_factor`` (``FACTOR``): the Mobile IPv4 baseline's median interruption
    over roam's (roam's taken as at least 1 ms: it is often 0), same scenario and seed.

Claims are the product's: they are checked on the runs with the ``roam`` policy (``POLICY``); a
claim that compares reads the baseline's run of the same seed too (``Claim.policies``). A figure
that is null (nothing to measure, never recovered) fails its claim. `measure` and `holds` are the
one place that reads a claim's figure and decides whether it holds; `over_seeds` sums a claim up
over seeds (hosttools/sim/sweep.py).
"""

from __future__ import annotations

import statistics
from typing import Any, NamedTuple

from hosttools.sim.counters import ATTACK_COUNTERS

POLICY = "roam"  # the policy the claims are about
BASELINE = "mip4"
SETTINGS = ("windows", "recovery_after_s")
BOUNDS = ("min", "max")
SCALARS = (
    "delivery_ratio",
    "sent",
    "delivered",
    "in_flight",
    "undelivered",
    "duplicates",
    "handoffs",
    "lost_in_handoff",
    "control_frames",
    "control_bytes",
    "publications",
    "binding_changes",
    "publications_per_binding_change",
    "retransmissions",
    "acks",
    "ack_entries",
    *ATTACK_COUNTERS,  # the attacker's (hosttools/sim/counters.py, docs/METRICS.md)
    "wall_s",
    "peak_rss_mib",
    "peak_rss_total_mib",
    "crashes",
    "crash_lost",
    "crash_stale",
    "crash_stale_after_recovery",
)
DISTRIBUTIONS = {
    "interruption": ("median", "p95", "max"),
    "convergence": ("median", "p95"),
    "crash_recovery": ("median", "p95", "max"),
}
WINDOW_FIGURES = ("delivery_ratio", "sent", "delivered")
FACTOR = "mip4_interruption_factor"


class ClaimError(ValueError):
    """A key of [claims] that is neither a setting nor a claim on a known figure."""


class Claim(NamedTuple):
    key: str  # as in the file: "delivery_ratio_min"
    figure: str  # "delivery_ratio"
    bound: str  # "min" (figure >= limit) or "max" (figure <= limit)
    limit: float
    path: tuple[str, ...]  # where the figure is in a summary; () for FACTOR
    policies: tuple[str, ...]  # the runs of a seed it reads
    may_fail: int = 0  # seeds of a sweep that may miss the limit ...
    floor: float | None = None  # ... if none misses this (None: no allowance)


def parse(table: dict[str, Any]) -> list[Claim]:
    """The claims of a [claims] table, in the file's order; ClaimError names a bad key."""
    windows = table.get("windows", {})
    instants = table.get("recovery_after_s", {})
    out = []
    for key, limit in table.items():
        if key in SETTINGS:
            continue
        figure, _, bound = key.rpartition("_")
        if bound not in BOUNDS or not figure:
            raise ClaimError(
                "%r is not a claim: a claim is <figure>_min or <figure>_max (settings: %s)"
                % (key, ", ".join(SETTINGS))
            )
        may_fail, floor = 0, None
        if isinstance(limit, dict):
            limit, may_fail, floor = _allowance(key, bound, limit)
        if isinstance(limit, bool) or not isinstance(limit, (int, float)):
            raise ClaimError("%s must be a number, got %r" % (key, limit))
        path = _path(figure, windows, instants)
        if path is None:
            raise ClaimError(
                "%s: no figure %r (docs/SIMULATOR.md, Claims: a number of summary.json, "
                "<distribution>_<statistic>_ms, <window>_<figure>, <instant>_recovery_ms or %s)"
                % (key, figure, FACTOR)
            )
        policies = (POLICY, BASELINE) if figure == FACTOR else (POLICY,)
        out.append(Claim(key, figure, bound, limit, path, policies, may_fail, floor))
    return out


def _allowance(key, bound, table):
    """(limit, may_fail, floor) of a claim written as a table; ClaimError when it is not one."""
    unknown = sorted(set(table) - {"limit", "may_fail", "floor"})
    if unknown or set(table) != {"limit", "may_fail", "floor"}:
        raise ClaimError(
            "%s: a claim table is { limit = x, may_fail = n, floor = y }, got %r" % (key, table)
        )
    limit, may_fail, floor = table["limit"], table["may_fail"], table["floor"]
    for name, v in (("limit", limit), ("floor", floor)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ClaimError("%s: %s must be a number, got %r" % (key, name, v))
    if isinstance(may_fail, bool) or not isinstance(may_fail, int) or may_fail < 1:
        raise ClaimError("%s: may_fail must be a whole number >= 1, got %r" % (key, may_fail))
    if (floor > limit) if bound == "min" else (floor < limit):
        raise ClaimError(
            "%s: the floor (%r) must be %s the limit (%r)"
            % (key, floor, "below" if bound == "min" else "above", limit)
        )
    return limit, may_fail, floor


def _path(figure, windows, instants):
    if figure == FACTOR:
        return ()
    if figure in SCALARS:
        return (figure,)
    for dist, stats in DISTRIBUTIONS.items():
        for stat in stats:
            if figure == "%s_%s_ms" % (dist, stat):
                return (dist + "_ms", stat)
    for name in windows:
        for key in WINDOW_FIGURES:
            if figure == "%s_%s" % (name, key):
                return ("windows", name, key)
    for name in instants:
        if figure == "%s_recovery_ms" % name:
            return ("recovery_ms", name)
    return None


def at(summary: dict, path) -> Any:
    """The value at `path` (keys) in a summary, None where it has none."""
    v: Any = summary
    for part in path:
        if not isinstance(v, dict):
            return None
        v = v.get(part)
    return v


def measure(claim: Claim, runs: dict[str, dict], policy: str = POLICY) -> float | None:
    """The claim's figure in `runs` ({policy: summary} of one scenario and seed), read on the
    run of `policy` (FACTOR: always roam's against the baseline's)."""
    if claim.figure == FACTOR:
        base = at(runs[BASELINE], ("interruption_ms", "median"))
        own = at(runs[POLICY], ("interruption_ms", "median"))
        return None if base is None or own is None else base / max(1.0, own)
    return at(runs[policy], claim.path)


def holds(claim: Claim, value: float | None, limit: float | None = None) -> bool:
    """True when `value` meets the claim's limit (or `limit`: its floor) on one seed."""
    if value is None:
        return False
    if limit is None:
        limit = claim.limit
    return value >= limit if claim.bound == "min" else value <= limit


def over_seeds(claim: Claim, values: dict[int, float | None], judged: bool = True) -> dict:
    """A claim's figure over seeds ({seed: figure}): min, median and max of the figures
    measured, the seeds on which the claim does not hold, and the verdict ("pass" when it holds
    on every seed, or on all but `may_fail` with none below the floor; "fail"; None when not
    `judged`: another policy's figures, for comparison)."""
    got = [v for v in values.values() if v is not None]
    failing = sorted(s for s, v in values.items() if not holds(claim, v))
    if claim.floor is None:
        ok = not failing
    else:
        below = [s for s in failing if not holds(claim, values[s], claim.floor)]
        ok = len(failing) <= claim.may_fail and not below
    verdict = ("pass" if ok else "fail") if judged else None
    return {
        "figure": claim.figure,
        "bound": claim.bound,
        "limit": claim.limit,
        "may_fail": claim.may_fail,
        "floor": claim.floor,
        "min": min(got) if got else None,
        "median": statistics.median(got) if got else None,
        "max": max(got) if got else None,
        "failing_seeds": failing,
        "verdict": verdict,
        "values": {str(s): values[s] for s in sorted(values)},
    }

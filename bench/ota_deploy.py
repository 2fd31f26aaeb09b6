"""A changed firmware deployed over the air to the 12 boards of the `walk` lab, every cable
pulled, while the walk and its flows run (issue "Over-the-air deploy").

Every step is a real `roam` command: `roam lab up`, `roam deploy` and `roam provision` over USB,
`roam lab unplug --all`, `roam lab start`; 10 s into the walk, `roam deploy --ota --firmware
DIR` with this checkout's firmware changed by one line (a new version: every module's hash
stays, driver.py's changes, so the set's hash changes and the whole set is sent and checked);
then `roam devices --ota --json`. That deploy is repeated (``--deploys N``, 5 by default, each
time a new version, 5 s after the last one ended) in the same walk: a figure is a distribution
over the deploys (min, median, max), and the goals hold on every one of them.

Figures:
* the deploy's wall time, from the command's start to every board running the new version past
  its health mark (goal: <= 60 s for the ~100 KB of .mpy on 12 boards);
* the boards running the new version, by `roam devices --ota --json` and by their own log (the
  console's `start` line names the set) (goal: 12 of 12);
* a firmware that raises at import, deployed to one board: the boots until it runs the old
  version again (goal: <= 3), the time the command takes to say so, `roam devices --ota`
  reporting the rollback;
* delivery of the running flows, from the air's captures (the datagrams the air saw sent, and
  those it delivered to the destination's radio): while the set is sent to the boards
  (staging: the update shares the air with the flows), and in a window as long before the
  deploy (the walk's own losses, at hand-offs), (goal: >= 99 % while staging); the cost of
  the switch itself (every board restarts once): datagrams lost from the first board's restart
  until every board runs again, and that outage's length; over the whole deploy, from the
  command's start until every board runs again (goal: >= 99 %); and after it, until the next
  deploy starts (goal: >= 99 %: a node back without a working binding shows here).

    python -m bench.ota_deploy [--deploys N]    # writes out/bench/ota_deploy.json
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import field_common as fc  # noqa: E402
from bench.common import figure, firmware_variant, roam, walk_scenario, write_result  # noqa: E402

SPEED = 6
FLOW_START_S = 18  # scenario seconds: 3 s into the walk at 6x
DEPLOY_AT_S = 10  # real seconds into the walk
DEPLOY_EVERY_S = 5  # real seconds between one deploy's end and the next one's start
AFTER_LAST_S = 15  # and after the last one, before the broken firmware's deploy: a window
# after it about as long as the others' (a few seconds hold too few datagrams for a ratio)


def scenario(out: Path, walk_s: int) -> Path:
    text = walk_scenario().replace("duration_s = 300\n", "duration_s = %d\n" % (walk_s * SPEED))
    for iv in ("100", "200"):
        text = text.replace(
            "interval_ms = %s\n" % iv, "interval_ms = %s\nstart_s = %d\n" % (iv, FLOW_START_S)
        )
    path = out / "walk_ota.toml"
    path.write_text(text)
    return path


def changed_firmware(dst: Path) -> Path:
    return firmware_variant(dst, '\nFIELD_NOTE = "deployed over the air: %s"\n' % dst.name)


def flows_between(lab: Path, sc, boards, t0: float, t1: float, grace: float = 1.0):
    """(sent, delivered) of every flow: datagrams the air saw sent in [t0, t1], and of those,
    the ones delivered to the destination by t1 + grace."""
    sent_n = delivered_n = 0
    for f in sc.flows:
        src, dst = boards[f.src], boards[f.dst]
        sent, _ = fc.air_flow(lab, src["address"], dst["address"], dst["mac"], t0, t1)
        _, got = fc.air_flow(lab, src["address"], dst["address"], dst["mac"], t0, t1 + grace)
        sent_n += len(sent)
        delivered_n += len(sent & got)
    return sent_n, delivered_n


def console_times(console: Path, ev: str, after: float) -> dict[str, list[tuple[float, dict]]]:
    """Per board, (host time, line) of its console's `ev` lines after host time ``after``."""
    out: dict[str, list[tuple[float, dict]]] = {}
    for p in console.glob("*.jsonl"):
        for ln in p.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(ln)
            except ValueError:
                continue
            j = rec.get("json")
            if isinstance(j, dict) and j.get("ev") == ev and rec["host"] >= after:
                out.setdefault(p.stem, []).append((rec["host"], j))
    return out


def broken_deploy(out: Path, lab: Path, fleet: str, keys: str, board: str = "a2") -> dict:
    """A firmware that raises at import, deployed to one board: how it ends."""
    fw = firmware_variant(out / "broken", '\nraise RuntimeError("broken on purpose")\n')
    log = lab / "console" / (board + ".log")
    mark = log.stat().st_size
    to_board = ("--board", board, "--fleet", fleet, "--keys", keys)
    t0 = time.monotonic()
    r = roam("deploy", "--ota", "--firmware", str(fw), *to_board, check=False)
    took = time.monotonic() - t0
    with open(log, "rb") as f:
        f.seek(mark)
        text = f.read().decode("utf-8", "replace")
    rows = json.loads(roam("devices", "--ota", "--json", *to_board, check=False).stdout)
    return {
        "exit": r.returncode,
        "error": r.stderr.strip().splitlines()[:1],
        "seconds": took,
        "boots": text.count("rst:"),  # every start after the switch, the rollback's included
        "crashes": text.count("broken on purpose"),
        "logged_rollback": '"ev":"ota_rollback"' in text,
        "reported": rows[0].get("rollback") if rows else None,
    }


def one_deploy(lab: Path, fw: Path, fleet: str, keys: str) -> dict:
    """One `roam deploy --ota` of ``fw`` while the walk runs: its times and what runs after."""
    t_a = time.time()
    r = roam("deploy", "--ota", "--firmware", str(fw), "--fleet", fleet, "--keys", keys)
    t_b = time.time()
    time.sleep(2)
    after = json.loads(
        roam("devices", "--ota", "--json", "--fleet", fleet, "--keys", keys, check=False).stdout
    )
    resets = console_times(lab / "console", "ota_reset", t_a)
    starts = console_times(lab / "console", "start", t_a)
    t_switch = min(t for v in resets.values() for t, _ in v)
    new_fw = {row["fw"] for row in after if row.get("reached")}
    running = [
        name
        for name, v in starts.items()
        if any(j.get("slot") in ("a", "b") and (j.get("fw") or "")[:16] in new_fw for _, j in v)
    ]
    t_back = max(min(t for t, _ in starts[n]) for n in running) if running else t_b
    m = re.search(r"deploy --ota: (\d+) boards in ([\d.]+)s", r.stdout)
    return {
        "deploy_s": float(m.group(2)) if m else t_b - t_a,
        "t_start": t_a,
        "t_switch": t_switch,
        "t_back": t_back,
        "staging_s": t_switch - t_a,
        "switch_outage_s": t_back - t_switch,
        "running_new_by_status": sum(
            1
            for row in after
            if row.get("reached") and row["fw"] in new_fw and row["slot"] != "root"
        ),
        "running_new_by_log": len(running),
        "versions_after": sorted(new_fw),
        "stdout": r.stdout.splitlines()[-13:],
    }


def delivery(lab: Path, sc, boards: dict, runs: list[dict]) -> None:
    """Each deploy's flows, from the air's captures: before the first deploy (a window as long
    as its staging: the walk's own losses), while staging, across the switch, over the whole
    deploy, and after it until the next deploy starts (the last: AFTER_LAST_S), where a node
    that came back without a working binding shows."""
    for i, d in enumerate(runs):
        t_a, t_switch, t_back = d["t_start"], d["t_switch"], d["t_back"]
        until = runs[i + 1]["t_start"] if i + 1 < len(runs) else d["t_next"]
        d["staging_flows"] = flows_between(lab, sc, boards, t_a, t_switch - 1.0)
        d["switch_flows"] = flows_between(lab, sc, boards, t_switch - 0.2, t_back + 2.0)
        d["whole_flows"] = flows_between(lab, sc, boards, t_a, t_back + 2.0)
        d["after_flows"] = flows_between(lab, sc, boards, t_back + 2.0, until - 1.0)
    t_a = runs[0]["t_start"]
    runs[0]["baseline_flows"] = flows_between(
        lab, sc, boards, t_a - runs[0]["staging_s"], t_a - 1.0
    )


def run(deploys: int) -> dict:
    out = REPO / "out" / "bench" / "ota_deploy"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    lab = out / "lab"
    fleet, keys = str(lab / "fleet.toml"), str(lab / "keys.toml")
    # a new version for every deploy: each one changes what every board runs
    versions = [changed_firmware(out / ("v%d" % i)) for i in range(deploys)]
    walk_s = DEPLOY_AT_S + deploys * (DEPLOY_EVERY_S + 40) + AFTER_LAST_S + 60
    roam("lab", "up", str(scenario(out, walk_s)), "--dir", str(lab), "--speed", str(SPEED))
    try:
        roam("deploy", "--fleet", fleet, timeout=300)
        roam("provision", "--fleet", fleet, "--keys", keys)
        roam("lab", "unplug", "--all", "--dir", str(lab))
        before = json.loads(
            roam("devices", "--ota", "--json", "--fleet", fleet, "--keys", keys, check=False).stdout
        )
        st = json.loads(roam("lab", "status", "--json", "--dir", str(lab)).stdout)
        from hosttools.sim import scenario as sc_mod

        sc = sc_mod.load(str(out / "walk_ota.toml"))
        boards = {b["name"]: b for b in st["boards"]}
        roam("lab", "start", "--dir", str(lab))
        time.sleep(DEPLOY_AT_S)
        runs = []
        for fw in versions:
            runs.append(one_deploy(lab, fw, fleet, keys))
            time.sleep(DEPLOY_EVERY_S)
        time.sleep(AFTER_LAST_S - DEPLOY_EVERY_S)
        runs[-1]["t_next"] = time.time()  # the broken firmware's deploy breaks the flows
        rollback = broken_deploy(out, lab, fleet, keys)
    finally:
        roam("lab", "down", "--dir", str(lab), check=False)
    delivery(lab, sc, boards, runs)
    return {
        "boards": len(boards),
        "set_bytes": sum(p.stat().st_size for p in versions[0].rglob("*.py")),
        "version_before": sorted({row.get("fw") for row in before if row.get("reached")}),
        "deploys": runs,
        "rollback": rollback,
    }


def share(p: tuple[int, int]) -> float:
    return p[1] / p[0] if p[0] else 0.0


def spread(values: list[float], unit: str, digits: int) -> dict[str, dict]:
    """min, median and max of one figure over the deploys."""
    import statistics

    return {
        "min": figure(round(min(values), digits), unit),
        "median": figure(round(statistics.median(values), digits), unit),
        "max": figure(round(max(values), digits), unit),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--deploys", type=int, default=5, help="deploys in a row in one walk (default 5)"
    )
    args = ap.parse_args()
    if args.deploys < 1:
        ap.error("--deploys must be at least 1")
    r = run(args.deploys)
    print(json.dumps(r, indent=1))
    runs, rb = r["deploys"], r["rollback"]
    per = {
        "deploy_wall": ([d["deploy_s"] for d in runs], "s", 1),
        "staging": ([d["staging_s"] for d in runs], "s", 1),
        "running_new_by_status": ([d["running_new_by_status"] for d in runs], "boards", 0),
        "running_new_by_log": ([d["running_new_by_log"] for d in runs], "boards", 0),
        "delivery_while_staging": ([share(d["staging_flows"]) for d in runs], "ratio", 4),
        "delivery_whole_deploy": ([share(d["whole_flows"]) for d in runs], "ratio", 4),
        "datagrams_while_staging": ([d["staging_flows"][0] for d in runs], "datagrams", 0),
        "delivery_after_deploy": ([share(d["after_flows"]) for d in runs], "ratio", 4),
        "delivery_across_switch": ([share(d["switch_flows"]) for d in runs], "ratio", 4),
        "switch_outage": ([d["switch_outage_s"] for d in runs], "s", 2),
    }
    figures = {"boards": figure(r["boards"], "boards"), "deploys": figure(len(runs), "deploys")}
    for name, (values, unit, digits) in per.items():
        for which, fig in spread(values, unit, digits).items():
            figures["%s_%s" % (name, which)] = fig
    figures["delivery_before_first_deploy"] = figure(
        round(share(runs[0]["baseline_flows"]), 4), "ratio"
    )
    figures["broken_fw_boots_to_rollback"] = figure(rb["boots"], "boots")
    figures["broken_fw_rollback_time"] = figure(round(rb["seconds"], 1), "s")
    write_result("ota_deploy", figures)
    ok = (
        all(d["deploy_s"] <= 60 for d in runs)
        and all(d["running_new_by_status"] == r["boards"] for d in runs)
        and all(d["running_new_by_log"] == r["boards"] for d in runs)
        and all(share(d["staging_flows"]) >= 0.99 for d in runs)
        and all(share(d["whole_flows"]) >= 0.99 for d in runs)
        and all(share(d["after_flows"]) >= 0.99 for d in runs)
        and rb["exit"] != 0
        and rb["boots"] <= 3
        and rb["logged_rollback"]
        and (rb["reported"] or {}).get("what") == "firmware"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

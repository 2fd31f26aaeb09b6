"""Over-the-air deploys interrupted at random moments (issue "Over-the-air deploy").

A lab of five virtual boards with every cable pulled (the agents a1 and a2, the router, the home
agent on the access point; the mobile node m1 standing between a1 and a2, reached by ESP-NOW
through an agent), and two firmware versions, A and B (this checkout's firmware, one line added
to driver.py). Each round starts `roam deploy --ota` of the version the boards do not run and,
at a random moment of it, does one of:

* power cut: a random board loses power for 0.3-2 s (the lab's power_off / power_on);
* air cut: a random board's radio hears and reaches nothing for 1-5 s (ESP-NOW and Wi-Fi);
* laptop killed: the `roam deploy --ota` process gets SIGKILL.

Then, once every board answers again, for every board:

* the version it runs (STATUS over the air) is the one its fw/state.json names, and is A, B or
  the one `roam deploy` put on the root over USB;
* the files of that version on its flash (the slot fw/a or fw/b, or the root) are exactly that
  version's set: every file there, with its SHA-256, none missing, none extra (never a mix);

and then `roam deploy --ota` of the same version runs uninterrupted and must complete (every
board running it, healthy). Figures: rounds, rounds where a board ran a mix or a version other
than the two (goal: 0), rounds whose next deploy did not complete (goal: 0), the time the next
deploys took.

The boards' health mark comes after 3 s here (``healthy_ms``, written into the fleet file before
provisioning) so that 50 rounds take minutes, not an hour.

    python -m bench.ota_interrupt [--rounds 50] [--seed 1]   # writes out/bench/ota_interrupt.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import common  # noqa: E402
from bench.common import ROAM, BenchError, figure, roam, write_result  # noqa: E402
from hosttools.ota.plan import BOOTSTRAP  # noqa: E402

NODES = "a1,a2,r1,ha,m1"
HEALTHY_MS = 3000


def scenario(out: Path) -> Path:
    """walk.toml with m1 standing between a1 and a2 (in reach of both)."""
    text = common.walk_scenario()
    old = (
        'mobility = { kind = "waypoints", points = [[-30, 10], [390, 10]], speed = 1.4, '
        'repeat = "pingpong" }'
    )
    assert text.count(old) == 1, "walk.toml changed"
    text = text.replace(old, "pos = [60, 10]").replace("duration_s = 300", "duration_s = 36000")
    path = out / "standing.toml"
    path.write_text(text)
    return path


def firmware(out: Path, name: str) -> Path:
    return common.firmware_variant(out / name, '\nFIELD_NOTE = "version %s"\n' % name)


def version_files(src: Path) -> dict[str, list[dict[str, str]]]:
    """{set hash (16 hex): [{path: sha256 hex}]} of a firmware directory: what a slot running
    it must hold, exactly, in each form an update sends it (as .mpy, as source, and as one
    romfs image for a board with a romfs partition: firmware/romimage.py)."""
    from hosttools.deploy import plans_for
    from hosttools.ota import plan as ota_plan

    out: dict[str, list[dict[str, str]]] = {}
    for use_mpy, items in plans_for(src, "auto").items():
        forms = [ota_plan.firmware(items)] + ([ota_plan.romfs_image(items)] if use_mpy else [])
        for p in forms:
            out.setdefault(p.short, []).append({f.path: f.sha.hex() for f in p.files})
    return out


def flash_files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def check_board(
    board_dir: Path, status: dict, versions: dict[str, list[dict[str, str]]]
) -> str | None:
    """None when the board runs one complete, known version; else what is wrong."""
    state = json.loads((board_dir / "fw" / "state.json").read_text())
    fw = (state.get("set") or "")[:16]
    if status["fw"] != fw:
        return "runs %s, its state names %s" % (status["fw"], fw)
    if fw not in versions:
        return "runs %s: neither version" % fw
    slot = state["active"]
    root_image = board_dir / "fw" / "root.img"
    if slot == "root" and root_image.is_file():  # `roam deploy` put it in the romfs
        have = {"romfs.img": hashlib.sha256(root_image.read_bytes()).hexdigest()}
    elif slot == "root":  # the modules `roam deploy` wrote, less the bootstrap
        have = {
            k: v
            for k, v in flash_files(board_dir).items()
            if k.endswith((".py", ".mpy"))
            and not k.startswith(("fw/", "logs/"))
            and k not in BOOTSTRAP
        }
    else:
        have = flash_files(board_dir / "fw" / slot)
    if have not in versions[fw]:
        want = next((w for w in versions[fw] if set(w) & set(have)), versions[fw][0])
        extra = sorted(set(have) - set(want))
        missing = sorted(set(want) - set(have))
        changed = sorted(k for k in set(have) & set(want) if have[k] != want[k])
        return "a mix in %s: extra %s, missing %s, changed %s" % (slot, extra, missing, changed)
    if "romfs.img" in have:
        # what runs is what the partition holds: the version's image, written at its boot
        part = (board_dir.parent / (board_dir.name + ".romfs")).read_bytes()
        img = root_image if slot == "root" else board_dir / "fw" / slot / "romfs.img"
        if part[: img.stat().st_size] != img.read_bytes():
            return "its romfs partition does not hold the image of %s" % slot
    return None


def devices(fleet: str, keys: str, deadline_s: float = 40.0) -> dict[str, dict]:
    """Every board's STATUS, asked until all answer (a board may be rebooting)."""
    end = time.monotonic() + deadline_s
    while True:
        r = roam("devices", "--ota", "--json", "--fleet", fleet, "--keys", keys, check=False)
        try:
            rows = {row["board"]: row for row in json.loads(r.stdout)}
        except ValueError:
            rows = {}
        if rows and all(row["reached"] and not row["pending"] for row in rows.values()):
            return rows
        if time.monotonic() > end:
            raise BenchError("boards did not all answer: %s" % r.stdout[-2000:])
        time.sleep(1.0)


def interrupt(lab: Path, rng: random.Random, proc: subprocess.Popen, boards: list[str]) -> dict:
    kind = rng.choice(("power", "air", "kill"))
    at = rng.uniform(0.2, 10.0)  # the deploy: staging, the switch, the probation
    time.sleep(at)
    ev: dict = {"kind": kind, "at_s": round(at, 2)}
    if proc.poll() is not None:
        ev["too_late"] = True  # the deploy was over before the moment came
    if kind == "kill":
        proc.kill()
    else:
        b = rng.choice(boards)
        ev["board"] = b
        off, on = ("power_off", "power_on") if kind == "power" else ("air_cut", "air_heal")
        pause = rng.uniform(0.3, 2.0) if kind == "power" else rng.uniform(1.0, 5.0)
        control(lab, off, b)
        time.sleep(pause)
        control(lab, on, b)
        ev["for_s"] = round(pause, 2)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    ev["exit"] = proc.returncode
    if proc.returncode not in (0, -9):
        ev["error"] = (err or "").strip().splitlines()[-1:]
    return ev


def control(lab: Path, cmd: str, board: str) -> None:
    from hosttools import lab as lab_mod

    lab_mod.control(lab, cmd, [board])


def run(rounds: int, seed: int) -> dict:
    out = REPO / "out" / "bench" / "ota_interrupt"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    lab = out / "lab"
    fleet, keys = str(lab / "fleet.toml"), str(lab / "keys.toml")
    fws = {"A": firmware(out, "A"), "B": firmware(out, "B")}
    versions: dict[str, list[dict[str, str]]] = {}
    for d in fws.values():
        versions.update(version_files(d))
    versions.update(version_files(REPO / "firmware"))  # the root, deployed over USB
    short = {v: name for name, d in fws.items() for v in version_files(d)}
    rng = random.Random(seed)
    log = []
    roam("lab", "up", str(scenario(out)), "--dir", str(lab), "--nodes", NODES)
    try:
        text = Path(fleet).read_text()
        Path(fleet).write_text(
            text.replace('"channel" = 1\n', '"channel" = 1\n"healthy_ms" = %d\n' % HEALTHY_MS)
        )
        roam("deploy", "--fleet", fleet, timeout=300)
        roam("provision", "--fleet", fleet, "--keys", keys)
        roam("lab", "unplug", "--all", "--dir", str(lab))
        roam("lab", "start", "--dir", str(lab))
        boards = NODES.split(",")
        devices(fleet, keys)
        target = "A"
        for i in range(rounds):
            fw = str(fws[target])
            deploy = ("deploy", "--ota", "--firmware", fw, "--fleet", fleet, "--keys", keys)
            proc = subprocess.Popen(
                [ROAM, *deploy],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=str(REPO),
            )
            ev = interrupt(lab, rng, proc, boards)
            ev["round"] = i + 1
            ev["target"] = target
            rows = devices(fleet, keys)
            problems = {}
            for b in boards:
                p = check_board(lab / "boards" / b, rows[b], versions)
                if p:
                    problems[b] = p
            ev["versions"] = sorted({rows[b]["fw"] for b in boards})
            ev["problems"] = problems
            t0 = time.monotonic()
            r = roam(*deploy, check=False, timeout=300)
            ev["next_deploy_s"] = round(time.monotonic() - t0, 1)
            rows = devices(fleet, keys)
            want = {v for v, name in short.items() if name == target}
            ev["next_completed"] = r.returncode == 0 and all(rows[b]["fw"] in want for b in boards)
            if not ev["next_completed"]:
                ev["next_error"] = r.stderr.strip().splitlines()[-3:]
            log.append(ev)
            print(json.dumps(ev), flush=True)
            target = "B" if target == "A" else "A"
    finally:
        roam("lab", "down", "--dir", str(lab), check=False)
    (out / "rounds.json").write_text(json.dumps(log, indent=1))
    return {"rounds": log}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    log = run(args.rounds, args.seed)["rounds"]
    mixed = [e for e in log if e["problems"]]
    incomplete = [e for e in log if not e["next_completed"]]
    times = sorted(e["next_deploy_s"] for e in log)
    kinds = {k: sum(1 for e in log if e["kind"] == k) for k in ("power", "air", "kill")}
    figures = {
        "rounds": figure(len(log), "rounds"),
        "power_cuts": figure(kinds["power"], "rounds"),
        "air_cuts": figure(kinds["air"], "rounds"),
        "laptop_killed": figure(kinds["kill"], "rounds"),
        "rounds_with_a_mix": figure(len(mixed), "rounds"),
        "next_deploy_incomplete": figure(len(incomplete), "rounds"),
        "next_deploy_median": figure(times[len(times) // 2] if times else 0, "s"),
        "next_deploy_max": figure(times[-1] if times else 0, "s"),
    }
    write_result("ota_interrupt", figures)
    return 0 if log and not mixed and not incomplete else 1


if __name__ == "__main__":
    sys.exit(main())

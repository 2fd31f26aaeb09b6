"""Run a command several times in a row with CPU-bound processes beside it (issue 17: the board
host must survive, and the lab's timers stay honest, on a loaded machine; `make test` passes 5
runs in a row on a 2-core machine with two busy processes beside it).

    python tools/under_load.py [--runs 5] [--burners 2] -- COMMAND [ARG ...]
    make test-load [RUNS=5] [LOAD=2] [LOAD_CMD="..."]

Each burner is a Python process spinning in a loop (its own session, started before the first
run, stopped after the last, whatever happened). Prints one line per run (exit status, seconds)
and a summary; exits 1 when any run failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

BURN = "while True:\n    pass\n"


def start_burners(n: int) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", BURN],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(n)
    ]


def stop_burners(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # its own session: only what it started
        except ProcessLookupError:
            pass
        p.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--burners", type=int, default=2, help="CPU-bound processes beside it")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.runs < 1 or args.burners < 0:
        ap.print_usage(sys.stderr)
        return 2
    burners = start_burners(args.burners)
    results = []
    try:
        for i in range(args.runs):
            t0 = time.monotonic()
            rc = subprocess.call(command)
            dt = time.monotonic() - t0
            results.append((rc, dt))
            print(
                "under_load: run %d/%d with %d burners: exit %d, %.1f s"
                % (i + 1, args.runs, args.burners, rc, dt),
                flush=True,
            )
    finally:
        stop_burners(burners)
    failed = [i + 1 for i, (rc, _) in enumerate(results) if rc != 0]
    print(
        "under_load: %d of %d runs passed%s"
        % (len(results) - len(failed), len(results), " (failed: %s)" % failed if failed else ""),
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

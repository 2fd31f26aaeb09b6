"""Forwarding a datagram inside a cell on MicroPython: allocation per datagram (target <= 32
bytes on average over 10,000) and time relative to a bare loop that only receives and re-sends
the same bytes (target <= 2x), measured side by side in one run (bench/core_cost_mpy.py).

The firmware is precompiled with mpy-cross (as a board runs frozen bytecode). Two link layers are
measured: UDP on the loopback (a virtual board's real link; the figure the target is about) and
an in-memory driver with no I/O cost at all (the core's own cost per datagram, for reference).
"""

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MICROPYTHON, figure, precompile, run_json, write_result  # noqa: E402

SCRIPT = Path(__file__).resolve().parent / "core_cost_mpy.py"
N = 10000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        precompile(path)
        # the board's driver: the forwarding loop is its code for a radio frame
        precompile(path, "driver")
        precompile(path, "fieldlog")  # its look for another board's log (fieldlog.wire)
        # asyncio (fieldlog.stream imports it) is frozen
        env = dict(os.environ, MICROPYPATH=".frozen:" + str(path))
        port = 40000 + os.getpid() % 20000
        command = [MICROPYTHON, SCRIPT, str(N), "5", str(port)]
        r = run_json(command, "core_cost_mpy.py", env=env)
    n = r["n"]
    write_result(
        "core_cost",
        {
            "forward_alloc_per_datagram": figure(r["socket_forward_alloc"] / n, "bytes"),
            "bare_alloc_per_datagram": figure(r["socket_bare_alloc"] / n, "bytes"),
            "forward_vs_bare_ratio_udp": figure(r["socket_forward_us"] / r["socket_bare_us"], "x"),
            "bare_udp_per_datagram": figure(r["socket_bare_us"] / n, "us"),
            # for reference: the bare loop without awaiting the link (a board's firmware cannot
            # run so), and the ratio forwarding's own cost would make against it
            "bare_sync_udp_per_datagram": figure(r["socket_bare_sync_us"] / n, "us"),
            "forward_vs_bare_sync_ratio_udp": figure(
                (r["socket_forward_us"] - r["socket_bare_us"] + r["socket_bare_sync_us"])
                / r["socket_bare_sync_us"],
                "x",
            ),
            "forward_udp_per_datagram": figure(r["socket_forward_us"] / n, "us"),
            "forward_vs_bare_ratio_no_io": figure(
                r["memory_forward_us"] / r["memory_bare_us"], "x"
            ),
            "core_cost_per_datagram": figure(
                (r["memory_forward_us"] - r["memory_bare_us"]) / n, "us"
            ),
            "datagrams": figure(n, "count"),
        },
    )


if __name__ == "__main__":
    main()

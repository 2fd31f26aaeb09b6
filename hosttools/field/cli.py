"""`roam field`: collect the boards' logs over the air and show the field live in the browser.

    roam field --fleet fleet.toml --keys keys.toml --out out/field/walk1 [--http-port 8080]

The laptop sits on the field's access point; backbone boards send their log lines to it by
UDP (port 4345, the fleet's ``[field] collector``), the agents relay the lines of the mobile
nodes they serve. In the lab (a fleet written by ``roam lab up``) the laptop joins the lab's
access point through its air. Stop with Ctrl-C (or ``--duration``): every line received is in
DIR, ready for ``roam logs --pull`` (to fill the gaps from the boards' flash) and
``roam report DIR``.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import click

from hosttools.errors import RoamError, RoamUsageError
from hosttools.field.collector import Collector
from hosttools.field.state import FieldState
from hosttools.fleet import FIELD_PORT, Fleet, parse_hostport
from hosttools.targets import (
    duration_option,
    fleet_file_option,
    keys_option,
    maybe_fleet,
    maybe_keys,
)

DEFAULT_HTTP_PORT = 8080
LAB_SSID = "roam-backbone"


def open_transport(fleet: Fleet) -> Any:
    """The laptop's UDP on the field's access point: through the lab's air when the fleet
    names one, else a real socket on the collector port."""
    from hosttools.field.transport import AirTransport, UdpTransport

    fc = fleet.field_cfg
    port = int(fc.get("port", FIELD_PORT))
    if fc.get("air"):
        collector = fc.get("collector")
        if not collector or collector == "auto":
            raise RoamError('%s: [field] air needs collector = "ip:port" too' % fleet.path)
        ip, cport = parse_hostport(collector, port)
        return AirTransport(parse_hostport(fc["air"], None), ip, cport, fc.get("ssid", LAB_SSID))
    return UdpTransport(port)


def run_field(
    fleet: Fleet,
    keys: Any,
    out: str,
    http_host: str,
    http_port: int,
    duration: float | None,
    quiet: bool = False,
) -> int:
    collector = Collector(fleet, keys, out)
    state = FieldState(fleet)
    transport = open_transport(fleet)
    from hosttools.field.server import FieldServer

    server = FieldServer(collector, state, transport)
    code = {"rc": 0}

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(sig: int) -> None:
            code["rc"] = 128 + sig
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        if duration is not None:
            loop.call_later(duration, stop.set)

        def ready(addrs: list[Any]) -> None:
            if not quiet:
                port = addrs[0][1] if addrs else http_port
                click.echo(
                    "roam field: %d boards, lines into %s; dashboard http://%s:%d/ "
                    "(Ctrl-C stops)"
                    % (
                        len(fleet.boards),
                        out,
                        "localhost" if http_host in ("127.0.0.1", "") else http_host,
                        port,
                    ),
                    err=True,
                )

        try:
            await server.run(http_host, http_port, stop, ready)
        except OSError as e:
            raise RoamError(
                "cannot serve the dashboard on port %d: %s" % (http_port, e.strerror)
            ) from None

    try:
        asyncio.run(main())
    finally:
        collector.close()
        transport.close()
    gaps = collector.gaps()
    missing = sum(g["lines"] for gs in gaps.values() for g in gs)
    for b in sorted(collector.boards.values(), key=lambda x: x.name):
        click.echo("%-10s %6d lines" % (b.name, b.n))
    refused = {k: v for k, v in collector.refused.items() if v and k != "duplicate"}
    click.echo(
        "%s: %d lines from %d frames; %d lines missing in %d gaps%s (roam logs --pull fills "
        "them; then roam report %s)"
        % (
            out,
            sum(b.n for b in collector.boards.values()),
            collector.frames,
            missing,
            sum(len(g) for g in gaps.values()),
            ("; refused " + ", ".join("%d %s" % (v, k) for k, v in refused.items()))
            if refused
            else "",
            out,
        )
    )
    return code["rc"]


@click.command("field")
@fleet_file_option()
@keys_option
@click.option(
    "--out",
    "-o",
    "out",
    metavar="DIR",
    required=True,
    help="Run directory (a new one, or an earlier run of roam field to resume).",
)
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_HTTP_PORT,
    show_default=True,
    help="Dashboard port on localhost (0: any free port).",
)
@click.option(
    "--http-host", default="127.0.0.1", show_default=True, help="Address the dashboard listens on."
)
@duration_option
@click.option("--quiet", "-q", is_flag=True, help="Only the closing summary.")
def field_cmd(fleet_path, keys_path, out, http_port, http_host, duration, quiet):
    """Collect every board's log over the air and serve the live field dashboard."""
    fleet = maybe_fleet(fleet_path, required=True)
    assert fleet is not None
    keys = maybe_keys(keys_path, fleet)
    if keys is None:
        raise RoamUsageError("no keys file: pass --keys FILE (the log key checks every line)")
    rc = run_field(fleet, keys, out, http_host, http_port, duration, quiet)
    sys.stdout.flush()
    return rc

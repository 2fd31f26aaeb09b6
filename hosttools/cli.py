"""The `roam` command line: one click group; each feature module adds its subcommand below."""

from __future__ import annotations

import click

from hosttools import __version__
from hosttools.errors import RoamGroup


@click.group(name="roam", cls=RoamGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="roam")
def main() -> None:
    """roam: keep IP messages reaching a mobile ESP32 node as it moves between foreign agents.

    Run `roam COMMAND --help` for a command's options.
    """


# --- subcommands: each feature module defines one click command or group ---
# the simulator first: it chooses the compiled core (hosttools/corebuild.py) before any
# other command's module imports the core's Python sources (the OTA tools read its auth)
from hosttools.sim.cli import sim  # noqa: E402, I001
from hosttools.deploy import deploy_cmd  # noqa: E402
from hosttools.devices import devices_cmd  # noqa: E402
from hosttools.devtest import test_cmd  # noqa: E402
from hosttools.field.cli import field_cmd  # noqa: E402
from hosttools.flash import flash_cmd  # noqa: E402
from hosttools.lab import lab_cmd  # noqa: E402
from hosttools.logs import logs_cmd  # noqa: E402
from hosttools.monitor import monitor_cmd  # noqa: E402
from hosttools.ota.cli import reset_cmd  # noqa: E402
from hosttools.provision import provision_cmd  # noqa: E402
from hosttools.report import report_command  # noqa: E402

for _command in (
    devices_cmd,
    flash_cmd,
    deploy_cmd,
    provision_cmd,
    reset_cmd,
    logs_cmd,
    field_cmd,
    monitor_cmd,
    report_command,
    test_cmd,
    lab_cmd,
    sim,
):
    main.add_command(_command)
# --- end of subcommands ---

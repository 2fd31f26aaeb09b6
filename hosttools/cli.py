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


# --- subcommands (each module adds one line) ---
# e.g. from hosttools.sim.cli import sim; main.add_command(sim)
from hosttools.sim.cli import sim; main.add_command(sim)  # noqa: E402,E702
from hosttools.report import report_command; main.add_command(report_command)  # noqa: E402,E702
from hosttools.deploy import deploy_cmd; main.add_command(deploy_cmd)  # noqa: E402, E702, I001
from hosttools.devices import devices_cmd; main.add_command(devices_cmd)  # noqa: E402, E702, I001
from hosttools.devtest import test_cmd; main.add_command(test_cmd)  # noqa: E402, E702, I001
from hosttools.flash import flash_cmd; main.add_command(flash_cmd)  # noqa: E402, E702, I001
from hosttools.logs import logs_cmd; main.add_command(logs_cmd)  # noqa: E402, E702, I001
from hosttools.provision import provision_cmd; main.add_command(provision_cmd)  # noqa: E402, E702, I001
from hosttools.lab import lab_cmd; main.add_command(lab_cmd)  # noqa: E402, E702, I001
# --- end of subcommands ---

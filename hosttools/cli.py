"""The `roam` command line: one click group; each feature module adds its subcommand below."""

from __future__ import annotations

import importlib

import click

from hosttools import __version__
from hosttools.errors import RoamGroup

# --- subcommands: each feature module defines one click command or group (module:attribute),
# imported when it runs or when the help lists it. So `roam sim ...` imports the simulator and
# nothing else: it chooses the code it runs (hosttools/sim/__init__.py) before another command's
# module could have imported the protocol core from its sources.
COMMANDS = {
    "devices": "hosttools.devices:devices_cmd",
    "firmware": "hosttools.images:firmware_cmd",
    "flash": "hosttools.flash:flash_cmd",
    "deploy": "hosttools.deploy:deploy_cmd",
    "provision": "hosttools.provision:provision_cmd",
    "reset": "hosttools.ota.cli:reset_cmd",
    "logs": "hosttools.logs:logs_cmd",
    "field": "hosttools.field.cli:field_cmd",
    "monitor": "hosttools.monitor:monitor_cmd",
    "report": "hosttools.report:report_command",
    "test": "hosttools.devtest:test_cmd",
    "lab": "hosttools.lab:lab_cmd",
    "sim": "hosttools.sim.cli:sim",
}
# --- end of subcommands ---


class _Roam(RoamGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attr = COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return self.commands.get(cmd_name)


ENVIRONMENT = """\b
Environment:
  ROAM_PORT            a board's serial port (--port); default: the fleet's boards,
                       or the one USB board plugged in
  ROAM_FLEET           fleet file (--fleet), default fleet.toml
  ROAM_KEYS            keys file (--keys), default keys.toml
  ROAM_BOARDS_DIR      board type files (TYPE.toml), default the ones roam ships
  ROAM_FIRMWARE_CACHE  MicroPython images (TYPE/*.bin), default ~/.cache/roam/firmware
                       ($XDG_CACHE_HOME/roam/firmware when XDG_CACHE_HOME is set)
  ROAM_BOARD_TIMEOUT   seconds to wait for a board's REPL, default 10
  ROAM_LAB_DIR         the lab's directory (roam lab --dir), default out/lab
  ROAM_MICROPYTHON     the MicroPython unix port a virtual board runs, default the one
                       `make venv` builds next to the venv's python

Exit status: 0 done, 1 failed, 2 wrong command line, 130 interrupted (Ctrl-C).
Shell completion: eval "$(_ROAM_COMPLETE=bash_source roam)" (docs/USER_GUIDE.md)."""


@click.group(
    name="roam",
    cls=_Roam,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=ENVIRONMENT,
)
@click.version_option(__version__, "--version", prog_name="roam")
def main() -> None:
    """roam: keep IP messages reaching a mobile ESP32 node as it moves between foreign agents.

    Run `roam COMMAND --help` for a command's options.
    """


if __name__ == "__main__":  # `python -m hosttools.cli`: the same as `roam`, without the script
    main()

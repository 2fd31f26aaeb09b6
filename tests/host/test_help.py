"""The help says what a user needs (issue 18 item 15): every option has a help text, the same
short options in every command, the environment variables in `roam --help` and the guide, and
`roam logs` piped keeps its table and its summary on lines of their own."""

import os
import re
import subprocess
import sys
import tty
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from ptyboard import talking

from hosttools.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[2]
ROAM = str(Path(sys.executable).parent / "roam")
ENV_VARS = ("ROAM_FLEET", "ROAM_KEYS", "ROAM_FIRMWARE_CACHE", "ROAM_BOARDS_DIR", "ROAM_MICROPYTHON")


def help_of(*args):
    r = CliRunner().invoke(main, [*args, "--help"], terminal_width=100)
    assert r.exit_code == 0, r.output
    return r.output


def _commands():
    """(path, click command) of every command and subcommand."""
    ctx = click.Context(main)
    for name in sorted(COMMANDS):
        cmd = main.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            for sub in sorted(cmd.commands):
                yield (name, sub), cmd.commands[sub]
        else:
            yield (name,), cmd


@pytest.mark.parametrize("opt", [("flash", "--baud"), ("test", "--timeout")])
def test_named_options_have_help(opt):
    cmd, name = opt
    text = help_of(cmd)
    line = next(ln for ln in text.splitlines() if name in ln)
    assert len(line.split(name, 1)[1].split()) > 3, line  # more than the metavar and a default


def test_sim_quiet_is_q_as_in_logs():
    assert "-q, --quiet" in help_of("logs")
    for sub in ("run", "compare", "sweep"):
        assert "-q, --quiet" in help_of("sim", sub), sub


def test_every_option_of_the_board_commands_has_help():
    missing = []
    for path, cmd in _commands():
        if path[0] == "sim":
            continue
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.help and p.name != "help":
                missing.append("%s %s" % (" ".join(path), p.opts[0]))
    assert not missing, missing


def test_environment_variables_in_help_and_guide():
    top = help_of()
    guide = (REPO / "docs" / "USER_GUIDE.md").read_text()
    for var in ENV_VARS:
        assert var in top, var
        assert "`%s`" % var in guide, var
    assert "env var: ROAM_FLEET" in help_of("deploy")
    assert "env var: ROAM_KEYS" in help_of("provision")
    assert "ROAM_FIRMWARE_CACHE" in help_of("flash") and "ROAM_BOARDS_DIR" in help_of("flash")
    assert "ROAM_MICROPYTHON" in help_of("lab", "up")


def test_logs_piped_table_ends_its_line(tmp_path):
    """stdout and stderr into one pipe: the table's last row, then the summary on its own line."""
    m, s = os.openpty()
    tty.setraw(s)
    port = os.ttyname(s)
    try:
        p = subprocess.Popen(
            [ROAM, "logs", "--port", port, "--out", "o", "--duration", "2"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        with talking(m, b'{"t":1}\n'):
            out = p.communicate(timeout=30)[0].decode()
    finally:
        os.close(m)
        os.close(s)
    name = os.path.basename(port)
    assert p.returncode == 0, out
    assert re.search(r"^%s: ([1-9]\d*) lines, \1 events, 0 gaps -> " % name, out, re.M), out
    assert re.search(r"^ *board +port +state", out, re.M), out

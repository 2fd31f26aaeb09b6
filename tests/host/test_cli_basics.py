"""The `roam` group: version, help, and the one-line error contract (roam: error: ..., exit 2)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hosttools import __version__
from hosttools.cli import main
from hosttools.errors import RoamError, RoamGroup

ROAM_SCRIPT = Path(sys.executable).parent / "roam"


@click.group(cls=RoamGroup)
def demo_group():
    """A throwaway group with one command per kind of failure."""


@demo_group.command()
def broken():
    raise RoamError("board COM7 does not answer\n(check the cable)")


@demo_group.command()
@click.option("--count", type=int, required=True)
def counted(count):
    if count < 0:
        raise click.BadParameter("must be >= 0", param_hint="'--count'")
    click.echo("count=%d" % count)


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == "roam, version %s" % __version__


def test_no_arguments_prints_help_and_succeeds():
    result = CliRunner().invoke(main, [])
    assert result.exit_code == 0
    assert "Usage: roam" in result.output


def test_unknown_option_is_one_line_error():
    result = CliRunner().invoke(main, ["--bogus"])
    assert result.exit_code == 2
    assert result.stderr == "roam: error: No such option '--bogus'.\n"


def test_roam_error_is_one_line_without_traceback():
    result = CliRunner().invoke(demo_group, ["broken"])
    assert result.exit_code == 1
    assert result.stderr == "roam: error: board COM7 does not answer (check the cable)\n"
    assert result.stdout == ""


def test_bad_parameter_is_one_line():
    result = CliRunner().invoke(demo_group, ["counted", "--count", "-1"])
    assert result.exit_code == 2
    assert result.stderr == "roam: error: Invalid value for '--count': must be >= 0\n"


def test_bad_type_is_one_line():
    result = CliRunner().invoke(demo_group, ["counted", "--count", "many"])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("roam: error: Invalid value for '--count'")


def test_success_exits_zero():
    result = CliRunner().invoke(demo_group, ["counted", "--count", "3"])
    assert result.exit_code == 0
    assert result.stdout == "count=3\n"


def test_installed_script():
    assert ROAM_SCRIPT.exists(), "the `roam` script is not installed: run `make venv`"
    done = subprocess.run(
        [str(ROAM_SCRIPT), "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "roam, version %s" % __version__
    done = subprocess.run(
        [str(ROAM_SCRIPT), "no-such-command"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.startswith("roam: error: No such command")
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "exc, status", [("RoamError('disk full')", 1), ("click.BadParameter('disk full')", 2)]
)
def test_error_in_a_real_process_has_no_traceback(exc, status):
    program = textwrap.dedent(
        """
        import click
        from hosttools.errors import RoamError, RoamGroup

        @click.group(cls=RoamGroup)
        def group():
            pass

        @group.command()
        def go():
            raise %s

        group(["go"])
        """
        % exc
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == status
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("roam: error: ")
    assert done.stderr.strip().endswith("disk full")
    assert len(done.stderr.splitlines()) == 1

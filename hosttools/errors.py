"""The one error type of the host tools and how the CLI reports it.

Library code raises ``RoamError`` with a message written for the user ("board COM7 does not
answer", "scenario foo.toml: unknown node 'x'"). The CLI prints it as one line,
``roam: error: <message>``, on stderr and exits with status 2: no traceback, no usage dump.
Click's own usage errors (bad option, bad parameter) are reported the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click
from click.exceptions import NoArgsIsHelpError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class RoamError(Exception):
    """An error the user can act on; its message is shown as is."""


def fail(message: str) -> NoReturn:
    """Print ``roam: error: <message>`` on stderr and exit with status 2."""
    # Keep it to one line even if a message carries a newline.
    one_line = " ".join(str(message).split()) or "unknown error"
    click.echo("roam: error: " + one_line, err=True)
    sys.exit(EXIT_ERROR)


class RoamGroup(click.Group):
    """A click group whose ``main`` turns errors into one readable line instead of a traceback."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> NoReturn:
        try:
            result = super().main(
                args=args,
                prog_name=prog_name or "roam",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except RoamError as exc:
            fail(str(exc))
        except NoArgsIsHelpError as exc:
            # `roam` alone: the help is the answer, not an error.
            click.echo(exc.format_message())
            sys.exit(0)
        except click.UsageError as exc:  # includes BadParameter, NoSuchOption, MissingParameter
            fail(exc.format_message())
        except click.ClickException as exc:
            click.echo("roam: error: " + " ".join(exc.format_message().split()), err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("roam: error: aborted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except KeyboardInterrupt:
            click.echo("roam: error: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        # Without standalone mode click returns the exit code of ctx.exit() (--help, --version)
        # or the command's return value: an int is taken as the exit status.
        sys.exit(result if isinstance(result, int) else 0)

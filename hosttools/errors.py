"""The one error type of the host tools and how the CLI reports it.

Library code raises ``RoamError`` with a message written for the user ("board COM7 does not
answer", "scenario foo.toml: unknown node 'x'"). The CLI prints it as one line,
``roam: error: <message>``, on stderr: no traceback, no usage dump.

Exit status, click's convention everywhere:

* 0: done;
* 1: the command could not do its job (``RoamError``: a board that does not answer, a malformed
  fleet file, a deploy that failed, nothing collected);
* 2: the command line is wrong (``RoamUsageError``, click's ``UsageError``/``BadParameter``: an
  unknown option, a bad value, a name that is not there, a file the command needs not given);
* 130: interrupted (Ctrl-C); a command stopped by SIGTERM exits 143 (128 + the signal).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import click
from click.exceptions import NoArgsIsHelpError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class RoamError(Exception):
    """An error the user can act on; its message is shown as is. Exit status 1."""

    exit_code = EXIT_FAILURE


class RoamUsageError(RoamError):
    """The command line is wrong (a bad option value, an unknown name, a file not given). Exit
    status 2, as click's usage errors."""

    exit_code = EXIT_USAGE


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print ``roam: error: <message>`` on stderr and exit with `code`."""
    # Keep it to one line even if a message carries a newline.
    one_line = " ".join(str(message).split()) or "unknown error"
    click.echo("roam: error: " + one_line, err=True)
    sys.exit(code)


@contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Ctrl-C held for the block and delivered once it is done, for what must not be cut in
    the middle: a fork, whose at-fork callbacks (logging's, threading's) would report a
    KeyboardInterrupt as ignored and go on; numba compiling or loading a kernel, whose
    compiler, cut in the middle, left llvmlite's objects half handed over (`roam sim run`
    interrupted on a cold cache ended "roam: error: aborted", then glibc's "free(): double
    free" and SIGABRT at exit). Nothing is held outside the main thread (only it runs
    handlers) or where Ctrl-C is ignored or has a handler not set from Python."""
    current = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or current in (
        None,
        signal.SIG_IGN,
    ):
        yield
        return
    held = []
    signal.signal(signal.SIGINT, lambda *_: held.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, current)
    if held:
        signal.raise_signal(signal.SIGINT)


class _Interrupt:
    """Ctrl-C, remembered: a KeyboardInterrupt that lands inside a library's callback (numba
    compiling the radio kernels on a first run) is swallowed there and surfaces as that
    library's own error, with an "Exception ignored" report on stderr; once the user has
    pressed Ctrl-C, whatever ends the command is the interruption, said in one line. One that
    lands where Python cannot raise it (a finalizer, an at-fork callback: reported as ignored,
    and the command went on as if never interrupted) is delivered again, to land in the
    command's own code."""

    def __init__(self) -> None:
        self.pressed = False

    def install(self) -> None:
        import _thread

        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._on_sigint)
        default_hook = sys.unraisablehook

        def hook(unraisable: Any) -> None:
            if issubclass(unraisable.exc_type, KeyboardInterrupt):
                # pressed again once this hook has returned (pressed here, the handler would
                # run here, in the hook, and the interrupt would be lost once more)
                threading.Timer(0.01, _thread.interrupt_main, (signal.SIGINT,)).start()
                return
            if not self.pressed:
                default_hook(unraisable)

        sys.unraisablehook = hook

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.pressed = True
        raise KeyboardInterrupt


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
        interrupt = _Interrupt()
        interrupt.install()
        try:
            result = super().main(
                args=args,
                prog_name=prog_name or "roam",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except RoamError as exc:
            if interrupt.pressed:  # (a worker that died of the Ctrl-C, say)
                fail("aborted", EXIT_INTERRUPTED)
            fail(str(exc), exc.exit_code)
        except NoArgsIsHelpError as exc:
            # `roam` alone: the help is the answer, not an error.
            click.echo(exc.format_message())
            sys.exit(0)
        except click.UsageError as exc:  # includes BadParameter, NoSuchOption, MissingParameter
            fail(exc.format_message(), EXIT_USAGE)
        except click.ClickException as exc:
            click.echo("roam: error: " + " ".join(exc.format_message().split()), err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("roam: error: aborted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except KeyboardInterrupt:
            click.echo("roam: error: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception:
            if interrupt.pressed:  # the interruption, surfacing as some library's error
                click.echo("roam: error: aborted", err=True)
                sys.exit(EXIT_INTERRUPTED)
            raise
        # Without standalone mode click returns the exit code of ctx.exit() (--help, --version)
        # or the command's return value: an int is taken as the exit status.
        sys.exit(result if isinstance(result, int) else 0)

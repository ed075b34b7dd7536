"""The ``dlbench`` command: parse, call one library function, print. Nothing else here."""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Annotated, Any

import typer

from dlbench.cli.common import app, err, out, plain, state
from dlbench.errors import DlbenchError
from dlbench.version import __version__


def _print_version(asked: bool) -> None:
    """--version alone, before any command is looked for: dlbench's version and torch's."""
    if not asked:
        return
    from importlib import metadata

    try:
        torch = f"torch {metadata.version('torch')}"
    except metadata.PackageNotFoundError:
        torch = "torch not installed"
    out.print(f"dlbench {__version__} ({torch})", highlight=False)
    raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    state["debug"] = debug


# Each command module registers its commands on the app when imported, in this order, which
# is the order --help lists them in.
COMMAND_MODULES = (
    "run",
    "tools",
    "serving",
    "cluster",
    "sweep",
    "analysis",
    "runs",
    "baseline",
    "calculator",
)
for _module in COMMAND_MODULES:
    importlib.import_module(f"dlbench.cli.{_module}")


def main() -> None:
    """Console entry point: every user error is one red line and exit code 2."""
    usage_error = _usage_error_type()
    # A kill ends dlbench as Ctrl-C does; a second one while the first unwinds (Typer turns
    # it into exit code 130 on the way) must not cut the unwinding short.
    signal.signal(signal.SIGTERM, _interrupt_once)
    signal.signal(signal.SIGINT, _interrupt_once)
    try:
        code = app(standalone_mode=False)
    except DlbenchError as exc:
        code = _fail(exc.one_line(), exc, getattr(exc, "exit_code", 2))
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare command: its help is the answer
            if exc.format_message().strip():
                out.print(exc.format_message())
            code = 0
        else:
            code = _fail(f"{exc.format_message()} (see dlbench --help)", exc)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: the same answer
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        err.print("interrupted")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


def _interrupt_once(_signum: int, _frame: Any) -> None:
    """Ctrl-C or SIGTERM: a KeyboardInterrupt, then every later one ignored (a run's own
    supervisor forwards them to the run while it lasts, and puts this back after)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _fail(message: str, exc: BaseException, code: int = 2) -> int:
    if state["debug"]:
        err.print_exception()
    err.print(f"[red]error:[/] {plain(message)}", highlight=False, soft_wrap=True)
    return code


def _usage_error_type() -> Any:
    """Click's UsageError: vendored inside typer since 0.2x, a separate package before."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions  # type: ignore[no-redef]
    return exceptions.UsageError

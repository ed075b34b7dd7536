"""The ``dlbench`` command: parse, call one library function, print. Nothing else here."""

from __future__ import annotations

import signal
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape

from dlbench.cli.common import (
    app,
    err,
    out,
    state,
)
from dlbench.errors import DlbenchError
from dlbench.version import __version__


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    state["debug"] = debug
    if version:
        out.print(f"dlbench {__version__}")
        raise typer.Exit()


# Each command module registers its commands on the app, in the order --help lists them.
from dlbench.cli import (  # noqa: E402, F401
    analysis,
    baseline,
    calculator,
    run,
    runs,
    sweep,
    tools,
)


def main() -> None:
    """Console entry point: every user error is one red line and exit code 2."""
    usage_error = _usage_error_type()
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)  # a kill ends dlbench as Ctrl-C does
    try:
        code = app(standalone_mode=False)
    except DlbenchError as exc:
        code = _fail(exc.one_line(), exc)
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


def _terminate_as_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _fail(message: str, exc: BaseException) -> int:
    if state["debug"]:
        err.print_exception()
    err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return 2


def _usage_error_type() -> Any:
    """Click's UsageError: vendored inside typer since 0.2x, a separate package before."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions  # type: ignore[no-redef]
    return exceptions.UsageError

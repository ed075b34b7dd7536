"""What every ``dlbench`` command module shares: the Typer app, the consoles, common options."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dlbench.errors import ConfigError, DlbenchError
from dlbench.render.console import make_console, plain

app = typer.Typer(
    name="dlbench",
    help="Deep-learning hardware benchmarks: how fast, how costly, and where the time goes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is plain: its [default: ...] is text, not a style tag
)
out = make_console()
err = make_console(stderr=True)
state = {"debug": False}
__all__ = ["app", "err", "out", "plain", "state"]

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Results database: a path or SQLAlchemy URL "
        "[default: $DLBENCH_DB or results/dlbench.sqlite]",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

WaitQuietOption = Annotated[
    float | None,
    typer.Option(
        "--wait-quiet",
        help="Before each run, wait up to SECONDS for the machine to be quiet (a countdown).",
    ),
]
RequireQuietOption = Annotated[
    bool,
    typer.Option("--require-quiet", help="Refuse to start a run on a busy machine (exit 2)."),
]


MetricsPortOption = Annotated[
    int | None,
    typer.Option(
        help="Serve telemetry (and a run's progress) on http://HOST:PORT/metrics for Prometheus.",
        min=1,
        max=65535,
    ),
]
MetricsHostOption = Annotated[
    str, typer.Option(help="Address for --metrics-port (0.0.0.0: every network).")
]


def warn_exposed(host: str, option: str = "--metrics-host") -> None:
    """Say on stderr when metrics would be served to every network (0.0.0.0, ::)."""
    from dlbench.telemetry.prometheus import exposed_host_warning

    warning = exposed_host_warning(host, option)
    if warning:
        err.print(f"[yellow]{plain(warning)}[/]")


def quiet_policy(wait_s: float | None, require: bool) -> Any:
    """The pre-run check's policy from --wait-quiet / --require-quiet."""
    from dlbench.launch.quiet import QuietPolicy

    if wait_s is not None and wait_s < 0:
        raise ConfigError("--wait-quiet must be 0 or more seconds", option="--wait-quiet")
    return QuietPolicy(wait_s=wait_s, require=require)


def write_json(value: Any, target: str) -> None:
    """``value`` as indented JSON to the file ``target``, or stdout for '-'."""
    import json
    import sys
    from pathlib import Path

    text = json.dumps(value, indent=2, default=_plain)
    if target == "-":
        sys.stdout.write(text + "\n")
        return
    try:
        Path(target).write_text(text + "\n")
    except OSError as exc:
        raise DlbenchError(f"cannot write --json {target}: {exc.strerror or exc}") from exc


def check_timeout(timeout: float | None) -> None:
    """--timeout, where given, is a positive and finite number of seconds."""
    if timeout is not None and not 0 < timeout < float("inf"):  # NaN fails both
        raise ConfigError(
            "--timeout must be a positive, finite number of seconds", option="--timeout"
        )


def _plain(value: Any) -> Any:
    """JSON for what json does not know: a record as its fields, a path or date as text."""
    import dataclasses
    from collections.abc import Mapping

    if hasattr(value, "to_dict"):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)

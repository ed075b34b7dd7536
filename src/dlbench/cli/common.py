"""What every ``dlbench`` command module shares: the Typer app, the consoles, common options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from dlbench.errors import ConfigError, DlbenchError
from dlbench.render.console import make_console, plain

HELP_WIDTH = 110  # help lines: a command's description whole, not cut at 45 characters


class SectionedCommand(TyperCommand):
    """Plain help (no markup: a "[default: ...]" is text) with the options in sections, each
    option's ``rich_help_panel`` naming its section, in the order they first appear."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _sections(formatter, ((_panel(p, "Options"), p.get_help_record(ctx))
                              for p in self.get_params(ctx)))  # fmt: skip


# The sections of ``dlbench --help``, in this order, and the commands in each.
COMMAND_SECTIONS = {
    "Measure": (
        "run",
        "generate",
        "serve-bench",
        "quickstart",
        "sweep",
        "maxbatch",
        "monitor",
        "infer",
        "collectives",
    ),  # fmt: skip
    "Look at results": ("runs", "show", "compare", "scaling", "cost", "report", "dashboard"),
    "Keep, check and share": ("baseline", "check", "tag", "rm", "export", "import"),
    "Predict": ("predict", "calibrate", "insights"),
    "This machine": ("sysinfo", "list", "exporter"),
}


class SectionedGroup(TyperGroup):
    """``dlbench --help``: the commands in sections (``COMMAND_SECTIONS``), each with its
    whole first sentence."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        found = {n: self.get_command(ctx, n) for n in self.list_commands(ctx)}
        shown = {n: c for n, c in found.items() if c is not None and not c.hidden}
        limit = 300  # the first sentence whole; write_dl wraps it, never cuts it
        listed = [n for names in COMMAND_SECTIONS.values() for n in names]
        entries = [
            (section, (n, shown[n].get_short_help_str(limit)))
            for section, names in COMMAND_SECTIONS.items()
            for n in names
            if n in shown
        ]
        entries += [("Commands", (n, c.get_short_help_str(limit)))
                    for n, c in shown.items() if n not in listed]  # fmt: skip
        _sections(formatter, entries)


def _panel(item: Any, default: str) -> str:
    panel = getattr(item, "rich_help_panel", None)
    return panel if isinstance(panel, str) else default


def _sections(formatter: Any, entries: Any) -> None:
    sections: dict[str, list[tuple[str, str]]] = {}
    for section, record in entries:
        if record:
            sections.setdefault(section, []).append(record)
    for section, records in sections.items():
        with formatter.section(section):
            formatter.write_dl(records)


class DlbenchTyper(typer.Typer):
    """Every command's help in sections (``SectionedCommand``)."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", SectionedCommand)
        return super().command(*args, **kwargs)


app = DlbenchTyper(
    name="dlbench",
    help="Deep-learning hardware benchmarks: how fast, how costly, and where the time goes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is plain: its [default: ...] is text, not a style tag
    cls=SectionedGroup,
    context_settings={"max_content_width": HELP_WIDTH},
)
out = make_console()
err = make_console(stderr=True)
state = {"debug": False}
__all__ = ["app", "err", "out", "plain", "state"]

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        rich_help_panel="Database",
        help="Results database: a path or SQLAlchemy URL "
        "[default: $DLBENCH_DB or results/dlbench.sqlite]",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def finite(low: float, high: float) -> Callable[[float | None], float | None]:
    """An option's callback: a finite number from ``low`` to ``high`` (click lets NaN and the
    infinities through any range: every comparison with NaN is false)."""

    def check(value: float | None) -> float | None:
        if value is not None and not low <= value <= high:
            raise typer.BadParameter(f"{value} is not a finite number from {low:g} to {high:g}")
        return value

    return check


# Bounds no real use reaches: a larger number is a typo or an attack, refused in one line.
MAX_COUNT = 10**9  # runs, steps, epochs, images, repeats: fits SQLite's 64-bit integers
MAX_SECONDS = 10**7  # 116 days: timeouts, waits, budgets
MAX_USD = 10**6  # a price per hour or per kWh

WaitQuietOption = Annotated[
    float | None,
    typer.Option(
        "--wait-quiet",
        rich_help_panel="Measurement",
        help="Before each run, wait up to SECONDS for the machine to be quiet (a countdown).",
        callback=finite(0, MAX_SECONDS),
    ),
]
IncludeContendedOption = Annotated[
    bool,
    typer.Option(
        "--include-contended",
        rich_help_panel="Measurement",
        help="Learn from runs measured contended too (their step times are partly the "
        "contention's); said beside every answer.",
    ),
]
RequireQuietOption = Annotated[
    bool,
    typer.Option(
        "--require-quiet",
        rich_help_panel="Measurement",
        help="Refuse to start a run on a busy machine (exit 2).",
    ),
]


PricePerHourOption = Annotated[
    float | None,
    typer.Option(
        help="USD per GPU-hour (a CPU run: per machine-hour).", callback=finite(0, MAX_USD)
    ),
]
PricePerKwhOption = Annotated[
    float | None, typer.Option(help="USD per kWh of energy.", callback=finite(0, MAX_USD))
]


def warn_exposed(host: str, option: str = "--metrics-host", what: str = "the metrics") -> str:
    """``host`` as it is bound ("[::]" is "::"); said on stderr when ``what`` would be served
    to every network (0.0.0.0 or :: in any spelling). A name that does not resolve is one
    error line."""
    from dlbench.telemetry.prometheus import listen_address

    bound, every = listen_address(host, option)
    if every:
        advice = (
            "Prometheus on this machine needs only 127.0.0.1"
            if what == "the metrics"
            else "its results become readable by anyone who can reach it"
        )
        err.print(
            f"[yellow]warning: {option} {plain(host)} serves {what} to every network this "
            f"machine is on; {advice}[/]"
        )
    return bound


def check_filters(
    store: Any,
    status: str | None = None,
    workload: str | None = None,
    sweep: str | None = None,
) -> None:
    """A filter that names nothing known is a typo, not an empty answer: one error line."""
    import typing

    from dlbench.records import RunStatus
    from dlbench.workloads import WORKLOADS

    statuses = typing.get_args(RunStatus)
    if status is not None and status not in statuses:
        raise ConfigError(
            f"--status {status!r} is not one of {', '.join(statuses)}", option="--status"
        )
    if workload is not None and workload not in WORKLOADS and not store.has("workload", workload):
        raise ConfigError(
            f"--workload {workload!r} is neither a workload (dlbench list) nor the name of a "
            f"stored run in {store.describe()}",
            option="--workload",
        )
    if sweep is not None and not store.has("sweep", sweep):
        raise ConfigError(
            f"--sweep {sweep!r}: no run of a sweep of that name in {store.describe()}",
            "dlbench runs --json shows each run's sweep",
            option="--sweep",
        )


def quiet_policy(wait_s: float | None, require: bool) -> Any:
    """The pre-run check's policy from --wait-quiet / --require-quiet."""
    from dlbench.launch.quiet import QuietPolicy

    return QuietPolicy(wait_s=wait_s, require=require)


def check_json_out(json_out: str | None) -> None:
    """A --json FILE can be written: checked before any work, so a run never ends unsaid."""
    if json_out and json_out != "-":
        from pathlib import Path

        from dlbench.api import writable_file

        writable_file(Path(json_out), "--json")


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
    if timeout is not None and not 0 < timeout <= MAX_SECONDS:  # NaN fails both
        raise ConfigError(
            f"--timeout must be a positive number of seconds, at most {MAX_SECONDS:,}",
            option="--timeout",
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

"""What every ``dlbench`` command module shares: the Typer app, the consoles, common options."""

from __future__ import annotations

from typing import Annotated

import typer

from dlbench.console import make_console

app = typer.Typer(
    name="dlbench",
    help="Deep-learning hardware benchmarks: how fast, how costly, and where the time goes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = make_console()
err = make_console(stderr=True)
state = {"debug": False}

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Results database: a path or SQLAlchemy URL "
        "[default: $DLBENCH_DB or results/dlbench.sqlite]",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

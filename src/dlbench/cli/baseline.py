"""``dlbench baseline set|list|rm`` and ``dlbench check``: is this node still as fast?"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from dlbench.cli.common import (
    DbOption,
    JsonFlag,
    RequireQuietOption,
    WaitQuietOption,
    app,
    check_json_out,
    check_timeout,
    err,
    finite,
    out,
    plain,
    quiet_policy,
    write_json,
)

baseline_app = typer.Typer(
    help="Named references for dlbench check: set, list, rm.", no_args_is_help=True
)
app.add_typer(baseline_app, name="baseline")


@baseline_app.command("set")
def baseline_set(
    name: Annotated[str, typer.Argument(help="The baseline's name.")],
    runs: Annotated[list[str], typer.Argument(help="Run ids (or prefixes) of one configuration.")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a baseline of that name.")
    ] = False,
    accept_contended: Annotated[
        bool,
        typer.Option(
            "--accept-contended",
            help="Keep runs measured contended as the reference all the same (on a machine "
            "that is never quiet); baseline list and every check say so.",
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Keep runs (one configuration, ended ok, not contended) as a named reference."""
    from dlbench.render import analysis as render_analysis
    from dlbench.store.database import Store
    from dlbench.tools.check import set_baseline

    kept = set_baseline(
        Store(db, create=False), name, runs, replace=replace, accept_contended=accept_contended
    )
    out.print(render_analysis.baselines_table([kept]))
    out.print(f"check this machine against it: dlbench check {plain(name)}")


@baseline_app.command("list")
def baseline_list(json_flag: JsonFlag = False, db: DbOption = None) -> None:
    """The stored baselines."""
    from dlbench.render import analysis as render_analysis
    from dlbench.store import baselines
    from dlbench.store.database import Store

    found = baselines.every(Store(db, create=False))
    if json_flag:
        write_json(found, "-")
    elif not found:
        out.print("no baselines yet: dlbench baseline set NAME RUN...")
    else:
        out.print(render_analysis.baselines_table(found))


@baseline_app.command("rm")
def baseline_rm(
    name: Annotated[str, typer.Argument(help="The baseline to remove.")],
    db: DbOption = None,
) -> None:
    """Remove a baseline (its runs stay stored)."""
    from dlbench.store import baselines
    from dlbench.store.database import Store

    store = Store(db, create=False)
    baselines.remove(store, name)
    out.print(f"removed baseline {plain(name)} from {plain(store.describe())}")


@app.command()
def check(
    name: Annotated[str, typer.Argument(help="A baseline (dlbench baseline list).")],
    repeat: Annotated[
        int, typer.Option(help="Runs here, each a fresh process.", min=1, max=1000)
    ] = 3,
    tolerance: Annotated[
        float,
        typer.Option(
            help="Slower than this fraction below the baseline is a regression.",
            callback=finite(0, 1),
        ),
    ] = 0.05,
    timeout: Annotated[float | None, typer.Option(help="Seconds per run at most.")] = None,
    wait_quiet: WaitQuietOption = None,
    require_quiet: RequireQuietOption = False,
    json_out: Annotated[
        str | None,
        typer.Option("--json", help="Write the verdict as JSON to FILE, or - for stdout."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Rerun a baseline here: pass, improvement, regression (exit 1) or inconclusive (exit 3)."""
    from dlbench.render import analysis as render_analysis
    from dlbench.render.console import QuietConsole
    from dlbench.store.database import Store
    from dlbench.tools.check import run_check

    check_timeout(timeout)
    check_json_out(json_out)
    human = err if json_out == "-" else out
    result = run_check(
        Store(db, create=False),  # a mistyped --db is an error, not a new, empty database
        name,
        repeat,
        tolerance,
        quiet=quiet_policy(wait_quiet, require_quiet),
        report=QuietConsole(err),
        timeout_s=timeout,
        show_progress=err.is_terminal,
        on_start=lambda run: human.print(
            f"[bold]({run.spec.repeat + 1}/{repeat})[/] {plain(name)}: {run.run_id}"
        ),
    )
    human.print(render_analysis.check_lines(result), highlight=False)
    if json_out:
        write_json(dataclasses.asdict(result), json_out)
    raise typer.Exit(result.exit_code)

"""What ``dlbench run`` does once its options are a spec: run it once or N times, print the
result, and exit with the code that says how it ended."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dlbench.cli.common import err, plain, write_json


def run_as_asked(
    spec: Any,
    store: Any,
    placement: Any,
    repeat: int,
    timeout: float | None,
    quiet: Any,
    human: Any,
    json_out: str | None,
) -> None:
    """Once, N times, or as one node of a run over several that node 0 stores."""
    if placement is not None and placement.node_rank > 0:
        run_as_node(spec, store, placement, repeat, timeout, human)
    if repeat == 1:
        run_once(spec, store, timeout, quiet, human, json_out, placement)
    run_repeats(spec, store, repeat, timeout, quiet, human, json_out, placement)


def run_once(
    spec: Any,
    store: Any,
    timeout: float | None,
    quiet: Any,
    human: Any,
    json_out: str | None,
    placement: Any = None,
) -> None:
    from dlbench.api import run_benchmark
    from dlbench.render.console import QuietConsole
    from dlbench.render.profile import profile_tables
    from dlbench.render.run import quality_lines, run_panel

    outcome = run_benchmark(
        spec,
        store,
        show_progress=err.is_terminal,
        timeout_s=timeout,
        quiet=quiet,
        report=QuietConsole(err),
        placement=placement,
    )
    summary = summary_of(store, outcome)
    human.print(run_panel(summary))
    profiled = profile_tables(summary.profile)
    if profiled is not None:
        human.print(profiled)
    human.print(quality_lines(summary), highlight=False)
    if not outcome.unsaved_path:
        human.print(f"stored as [bold]{outcome.run_id}[/] in {plain(store.describe())}")
    if json_out:
        write_json(summary.to_dict(), json_out)
    raise typer.Exit(exit_code([outcome]))


def summary_of(store: Any, outcome: Any) -> Any:
    """The run as stored, or as saved to a file when the store could not take it."""
    if outcome.unsaved_path:
        from dlbench.store import unsaved

        return unsaved.summary(Path(outcome.unsaved_path))
    return store.run(outcome.run_id)


def exit_code(outcomes: list[Any]) -> int:
    """NOT_STORED when a result is not in the database asked for (before any run's own
    code: a script must not take a saved file for a stored run), else the first failure's."""
    from dlbench.records import EXIT_CODES, NOT_STORED

    if any(o.unsaved_path for o in outcomes):
        return NOT_STORED
    failed = [o for o in outcomes if o.status != "ok"]
    return EXIT_CODES.get(failed[0].status, 1) if failed else 0


def run_repeats(
    spec: Any,
    store: Any,
    repeat: int,
    timeout: float | None,
    quiet: Any,
    human: Any,
    json_out: str | None,
    placement: Any = None,
) -> None:
    import dataclasses

    from dlbench.api import run_repeats
    from dlbench.measure.stats import between_runs
    from dlbench.render.console import QuietConsole
    from dlbench.render.run_lists import (
        baseline_hint,
        between_runs_lines,
        repeat_line,
        runs_table,
    )

    def started(run: Any) -> None:
        human.print(f"[bold]({run.spec.repeat + 1}/{repeat})[/] {run.run_id}")

    def ended(run: Any, outcome: Any) -> None:
        line = repeat_line(summary_of(store, outcome))
        human.print(f"[bold]({run.spec.repeat + 1}/{repeat})[/] {line}")

    outcomes = run_repeats(
        spec,
        store,
        repeat,
        show_progress=err.is_terminal,
        timeout_s=timeout,
        quiet=quiet,
        report=QuietConsole(err),
        on_start=started,
        on_end=ended,
        placement=placement,
    )
    summaries = [summary_of(store, o) for o in outcomes]
    spread = between_runs([s.mean_speed for s in summaries if s.status == "ok" and s.mean_speed])
    human.print(runs_table(summaries))
    human.print(between_runs_lines(spread, summaries), highlight=False)
    human.print(f"stored in {plain(store.describe())} (tag repeat_group={outcomes[0].run_id})")
    human.print(baseline_hint(summaries), highlight=False)
    if json_out:
        write_json(
            {
                "runs": [s.to_dict() for s in summaries],
                "between_runs": dataclasses.asdict(spread) if spread else None,
            },
            json_out,
        )
    raise typer.Exit(exit_code(outcomes))


def run_as_node(
    spec: Any, store: Any, placement: Any, repeat: int, timeout: float | None, human: Any
) -> None:
    """Node K > 0 of a run over several nodes: take part in each of node 0's runs (node 0
    prints and stores them); exit with how this node's processes ended."""
    from dlbench.api import preflight
    from dlbench.launch.local import run_local

    preflight(spec, store)
    outcomes = []
    ranks = placement.ranks(spec.gpus)
    for index in range(repeat):
        outcome = run_local(spec, "", store, timeout_s=timeout, placement=placement)
        outcomes.append(outcome)
        human.print(
            f"node {placement.node_rank} (ranks {ranks[0]}-{ranks[-1]}): run "
            f"{plain(outcome.run_id)} ({index + 1}/{repeat}) ended {plain(outcome.status)} here; "
            "node 0 stores it",
            highlight=False,
        )
        if outcome.interrupted:
            break
    raise typer.Exit(exit_code(outcomes))

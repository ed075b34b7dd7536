"""``dlbench run``: one benchmark, or the same one repeated."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dlbench.cli.cluster import (
    EndpointOption,
    GpusPerNodeOption,
    JoinTimeoutOption,
    NodeRankOption,
    processes_per_node,
    where_to_run,
)
from dlbench.cli.common import (
    DbOption,
    RequireQuietOption,
    WaitQuietOption,
    app,
    check_json_out,
    check_timeout,
    err,
    out,
    quiet_policy,
    warn_exposed,
)
from dlbench.cli.running import run_as_asked
from dlbench.cli.spec_options import spec_values, with_spec_options
from dlbench.config.option import HOW_LONG, OUTPUT


@app.command()
@with_spec_options()
def run(
    workload: Annotated[str, typer.Argument(help="A workload from `dlbench list`.")],
    repeat: Annotated[
        int,
        typer.Option(
            rich_help_panel=HOW_LONG,
            help="Run it N times, each a fresh process: between-run variation.",
            min=1,
            max=10_000,
        ),
    ] = 1,
    timeout: Annotated[
        float | None,
        typer.Option(
            rich_help_panel=HOW_LONG, help="Stop the run after SECONDS (stored as timeout)."
        ),
    ] = None,
    gpus_per_node: GpusPerNodeOption = None,
    node_rank: NodeRankOption = None,
    rdzv_endpoint: EndpointOption = None,
    join_timeout: JoinTimeoutOption = None,
    wait_quiet: WaitQuietOption = None,
    require_quiet: RequireQuietOption = False,
    json_out: Annotated[
        str | None,
        typer.Option(
            "--json",
            rich_help_panel=OUTPUT,
            help="Write the summary as JSON to FILE, or - for stdout.",
        ),
    ] = None,
    db: DbOption = None,
    **options: Any,
) -> None:
    """Run one training benchmark and store its result."""
    from dlbench.config import build_spec
    from dlbench.store.database import Store

    values = spec_values(options)
    nodes = values.get("nodes")
    values["gpus"] = processes_per_node(values.get("gpus"), gpus_per_node, nodes)
    spec = build_spec(workload=workload, **values)
    check_timeout(timeout)
    where = where_to_run(nodes, node_rank, rdzv_endpoint, join_timeout)
    if spec.metrics_port is not None:
        spec = spec.model_copy(update={"metrics_host": warn_exposed(spec.metrics_host)})
    quiet = quiet_policy(wait_quiet, require_quiet)
    human = err if json_out == "-" else out
    store = Store(db)  # makes its own folder (results/), where --json files often go
    check_json_out(json_out)
    run_as_asked(spec, store, where, repeat, timeout, quiet, human, json_out)

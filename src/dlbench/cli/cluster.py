"""Beyond one node: ``dlbench collectives`` (the interconnect on its own) and the options a
run over several nodes shares with it."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dlbench.cli.common import DbOption, app, check_timeout, err, out, plain, write_json

PANEL = "Across nodes"

NodesOption = Annotated[
    int | None,
    typer.Option(
        rich_help_panel=PANEL,
        help="Nodes of the run, one dlbench each (srun, or --node-rank on each) [default: 1].",
    ),
]
GpusPerNodeOption = Annotated[
    int | None,
    typer.Option(
        "--gpus-per-node",
        rich_help_panel=PANEL,
        help="Processes per node with --nodes: GPUs, or gloo CPU workers.",
    ),
]
NodeRankOption = Annotated[
    int | None,
    typer.Option(
        rich_help_panel=PANEL,
        help="This node's rank, 0 to N-1, outside Slurm (Slurm's job gives it under srun).",
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--rdzv-endpoint",
        rich_help_panel=PANEL,
        help="HOST:PORT of node 0, where the nodes meet (it uses PORT and PORT+1).",
    ),
]
JoinTimeoutOption = Annotated[
    int | None,
    typer.Option(
        rich_help_panel=PANEL,
        help="Seconds to wait for every node to join [default: 300].",
    ),
]


def where_to_run(
    nodes: int | None, node_rank: int | None, endpoint: str | None, join_timeout: int | None
) -> Any:
    """This node's Placement, or None for a run on this node alone (one ConfigError line)."""
    from dlbench.launch.nodes import placement

    return placement(nodes, node_rank, endpoint, join_timeout)


@app.command()
def collectives(
    ops: Annotated[
        str,
        typer.Option(
            help="all, or some of all_reduce,all_gather,reduce_scatter,broadcast,all_to_all."
        ),
    ] = "all",
    sizes: Annotated[
        str,
        typer.Option(help="MIN:MAX, doubling (nccl-tests' -b -e -f 2), or a list: 8B,1MiB."),
    ] = "8B:64MiB",
    device: Annotated[
        str, typer.Option(help="cpu (gloo) or cuda (NCCL, a GPU per process).")
    ] = "cpu",
    gpus_per_node: Annotated[
        int,
        typer.Option("--gpus-per-node", help="Processes per node: GPUs, or gloo CPU workers."),
    ] = 2,
    nodes: NodesOption = None,
    node_rank: NodeRankOption = None,
    rdzv_endpoint: EndpointOption = None,
    join_timeout: JoinTimeoutOption = None,
    iters: Annotated[
        int | None, typer.Option(help="Timed calls per round [default: 50 to 5, by size].")
    ] = None,
    warmup: Annotated[int, typer.Option(help="Untimed calls per size first.")] = 5,
    rounds: Annotated[int, typer.Option(help="Timed rounds per size: the interval.")] = 5,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop it after S seconds.")] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write the summary as JSON to FILE, or -.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Time collectives over message sizes as nccl-tests does: bus bandwidth with its interval."""
    from dlbench.config.checks import parse_tags
    from dlbench.measure.collectives import parse_operations, parse_sizes
    from dlbench.render.cluster import collectives_table, link_line
    from dlbench.render.run import quality_lines
    from dlbench.store.database import Store
    from dlbench.tools.collectives import CollectivesPlan, run_collectives

    plan = CollectivesPlan(
        parse_operations(ops),
        parse_sizes(sizes),
        gpus_per_node,
        device,
        iters,
        warmup,
        rounds,
        parse_tags(tag),
    )
    check_timeout(timeout)
    where = where_to_run(nodes, node_rank, rdzv_endpoint, join_timeout)
    store = Store(db)
    outcome = run_collectives(plan, store, where, timeout)
    if where is not None and where.node_rank > 0:
        err.print(f"node {where.node_rank}: run {plain(outcome.run_id)} ended {outcome.status}")
        raise typer.Exit(0 if outcome.status == "ok" else 1)
    run = store.run(outcome.run_id)
    human = err if json_out == "-" else out
    human.print(collectives_table(run.collectives, f"collectives, run {run.run_id}"))
    human.print(link_line(run), highlight=False)
    human.print(quality_lines(run), highlight=False)
    if run.status != "ok":
        human.print(f"[red]{plain(run.status)}[/]: {plain(run.error or '')}")
    human.print(f"stored as [bold]{run.run_id}[/] in {plain(store.describe())}")
    if json_out:
        write_json(run.to_dict(), json_out)
    raise typer.Exit(0 if run.status == "ok" else 1)


def processes_per_node(gpus: int | None, gpus_per_node: int | None, nodes: int | None) -> int:
    """--gpus means this node alone; over several nodes, --gpus-per-node says how many
    processes each starts."""
    from dlbench.errors import ConfigError

    if gpus is not None and gpus_per_node is not None:
        raise ConfigError("give --gpus (this node alone) or --gpus-per-node (with --nodes)")
    if gpus is not None and (nodes or 1) > 1:
        raise ConfigError(
            f"--gpus {gpus} means this node alone",
            f"give --gpus-per-node {gpus} with --nodes {nodes}",
        )
    if gpus_per_node is not None and not 1 <= gpus_per_node <= 1024:
        raise ConfigError("--gpus-per-node must be 1 to 1024")
    if gpus_per_node is not None:
        return gpus_per_node
    return 1 if gpus is None else gpus

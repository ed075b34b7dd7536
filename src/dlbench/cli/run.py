"""``dlbench run``: one training benchmark, or the same one repeated; ``dlbench generate``:
one generation benchmark."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

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
from dlbench.config.limits import MAX_STEPS

if TYPE_CHECKING:
    from dlbench.config import RunSpec
    from dlbench.launch.nodes import Placement
from dlbench.config.option import HOW_LONG, OUTPUT

GENERATION_ONLY = ("prompt_len", "gen_len")
# Run options a generation run has no use for: it trains nothing, on no data, in one process.
TRAINING_ONLY = (
    "steps", "epochs", "data", "dataset", "workers", "val_batches", "no_validate", "no_infer",
    "profile", "optimizer", "lr", "dataset_size", "target_accuracy", "until_stable", "max_time",
    "checkpoint", "image_size", "num_classes", "channels_last", "gpus", "nodes", "stage_from",
    "stage_to",
)  # fmt: skip
DEFAULT_PROMPT_LEN = DEFAULT_GEN_LEN = 128

RepeatOption = Annotated[
    int,
    typer.Option(
        rich_help_panel=HOW_LONG,
        help="Run it N times, each a fresh process: between-run variation.",
        min=1,
        max=10_000,
    ),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(rich_help_panel=HOW_LONG, help="Stop the run after SECONDS (stored as timeout)."),
]
JsonOutOption = Annotated[
    str | None,
    typer.Option(
        "--json", rich_help_panel=OUTPUT, help="Write the summary as JSON to FILE, or - for stdout."
    ),
]


@app.command()
@with_spec_options(skip=GENERATION_ONLY)
def run(
    workload: Annotated[str, typer.Argument(help="A workload from `dlbench list`.")],
    repeat: RepeatOption = 1,
    timeout: TimeoutOption = None,
    gpus_per_node: GpusPerNodeOption = None,
    node_rank: NodeRankOption = None,
    rdzv_endpoint: EndpointOption = None,
    join_timeout: JoinTimeoutOption = None,
    wait_quiet: WaitQuietOption = None,
    require_quiet: RequireQuietOption = False,
    json_out: JsonOutOption = None,
    db: DbOption = None,
    **options: Any,
) -> None:
    """Run one training benchmark and store its result."""
    from dlbench.config import build_spec

    values = spec_values(options)
    nodes = values.get("nodes")
    values["gpus"] = processes_per_node(values.get("gpus"), gpus_per_node, nodes)
    spec = build_spec(workload=workload, **values)
    check_timeout(timeout)
    where = where_to_run(nodes, node_rank, rdzv_endpoint, join_timeout)
    _start(spec, where, repeat, timeout, wait_quiet, require_quiet, json_out, db)


@app.command()
@with_spec_options(skip=TRAINING_ONLY)
def generate(
    workload: Annotated[
        str,
        typer.Argument(
            help="A model with a KV cache: gpt, param-transformer, the llama workloads."
        ),
    ],
    requests: Annotated[
        int,
        typer.Option(
            rich_help_panel=HOW_LONG,
            help="Timed requests, each --batch-size prompts generating --gen-len tokens.",
            min=1,
            max=MAX_STEPS // 2,  # with --warmup, the run's steps
        ),
    ] = 10,
    warmup: Annotated[
        int,
        typer.Option(
            rich_help_panel=HOW_LONG,
            help="Untimed requests first (allocation, compilation, clocks).",
            min=0,
            max=MAX_STEPS // 2,
        ),
    ] = 2,
    repeat: RepeatOption = 1,
    timeout: TimeoutOption = None,
    wait_quiet: WaitQuietOption = None,
    require_quiet: RequireQuietOption = False,
    json_out: JsonOutOption = None,
    db: DbOption = None,
    **options: Any,
) -> None:
    """Generate tokens greedily with a KV cache and store the run: time to first token, time
    per output token, inter-token latencies, prefill and decode tokens/s."""
    from dlbench.config import build_spec

    values = spec_values(options)
    values.setdefault("prompt_len", DEFAULT_PROMPT_LEN)
    values.setdefault("gen_len", DEFAULT_GEN_LEN)
    spec = build_spec(workload=workload, warmup=warmup, steps=warmup + requests, **values)
    check_timeout(timeout)
    _start(spec, None, repeat, timeout, wait_quiet, require_quiet, json_out, db)


def _start(
    spec: RunSpec,
    where: Placement | None,
    repeat: int,
    timeout: float | None,
    wait_quiet: float | None,
    require_quiet: bool,
    json_out: str | None,
    db: str | None,
) -> None:
    from dlbench.store.database import Store

    if spec.metrics_port is not None:
        spec = spec.model_copy(update={"metrics_host": warn_exposed(spec.metrics_host)})
    quiet = quiet_policy(wait_quiet, require_quiet)
    human = err if json_out == "-" else out
    store = Store(db)  # makes its own folder (results/), where --json files often go
    check_json_out(json_out)
    run_as_asked(spec, store, where, repeat, timeout, quiet, human, json_out)

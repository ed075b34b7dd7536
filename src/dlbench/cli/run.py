"""``dlbench run``: one benchmark, or the same one repeated."""

from __future__ import annotations

from typing import Annotated

import typer

from dlbench.cli.cluster import (
    EndpointOption,
    GpusPerNodeOption,
    JoinTimeoutOption,
    NodeRankOption,
    NodesOption,
    processes_per_node,
    where_to_run,
)
from dlbench.cli.common import (
    CpusOption,
    DbOption,
    MetricsHostOption,
    MetricsPortOption,
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


@app.command()
def run(
    workload: Annotated[str, typer.Argument(help="A workload from `dlbench list`.")],
    device: Annotated[
        str, typer.Option(rich_help_panel="What to train", help="auto, cpu, cuda, cuda:N or mps.")
    ] = "auto",
    framework: Annotated[
        str,
        typer.Option(
            rich_help_panel="What to train",
            help="pytorch, or tensorflow / jax (through Keras 3: dlbench[tensorflow]).",
        ),
    ] = "pytorch",
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            "-b",
            rich_help_panel="What to train",
            help="Images per step [default: the workload's].",
        ),
    ] = None,
    warmup: Annotated[
        int, typer.Option(rich_help_panel="How long", help="Untimed warm-up steps.")
    ] = 10,
    steps: Annotated[
        int | None,
        typer.Option(
            rich_help_panel="How long",
            help="Training steps, warm-up included [default: warm-up + 100].",
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            rich_help_panel="How long",
            help="Timed epochs (after the warm-up steps), instead of --steps.",
        ),
    ] = None,
    data: Annotated[
        str,
        typer.Option(
            rich_help_panel="Data",
            help="synthetic, digits (images), stdlib (text), or a folder or file in the "
            "workload's format.",
        ),
    ] = "synthetic",
    dataset: Annotated[
        str | None,
        typer.Option(
            rich_help_panel="Data",
            help="Which dataset of the workload's format: mnist or fashion-mnist (MNIST "
            "workloads); cifar10; imagefolder or imagenet32 (zoo); coco (detectors); "
            "dlbench list shows each workload's [default: its first].",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(rich_help_panel="Data", help="Input-pipeline worker processes.")
    ] = None,
    val_batches: Annotated[
        int | None,
        typer.Option(
            rich_help_panel="Phases after the timed steps",
            help="Test batches to validate and predict [default: all on real data, "
            "at most 20 on synthetic data].",
            min=1,
        ),
    ] = None,
    no_validate: Annotated[
        bool,
        typer.Option(
            "--no-validate",
            rich_help_panel="Phases after the timed steps",
            help="Skip the validation pass.",
        ),
    ] = False,
    no_infer: Annotated[
        bool,
        typer.Option(
            "--no-infer",
            rich_help_panel="Phases after the timed steps",
            help="Skip the inference phase (reload, latency).",
        ),
    ] = False,
    profile: Annotated[
        bool,
        typer.Option(
            "--profile",
            rich_help_panel="Phases after the timed steps",
            help="After the timed steps, profile 5 more: where a step's time goes, by operator "
            "category and by layer (the timed figures are unchanged).",
        ),
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(rich_help_panel="Measurement", help="CPU threads for the framework."),
    ] = None,
    cpus: CpusOption = None,
    seed: Annotated[int, typer.Option(rich_help_panel="Measurement", help="Random seed.")] = 0,
    timeout: Annotated[
        float | None,
        typer.Option(
            rich_help_panel="How long", help="Stop the run after SECONDS (stored as timeout)."
        ),
    ] = None,
    interval: Annotated[
        float,
        typer.Option(rich_help_panel="Measurement", help="Telemetry sampling period, seconds."),
    ] = 1.0,
    no_telemetry: Annotated[
        bool,
        typer.Option(
            "--no-telemetry",
            rich_help_panel="Measurement",
            help="Do not sample the system during the run.",
        ),
    ] = False,
    tag: Annotated[
        list[str] | None, typer.Option(rich_help_panel="Output", help="key=value, repeatable.")
    ] = None,
    image_size: Annotated[
        int | None,
        typer.Option(
            rich_help_panel="What to train",
            help="Square input side for zoo models [default: the model's].",
        ),
    ] = None,
    num_classes: Annotated[
        int | None,
        typer.Option(
            rich_help_panel="What to train",
            help="Output classes [default: the data's, or the workload's].",
        ),
    ] = None,
    seq_len: Annotated[
        int | None,
        typer.Option(
            rich_help_panel="What to train",
            help="Language models: tokens per sequence [default: 1024].",
        ),
    ] = None,
    vocab: Annotated[
        int | None,
        typer.Option(
            rich_help_panel="What to train",
            help="Language models: vocabulary [default: the data's, or 50257].",
        ),
    ] = None,
    precision: Annotated[
        str,
        typer.Option(
            rich_help_panel="What to train", help="fp32, tf32, amp-fp16 or amp-bf16 (autocast)."
        ),
    ] = "fp32",
    channels_last: Annotated[
        bool,
        typer.Option(
            "--channels-last",
            rich_help_panel="What to train",
            help="Model and images in channels-last layout.",
        ),
    ] = False,
    compile_model: Annotated[
        bool,
        typer.Option(
            "--compile",
            rich_help_panel="What to train",
            help="torch.compile the model (compiled in warm-up).",
        ),
    ] = False,
    optimizer: Annotated[
        str | None,
        typer.Option(
            rich_help_panel="What to train",
            help="sgd, adam, adamw or rmsprop [default: the workload's].",
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            rich_help_panel="What to train", help="Learning rate [default: the workload's]."
        ),
    ] = None,
    dataset_size: Annotated[
        int | None,
        typer.Option(
            rich_help_panel="How long",
            help="Project the time of --epochs (default 1) epochs of N images.",
        ),
    ] = None,
    target_accuracy: Annotated[
        float | None,
        typer.Option(
            rich_help_panel="How long",
            help="Train whole epochs until validation accuracy (mAP@0.5) reaches A.",
        ),
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            rich_help_panel="Phases after the timed steps",
            help="Save the trained weights to FILE (for dlbench infer).",
        ),
    ] = None,
    gpus: Annotated[
        int | None,
        typer.Option(
            rich_help_panel="What to train",
            help="Processes on this node under torchrun with DDP: GPUs, or gloo CPU workers.",
        ),
    ] = None,
    nodes: NodesOption = None,
    gpus_per_node: GpusPerNodeOption = None,
    node_rank: NodeRankOption = None,
    rdzv_endpoint: EndpointOption = None,
    join_timeout: JoinTimeoutOption = None,
    depth: Annotated[
        int | None,
        typer.Option(
            rich_help_panel="What to train",
            help="param-* workloads and gpt: weight layers (gpt: blocks).",
        ),
    ] = None,
    width: Annotated[
        int | None,
        typer.Option(
            rich_help_panel="What to train",
            help="param-* workloads and gpt: base width (gpt: model width).",
        ),
    ] = None,
    stage_from: Annotated[
        str | None,
        typer.Option(
            rich_help_panel="Data", help="Copy this data folder before the run (timed) ..."
        ),
    ] = None,
    stage_to: Annotated[
        str | None,
        typer.Option(rich_help_panel="Data", help="... into this one, and train from it."),
    ] = None,
    repeat: Annotated[
        int,
        typer.Option(
            rich_help_panel="How long",
            help="Run it N times, each a fresh process: between-run variation.",
            min=1,
            max=10_000,
        ),
    ] = 1,
    until_stable: Annotated[
        float | None,
        typer.Option(
            rich_help_panel="How long",
            help="Add timed steps until the step time's 95% CI is within P% of it.",
        ),
    ] = None,
    max_time: Annotated[
        float | None,
        typer.Option(
            rich_help_panel="How long", help="With --until-stable: seconds of timed steps at most."
        ),
    ] = None,
    wait_quiet: WaitQuietOption = None,
    require_quiet: RequireQuietOption = False,
    metrics_port: MetricsPortOption = None,
    metrics_host: MetricsHostOption = "127.0.0.1",
    json_out: Annotated[
        str | None,
        typer.Option(
            "--json",
            rich_help_panel="Output",
            help="Write the summary as JSON to FILE, or - for stdout.",
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Run one training benchmark and store its result."""
    from dlbench.config import build_spec, parse_tags
    from dlbench.store.database import Store

    spec = build_spec(
        workload=workload,
        framework=framework,
        device=device,
        batch_size=batch_size,
        warmup=warmup,
        steps=steps,
        epochs=epochs,
        data=data,
        dataset=dataset,
        workers=workers,
        val_batches=val_batches,
        no_validate=no_validate or None,
        no_infer=no_infer or None,
        profile=profile or None,
        threads=threads,
        cpus=cpus,
        seed=seed,
        telemetry=not no_telemetry,
        interval=interval,
        tags=parse_tags(tag),
        image_size=image_size,
        num_classes=num_classes,
        seq_len=seq_len,
        vocab=vocab,
        precision=precision,
        channels_last=channels_last,
        compile=compile_model,
        optimizer=optimizer,
        lr=lr,
        dataset_size=dataset_size,
        target_accuracy=target_accuracy,
        checkpoint=checkpoint,
        gpus=processes_per_node(gpus, gpus_per_node, nodes),
        nodes=nodes,
        stage_from=stage_from,
        stage_to=stage_to,
        depth=depth,
        width=width,
        until_stable=until_stable,
        max_time=max_time,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )
    check_timeout(timeout)
    where = where_to_run(nodes, node_rank, rdzv_endpoint, join_timeout)
    if metrics_port is not None:
        spec = spec.model_copy(update={"metrics_host": warn_exposed(metrics_host)})
    quiet = quiet_policy(wait_quiet, require_quiet)
    human = err if json_out == "-" else out
    store = Store(db)  # makes its own folder (results/), where --json files often go
    check_json_out(json_out)
    run_as_asked(spec, store, where, repeat, timeout, quiet, human, json_out)

"""``dlbench run``: one benchmark, or the same one repeated."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

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
    plain,
    quiet_policy,
    warn_exposed,
    write_json,
)


@app.command()
def run(
    workload: Annotated[str, typer.Argument(help="A workload from `dlbench list`.")],
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    framework: Annotated[
        str,
        typer.Option(help="pytorch, or tensorflow / jax (through Keras 3: dlbench[tensorflow])."),
    ] = "pytorch",
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", "-b", help="Images per step [default: the workload's]."),
    ] = None,
    warmup: Annotated[int, typer.Option(help="Untimed warm-up steps.")] = 10,
    steps: Annotated[
        int | None, typer.Option(help="Training steps, warm-up included [default: warm-up + 100].")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Timed epochs (after the warm-up steps), instead of --steps.")
    ] = None,
    data: Annotated[
        str,
        typer.Option(
            help="synthetic, digits (images), stdlib (text), or a folder or file in the "
            "workload's format.",
        ),
    ] = "synthetic",
    dataset: Annotated[
        str | None,
        typer.Option(
            help="Which dataset of the workload's format: mnist or fashion-mnist (MNIST "
            "workloads); cifar10; imagefolder or imagenet32 (zoo); coco (detectors); "
            "dlbench list shows each workload's [default: its first]."
        ),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Input-pipeline worker processes.")] = None,
    val_batches: Annotated[
        int | None,
        typer.Option(
            help="Test batches to validate and predict [default: all on real data, "
            "at most 20 on synthetic data].",
            min=1,
        ),
    ] = None,
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Skip the validation pass.")
    ] = False,
    no_infer: Annotated[
        bool, typer.Option("--no-infer", help="Skip the inference phase (reload, latency).")
    ] = False,
    profile: Annotated[
        bool,
        typer.Option(
            "--profile",
            help="After the timed steps, profile 5 more: where a step's time goes, by operator "
            "category and by layer (the timed figures are unchanged).",
        ),
    ] = False,
    threads: Annotated[int | None, typer.Option(help="CPU threads for the framework.")] = None,
    cpus: CpusOption = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    timeout: Annotated[
        float | None, typer.Option(help="Stop the run after SECONDS (stored as timeout).")
    ] = None,
    interval: Annotated[float, typer.Option(help="Telemetry sampling period, seconds.")] = 1.0,
    no_telemetry: Annotated[
        bool, typer.Option("--no-telemetry", help="Do not sample the system during the run.")
    ] = False,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    image_size: Annotated[
        int | None, typer.Option(help="Square input side for zoo models [default: the model's].")
    ] = None,
    num_classes: Annotated[
        int | None, typer.Option(help="Output classes [default: the data's, or the workload's].")
    ] = None,
    seq_len: Annotated[
        int | None, typer.Option(help="Language models: tokens per sequence [default: 1024].")
    ] = None,
    vocab: Annotated[
        int | None,
        typer.Option(help="Language models: vocabulary [default: the data's, or 50257]."),
    ] = None,
    precision: Annotated[
        str, typer.Option(help="fp32, tf32, amp-fp16 or amp-bf16 (autocast).")
    ] = "fp32",
    channels_last: Annotated[
        bool, typer.Option("--channels-last", help="Model and images in channels-last layout.")
    ] = False,
    compile_model: Annotated[
        bool, typer.Option("--compile", help="torch.compile the model (compiled in warm-up).")
    ] = False,
    optimizer: Annotated[
        str | None, typer.Option(help="sgd, adam, adamw or rmsprop [default: the workload's].")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help="Learning rate [default: the workload's].")
    ] = None,
    dataset_size: Annotated[
        int | None,
        typer.Option(help="Project the time of --epochs (default 1) epochs of N images."),
    ] = None,
    target_accuracy: Annotated[
        float | None,
        typer.Option(help="Train whole epochs until validation accuracy (mAP@0.5) reaches A."),
    ] = None,
    checkpoint: Annotated[
        str | None, typer.Option(help="Save the trained weights to FILE (for dlbench infer).")
    ] = None,
    gpus: Annotated[
        int, typer.Option(help="Processes under torchrun with DDP: GPUs, or gloo CPU workers.")
    ] = 1,
    depth: Annotated[
        int | None, typer.Option(help="param-* workloads and gpt: weight layers (gpt: blocks).")
    ] = None,
    width: Annotated[
        int | None, typer.Option(help="param-* workloads and gpt: base width (gpt: model width).")
    ] = None,
    stage_from: Annotated[
        str | None, typer.Option(help="Copy this data folder before the run (timed) ...")
    ] = None,
    stage_to: Annotated[
        str | None, typer.Option(help="... into this one, and train from it.")
    ] = None,
    repeat: Annotated[
        int,
        typer.Option(
            help="Run it N times, each a fresh process: between-run variation.", min=1, max=10_000
        ),
    ] = 1,
    until_stable: Annotated[
        float | None,
        typer.Option(help="Add timed steps until the step time's 95% CI is within P% of it."),
    ] = None,
    max_time: Annotated[
        float | None, typer.Option(help="With --until-stable: seconds of timed steps at most.")
    ] = None,
    wait_quiet: WaitQuietOption = None,
    require_quiet: RequireQuietOption = False,
    metrics_port: MetricsPortOption = None,
    metrics_host: MetricsHostOption = "127.0.0.1",
    json_out: Annotated[
        str | None,
        typer.Option("--json", help="Write the summary as JSON to FILE, or - for stdout."),
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
        gpus=gpus,
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
    if metrics_port is not None:
        spec = spec.model_copy(update={"metrics_host": warn_exposed(metrics_host)})
    quiet = quiet_policy(wait_quiet, require_quiet)
    human = err if json_out == "-" else out
    store = Store(db)  # makes its own folder (results/), where --json files often go
    check_json_out(json_out)
    if repeat == 1:
        _run_once(spec, store, timeout, quiet, human, json_out)
    _run_repeats(spec, store, repeat, timeout, quiet, human, json_out)


def _run_once(
    spec: Any, store: Any, timeout: float | None, quiet: Any, human: Any, json_out: str | None
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
    )
    summary = _summary(store, outcome)
    human.print(run_panel(summary))
    profiled = profile_tables(summary.profile)
    if profiled is not None:
        human.print(profiled)
    human.print(quality_lines(summary), highlight=False)
    if not outcome.unsaved_path:
        human.print(f"stored as [bold]{outcome.run_id}[/] in {plain(store.describe())}")
    if json_out:
        write_json(summary.to_dict(), json_out)
    raise typer.Exit(_exit_code([outcome]))


def _summary(store: Any, outcome: Any) -> Any:
    """The run as stored, or as saved to a file when the store could not take it."""
    if outcome.unsaved_path:
        from dlbench.store import unsaved

        return unsaved.summary(Path(outcome.unsaved_path))
    return store.run(outcome.run_id)


def _exit_code(outcomes: list[Any]) -> int:
    """NOT_STORED when a result is not in the database asked for (before any run's own
    code: a script must not take a saved file for a stored run), else the first failure's."""
    from dlbench.records import EXIT_CODES, NOT_STORED

    if any(o.unsaved_path for o in outcomes):
        return NOT_STORED
    failed = [o for o in outcomes if o.status != "ok"]
    return EXIT_CODES.get(failed[0].status, 1) if failed else 0


def _run_repeats(
    spec: Any,
    store: Any,
    repeat: int,
    timeout: float | None,
    quiet: Any,
    human: Any,
    json_out: str | None,
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
        line = repeat_line(_summary(store, outcome))
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
    )
    summaries = [_summary(store, o) for o in outcomes]
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
    raise typer.Exit(_exit_code(outcomes))

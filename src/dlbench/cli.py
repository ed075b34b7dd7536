"""The ``dlbench`` command: parse, call one library function, print. Nothing else here."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from dlbench import __version__
from dlbench.cli_common import (
    DbOption,
    JsonFlag,
    RequireQuietOption,
    WaitQuietOption,
    app,
    err,
    out,
    quiet_policy,
    state,
    write_json,
)
from dlbench.errors import ConfigError, DlbenchError


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    state["debug"] = debug
    if version:
        out.print(f"dlbench {__version__}")
        raise typer.Exit()


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
        str, typer.Option(help="synthetic, digits, or a folder in the workload's format.")
    ] = "synthetic",
    dataset: Annotated[
        str | None, typer.Option(help="mnist or fashion-mnist, where the workload takes either.")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Input-pipeline worker processes.")] = None,
    val_batches: Annotated[int | None, typer.Option(help="Cap on validation batches.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for the framework.")] = None,
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
    depth: Annotated[int | None, typer.Option(help="param-* workloads: weight layers.")] = None,
    width: Annotated[int | None, typer.Option(help="param-* workloads: base width.")] = None,
    stage_from: Annotated[
        str | None, typer.Option(help="Copy this data folder before the run (timed) ...")
    ] = None,
    stage_to: Annotated[
        str | None, typer.Option(help="... into this one, and train from it.")
    ] = None,
    repeat: Annotated[
        int, typer.Option(help="Run it N times, each a fresh process: between-run variation.")
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
    json_out: Annotated[
        str | None,
        typer.Option("--json", help="Write the summary as JSON to FILE, or - for stdout."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Run one training benchmark and store its result."""
    from dlbench.config import build_spec, parse_tags
    from dlbench.store import Store

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
        threads=threads,
        seed=seed,
        telemetry=not no_telemetry,
        interval=interval,
        tags=parse_tags(tag),
        image_size=image_size,
        num_classes=num_classes,
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
    )
    if timeout is not None and not 0 < timeout < float("inf"):  # NaN fails both
        raise DlbenchError("--timeout must be a positive, finite number of seconds")
    if repeat < 1:
        raise ConfigError("--repeat must be at least 1")
    quiet = quiet_policy(wait_quiet, require_quiet)
    human = err if json_out == "-" else out
    store = Store(db)  # makes its own folder (results/), where --json files often go
    if json_out and json_out != "-":
        from dlbench.api import writable_folder

        writable_folder(Path(json_out).expanduser().parent, "--json")
    if repeat == 1:
        _run_once(spec, store, timeout, quiet, human, json_out)
    _run_repeats(spec, store, repeat, timeout, quiet, human, json_out)


def _run_once(
    spec: Any, store: Any, timeout: float | None, quiet: Any, human: Any, json_out: str | None
) -> None:
    from dlbench import render
    from dlbench.api import run_benchmark
    from dlbench.console import QuietConsole
    from dlbench.launch.local import EXIT_CODES
    from dlbench.store.summary import run_summary

    outcome = run_benchmark(
        spec,
        store,
        show_progress=err.is_terminal,
        timeout_s=timeout,
        quiet=quiet,
        report=QuietConsole(err),
    )
    if outcome.unsaved_path:
        from dlbench.store import unsaved

        summary = unsaved.summary(Path(outcome.unsaved_path))
    else:
        summary = run_summary(store.get_run(outcome.run_id))
    human.print(render.run_panel(summary))
    human.print(render.quality_lines(summary), highlight=False)
    if not outcome.unsaved_path:
        human.print(f"stored as [bold]{outcome.run_id}[/] in {store.describe()}")
    if json_out:
        write_json(summary, json_out)
    raise typer.Exit(EXIT_CODES.get(outcome.status, 1))


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

    from dlbench import render
    from dlbench.api import run_repeats
    from dlbench.console import QuietConsole
    from dlbench.launch.local import EXIT_CODES
    from dlbench.measure.stats import between_runs
    from dlbench.store.summary import run_summary

    def started(run: Any) -> None:
        human.print(f"[bold]({run.spec.repeat + 1}/{repeat})[/] {run.run_id}")

    outcomes = run_repeats(
        spec,
        store,
        repeat,
        show_progress=err.is_terminal,
        timeout_s=timeout,
        quiet=quiet,
        report=QuietConsole(err),
        on_start=started,
    )
    summaries = [run_summary(store.get_run(o.run_id)) for o in outcomes]
    spread = between_runs([s["mean_speed"] for s in summaries if s["status"] == "ok"])
    human.print(render.runs_table(summaries))
    human.print(render.between_runs_lines(spread, summaries), highlight=False)
    human.print(f"stored in {store.describe()} (tag repeat_group={outcomes[0].run_id})")
    human.print(
        "keep them as a reference for dlbench check: dlbench baseline set NAME "
        + " ".join(o.run_id for o in outcomes if o.status == "ok"),
        highlight=False,
    )
    if json_out:
        write_json(
            {
                "runs": summaries,
                "between_runs": dataclasses.asdict(spread) if spread else None,
            },
            json_out,
        )
    failed = [o for o in outcomes if o.status != "ok"]
    raise typer.Exit(EXIT_CODES.get(failed[0].status, 1) if failed else 0)


@app.command()
def maxbatch(
    workload: Annotated[str, typer.Argument(help="A workload from `dlbench list`.")],
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option(help="fp32, tf32, amp-fp16 or amp-bf16.")] = "fp32",
    image_size: Annotated[int | None, typer.Option(help="Square input side (zoo).")] = None,
    channels_last: Annotated[bool, typer.Option("--channels-last")] = False,
    start: Annotated[
        int | None, typer.Option(help="First batch size tried [default: the workload's].")
    ] = None,
    limit: Annotated[int, typer.Option(help="Largest batch size tried.")] = 65_536,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            help="Probe as though the device had this much memory (8GiB, 512MiB) "
            "[default on CPU: 90% of the memory free now].",
        ),
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds per probe.")] = 600.0,
    json_flag: JsonFlag = False,
) -> None:
    """Find the largest batch that trains without running out of memory."""
    from dlbench import render
    from dlbench.api import preflight_device
    from dlbench.config import build_spec
    from dlbench.maxbatch import find_max_batch, parse_bytes

    spec = build_spec(
        workload=workload,
        device=device,
        precision=precision,
        image_size=image_size,
        channels_last=channels_last,
        telemetry=False,
    )
    if (start is not None and start < 1) or limit < 1:
        raise DlbenchError("--start and --limit must be at least 1")
    if timeout is not None and not 0 < timeout < float("inf"):  # NaN fails both
        raise DlbenchError("--timeout must be a positive, finite number of seconds")
    info = preflight_device(spec)
    cap = parse_bytes(memory_limit) if memory_limit else None
    human = err if json_flag else out
    human.print(f"probing {workload} on {info.device} ({info.device_name}), {precision}")
    found = find_max_batch(
        spec,
        info.kind,
        start=start or int(spec.batch_size or 1),
        limit=limit,
        memory_limit=cap,
        timeout_s=timeout,
        on_probe=lambda p: human.print(render.probe_line(p)),
    )
    if json_flag:
        import dataclasses

        write_json(dataclasses.asdict(found), "-")
    else:
        out.print(render.maxbatch_panel(found))
    raise typer.Exit(0 if found.max_batch_size else 3)


@app.command()
def infer(
    workload: Annotated[str, typer.Argument(help="The workload the checkpoint was trained as.")],
    checkpoint: Annotated[
        Path, typer.Option(help="Weights saved by dlbench run --checkpoint FILE.")
    ],
    images: Annotated[Path, typer.Option(help="A folder of PNG/JPEG images (searched deeply).")],
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option(help="fp32 or amp-fp16 / amp-bf16.")] = "fp32",
    json_out: Annotated[
        str | None,
        typer.Option("--json", help="Write every prediction as JSON to FILE, or - for stdout."),
    ] = None,
) -> None:
    """Predict each image of a folder with a trained checkpoint; latency per image."""
    import dataclasses

    from dlbench import render
    from dlbench.config import build_spec
    from dlbench.infer import infer_folder

    build_spec(workload=workload, device=device, precision=precision)  # validates the options
    human = err if json_out == "-" else out
    report = infer_folder(workload, checkpoint, images, device, precision)
    human.print(render.inference_table(report))
    if json_out:
        write_json(dataclasses.asdict(report), json_out)


@app.command()
def sweep(
    target: Annotated[str, typer.Argument(help="A sweep file, or status / collect.")],
    file: Annotated[
        str | None, typer.Argument(help="The sweep file, after status or collect.")
    ] = None,
    executor: Annotated[str, typer.Option(help="local or slurm.")] = "local",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the runs; run none.")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Skip runs already stored (ok or another end).")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="With resume: rerun those that did not end ok.")
    ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Slurm: return once the jobs are submitted.")
    ] = False,
    archive: Annotated[
        bool, typer.Option("--archive", help="Move older result files into archived/ first.")
    ] = False,
    wait_quiet: WaitQuietOption = None,
    require_quiet: RequireQuietOption = False,
    db: DbOption = None,
) -> None:
    """Run every combination of a sweep file: dlbench sweep FILE | status FILE | collect FILE."""
    from dlbench import render_sweep
    from dlbench.store import Store
    from dlbench.sweep import execute as run_sweep
    from dlbench.sweep import load

    if target in ("status", "collect"):
        if file is None:
            raise DlbenchError(f"dlbench sweep {target} needs the sweep file")
        _sweep_follow(target, load(Path(file)), Store(db, create=False))
        return
    if file is not None:
        raise DlbenchError(f"unexpected argument {file!r}", "dlbench sweep FILE [options]")
    if executor not in ("local", "slurm"):
        raise DlbenchError(f"--executor {executor!r} is not local or slurm")
    quiet = quiet_policy(wait_quiet, require_quiet)
    if executor == "slurm" and quiet.blocking:
        raise ConfigError(
            "--wait-quiet and --require-quiet are for the local executor",
            "on Slurm, ask for exclusive nodes (slurm: {extra: {exclusive: ''}}); each run "
            "still warns and stores its quality verdict",
        )
    spec = load(Path(target))
    store = Store(db)
    planned = run_sweep.plan(spec, store, resume, retry_failed)
    out.print(render_sweep.sweep_plan(spec, planned, executor))
    if dry_run:
        return
    run_sweep.check(spec, store, planned, local=executor == "local")
    if archive:
        moved = run_sweep.archive(spec.results_dir)
        out.print(f"archived {moved} older result file(s) in {spec.results_dir / 'archived'}")
    if executor == "slurm":
        from dlbench.sweep import slurm

        submissions = slurm.submit(spec, store, planned)
        out.print(
            f"submitted {sum(1 for p in planned if not p.skip_reason)} job(s); "
            f"follow with dlbench sweep status {target}"
        )
        if no_wait:
            return
        slurm.wait(spec, submissions)
        slurm.collect(spec, store)
    else:
        from dlbench.console import QuietConsole

        with render_sweep.SweepProgress(sum(1 for p in planned if not p.skip_reason), err) as bar:
            run_sweep.run_locally(
                spec, store, planned, bar.start, bar.end, quiet, QuietConsole(err)
            )
    rows = run_sweep.sweep_table_rows(spec, store)
    out.print(render_sweep.sweep_table(spec.name, rows))
    failed = [r for r in rows if r["status"] != "ok"]
    raise typer.Exit(1 if failed else 0)


def _sweep_follow(action: str, spec: Any, store: Any) -> None:
    from dlbench import render_sweep
    from dlbench.sweep import execute as run_sweep
    from dlbench.sweep import slurm

    if action == "collect":
        report = slurm.collect(spec, store)
    else:
        submissions = slurm.read_submissions(spec)
        states = slurm.job_states([s.job_id for s in submissions])
        stored = {r["run_key"]: r["status"] for r in store.list_runs(sweep=spec.name)}
        report = [(s, states.get(s.job_id, "GONE"), stored.get(s.key)) for s in submissions]
    out.print(render_sweep.jobs_table(spec.name, report))
    if action == "collect":
        out.print(render_sweep.sweep_table(spec.name, run_sweep.sweep_table_rows(spec, store)))


@app.command(name="import")
def import_runs(
    other: Annotated[
        str,
        typer.Argument(help="Another results database (path or URL), or a saved run's .json."),
    ],
    db: DbOption = None,
) -> None:
    """Merge another machine's runs into this database (runs already here are skipped), or
    put back a run saved to a .json file when its database could not take it."""
    from dlbench.store import Store, unsaved

    if unsaved.is_unsaved_file(other):
        path = Path(other).expanduser()
        target = Store(db)
        completed = unsaved.import_file(target, path)
        run_id = unsaved.load(path)["run"]["run_id"]
        what = "imported" if completed else "already stored (nothing changed):"
        out.print(f"{what} run {run_id} from {path} into {target.describe()}")
        return
    source = Store(other, create=False)
    target = Store(db)
    added, skipped = target.import_from(source)
    out.print(
        f"imported {added} run(s) from {source.describe()} into {target.describe()}; "
        f"{skipped} already there"
    )


@app.command()
def compare(
    runs: Annotated[list[str], typer.Argument(help="Run ids (or unique prefixes), two or more.")],
    by: Annotated[
        str, typer.Option(help="Group by device, workload, precision, gpus, tags.KEY ...")
    ] = "device",
    baseline: Annotated[
        str | None, typer.Option(help="The group the others are set against [default: first].")
    ] = None,
    db: DbOption = None,
) -> None:
    """Speed-up with confidence intervals and tests, and how the machine was used differently."""
    from dlbench import render_analysis
    from dlbench.analysis.compare import compare as compare_runs
    from dlbench.store import Store

    out.print(render_analysis.comparison(compare_runs(Store(db, create=False), runs, by, baseline)))


@app.command()
def scaling(
    workload: Annotated[str | None, typer.Option(help="Only this workload.")] = None,
    sweep_name: Annotated[str | None, typer.Option("--sweep", help="Only this sweep.")] = None,
    db: DbOption = None,
) -> None:
    """Speed and efficiency over GPU counts, staging tiers and batch sizes."""
    from dlbench import render_analysis
    from dlbench.analysis.scaling import scaling as scaling_series
    from dlbench.store import Store

    rows = Store(db, create=False).list_runs(workload=workload, sweep=sweep_name, status="ok")
    out.print(render_analysis.scaling_tables(scaling_series(rows)))


@app.command()
def cost(
    runs: Annotated[list[str], typer.Argument(help="Run ids (or unique prefixes).")],
    dataset_size: Annotated[
        int | None, typer.Option(help="Images per epoch [default: the workload's dataset].")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Epochs to price.")] = 1,
    price_per_hour: Annotated[float | None, typer.Option(help="USD per GPU-hour.")] = None,
    price_per_kwh: Annotated[float | None, typer.Option(help="USD per kWh of energy.")] = None,
    prices: Annotated[Path | None, typer.Option(help="Your own price table (YAML).")] = None,
    db: DbOption = None,
) -> None:
    """What training would cost, in money and energy, at each run's measured speed."""
    from dlbench import render_analysis
    from dlbench.analysis.cost import load_prices, run_cost
    from dlbench.store import Store
    from dlbench.store.summary import run_summary

    if epochs < 1 or (dataset_size is not None and dataset_size < 1):
        raise DlbenchError("--epochs and --dataset-size must be at least 1")
    store, table = Store(db, create=False), load_prices(prices)
    costs = [
        run_cost(
            run_summary(store.get_run(r)),
            dataset_size,
            epochs,
            price_per_hour,
            price_per_kwh,
            table,
        )
        for r in runs
    ]
    out.print(render_analysis.cost_table(costs))


@app.command()
def report(
    runs: Annotated[list[str] | None, typer.Argument(help="Run ids (or prefixes).")] = None,
    sweep_name: Annotated[str | None, typer.Option("--sweep", help="Every run of a sweep.")] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Every stored run.")] = False,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    title: Annotated[str, typer.Option(help="The report's title.")] = "dlbench report",
    price_per_hour: Annotated[float | None, typer.Option(help="USD per GPU-hour.")] = None,
    price_per_kwh: Annotated[float | None, typer.Option(help="USD per kWh.")] = None,
    db: DbOption = None,
) -> None:
    """One self-contained HTML report (opens offline) of runs, a sweep, or everything."""
    from dlbench.report.html import build
    from dlbench.store import Store

    chosen = sum(bool(x) for x in (runs, sweep_name, all_runs))
    if chosen != 1:
        raise DlbenchError("give run ids, --sweep NAME or --all (one of them)")
    store = Store(db, create=False)
    if runs:
        rows = [store.get_run(r) for r in runs]
    else:
        rows = store.list_runs(sweep=sweep_name)
    page = build(store, rows, title, price_per_hour, price_per_kwh)
    try:
        out_path.write_text(page)
    except OSError as exc:
        raise DlbenchError(f"cannot write {out_path}: {exc.strerror or exc}") from exc
    out.print(f"wrote {out_path} ({len(page) / 2**20:.1f} MiB, {len(rows)} runs)")


@app.command()
def dashboard(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            help="A folder of model files (FILE.py with a build function) the Calculator may "
            "describe; the page offers only the .py files directly in it. Without it, the "
            "page imports no file."
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Explore runs, telemetry and comparisons in the browser (read-only)."""
    import os
    from importlib import resources

    from dlbench.store import Store

    store = Store(db, read_only=True)  # a missing or unreadable database fails here, clearly
    if not 0 < port < 65536:
        raise DlbenchError(f"--port {port} is not a port number")
    if model_dir is not None and not model_dir.is_dir():
        raise DlbenchError(f"--model-dir {model_dir} is not a folder")
    if host in ("0.0.0.0", "::", ""):
        err.print(
            f"[yellow]warning: --host {host} serves the dashboard to every network this "
            "machine is on; its results become readable by anyone who can reach it[/]"
        )
    script = str(resources.files("dlbench.dashboard") / "app.py")
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        script,
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--",
        "--db",
        store.url,
        *(["--model-dir", str(model_dir.resolve())] if model_dir else []),
    ]
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    out.print(
        f"dlbench dashboard on http://{shown}:{port} (database {store.describe()}, "
        "read-only); Ctrl-C stops it",
        highlight=False,
    )
    sys.stdout.flush()
    store.close()
    # Streamlit takes this process over: Ctrl-C and SIGTERM reach the server itself.
    os.execv(sys.executable, command)


@app.command()
def quickstart(
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    db: DbOption = None,
) -> None:
    """Run every standard workload and a real-data accuracy run, then compare them."""
    from dlbench import render
    from dlbench.api import preflight
    from dlbench.console import QuietConsole
    from dlbench.launch.series import run_series
    from dlbench.quickstart import plan
    from dlbench.store import Store
    from dlbench.store.summary import run_summary

    store = Store(db)
    specs = plan(device)
    for spec in specs:
        preflight(spec, store)
    numbers: dict[str, int] = {}

    def started(run: Any) -> None:
        numbers[run.run_id] = number = len(numbers) + 1
        out.print(f"[bold]({number}/{len(specs)})[/] {run.spec.workload} on {run.spec.data} data")

    outcomes = run_series(
        specs, store, show_progress=err.is_terminal, report=QuietConsole(err), on_start=started
    )
    summaries = [run_summary(store.get_run(o.run_id)) for o in outcomes]
    out.print(render.comparison_table(summaries, "dlbench quickstart"))
    out.print(render.quickstart_footer(summaries, store.describe()))
    if any(s["status"] != "ok" for s in summaries):
        raise typer.Exit(1)


@app.command(context_settings={"allow_interspersed_args": False})
def monitor(
    command: Annotated[list[str], typer.Argument(help="The command to run, after --.")],
    interval: Annotated[float, typer.Option(help="Sampling period, seconds.")] = 1.0,
    name: Annotated[
        str | None, typer.Option(help="A name for the run [default: the program's name].")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    db: DbOption = None,
) -> None:
    """Run any command, sample the system and its processes until it exits, store it.

    Example: dlbench monitor --interval 0.5 -- python train.py --epochs 3
    """
    from dlbench import render
    from dlbench.config import parse_tags
    from dlbench.monitor import check_options
    from dlbench.monitor import monitor as run_monitor
    from dlbench.store import Store
    from dlbench.store.summary import run_summary

    check_options(command, interval)  # before the database is opened or created
    store = Store(db)
    run_id, code = run_monitor(command, store, interval, name, parse_tags(tag))
    summary = run_summary(store.get_run(run_id))
    err.print(render.telemetry_table(summary.get("telemetry")))
    err.print(render.quality_lines(summary), highlight=False)
    err.print(f"{summary['status']}: stored as [bold]{run_id}[/] in {store.describe()}")
    raise typer.Exit(code)


@app.command()
def sysinfo(
    json_flag: JsonFlag = False,
    data_dir: Annotated[
        str | None,
        typer.Option("--data-dir", help="Report the storage behind this folder [default: here]."),
    ] = None,
) -> None:
    """Show the hardware fingerprint that every run stores."""
    from dlbench import render
    from dlbench import sysinfo as probe

    info = probe.collect(data_dir)
    if json_flag:
        write_json(info, "-")
    else:
        out.print(render.sysinfo_table(info))


@app.command("list")
def list_workloads(json_flag: JsonFlag = False) -> None:
    """List the workloads that `dlbench run` takes."""
    from dlbench import render
    from dlbench.workloads import WORKLOADS

    if json_flag:
        write_json([render.workload_dict(w) for w in WORKLOADS.values()], "-")
    else:
        out.print(render.workloads_table(WORKLOADS.values()))


@app.command()
def runs(
    workload: Annotated[str | None, typer.Option(help="Only this workload.")] = None,
    device: Annotated[str | None, typer.Option(help="Only this device (e.g. cpu, cuda:0).")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    quality: Annotated[
        str | None, typer.Option(help="Only this quality verdict: clean, noisy or contended.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Only runs with key=value.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    json_flag: JsonFlag = False,
    db: DbOption = None,
) -> None:
    """List stored runs, newest first."""
    from dlbench import render
    from dlbench.config import parse_tags
    from dlbench.store import Store
    from dlbench.store.summary import run_summary

    if limit <= 0:
        raise DlbenchError("--limit must be at least 1")
    if quality is not None and quality not in ("clean", "noisy", "contended"):
        raise ConfigError(f"--quality {quality!r} is not clean, noisy or contended")
    store = Store(db, create=False)
    rows = store.list_runs(
        limit=limit,
        workload=workload,
        device=device,
        status=status,
        quality_verdict=quality,
        tags=parse_tags(tag),
    )
    if json_flag:
        write_json([run_summary(r) for r in rows], "-")
    elif not rows:
        out.print(f"no runs in {store.describe()} match; start with [bold]dlbench quickstart[/]")
    else:
        out.print(render.runs_table([run_summary(r) for r in rows]))


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="A run id, or a unique prefix of one.")],
    steps: Annotated[bool, typer.Option("--steps", help="Include per-step times.")] = False,
    telemetry: Annotated[
        bool, typer.Option("--telemetry", help="Show the telemetry summary per phase.")
    ] = False,
    json_flag: JsonFlag = False,
    db: DbOption = None,
) -> None:
    """Show one stored run."""
    from dlbench import render
    from dlbench.store import Store
    from dlbench.store.summary import run_summary

    store = Store(db, create=False)
    run = store.get_run(run_id)
    summary = run_summary(run)
    step_rows = store.get_steps(run["run_id"]) if steps else []
    if json_flag:
        if steps:
            summary["steps"] = [s.__dict__ for s in step_rows]
        if not telemetry:
            summary.pop("telemetry", None)
        write_json(summary, "-")
        return
    out.print(render.run_panel(summary, detail=True))
    out.print(render.quality_lines(summary), highlight=False)
    from dlbench import render_analysis
    from dlbench.analysis.bottleneck import verdicts

    found = verdicts(summary, store.get_samples(run["run_id"], ["cpu.freq_mhz", "cpu.temp_c"]))
    out.print(render_analysis.verdict_lines(run["run_id"], found))
    if telemetry:
        out.print(render.telemetry_table(summary.get("telemetry"), all_metrics=True))
    if steps:
        out.print(render.steps_table(step_rows, summary.get("batch_size") or 0))


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, json or parquet.")] = "csv",
    out_path: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="File to write, or - for stdout [default: <date>-dlbench-results.<format>].",
        ),
    ] = None,
    workload: Annotated[str | None, typer.Option(help="Only this workload.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Only runs with key=value.")] = None,
    sweep_name: Annotated[
        str | None, typer.Option("--sweep", help="Only this sweep's runs.")
    ] = None,
    run_id: Annotated[
        list[str] | None, typer.Option("--run", help="Only this run (id or prefix), repeatable.")
    ] = None,
    telemetry: Annotated[
        bool,
        typer.Option(
            "--telemetry",
            help="Export the telemetry samples (one row per reading) instead of one row per run.",
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Export stored runs (one row per run), or their telemetry samples."""
    from dlbench.config import parse_tags
    from dlbench.store import Store
    from dlbench.store.export import runs_frame, samples_frame, write

    store = Store(db, create=False)
    if run_id:
        rows = [store.get_run(r) for r in run_id]
    else:
        rows = store.list_runs(
            workload=workload, status=status, sweep=sweep_name, tags=parse_tags(tag)
        )
    if telemetry:
        frame = samples_frame({r["run_id"]: store.get_samples(r["run_id"]) for r in rows})
        what = f"{len(frame)} telemetry samples of {len(rows)} runs"
    else:
        frame, what = runs_frame(rows), f"{len(rows)} runs"
    path = write(frame, fmt, Path(out_path) if out_path else None, telemetry)
    if path is not None:
        err.print(f"wrote {what} to {path}")


# Registering the other command modules' commands on the app:
from dlbench import cli_baseline, cli_calculator  # noqa: E402, F401


def main() -> None:
    """Console entry point: every user error is one red line and exit code 2."""
    usage_error = _usage_error_type()
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)  # a kill ends dlbench as Ctrl-C does
    try:
        code = app(standalone_mode=False)
    except DlbenchError as exc:
        code = _fail(exc.one_line(), exc)
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare command: its help is the answer
            if exc.format_message().strip():
                out.print(exc.format_message())
            code = 0
        else:
            code = _fail(f"{exc.format_message()} (see dlbench --help)", exc)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: the same answer
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        err.print("interrupted")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


def _terminate_as_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _fail(message: str, exc: BaseException) -> int:
    if state["debug"]:
        err.print_exception()
    err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return 2


def _usage_error_type() -> Any:
    """Click's UsageError: vendored inside typer since 0.2x, a separate package before."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions  # type: ignore[no-redef]
    return exceptions.UsageError

"""Stored runs: list, show, export, import; and what this machine and dlbench offer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from dlbench.cli.common import (
    DbOption,
    JsonFlag,
    app,
    check_filters,
    err,
    finite,
    out,
    plain,
    write_json,
)
from dlbench.errors import ConfigError


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
    from dlbench.store import unsaved
    from dlbench.store.database import Store
    from dlbench.store.merge import check_runs, import_operators

    if unsaved.is_unsaved_file(other):
        path = Path(other).expanduser()
        content = unsaved.checked(path)  # before any database is opened, or made
        target = Store(db)
        completed = unsaved.import_checked(target, content)
        run_id = content[0]["run_id"]
        what = "imported" if completed else "already stored (nothing changed):"
        out.print(f"{what} run {plain(run_id)} from {plain(path)} into {plain(target.describe())}")
        return
    source = Store(other, create=False)
    check_runs(source)  # every run, before this database is opened, or made
    target = Store(db)

    added, skipped = target.import_from(source)
    operators = import_operators(target, source)
    out.print(
        f"imported {added} run(s) from {plain(source.describe())} into {plain(target.describe())}; "
        f"{skipped} already there" + (f"; {operators} operator measurement(s)" if operators else "")
    )


@app.command()
def sysinfo(
    json_flag: JsonFlag = False,
    data_dir: Annotated[
        str | None,
        typer.Option("--data-dir", help="Report the storage behind this folder [default: here]."),
    ] = None,
) -> None:
    """Show the hardware fingerprint that every run stores."""
    from dlbench import sysinfo as probe
    from dlbench.render.listings import sysinfo_table

    info = probe.collect(data_dir)
    if json_flag:
        write_json(info, "-")
    else:
        out.print(sysinfo_table(info))


@app.command("list")
def list_workloads(json_flag: JsonFlag = False) -> None:
    """List the workloads that `dlbench run` takes."""
    from dlbench.render.listings import workload_dict, workloads_table
    from dlbench.workloads import WORKLOADS

    if json_flag:
        write_json([workload_dict(w) for w in WORKLOADS.values()], "-")
    else:
        out.print(workloads_table(WORKLOADS.values()))


@app.command()
def runs(
    workload: Annotated[str | None, typer.Option(help="Only this workload.")] = None,
    device: Annotated[str | None, typer.Option(help="Only this device (e.g. cpu, cuda:0).")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    quality: Annotated[
        str | None, typer.Option(help="Only this quality verdict: clean, noisy or contended.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Only runs with key=value.")] = None,
    sweep_name: Annotated[
        str | None, typer.Option("--sweep", help="Only this sweep's runs.")
    ] = None,
    limit: Annotated[
        int, typer.Option(help="At most this many, newest first.", min=1, max=10**9)
    ] = 20,
    json_flag: JsonFlag = False,
    db: DbOption = None,
) -> None:
    """List stored runs, newest first."""
    from dlbench.config.checks import parse_tags
    from dlbench.render.run_lists import runs_table
    from dlbench.store.database import Store

    if quality is not None and quality not in ("clean", "noisy", "contended"):
        raise ConfigError(
            f"--quality {quality!r} is not clean, noisy or contended", option="--quality"
        )
    store = Store(db, create=False)
    check_filters(store, status=status, workload=workload, sweep=sweep_name)
    rows = store.runs(
        limit=limit,
        sweep=sweep_name,
        workload=workload,
        device=device,
        status=status,
        quality_verdict=quality,
        tags=parse_tags(tag),
    )
    if json_flag:
        write_json([r.to_dict() for r in rows], "-")
    elif not rows:
        hint = (
            "a run's sweep is not a tag: --sweep NAME"
            if "sweep" in parse_tags(tag)
            else "start with [bold]dlbench quickstart[/]"
        )
        out.print(f"no runs in {plain(store.describe())} match; {hint}")
    else:
        out.print(runs_table(rows))


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
    from dlbench.render.cluster import collectives_table, link_line, ranks_parts
    from dlbench.render.listings import telemetry_table
    from dlbench.render.profile import profile_tables
    from dlbench.render.run import quality_lines, run_panel, steps_table
    from dlbench.store.database import Store

    store = Store(db, create=False)
    summary = store.run(run_id)
    step_rows = store.get_steps(summary.run_id) if steps else []
    if json_flag:
        document = summary.to_dict()
        if steps:
            document["steps"] = [s.__dict__ for s in step_rows]
        if not telemetry:
            document.pop("telemetry", None)
        write_json(document, "-")
        return
    out.print(run_panel(summary, detail=True))
    out.print(quality_lines(summary), highlight=False)
    for part in ranks_parts(summary):
        out.print(part)
    if summary.collectives:
        out.print(collectives_table(summary.collectives, "collectives"))
        out.print(link_line(summary), highlight=False)
    from dlbench.analysis.bottleneck import verdicts
    from dlbench.render import analysis as render_analysis

    found = verdicts(summary, store.get_samples(summary.run_id, ["cpu.freq_mhz", "cpu.temp_c"]))
    out.print(render_analysis.verdict_lines(summary.run_id, found))
    profiled = profile_tables(summary.profile)
    if profiled is not None:
        out.print(profiled)
    if telemetry:
        out.print(telemetry_table(summary.telemetry, all_metrics=True))
    if steps:
        out.print(steps_table(step_rows, summary.batch_size or 0, summary.speed_unit))


@app.command()
def export(
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="csv, json, parquet or mlflow.")
    ] = "csv",
    out_path: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="File to write, or - for stdout [default: <date>-dlbench-results.<format>]; "
            "with mlflow, the tracking URI (sqlite:///mlflow.db or http://host:5000).",
        ),
    ] = None,
    experiment: Annotated[
        str, typer.Option(help="With --format mlflow: the MLflow experiment.")
    ] = "dlbench",
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
    timeout: Annotated[
        float,
        typer.Option(
            help="With --format mlflow: seconds to wait for the tracking server.",
            callback=finite(1, 3600),
        ),
    ] = 30.0,
    artifacts: Annotated[
        str | None,
        typer.Option(
            help="With --format mlflow: where a new experiment keeps its artifacts "
            "[default: mlartifacts/ beside a sqlite:/// database; the server's choice].",
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Export stored runs (one row per run), or their telemetry samples."""
    from dlbench.config.checks import parse_tags
    from dlbench.store.database import Store
    from dlbench.store.export import FORMATS, default_path, runs_frame, samples_frame, write

    if fmt not in (*FORMATS, "mlflow"):
        raise ConfigError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}, mlflow")
    if fmt != "mlflow" and out_path != "-":
        from dlbench.api import writable_file

        writable_file(Path(out_path) if out_path else default_path(fmt, telemetry), "--out")
    store = Store(db, create=False)
    check_filters(store, status=status, workload=workload, sweep=sweep_name)
    if run_id:
        rows = [store.get_run(r) for r in run_id]
    else:
        rows = store.list_runs(
            workload=workload, status=status, sweep=sweep_name, tags=parse_tags(tag)
        )
    if fmt == "mlflow":
        _to_mlflow(store, rows, out_path, experiment, timeout, artifacts)
        return
    if telemetry:
        frame = samples_frame({r["run_id"]: store.get_samples(r["run_id"]) for r in rows})
        what = f"{len(frame)} telemetry samples of {len(rows)} runs"
    else:
        frame, what = runs_frame(rows), f"{len(rows)} runs"
    path = write(frame, fmt, Path(out_path) if out_path else None, telemetry)
    if path is not None:
        err.print(f"wrote {what} to {plain(path)}")


def _to_mlflow(
    store: Any,
    rows: list[dict[str, Any]],
    uri: str | None,
    experiment: str,
    timeout_s: float,
    artifacts: str | None,
) -> None:
    from dlbench.store.stored import StoredRun
    from dlbench.store.to_mlflow import export_runs

    if not uri:
        raise ConfigError(
            "--format mlflow needs --out TRACKING_URI",
            "e.g. --out ./mlruns, --out sqlite:///mlflow.db or --out http://mlflow:5000",
            option="--out",
        )
    runs = [StoredRun.from_row(r) for r in rows if r["status"] != "running"]
    logged, present, where = export_runs(store, runs, uri, experiment, timeout_s, artifacts)
    err.print(
        f"logged {logged} run(s) to MLflow at {plain(uri)} (experiment {plain(experiment)}, "
        f"artifacts in {plain(where)}); {present} already there"
    )


@app.command()
def rm(
    run_ids: Annotated[list[str], typer.Argument(help="Run ids (or unique prefixes).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    db: DbOption = None,
) -> None:
    """Delete stored runs, with their steps and telemetry (asks first)."""
    from dlbench.store.database import Store

    store = Store(db, create=False)
    found = list({r.run_id: r for r in (store.run(i) for i in run_ids)}.values())
    running = [r.run_id for r in found if r.status == "running"]
    if running:
        raise ConfigError(
            f"run {running[0]} is still running: its process still writes to it",
            "stop it first (Ctrl-C, or kill its process), then delete it",
        )
    listed = ", ".join(f"{r.run_id} ({r.workload}, {r.status})" for r in found)
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"deleting {listed} needs --yes when not asked at a terminal")
        if not typer.confirm(f"delete {listed} and their steps and telemetry?"):
            err.print("nothing deleted")
            raise typer.Exit(1)
    deleted = store.delete_runs([r.run_id for r in found])
    out.print(f"deleted {deleted} run(s) from {plain(store.describe())}")


@app.command()
def tag(
    run_id: Annotated[str, typer.Argument(help="A run id, or a unique prefix of one.")],
    pairs: Annotated[
        list[str] | None, typer.Argument(help="key=value to set; key= to remove.")
    ] = None,
    exclude: Annotated[
        str | None,
        typer.Option(help="Leave the run out of fits and comparisons, saying why."),
    ] = None,
    include: Annotated[
        bool, typer.Option("--include", help="Take an excluded run back in.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Label a run (key=value), or keep it but leave it out of fits and comparisons."""
    from dlbench.config.checks import check_tag
    from dlbench.config.limits import TAG_KEY_PATTERN
    from dlbench.store.database import Store
    from dlbench.store.stored import EXCLUDE_TAG

    if exclude is not None and include:
        raise ConfigError("--exclude and --include contradict each other", option="--exclude")
    store = Store(db, create=False)  # a mistyped --db is an error, not a new database
    run = store.run(run_id)
    tags = dict(run.tags)
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not TAG_KEY_PATTERN.match(key.strip()):
            raise ConfigError(
                f"{pair!r} is not key=value with a key of letters, digits, '_', '.', '-'",
                "e.g. dlbench tag RUN note=rerun",
            )
        check_tag(key.strip(), value.strip())
        if value.strip():
            tags[key.strip()] = value.strip()
        else:
            tags.pop(key.strip(), None)
    if exclude is not None:
        if not exclude.strip():
            raise ConfigError(
                "--exclude needs a reason", 'e.g. --exclude "fan failed during the run"'
            )
        check_tag(EXCLUDE_TAG, exclude.strip())
        tags[EXCLUDE_TAG] = exclude.strip()
    if include:
        tags.pop(EXCLUDE_TAG, None)
    store.set_tags(run.run_id, tags)
    shown = ", ".join(f"{k}={v}" for k, v in tags.items()) or "none"
    out.print(f"{plain(run.run_id)}: tags {plain(shown)}")

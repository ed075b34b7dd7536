"""``dlbench sweep``: a YAML file's combinations, locally, with torchrun or on Slurm."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from dlbench.cli.common import (
    DbOption,
    RequireQuietOption,
    WaitQuietOption,
    app,
    err,
    out,
    plain,
    quiet_policy,
    warn_exposed,
)
from dlbench.cli.spec_options import spec_option
from dlbench.errors import ConfigError, DlbenchError


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
    metrics_port: int | None = spec_option("metrics_port"),
    metrics_host: str = spec_option("metrics_host"),
    db: DbOption = None,
) -> None:
    """Run every combination of a sweep file: dlbench sweep FILE | status FILE | collect FILE."""
    from dlbench.render import sweep as render_sweep
    from dlbench.render.console import QuietConsole
    from dlbench.store.database import Store
    from dlbench.sweep import execute as run_sweep
    from dlbench.sweep.executors import SweepEvents, get_executor
    from dlbench.sweep.file import load

    if target in ("status", "collect"):
        if file is None:
            raise DlbenchError(f"dlbench sweep {target} needs the sweep file")
        _sweep_follow(target, load(Path(file)), Store(db, create=False))
        return
    if file is not None:
        raise DlbenchError(f"unexpected argument {file!r}", "dlbench sweep FILE [options]")
    if _ran_serving_sweep(Path(target), executor, dry_run, resume, db):
        return
    runner = get_executor(executor)
    quiet = quiet_policy(wait_quiet, require_quiet)
    if not runner.local and quiet.blocking:
        raise ConfigError(
            "--wait-quiet and --require-quiet are for the local executor",
            "on Slurm, ask for exclusive nodes (slurm: {extra: {exclusive: ''}}); each run "
            "still warns and stores its quality verdict",
            option="--wait-quiet" if wait_quiet is not None else "--require-quiet",
        )
    spec = load(Path(target))
    if metrics_port is not None:  # one port for the whole sweep: each run serves it in turn
        serving = {"metrics_port": metrics_port, "metrics_host": warn_exposed(metrics_host)}
        spec = replace(
            spec, runs=tuple(replace(r, spec=r.spec.model_copy(update=serving)) for r in spec.runs)
        )
    store = Store(db)
    planned = run_sweep.plan(spec, store, resume, retry_failed)
    out.print(render_sweep.sweep_plan(spec, planned, executor))
    if dry_run:
        return
    run_sweep.check(spec, store, planned, local=runner.local)
    if archive:
        moved = run_sweep.archive(spec.results_dir)
        out.print(
            f"archived {moved} older result file(s) in {plain(spec.results_dir / 'archived')}"
        )
    events = SweepEvents(
        say=lambda line: out.print(plain(line)),
        quiet=quiet,
        report=QuietConsole(err),
        wait=not no_wait,
    )
    if runner.local:
        with render_sweep.SweepProgress(sum(1 for p in planned if not p.skip_reason), err) as bar:
            runner.run(spec, store, planned, replace(events, on_start=bar.start, on_end=bar.end))
    else:
        runner.run(spec, store, planned, events)
        if no_wait:
            return
    rows = run_sweep.sweep_table_rows(spec, store)
    out.print(render_sweep.sweep_table(spec.name, rows))
    failed = [r for r in rows if r.run.status != "ok"]
    raise typer.Exit(1 if failed else 0)


def _ran_serving_sweep(path: Path, executor: str, dry_run: bool, resume: bool, db: Any) -> bool:
    """A sweep file with ``serve:`` is run here, serve-bench over its matrix (True); another
    is left to the caller (False)."""
    from dlbench.sweep.file import read_document

    content, where = read_document(path)
    if "serve" not in content:
        return False
    _serving_sweep(content, where, executor, dry_run, resume, db)
    return True


def _serving_sweep(
    content: dict[str, Any], where: Any, executor: str, dry_run: bool, resume: bool, db: Any
) -> None:
    """A sweep file with ``serve:``: serve-bench over its matrix, from this machine."""
    from dlbench.render.serving import passes_table, series_table
    from dlbench.store.database import Store
    from dlbench.sweep import serving

    if executor != "local":
        raise ConfigError(
            "a serving sweep runs from this machine, the server's client: --executor local",
            option="--executor",
        )
    sweep, runs = serving.load(content, where)
    out.print(
        f"serving sweep {plain(sweep.name)}: {len(runs)} runs against {plain(sweep.serve.url)}"
    )
    for item in runs:
        out.print(f"  {plain(item.label)}", highlight=False)
    if dry_run:
        return
    store = Store(db)
    done = serving.run(sweep.name, runs, store, resume, lambda line: out.print(plain(line)))
    stored = store.runs(sweep=sweep.name)
    out.print(series_table(stored))
    passes = passes_table(stored)
    if passes is not None:
        out.print(passes)
    raise typer.Exit(0 if all(r.status == "ok" for r in done) else 1)


def _sweep_follow(action: str, spec: Any, store: Any) -> None:
    from dlbench.render import sweep as render_sweep
    from dlbench.sweep import execute as run_sweep
    from dlbench.sweep import slurm

    report = slurm.collect(spec, store) if action == "collect" else slurm.status(spec, store)
    out.print(render_sweep.jobs_table(spec.name, report))
    if action == "collect":
        out.print(render_sweep.sweep_table(spec.name, run_sweep.sweep_table_rows(spec, store)))

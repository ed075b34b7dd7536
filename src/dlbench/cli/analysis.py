"""Analyses of stored runs: compare, scaling, cost, the HTML report, the dashboard."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dlbench.cli.common import (
    DbOption,
    PricePerHourOption,
    PricePerKwhOption,
    app,
    check_filters,
    out,
    plain,
    warn_exposed,
)
from dlbench.config.limits import MAX_DATASET, MAX_EPOCHS
from dlbench.errors import ConfigError, DlbenchError, require


@app.command()
def compare(
    runs: Annotated[list[str], typer.Argument(help="Run ids (or unique prefixes), two or more.")],
    by: Annotated[
        str | None,
        typer.Option(
            help="Group by device, workload, precision, gpus, batch_size, tags.KEY ... "
            "[default: the first of these the runs differ in]"
        ),
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="The group the others are set against [default: first].")
    ] = None,
    db: DbOption = None,
) -> None:
    """Speed-up with confidence intervals and tests, and how the machine was used differently."""
    from dlbench.analysis.compare import compare as compare_runs
    from dlbench.render import analysis as render_analysis
    from dlbench.render.cluster import collectives_comparison, straggler_warning
    from dlbench.render.console import text
    from dlbench.store.database import Store

    store = Store(db, create=False)
    stored = [store.run(run_id) for run_id in runs]
    if stored and all(run.kind == "collective" for run in stored):
        out.print(collectives_comparison(stored))
        return
    result = compare_runs(store, runs, by, baseline)
    out.print(render_analysis.comparison(result))
    for group in result.groups:
        for run in group.runs:
            warning = straggler_warning(run)
            if warning:
                out.print(text(f"straggler: {warning}", "red"))


@app.command()
def scaling(
    workload: Annotated[str | None, typer.Option(help="Only this workload.")] = None,
    sweep_name: Annotated[str | None, typer.Option("--sweep", help="Only this sweep.")] = None,
    db: DbOption = None,
) -> None:
    """Speed-up and efficiency over GPU and node counts, staging tiers and batch sizes."""
    from dlbench.analysis.scaling import scaling as scaling_series
    from dlbench.render import analysis as render_analysis
    from dlbench.store.database import Store

    store = Store(db, create=False)
    check_filters(store, workload=workload, sweep=sweep_name)
    found = store.runs(workload=workload, sweep=sweep_name, status="ok")
    out.print(render_analysis.scaling_tables(scaling_series(found)))


@app.command()
def cost(
    runs: Annotated[list[str], typer.Argument(help="Run ids (or unique prefixes).")],
    dataset_size: Annotated[
        int | None,
        typer.Option(
            help="Images per epoch [default: the workload's dataset].", min=1, max=MAX_DATASET
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Epochs to price.", min=1, max=MAX_EPOCHS)] = 1,
    price_per_hour: PricePerHourOption = None,
    price_per_kwh: PricePerKwhOption = None,
    prices: Annotated[Path | None, typer.Option(help="Your own price table (YAML).")] = None,
    db: DbOption = None,
) -> None:
    """What training would cost, in money and energy, at each run's measured speed."""
    from dlbench.analysis.cost import load_prices, run_cost
    from dlbench.render import analysis as render_analysis
    from dlbench.store.database import Store

    table = load_prices(prices)  # a bad price file is the answer, whatever the database
    store = Store(db, create=False)
    costs = [
        run_cost(
            store.run(r),
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
    price_per_hour: PricePerHourOption = None,
    price_per_kwh: PricePerKwhOption = None,
    db: DbOption = None,
) -> None:
    """One self-contained HTML report (opens offline) of runs, a sweep, or everything."""
    from dlbench.api import writable_file
    from dlbench.report.html import build
    from dlbench.store.database import Store

    chosen = sum(bool(x) for x in (runs, sweep_name, all_runs))
    if chosen != 1:
        raise DlbenchError("give run ids, --sweep NAME or --all (one of them)")
    writable_file(out_path, "--out", may_replace=_is_html)  # before any work
    store = Store(db, create=False)
    check_filters(store, sweep=sweep_name)
    if runs:
        rows = [store.run(r) for r in runs]
    else:
        rows = store.runs(sweep=sweep_name)
    page = build(store, rows, title, price_per_hour, price_per_kwh)
    try:
        out_path.write_text(page)
    except OSError as exc:
        raise DlbenchError(f"cannot write {out_path}: {exc.strerror or exc}") from exc
    out.print(f"wrote {plain(out_path)} ({len(page) / 2**20:.1f} MiB, {len(rows)} runs)")


def _is_html(head: bytes) -> bool:
    """An earlier report (or another HTML page) may be replaced; anything else is kept."""
    start = head.lstrip().lower()
    return start.startswith((b"<!doctype html", b"<html"))


@app.command()
def dashboard(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8501,
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

    from dlbench.store.database import Store
    from dlbench.telemetry.prometheus import check_listen

    require("streamlit", "dashboard", "dlbench dashboard")
    if model_dir is not None and not model_dir.is_dir():
        raise ConfigError(f"--model-dir {model_dir} is not a folder", option="--model-dir")
    host = warn_exposed(host, "--host", "the dashboard")
    check_listen(host, port, "--port")  # taken: one line here, not Streamlit's log
    store = Store(db, read_only=True)  # a missing or unreadable database fails here, clearly
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
    from dlbench.telemetry.prometheus import listen_address

    local = host in ("127.0.0.1", "::1") or listen_address(host, "--host")[1]
    shown = "localhost" if local else host
    out.print(
        f"dlbench dashboard on http://{plain(shown)}:{port} (database {plain(store.describe())}, "
        "read-only); Ctrl-C stops it",
        highlight=False,
    )
    sys.stdout.flush()
    store.close()
    # Streamlit takes this process over: Ctrl-C and SIGTERM reach the server itself.
    os.execv(sys.executable, command)

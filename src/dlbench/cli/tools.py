"""Tools: the largest batch that fits, folder inference, the quick start, the monitor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dlbench.cli.common import (
    DbOption,
    JsonFlag,
    app,
    check_json_out,
    check_timeout,
    err,
    out,
    plain,
    warn_exposed,
    write_json,
)
from dlbench.cli.spec_options import spec_option
from dlbench.config.limits import MAX_BATCH


def metrics_server(port: int | None, host: str) -> Any:
    """A started ``/metrics`` server (None without a port), said on stderr."""
    if port is None:
        return None
    from dlbench.telemetry.prometheus import MetricsServer, TelemetryCollector, constant_labels

    host = warn_exposed(host)
    server = MetricsServer(TelemetryCollector(constant_labels()), port, host)
    err.print(f"metrics: http://{plain(host)}:{server.port}/metrics", highlight=False)
    return server


@app.command()
def exporter(
    port: Annotated[int, typer.Option(help="Port of /metrics.", min=1, max=65535)] = 9977,
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0: every network).")
    ] = "127.0.0.1",
    interval: Annotated[float, typer.Option(help="Sampling period, seconds.")] = 5.0,
    db: DbOption = None,
) -> None:
    """Serve this machine's telemetry and the last stored runs' figures to Prometheus, until
    stopped (a node exporter; docs/guides/monitoring.md has a systemd unit)."""
    import threading

    from dlbench.errors import ConfigError, StoreError
    from dlbench.store.database import Store
    from dlbench.tools.exporter import serve

    if not 0.1 <= interval <= 3600:
        raise ConfigError("--interval must be between 0.1 and 3600 seconds", option="--interval")
    host = warn_exposed(host, "--host")
    try:
        store: Store | None = Store(db, read_only=True)
    except StoreError as exc:
        store = None
        err.print(f"no stored runs are served: {plain(exc.message)}", highlight=False)

    def ready(server: Any) -> None:
        err.print(
            f"serving http://{plain(host)}:{server.port}/metrics (Ctrl-C stops)", highlight=False
        )

    try:
        serve(store, port, host, interval, threading.Event(), on_ready=ready)
    except KeyboardInterrupt:
        err.print("exporter stopped")


@app.command()
def maxbatch(
    workload: Annotated[str, typer.Argument(help="A workload from `dlbench list`.")],
    device: str = spec_option("device"),
    precision: str = spec_option("precision"),
    image_size: int | None = spec_option("image_size"),
    seq_len: int | None = spec_option("seq_len"),
    depth: int | None = spec_option("depth"),
    width: int | None = spec_option("width"),
    heads: int | None = spec_option("heads"),
    kv_heads: int | None = spec_option("kv_heads"),
    vocab: int | None = spec_option("vocab"),
    channels_last: bool = spec_option("channels_last"),
    prompt_len: int | None = spec_option("prompt_len"),
    gen_len: Annotated[
        int | None,
        typer.Option(
            help="Probe generation instead of training: request batches of --prompt-len + "
            "this many tokens, the largest batch whose KV cache fits [default: training].",
            min=1,
        ),
    ] = None,
    start: Annotated[
        int | None,
        typer.Option(
            help="First batch size tried [default: the workload's].", min=1, max=MAX_BATCH
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(help="Largest batch size tried.", min=1, max=MAX_BATCH)
    ] = 65_536,
    granularity: Annotated[
        int | None,
        typer.Option(
            help="Answer to a multiple of this: fewer probes [default: 8 on a GPU, 1 on a CPU].",
            min=1,
            max=MAX_BATCH,
        ),
    ] = None,
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
    from dlbench.api import preflight_device
    from dlbench.config import build_spec
    from dlbench.render.listings import maxbatch_panel, probe_line
    from dlbench.tools.maxbatch import find_max_batch, parse_bytes

    spec = build_spec(
        workload=workload,
        device=device,
        precision=precision,
        image_size=image_size,
        seq_len=seq_len,
        depth=depth,
        width=width,
        heads=heads,
        kv_heads=kv_heads,
        vocab=vocab,
        channels_last=channels_last,
        telemetry=False,
        **_generation_lengths(prompt_len, gen_len),
    )
    check_timeout(timeout)
    info = preflight_device(spec)
    cap = parse_bytes(memory_limit) if memory_limit else None
    human = err if json_flag else out
    doing = f", generating {spec.prompt_len} + {spec.gen_len} tokens" if spec.generates else ""
    human.print(
        f"probing {workload} on {info.device} ({plain(info.device_name)}), {precision}{doing}"
    )
    found = find_max_batch(
        spec,
        info.kind,
        start=start or int(spec.batch_size or 1),
        limit=limit,
        memory_limit=cap,
        timeout_s=timeout,
        on_probe=lambda p: human.print(probe_line(p)),
        granularity=granularity or (8 if info.kind == "cuda" else 1),
    )
    if json_flag:
        import dataclasses

        fitted = found.memory_per_sample()
        document = dataclasses.asdict(found)
        document["bytes_per_sample"], document["footprint_bytes"] = fitted or (None, None)
        write_json(document, "-")
    else:
        out.print(maxbatch_panel(found))
    raise typer.Exit(0 if found.max_batch_size else 3)


def _generation_lengths(prompt_len: int | None, gen_len: int | None) -> dict[str, int]:
    """A generation probe's lengths: both given, or --gen-len alone (the prompt's default)."""
    if gen_len is None:
        if prompt_len is not None:
            from dlbench.errors import ConfigError

            raise ConfigError("--prompt-len probes generation: give --gen-len too")
        return {}
    from dlbench.cli.run import DEFAULT_PROMPT_LEN

    return {"prompt_len": prompt_len or DEFAULT_PROMPT_LEN, "gen_len": gen_len}


@app.command()
def infer(
    workload: Annotated[str, typer.Argument(help="The workload the checkpoint was trained as.")],
    checkpoint: Annotated[
        Path, typer.Option(help="Weights saved by dlbench run --checkpoint FILE.")
    ],
    images: Annotated[Path, typer.Option(help="A folder of PNG/JPEG images (searched deeply).")],
    device: str = spec_option("device"),
    precision: str = spec_option("precision"),
    json_out: Annotated[
        str | None,
        typer.Option("--json", help="Write every prediction as JSON to FILE, or - for stdout."),
    ] = None,
) -> None:
    """Predict each image of a folder with a trained checkpoint; latency per image."""
    import dataclasses

    from dlbench.config import build_spec
    from dlbench.render.listings import inference_table
    from dlbench.tools.folder_inference import infer_folder

    build_spec(workload=workload, device=device, precision=precision)  # validates the options
    check_json_out(json_out)
    human = err if json_out == "-" else out
    report = infer_folder(workload, checkpoint, images, device, precision)
    human.print(inference_table(report))
    if json_out:
        write_json(dataclasses.asdict(report), json_out)


@app.command()
def quickstart(
    device: str = spec_option("device"),
    cpus: str | None = spec_option("cpus"),
    db: DbOption = None,
) -> None:
    """Run every standard workload and a real-data accuracy run, then compare them."""
    from dlbench.api import preflight, stored_run
    from dlbench.launch.series import run_series
    from dlbench.render.console import QuietConsole, hms
    from dlbench.render.run_lists import comparison_table, quickstart_footer
    from dlbench.store.database import Store
    from dlbench.tools.quickstart import estimate, plan

    store = Store(db)
    specs = plan(device, cpus)
    for spec in specs:
        preflight(spec, store)
    took, unknown = estimate(store, specs)
    if unknown == len(specs):
        out.print(f"{len(specs)} runs; no estimate yet: this is the first quickstart here")
    else:
        more = f", and {unknown} run(s) never timed here" if unknown else ""
        out.print(f"{len(specs)} runs: about {hms(took)} going by earlier quickstarts here{more}")
    numbers: dict[str, int] = {}

    def started(run: Any) -> None:
        numbers[run.run_id] = number = len(numbers) + 1
        out.print(
            f"[bold]({number}/{len(specs)})[/] {run.spec.workload} on {plain(run.spec.data)} data"
        )

    outcomes = run_series(
        specs, store, show_progress=err.is_terminal, report=QuietConsole(err), on_start=started
    )
    summaries = [stored_run(store, o) for o in outcomes]
    out.print(comparison_table(summaries, "dlbench quickstart"))
    out.print(quickstart_footer(summaries, store.describe()))
    if any(s.status != "ok" for s in summaries):
        raise typer.Exit(1)


@app.command(context_settings={"allow_interspersed_args": False})
def monitor(
    command: Annotated[list[str], typer.Argument(help="The command to run, after --.")],
    interval: Annotated[float, typer.Option(help="Sampling period, seconds.")] = 1.0,
    name: Annotated[
        str | None, typer.Option(help="A name for the run [default: the program's name].")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    metrics_port: int | None = spec_option("metrics_port"),
    metrics_host: str = spec_option("metrics_host"),
    db: DbOption = None,
) -> None:
    """Run any command, sample the system and its processes until it exits, store it.

    Example: dlbench monitor --interval 0.5 -- python train.py --epochs 3
    """
    from dlbench.config.checks import parse_tags
    from dlbench.render.listings import telemetry_table
    from dlbench.render.run import quality_lines
    from dlbench.store.database import Store
    from dlbench.tools.monitor import check_options
    from dlbench.tools.monitor import monitor as run_monitor

    check_options(command, interval)  # before the database is opened or created
    tags = parse_tags(tag)
    server = metrics_server(metrics_port, metrics_host)  # a taken port: nothing is stored
    try:
        store = Store(db)
        run_id, code = run_monitor(command, store, interval, name, tags, server)
    finally:
        if server is not None:
            server.close()
    summary = store.run(run_id)
    err.print(telemetry_table(summary.telemetry))
    err.print(quality_lines(summary), highlight=False)
    err.print(f"{summary.status}: stored as [bold]{run_id}[/] in {plain(store.describe())}")
    raise typer.Exit(code)

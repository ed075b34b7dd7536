"""``dlbench serve-bench``: a model server under load, from its client."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

import typer

from dlbench.cli.common import DbOption, app, check_json_out, err, finite, plain, write_json
from dlbench.errors import ConfigError
from dlbench.measure.serving import MAX_GEN_TOKENS, MAX_PROMPT_WORDS, MAX_REQUESTS

LOAD = "Load"
SERVER = "Server"
CONCURRENCY_LEVELS = 32  # at most, in one series


@app.command("serve-bench")
def serve_bench(
    url: Annotated[
        str,
        typer.Option(rich_help_panel=SERVER, help="The server's OpenAI API: http://HOST:PORT/v1."),
    ],
    model: Annotated[
        str, typer.Option(rich_help_panel=SERVER, help="The model's name as the server lists it.")
    ],
    api: Annotated[
        str,
        typer.Option(rich_help_panel=SERVER, help="completions (/v1/completions) or chat."),
    ] = "completions",
    ignore_eos: Annotated[
        bool,
        typer.Option(
            rich_help_panel=SERVER,
            help="Ask for every --gen-len token whatever the model says (vLLM's ignore_eos; "
            "servers that do not know it refuse the request).",
        ),
    ] = False,
    request_timeout: Annotated[
        float,
        typer.Option(
            rich_help_panel=SERVER,
            help="Seconds a request may take, whole.",
            callback=finite(0.01, 86_400),
        ),
    ] = 300.0,
    requests: Annotated[
        int,
        typer.Option(
            rich_help_panel=LOAD,
            help="Timed requests (per concurrency level).",
            min=1,
            max=MAX_REQUESTS,
        ),
    ] = 64,
    warmup: Annotated[
        int,
        typer.Option(
            rich_help_panel=LOAD,
            help="Untimed requests first, at the same concurrency (after one that checks the "
            "server).",
            min=0,
            max=MAX_REQUESTS,
        ),
    ] = 0,
    concurrency: Annotated[
        str,
        typer.Option(
            rich_help_panel=LOAD,
            help="Requests in flight at most; a list (1,2,4) measures each in turn, one run "
            "each: a throughput-latency curve.",
        ),
    ] = "1",
    rate: Annotated[
        float | None,
        typer.Option(
            rich_help_panel=LOAD,
            help="Requests/s arriving as a Poisson process [default: each as soon as a slot "
            "is free].",
            callback=finite(1e-6, 1e6),
        ),
    ] = None,
    prompt_len: Annotated[
        int,
        typer.Option(
            rich_help_panel=LOAD,
            help="Words of each synthetic prompt.",
            min=1,
            max=MAX_PROMPT_WORDS,
        ),
    ] = 128,
    gen_len: Annotated[
        int,
        typer.Option(
            rich_help_panel=LOAD,
            help="Output tokens asked of each request.",
            min=1,
            max=MAX_GEN_TOKENS,
        ),
    ] = 128,
    prompts: Annotated[
        Path | None,
        typer.Option(
            rich_help_panel=LOAD,
            help='Prompts, one per line (.jsonl: {"prompt": ...} per line), used in turn.',
        ),
    ] = None,
    repeat: Annotated[
        int,
        typer.Option(
            rich_help_panel=LOAD,
            help="Measure each load N times, a run each: requests/s and tokens/s with a 95% "
            "interval between passes.",
            min=1,
            max=1000,
        ),
    ] = 1,
    seed: Annotated[
        int,
        typer.Option(rich_help_panel=LOAD, help="Of prompts and arrivals.", min=0, max=2**32 - 1),
    ] = 0,
    slo: Annotated[
        str | None,
        typer.Option(
            rich_help_panel=LOAD,
            help="Objectives for goodput, e.g. ttft=2s,tpot=200ms,e2e=30s.",
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option(help="Telemetry sampling period, seconds.", callback=finite(0, 3600))
    ] = 1.0,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Also write the runs' summaries: a file or -.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Drive an OpenAI-compatible server with streamed requests and store what its client saw:
    time to first token, time per output token, inter-token latency, end-to-end latency,
    requests/s, output tokens/s, goodput under --slo, failed requests with their errors. The
    key in $OPENAI_API_KEY, if set, is sent and never stored.

    Example: dlbench serve-bench --url http://localhost:8000/v1 --model NAME --concurrency 1,4
    """
    from dlbench.config.checks import parse_tags
    from dlbench.errors import require
    from dlbench.measure.serving import parse_slo
    from dlbench.store.database import Store

    require("aiohttp", "serving", "dlbench serve-bench")
    from dlbench.tools.openai_stream import Endpoint, api_key_from_env
    from dlbench.tools.serve_bench import ServePlan

    endpoint = Endpoint(
        base_url=url,
        model=model,
        api=api,
        api_key=api_key_from_env(),
        timeout_s=request_timeout,
        ignore_eos=ignore_eos,
    )
    plans = [
        ServePlan(
            endpoint=endpoint,
            requests=requests,
            concurrency=level,
            rate_per_s=rate,
            prompt_len=prompt_len,
            gen_len=gen_len,
            prompts_file=prompts,
            seed=seed,
            slo=parse_slo(slo) if slo else None,
            interval_s=interval,
            tags=parse_tags(tag),
            warmup=warmup,
            repeat=index,
        )
        for level in concurrency_levels(concurrency)
        for index in range(repeat)
    ]
    for plan in plans:
        plan.check()
    plans[0].prompts()  # a prompts file that cannot be read: before the database is made
    check_json_out(json_out)
    _measure_all(plans, Store(db), json_out)


def concurrency_levels(text: str) -> list[int]:
    """``1,2,4`` as [1, 2, 4]: each a whole number of requests in flight."""
    parts = [p.strip() for p in text.split(",")]
    try:
        levels = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(
            f"--concurrency {text!r}: whole numbers, comma-separated", "e.g. --concurrency 1,2,4"
        ) from None
    if len(levels) > CONCURRENCY_LEVELS or len(set(levels)) != len(levels):
        raise ConfigError(
            f"--concurrency {text!r}: at most {CONCURRENCY_LEVELS} levels, each once",
            option="--concurrency",
        )
    return levels


def _measure_all(plans: list[Any], store: Any, json_out: str | None) -> None:
    from dlbench.api import new_run_id
    from dlbench.render.run import quality_lines, run_panel
    from dlbench.render.serving import passes_table, series_table
    from dlbench.tools.serve_bench import serve_bench as measure

    series = f"serve-bench-{new_run_id()}" if len(plans) > 1 else None  # levels or passes
    done = []
    for plan in plans:
        said = (
            f"serve-bench: {plan.requests} requests to {plain(plan.endpoint.url)}, "
            f"{plan.concurrency} at once" + (f", pass {plan.repeat + 1}" if plan.repeat else "")
        )
        run_id = measure(plan, store, series=series, on_start=functools.partial(_say, said))
        run = store.run(run_id)
        done.append(run)
        err.print(run_panel(run))
        err.print(quality_lines(run), highlight=False)
        err.print(f"{run.status}: stored as [bold]{run.run_id}[/] in {plain(store.describe())}")
    if series is not None:
        err.print(series_table(done))
        passes = passes_table(done)
        if passes is not None:
            err.print(passes)
    if json_out:
        write_json([r.to_dict() for r in done], json_out)
    if all(r.status != "ok" for r in done):
        raise typer.Exit(1)


def _say(line: str) -> None:
    err.print(line, highlight=False)

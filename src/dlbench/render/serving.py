"""A serving run (``dlbench serve-bench``) in the terminal: its panel in ``dlbench show`` and
the table of a series of loads (``--concurrency 1,2,4``)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from dlbench.render.console import status_text, table, text
from dlbench.render.generation import latency_text
from dlbench.store.stored import StoredRun


def serving_rows(run: StoredRun) -> list[tuple[str, Any]]:
    found = run.serving
    if found is None:
        return []
    stats = found.stats
    prompts = (
        f"{found.prompt_len} words, synthetic" if found.prompt_len else "from a file (--prompts)"
    )
    rate = "as fast as slots free" if found.rate_per_s is None else f"{found.rate_per_s:g}/s"
    rows: list[tuple[str, Any]] = [
        ("server", text(f"{found.url} ({found.api} API), model {found.model}")),
        (
            "load",
            f"{stats.requests} requests, {found.concurrency} at once, arriving {rate}; "
            f"prompts {prompts}; up to {found.gen_len} output tokens",
        ),
        ("completed / failed", _failed(stats.completed, stats.failed)),
        ("requests/s", f"{stats.requests_per_s:,.3f} over {stats.duration_s:,.2f} s"),
        ("output tokens/s", _tokens(stats.output_tokens_per_s, found.tokens_from)),
        (
            "total tokens/s",
            None if stats.total_tokens_per_s is None else f"{stats.total_tokens_per_s:,.1f}",
        ),
        ("time to first token (ms)", latency_text(stats.ttft_s)),
        ("time per output token (ms)", latency_text(stats.tpot_s)),
        ("inter-token latency (ms)", latency_text(stats.itl_s)),
        ("end-to-end latency (ms)", latency_text(stats.e2e_s)),
    ]
    if found.slo is not None and stats.goodput_per_s is not None:
        rows.append(
            (
                f"goodput ({found.slo.words()})",
                f"{stats.goodput_per_s:,.3f} requests/s ({stats.slo_met} of {stats.requests})",
            )
        )
    for error, count in stats.errors.items():
        rows.append((f"error × {count}", text(error, "red")))
    return rows


def _failed(completed: int, failed: int) -> Text:
    return Text(f"{completed} / {failed}", style="red" if failed else "")


def _tokens(per_s: float, counted: str) -> str:
    how = "the server's count" if counted == "usage" else "one per streamed chunk"
    return f"{per_s:,.1f} ({how})"


def series_table(runs: list[StoredRun]) -> Table:
    """One row per load of a series: what a throughput-latency curve is drawn from."""
    rows: list[tuple[Any, ...]] = []
    for run in runs:
        found = run.serving
        if found is None:
            rows.append((run.run_id, *[None] * 7, status_text(run.status)))
            continue
        stats = found.stats
        rows.append(
            (
                run.run_id,
                found.concurrency,
                f"{found.prompt_len or 'file'} + {found.gen_len}",
                f"{stats.requests_per_s:,.2f}",
                f"{stats.output_tokens_per_s:,.1f}",
                _p50_p99(stats.ttft_s),
                _p50_p99(stats.tpot_s),
                f"{stats.failed}" if not stats.failed else Text(str(stats.failed), style="red"),
                status_text(run.status),
            )
        )
    return table(
        None,
        (
            "Run",
            "Concurrency",
            "Prompt + out",
            "Requests/s",
            "Output tok/s",
            "TTFT p50/p99 (ms)",
            "TPOT p50/p99 (ms)",
            "Failed",
            "Status",
        ),
        rows,
    )


def _p50_p99(found: Any) -> str | None:
    if found is None or found.p50 is None or found.p99 is None:
        return None
    return f"{found.p50 * 1e3:,.1f} / {found.p99 * 1e3:,.1f}"

"""A serving run (``dlbench serve-bench``) in the terminal: its panel in ``dlbench show`` and
the table of a series of loads (``--concurrency 1,2,4``)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from dlbench.measure.units import ms_p50_p99
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
                ms_p50_p99(stats.ttft_s),
                ms_p50_p99(stats.tpot_s),
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


def passes_table(runs: list[StoredRun]) -> Table | None:
    """Loads measured more than once (``--repeat``): requests/s and output tokens/s as the
    mean over passes with its 95% Student-t interval (None where no load has two passes)."""
    from dlbench.measure.stats import between_runs

    groups: dict[tuple[Any, ...], list[StoredRun]] = {}
    for run in runs:
        found = run.serving
        if found is not None and run.status == "ok":
            key = (found.concurrency, found.rate_per_s, found.prompt_len, found.gen_len)
            groups.setdefault(key, []).append(run)
    rows = []
    for (concurrency, _, prompt_len, gen_len), group in groups.items():
        if len(group) < 2:
            continue
        stats = [r.serving.stats for r in group if r.serving is not None]
        requests = between_runs([s.requests_per_s for s in stats])
        tokens = between_runs([s.output_tokens_per_s for s in stats])
        rows.append(
            (
                concurrency,
                f"{prompt_len or 'file'} + {gen_len}",
                len(group),
                _spread(requests, 3),
                _spread(tokens, 1),
            )
        )
    if not rows:
        return None
    columns = ("Concurrency", "Prompt + out", "Passes", "Requests/s (95% CI)",
               "Output tok/s (95% CI)")  # fmt: skip
    return table("Between passes of the same load", columns, rows)


def _spread(found: Any, digits: int) -> str | None:
    if found is None:
        return None
    shown = f"{found.mean_speed:,.{digits}f}"
    if found.ci95 is not None:
        shown += f" ({found.ci95[0]:,.{digits}f}–{found.ci95[1]:,.{digits}f}; cv {found.cv:.1%})"
    return shown

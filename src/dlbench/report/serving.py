"""The report's section on language models answering: generation runs (``dlbench generate``),
servers under load (``dlbench serve-bench``), and the serving trade-off: output tokens/s
against the time per output token, one line per configuration, one point per batch size or
concurrency (where a batch or concurrency sweep makes several)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

import plotly.graph_objects as go

from dlbench.measure.generation import Figure
from dlbench.measure.stats import BetweenRuns, between_runs
from dlbench.measure.units import ms_p50_p99, ms_with_ci
from dlbench.report.figures import plotly_text
from dlbench.report.page import Markup, esc, html, join, table
from dlbench.store.stored import StoredRun


def answering_section(
    summaries: Sequence[StoredRun], to_html: Callable[[go.Figure], Markup]
) -> Markup | None:
    """None where no run generated or served."""
    generating = [s for s in summaries if s.generation is not None]
    serving = [s for s in summaries if s.serving is not None]
    if not generating and not serving:
        return None
    parts = []
    if generating:
        parts += [html("<h3>Generation on a device</h3>"), _generation_table(generating)]
    if serving:
        parts += [html("<h3>Servers under load, from their client</h3>"), _serving_table(serving)]
    curve = tradeoff_figure([*generating, *serving])
    if curve is not None:
        parts.append(to_html(curve))
    return join(parts)


def _ms(found: Figure | None) -> str:
    return ms_with_ci(found) or "—"


def _p50_p99(found: Figure | None) -> str:
    return ms_p50_p99(found) or "—"


def _rate(found: Figure | None) -> str:
    return "—" if found is None else f"{found.mean:,.0f}"


def _generation_table(runs: list[StoredRun]) -> Markup:
    rows = []
    for s in runs:
        g = s.generation
        assert g is not None
        rows.append(
            [
                esc(s.run_id), esc(s.workload), esc(s.device_name or s.device),
                esc(s.precision), g.batch, f"{g.prompt_len} + {g.gen_len}",
                _ms(g.stats.ttft_s), _ms(g.stats.tpot_s), _rate(g.stats.prefill_tokens_per_s),
                _rate(g.stats.decode_tokens_per_s), f"{g.kv_cache_bytes / 2**20:,.1f}",
                "yes" if g.deterministic else "NO",
            ]
        )  # fmt: skip
    columns = [
        "Run", "Workload", "Device", "Precision", "Batch", "Prompt + generated",
        "TTFT ms (95% CI)", "TPOT ms (95% CI)", "Prefill tok/s", "Decode tok/s", "KV cache MiB",
        "Same tokens",
    ]  # fmt: skip
    return table(columns, rows, {4, 6, 7, 8, 9, 10})


def _serving_table(runs: list[StoredRun]) -> Markup:
    rows = []
    for s in runs:
        found = s.serving
        assert found is not None
        stats = found.stats
        goodput = "—" if stats.goodput_per_s is None else f"{stats.goodput_per_s:,.3f}"
        rows.append(
            [
                esc(s.run_id), esc(f"{found.model} @ {found.url}"), found.concurrency,
                "—" if found.rate_per_s is None else f"{found.rate_per_s:g}",
                f"{stats.requests_per_s:,.3f}", f"{stats.output_tokens_per_s:,.1f}",
                _ms(stats.ttft_s), _p50_p99(stats.ttft_s), _p50_p99(stats.tpot_s),
                _p50_p99(stats.e2e_s), f"{stats.failed} of {stats.requests}", goodput,
            ]
        )  # fmt: skip
    columns = [
        "Run", "Model @ server", "Concurrency", "Rate (req/s)", "Requests/s", "Output tok/s",
        "TTFT ms (95% CI)", "TTFT p50 / p99", "TPOT p50 / p99", "E2E p50 / p99", "Failed",
        "Goodput (req/s)",
    ]  # fmt: skip
    return table(columns, rows, {2, 3, 4, 5, 6, 7, 8, 9, 11})


def _above(spread: BetweenRuns | None) -> float:
    return spread.ci95[1] - spread.mean_speed if spread and spread.ci95 else 0.0


def _below(spread: BetweenRuns | None) -> float:
    return spread.mean_speed - spread.ci95[0] if spread and spread.ci95 else 0.0


def _point(run: StoredRun) -> tuple[str, int, float, float] | None:
    """(configuration, batch or concurrency, TPOT in ms, output tokens/s) of one run."""
    if run.serving is not None:
        found, stats = run.serving, run.serving.stats
        if stats.tpot_s is None or stats.tpot_s.p50 is None:
            return None
        rate = "" if found.rate_per_s is None else f", {found.rate_per_s:g} req/s"
        where = (
            f"{found.model} @ {found.url} ({found.prompt_len or 'file'} words + "
            f"{found.gen_len} tokens{rate})"
        )
        return where, found.concurrency, stats.tpot_s.p50 * 1e3, stats.output_tokens_per_s
    generated = run.generation
    if generated is None or generated.stats.tpot_s is None:
        return None
    decode = generated.stats.decode_tokens_per_s
    if decode is None:
        return None
    what = (
        f"{run.workload} · {run.device_name or run.device} · {run.precision} "
        f"({generated.prompt_len} + {generated.gen_len} tokens)"
    )
    return what, generated.batch, generated.stats.tpot_s.mean * 1e3, decode.mean


def tradeoff_figure(runs: Sequence[StoredRun]) -> go.Figure | None:
    """Output tokens/s against the time per output token, a line per configuration through
    its batch sizes or concurrencies (None where no configuration has two). Passes of one
    load (``--repeat``) are one point, their means, with the throughput's 95% interval."""
    found: dict[str, dict[int, list[tuple[float, float]]]] = {}
    for run in runs:
        point = _point(run) if run.status == "ok" else None
        if point is not None:
            name, level, tpot_ms, tokens = point
            found.setdefault(name, {}).setdefault(level, []).append((tpot_ms, tokens))
    lines = {name: levels for name, levels in found.items() if len(levels) >= 2}
    if not lines:
        return None
    fig = go.Figure()
    for name, levels in lines.items():
        order = sorted(levels)
        spreads = [between_runs([p[1] for p in levels[level]]) for level in order]
        fig.add_scatter(
            x=[statistics.fmean(p[0] for p in levels[level]) for level in order],
            y=[statistics.fmean(p[1] for p in levels[level]) for level in order],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [_above(s) for s in spreads],
                "arrayminus": [_below(s) for s in spreads],
            },
            mode="lines+markers+text",
            text=[str(level) for level in order],
            textposition="top center",
            name=plotly_text(name),
        )
    fig.update_layout(
        title="Throughput against latency (each point: its batch size or concurrency)",
        xaxis_title="time per output token (ms; serving: p50, generation: mean)",
        yaxis_title="output tokens/s (generation: decode)",
        height=420,
        legend={"orientation": "h", "y": -0.25},
    )
    return fig

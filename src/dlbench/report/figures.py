"""Plotly figures shared by the HTML report and the dashboard."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import numpy as np
import plotly.graph_objects as go

from dlbench.analysis.scaling import AXES, SCALING_AXES, Series
from dlbench.store.stored import StoredRun, speed_unit

PHASE_COLOURS = {
    "setup": "#eeeeee",
    "stage": "#fde7c8",
    "warmup": "#fff3c4",
    "train": "#dff0d8",
    "validate": "#d9e8fb",
    "infer": "#eadcf8",
}


def plotly_text(value: Any) -> str:
    """A stored string as a Plotly label that shows it literally: Plotly reads a subset of
    HTML in every title, name, tick and hover label (``<a href>``, ``<span style>``)."""
    return html.escape(str(value), quote=False)


class HasSpeed(Protocol):
    """A run, or a point of a scaling series: a mean speed and its 95% interval."""

    @property
    def mean_speed(self) -> float | None: ...
    @property
    def speed_ci95(self) -> tuple[float, float] | None: ...


def speed_error_bars(summaries: Sequence[HasSpeed]) -> dict[str, Any]:
    """Plotly error bars from each run's 95% interval of its speed: asymmetric, and never
    below zero (the interval never is). A run without one gets none."""
    above, below = [], []
    for s in summaries:
        interval, mean = s.speed_ci95, s.mean_speed or 0.0
        above.append(max(0.0, interval[1] - mean) if interval else 0.0)
        below.append(max(0.0, mean - interval[0]) if interval else 0.0)
    return {"type": "data", "symmetric": False, "array": above, "arrayminus": below}


def throughput_figure(
    ok: list[StoredRun], label: Callable[[StoredRun], str], height: int = 420
) -> go.Figure:
    """Each run's mean training speed with its 95% interval, one bar group per device; a
    bar's label says when its run was not measured clean."""
    fig = go.Figure()
    for device in sorted({str(s.device) for s in ok}):
        runs = [s for s in ok if str(s.device) == device]
        fig.add_bar(
            x=[label(s) + _flag(s) for s in runs],
            y=[s.mean_speed for s in runs],
            error_y=speed_error_bars(runs),
            name=plotly_text(device),
        )
    unit = speed_unit(ok)
    fig.update_layout(
        title=f"Training throughput ({unit}, error bars: 95% confidence interval)",
        yaxis_title=unit,
        height=height,
        barmode="group",
        template="plotly_white",
    )
    return fig


def _flag(s: StoredRun) -> str:
    verdict = s.quality_verdict
    return f" · {verdict.upper()}" if verdict in ("noisy", "contended") else ""


def scaling_figure(series: Series) -> go.Figure:
    """Speed (95% interval) along the axis; efficiency too over GPU, node and process
    counts."""
    x = [plotly_text(p.value) for p in series.points]
    fig = go.Figure()
    fig.add_scatter(
        x=x,
        y=[p.mean_speed for p in series.points],
        mode="lines+markers",
        name=series.unit,
        error_y=speed_error_bars(series.points),
    )
    if series.axis in SCALING_AXES:
        fig.add_scatter(
            x=x,
            y=[(p.efficiency or 0) * 100 for p in series.points],
            yaxis="y2",
            mode="lines+markers",
            name="efficiency (%)",
        )
        fig.update_layout(
            yaxis2={
                "overlaying": "y",
                "side": "right",
                "range": [0, 110],
                "title": "efficiency (%)",
            }
        )
    fig.update_layout(
        title=f"{AXES[series.axis]}: {plotly_text(series.label)}",
        xaxis_title=series.axis,
        yaxis_title=series.unit,
        height=380,
        template="plotly_white",
    )
    return fig


def shade_phases(fig: go.Figure, spans: list[tuple[str, float, float]], **where: Any) -> None:
    """Each phase of a run as a coloured band behind the traces, labelled."""
    for phase, start, end in spans:
        fig.add_vrect(
            x0=start,
            x1=end,
            fillcolor=PHASE_COLOURS.get(phase, "#f0f0f0"),
            opacity=0.5,
            layer="below",
            line_width=0,
            annotation_text=plotly_text(phase),
            annotation_position="top left",
            **where,
        )


def insights_figure(found: list[Any]) -> go.Figure:
    """Rank correlation of each descriptor with step time, per family: the partial one
    (batch size held fixed) where it exists, Spearman's for batch size itself."""
    families = sorted({c.family for c in found})
    descriptors = list(dict.fromkeys(c.descriptor for c in found))
    z = [[None] * len(descriptors) for _ in families]
    text = [[""] * len(descriptors) for _ in families]
    for c in found:
        value = c.partial if c.partial is not None else c.spearman
        i, j = families.index(c.family), descriptors.index(c.descriptor)
        z[i][j] = value
        text[i][j] = f"{value:+.2f}" + ("" if c.partial is not None else "*")
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[plotly_text(d) for d in descriptors],
            y=[plotly_text(f) for f in families],
            text=text,
            texttemplate="%{text}",
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            reversescale=True,
            colorbar={"title": "partial ρ"},
        )
    )
    fig.update_layout(
        title="Rank correlation with step time, batch size held fixed (* batch size itself: "
        "Spearman's)",
        height=140 + 40 * len(families),
        margin={"l": 120, "r": 20, "t": 50, "b": 40},
    )
    return fig


def step_time_figure(table: Any) -> go.Figure:
    """Step time against FLOPs per step, log-log, one colour per family."""
    fig = go.Figure()
    for family, part in table.groupby("family"):
        fig.add_scatter(
            x=part["flops"] / 1e9,
            y=part["step_s"] * 1e3,
            mode="markers",
            name=plotly_text(family),
            text=[f"batch {int(b)}" for b in part["batch_size"]],
            hovertemplate="%{x:.2f} GFLOP, %{y:.1f} ms, %{text}",
        )
    fig.update_xaxes(type="log", title="GFLOP per training step")
    fig.update_yaxes(type="log", title="step time (ms)")
    fig.update_layout(title="Step time against work", height=380)
    return fig


def downsample(t: np.ndarray, v: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` points; each bin keeps its largest value (a spike is never hidden)."""
    if t.size <= limit:
        return t, v
    edges = np.linspace(0, t.size, limit + 1).astype(int)
    keep = np.array(
        [a + int(np.argmax(v[a:b])) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    )
    return t[keep], v[keep]


def phase_spans(points: Iterable[tuple[float, str]]) -> list[tuple[str, float, float]]:
    """(phase, first t, last t) of each stretch of one phase, from (t, phase) points in time
    order: what ``shade_phases`` shades."""
    spans: list[tuple[str, float, float]] = []
    for t, phase in points:
        if spans and spans[-1][0] == phase:
            spans[-1] = (phase, spans[-1][1], t)
        else:
            spans.append((phase, t, t))
    return spans


def profile_figure(runs: list[StoredRun], label: Callable[[StoredRun], str]) -> go.Figure | None:
    """Each profiled run's step time split by operator category: one stacked bar per run, side
    by side (None when no run was profiled)."""
    profiles = [(r, r.profile) for r in runs if r.profile is not None and r.profile.available]
    if not profiles:
        return None
    kinds = list(dict.fromkeys(kind for _, p in profiles for kind in p.categories))
    fig = go.Figure()
    for kind in kinds:
        fig.add_bar(
            y=[label(r) for r, _ in profiles],
            x=[
                p.categories[kind].seconds_per_step * 1e3 if kind in p.categories else 0.0
                for _, p in profiles
            ],
            name=plotly_text(kind),
            orientation="h",
        )
    fig.update_layout(
        title="Where a training step's time goes (profiled steps, ms per step)",
        xaxis_title="ms per step",
        barmode="stack",
        height=260 + 40 * len(profiles),
        legend={"orientation": "h", "y": -0.35},  # every category visible, none scrolled away
        template="plotly_white",
    )
    return fig


def collectives_figure(runs: Sequence[StoredRun], operation: str) -> go.Figure:
    """Bus bandwidth against message size (log-log), one line per collectives run, with each
    size's 95% interval."""
    fig = go.Figure()
    for run in runs:
        found = [r for r in run.collectives if r.operation == operation]
        if not found:
            continue
        intervals = [r.busbw_ci95_gb_s for r in found]
        fig.add_scatter(
            x=[r.size_bytes for r in found],
            y=[r.busbw_gb_s for r in found],
            mode="lines+markers",
            name=plotly_text(
                f"{run.run_id} ({run.config.get('nodes') or 1}x{run.config.get('gpus')})"
            ),
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [
                    (i[1] - r.busbw_gb_s) if i else 0 for r, i in zip(found, intervals, strict=True)
                ],
                "arrayminus": [
                    (r.busbw_gb_s - i[0]) if i else 0 for r, i in zip(found, intervals, strict=True)
                ],
            },
        )
    fig.update_layout(
        title=f"{operation}: bus bandwidth by message size",
        xaxis={"title": "size (bytes)", "type": "log"},
        yaxis={"title": "bus bandwidth (GB/s)", "type": "log"},
        height=380,
        template="plotly_white",
    )
    return fig

"""Plotly figures shared by the HTML report and the dashboard."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from dlbench.analysis.scaling import AXES, Series

PHASE_COLOURS = {
    "setup": "#eeeeee",
    "stage": "#fde7c8",
    "warmup": "#fff3c4",
    "train": "#dff0d8",
    "validate": "#d9e8fb",
    "infer": "#eadcf8",
}


def scaling_figure(series: Series) -> go.Figure:
    """Speed (± stderr over repeats) along the axis; efficiency too over GPU counts."""
    x = [str(p.value) for p in series.points]
    fig = go.Figure()
    fig.add_scatter(
        x=x,
        y=[p.mean_speed for p in series.points],
        mode="lines+markers",
        name="images/s",
        error_y={"type": "data", "array": [p.speed_stderr or 0 for p in series.points]},
    )
    if series.axis == "gpus":
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
        title=f"{AXES[series.axis]}: {series.label}",
        xaxis_title=series.axis,
        yaxis_title="images/s",
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
            annotation_text=phase,
            annotation_position="top left",
            **where,
        )

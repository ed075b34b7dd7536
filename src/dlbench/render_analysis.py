"""Tables of ``dlbench compare``, ``scaling``, ``cost`` and bottleneck verdicts (Rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from dlbench.analysis import stats
from dlbench.console import fmt, hms, table


def comparison(result: Any) -> Group:
    groups = table(
        f"runs by {result.by}",
        (result.by, "Runs", "Steps", "Speed (img/s)", "Step (ms)"),
        [
            (
                g.value + (" (baseline)" if i == 0 else ""),
                len(g.runs),
                g.step_times.size,
                fmt(g.images_per_step / g.step_times.mean()) if g.step_times.size else None,
                fmt(g.step_times.mean() * 1e3, 2) if g.step_times.size else None,
            )
            for i, g in enumerate(result.groups)
        ],
    )
    parts: list[Any] = [groups]
    for c in result.contrasts:
        parts.append(
            table(
                f"{result.by}={c.group} vs {c.baseline}",
                ("Test", "Result"),
                [
                    (
                        "speed-up (95% CI)",
                        f"{c.speedup.estimate:.3f} ({c.speedup.low:.3f}-{c.speedup.high:.3f}), "
                        + c.method,
                    ),
                    ("Welch's t-test, step speeds", stats.format_p(c.welch_p)),
                    ("Mann-Whitney U, step speeds", stats.format_p(c.mann_whitney_p)),
                ],
            )
        )
        if c.metrics:
            parts.append(
                table(
                    "telemetry in the train phase (KS test, Holm-adjusted; Cliff's delta)",
                    (
                        "Metric",
                        f"Median {c.group}",
                        f"Median {c.baseline}",
                        "KS D",
                        "p",
                        "Delta",
                        "Differs",
                    ),
                    [
                        (
                            m.metric,
                            fmt(m.median_group, 2),
                            fmt(m.median_baseline, 2),
                            f"{m.ks_statistic:.2f}",
                            stats.format_p(m.p_value),
                            f"{m.cliffs_delta:+.2f} {stats.magnitude(m.cliffs_delta)}",
                            "[bold]yes[/]" if m.differs else "no",
                        )
                        for m in c.metrics
                    ],
                )
            )
        parts += [
            f"[bold]{c.verdict}[/]",
            f"Hypothesis {c.hypothesis_a}",
            f"Hypothesis {c.hypothesis_b}",
            "",
        ]
    return Group(*parts)


def scaling_tables(series: list[Any]) -> Group | str:
    if not series:
        return (
            "no series to show: scaling needs ok runs that differ only in GPU count, "
            "staging tier or batch size (a sweep makes them)"
        )
    parts = []
    for s in series:
        efficiency = s.axis == "gpus"
        columns = (s.axis, "Runs", "Speed (img/s)", "± stderr", "Relative")
        parts.append(
            table(
                f"{s.label}",
                columns + (("Efficiency",) if efficiency else ()),
                [
                    (
                        str(p.value),
                        p.runs,
                        fmt(p.mean_speed),
                        fmt(p.speed_stderr),
                        f"{p.relative:.2f}x",
                    )
                    + (
                        (f"{p.efficiency:.0%}" if p.efficiency is not None else None,)
                        if efficiency
                        else ()
                    )
                    for p in s.points
                ],
            )
        )
    return Group(*parts)


def verdict_lines(run_id: str, found: list[Any]) -> str:
    if not found:
        return f"{run_id}: no bottleneck found"
    return "\n".join(f"{run_id}: [yellow]{v.name}[/]: {v.evidence}" for v in found)


def cost_table(costs: list[Any]) -> Table:
    return table(
        "cost and energy at the measured speed",
        (
            "Run",
            "Dataset x epochs",
            "Epoch",
            "Total",
            "USD/epoch",
            "USD total",
            "kWh total",
            "Energy USD",
            "Price",
        ),
        [
            (
                c.run_id,
                f"{c.dataset_size:,} x {c.epochs}",
                hms(c.epoch_s),
                hms(c.total_s),
                fmt(c.usd_per_epoch, 2),
                fmt(c.usd_total, 2),
                fmt(c.kwh_total, 3),
                fmt(c.energy_usd_total, 2),
                c.price_note
                if c.price is None
                else f"${c.price.usd_per_gpu_hour:.3f}/GPU-h: {c.price_note}",
            )
            for c in costs
        ],
    )

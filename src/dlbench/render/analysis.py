"""Tables of ``dlbench compare``, ``scaling``, ``cost`` and bottleneck verdicts (Rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from dlbench.analysis import stats
from dlbench.analysis.bottleneck import Verdict
from dlbench.analysis.compare import Comparison, Contrast
from dlbench.analysis.cost import Cost
from dlbench.analysis.regression import CheckResult
from dlbench.analysis.scaling import AXES, SCALING_AXES, Series
from dlbench.measure.units import fmt, fmt_metric
from dlbench.render.console import hms, plain, table, text
from dlbench.store.stored import StoredRun, speed_unit


def _verdict_counts(runs: list[StoredRun]) -> str:
    """'2 clean, 1 contended' for a group's runs."""
    counts: dict[str, int] = {}
    for run in runs:
        verdict = run.quality_verdict or "not measured"
        counts[verdict] = counts.get(verdict, 0) + 1
    return ", ".join(f"{n} {verdict}" for verdict, n in counts.items())


def comparison(result: Comparison) -> Group:
    groups = table(
        f"runs by {result.by}",
        (
            result.by,
            "Runs",
            "Steps",
            f"Speed ({speed_unit(r for g in result.groups for r in g.runs)})",
            "Step (ms)",
            "Quality",
        ),
        [
            (
                g.value + (" (baseline)" if i == 0 else ""),
                len(g.runs),
                g.step_times.size,
                fmt(g.images_per_step / g.step_times.mean()) if g.step_times.size else None,
                fmt(g.step_times.mean() * 1e3, 2) if g.step_times.size else None,
                _verdict_counts(g.runs),
            )
            for i, g in enumerate(result.groups)
        ],
    )
    parts: list[Any] = [groups]
    if result.by_chosen:
        parts.insert(
            0, f"grouped by {plain(result.by)}, the first field these runs differ in (--by)"
        )
    for c in result.contrasts:
        parts += _contrast_parts(result.by, c)
    if result.unmatched:
        parts.append(
            "[yellow]left out, no counterpart on the other side: "
            + plain("; ".join(result.unmatched))
            + "[/]"
        )
    return Group(*parts)


def _contrast_parts(by: str, c: Contrast) -> list[Any]:
    """One contrast: its tests, the telemetry that differs, the caveat once, the claims."""
    tests = table(
        f"{by}={c.group} vs {c.baseline}" + (f" at {c.within}" if c.within else ""),
        ("Test", "Result"),
        [
            (
                "speed-up (95% CI)",
                f"{c.speedup.estimate:.3f} ({c.speedup.low:.3f}-{c.speedup.high:.3f}), " + c.method,
            ),
            ("Welch's t-test, step speeds", stats.format_p(c.welch_p)),
            ("Mann-Whitney U, step speeds", stats.format_p(c.mann_whitney_p)),
        ],
    )
    parts: list[Any] = [tests]
    if c.metrics:
        parts.append(_telemetry_differences(c))
    if c.quality_warning:
        colour = "red" if c.quality_warning.startswith("Warning") else "yellow"
        parts.append(f"[{colour}]{plain(c.quality_warning)}[/]")
    return parts + [  # the caveat above, once: the claims without it
        f"[bold]{plain(c.claim)}[/]",
        f"Hypothesis {plain(c.claim_a)}",
        f"Hypothesis {plain(c.claim_b)}",
        "",
    ]


def _telemetry_differences(c: Contrast) -> Table:
    """Which train-phase telemetry differs between the two sides of a contrast."""
    return table(
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
                fmt_metric(m.metric, m.median_group),
                fmt_metric(m.metric, m.median_baseline),
                f"{m.ks_statistic:.2f}",
                stats.format_p(m.p_value),
                f"{m.cliffs_delta:+.2f} {stats.magnitude(m.cliffs_delta)}",
                Text("yes", style="bold") if m.differs else "no",
            )
            for m in c.metrics
        ],
    )


def scaling_tables(series: list[Series]) -> Group | str:
    if not series:
        return (
            "no series to show: scaling needs ok runs that differ only in GPU or node count, "
            "staging tier or batch size (a sweep makes them)"
        )
    parts: list[Any] = []
    for s in series:
        scaled = s.axis in SCALING_AXES
        columns = (s.axis, "Runs", f"Speed ({s.unit})", "95% CI", "Speed-up", "Quality")
        extra = ("Efficiency", "Communication") if scaled else ()
        parts.append(
            table(
                f"{AXES[s.axis]}: {s.label}",
                columns + extra,
                [_scaling_row(p, scaled) for p in s.points],
                optional=("Communication", "95% CI"),
            )
        )
        if s.quality_warning:
            parts.append(text(f"warning: {s.quality_warning}", "yellow"))
    if any(p.communication_share is not None for s in series for p in s.points):
        parts.append(
            "Communication: the share of a synchronised step its ranks spend beyond their own "
            "pace (steps timed without the gradient all-reduce): the all-reduce and the wait "
            "for the slowest rank."
        )
    return Group(*parts)


def _scaling_row(p: Any, scaled: bool) -> tuple[Any, ...]:
    speedup = f"{p.relative:.2f}x"
    if p.relative_ci95:
        speedup += f" ({p.relative_ci95[0]:.2f}–{p.relative_ci95[1]:.2f})"
    row: tuple[Any, ...] = (
        str(p.value),
        p.runs,
        fmt(p.mean_speed),
        f"{p.speed_ci95[0]:,.1f}–{p.speed_ci95[1]:,.1f}" if p.speed_ci95 else None,
        speedup,
        _point_quality(p),
    )
    if not scaled:
        return row
    efficiency = f"{p.efficiency:.0%}" if p.efficiency is not None else None
    if efficiency and p.efficiency_ci95:
        efficiency += f" ({p.efficiency_ci95[0]:.0%}–{p.efficiency_ci95[1]:.0%})"
    share = p.communication_share
    return (*row, efficiency, f"{share:.0%}" if share is not None else None)


def _point_quality(point: Any) -> Text:
    clean = point.runs - point.contended - point.noisy
    words = [f"{n} {w}" for n, w in ((point.contended, "contended"), (point.noisy, "noisy"),
                                      (clean, "clean or not measured")) if n]  # fmt: skip
    return text(", ".join(words), "red" if point.contended else "")


def verdict_lines(run_id: str, found: list[Verdict]) -> str:
    if not found:
        return f"{plain(run_id)}: no bottleneck found"
    return "\n".join(
        f"{plain(run_id)}: [yellow]{plain(v.name)}[/]: {plain(v.evidence)}" for v in found
    )


def cost_table(costs: list[Cost]) -> Group:
    """Each run's cost, and below the table why a column is empty."""
    priced = table(
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
                else f"${c.price.usd_per_gpu_hour:.3f}/{c.price_unit}: {c.price_note}",
            )
            for c in costs
        ],
    )
    notes = [Text(f"{c.run_id}: kWh — {c.energy_note}") for c in costs if c.kwh_total is None]
    return Group(priced, *notes)


VERDICT_STYLE = {
    "pass": "green",
    "improvement": "green",
    "regression": "red",
    "inconclusive": "yellow",
}


def check_lines(result: CheckResult) -> str:
    """A check's verdict, its figures and why, and any warning."""
    colour = VERDICT_STYLE.get(result.verdict, "white")
    lines = [f"[bold {colour}]{result.verdict}[/] against baseline {plain(result.baseline)}"]
    lines += [f"  - {plain(reason)}" for reason in result.reasons]
    if result.method:
        lines.append(f"  - interval: {plain(result.method)}")
    speeds = ", ".join("—" if s is None else f"{s:,.1f}" for s in result.speeds)
    reference = ", ".join("—" if s is None else f"{s:,.1f}" for s in result.reference_speeds)
    lines.append(f"  - {result.unit} now: {speeds}; baseline: {reference}")
    lines += [f"[yellow]warning: {plain(w)}[/]" for w in result.warnings]
    lines.append(
        f"runs stored: {plain(', '.join(result.runs))} (tag check={plain(result.baseline)})"
    )
    return "\n".join(lines)


def baselines_table(found: list[dict[str, Any]]) -> Table:
    rows = []
    for b in found:
        runs = b.get("runs") or []
        speeds = [r.get("mean_speed") for r in runs if r.get("mean_speed")]
        spec = b.get("spec") or {}
        unit = "seq/s" if spec.get("seq_len") else "img/s"
        rows.append(
            (
                b["name"],
                b.get("workload"),
                f"{spec.get('device')} — {b.get('device_name')}",
                spec.get("batch_size"),
                spec.get("precision"),
                len(runs),
                f"{fmt(sum(speeds) / len(speeds))} {unit}" if speeds else None,
                _baseline_quality(runs),
                b.get("hostname"),
                str(b.get("created_at"))[:19].replace("T", " "),
            )
        )
    return table(
        "baselines",
        ("Name", "Workload", "Device", "Batch", "Precision", "Runs", "Speed", "Quality", "Host",
         "Created (UTC)"),
        rows,
    )  # fmt: skip


def _baseline_quality(runs: list[dict[str, Any]]) -> Text | None:
    """'2 clean' or, in yellow, '1 contended (accepted), 1 clean'."""
    counts: dict[str, int] = {}
    for run in runs:
        verdict = run.get("quality_verdict") or "not measured"
        if run.get("accepted_contended"):
            verdict += " (accepted)"
        counts[verdict] = counts.get(verdict, 0) + 1
    if not counts:
        return None
    words = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    return text(words, "yellow" if any("accepted" in v for v in counts) else "")

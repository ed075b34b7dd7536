"""Builds the report's HTML. Figures are Plotly; tables and text are plain HTML with one
stylesheet, so that the file needs nothing from the network."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from dlbench.analysis import bottleneck, cost, scaling, stats
from dlbench.analysis.compare import Comparison, compare
from dlbench.errors import DlbenchError
from dlbench.measure.stats import MIN_RELIABLE_STEPS
from dlbench.measure.units import fmt_metric
from dlbench.report.figures import (
    collectives_figure,
    downsample,
    phase_spans,
    plotly_text,
    profile_figure,
    scaling_figure,
    shade_phases,
    throughput_figure,
)
from dlbench.report.page import Markup, esc, html, join, page, table
from dlbench.report.serving import answering_section
from dlbench.store.database import Store
from dlbench.store.stored import StoredRun, speed_unit
from dlbench.version import __version__

MAX_POINTS = 1500  # per telemetry trace; peaks are kept (max of each bin)
TELEMETRY_RUNS = 12  # runs whose time series are drawn
HEADLINE_METRICS = (
    "cpu.util_percent",
    "proc.cpu_percent",
    "gpu0.util_percent",
    "gpu0.power_w",
    "gpu0.temp_c",
    "mem.used_bytes",
    "cpu.freq_mhz",
)
CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1f2933;
background:#f5f7fa}
header{background:#1f3a5f;color:#fff;padding:24px 40px}header h1{margin:0 0 6px;font-size:26px}
header p{margin:0;opacity:.85}main{padding:8px 40px 40px;max-width:1400px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);
padding:18px 24px;margin:22px 0}h2{margin:0 0 12px;font-size:19px;color:#1f3a5f}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{padding:6px 9px;
border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}
th{background:#f0f4f8;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1e7a34;font-weight:600}.bad{color:#b42318;font-weight:600}
.warn{color:#b54708;font-weight:600}
.verdict{font-size:15px;font-weight:600;margin:10px 0 4px}.note{color:#616e7c;font-size:13px}
ul{margin:6px 0 0 18px;padding:0}li{margin:3px 0}
"""


_esc = esc


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _table(columns: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> Markup:
    return table(columns, rows, numeric or set())


def _figure(fig: go.Figure) -> Markup:
    fig.update_layout(template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 50})
    # Plotly's own HTML: the figure's texts go in as JSON with '<' escaped (<\/script> safe).
    return Markup(
        fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            config={"displaylogo": False, "responsive": True},
        )
    )


def _accuracy(s: StoredRun) -> Markup | str:
    if s.accuracy_words is None:
        return "—"
    words, learned = s.accuracy_words
    return _esc(words) if learned else html("<span class='note'>{}</span>", words)


def _status(status: str) -> Markup:
    return html("<span class='{}'>{}</span>", "ok" if status == "ok" else "bad", status)


# -- sections ------------------------------------------------------------------------------
def _hardware(summaries: list[StoredRun]) -> Markup:
    seen: dict[str, Mapping[str, Any]] = {}
    for s in summaries:
        hw = s.hardware or {}
        seen.setdefault(hw.get("hostname") or "?", hw)
    rows = []
    for host, hw in seen.items():
        cpu = hw.get("cpu") or {}
        gpus = ", ".join(g["name"] for g in hw.get("gpus") or []) or "none"
        rows.append(
            [
                _esc(host),
                _esc(cpu.get("model")),
                cpu.get("usable_cpus"),
                _num((hw.get("memory_bytes") or 0) / 2**30),
                _esc(gpus),
                _esc(hw.get("torch")),
                _esc(hw.get("cuda")),
                _esc(hw.get("os")),
            ]
        )
    return _table(
        ["Host", "CPU", "CPUs", "Memory (GiB)", "GPUs", "torch", "CUDA", "OS"], rows, {2, 3}
    )


def _results(summaries: list[StoredRun]) -> Markup:
    """One row per run; a Tokens/s column where language models are among them."""
    tokens = any(s.seq_len for s in summaries)
    rows = [
        [
            _esc(s.run_id),
            _esc(s.workload),
            _esc(s.framework),
            _esc(s.device_name or s.device),
            _esc(s.precision),
            s.batch_size,
            # a server's: its requests/s over the benchmark, one figure (its own section has
            # the latencies and their intervals)
            _num(s.serving.stats.requests_per_s if s.serving else s.mean_speed),
            _esc(None) if s.serving else _interval(s),
            *([_num(s.tokens_per_s, 0)] if tokens else []),
            _num(s.mean_step_time_s * 1e3 if s.mean_step_time_s else None, 2),
            _num(s.achieved_tflops, 3),
            "—" if s.mfu is None else f"{s.mfu:.1%}",
            _accuracy(s),
            _quality(s),
            _status(s.status),
        ]
        for s in summaries
    ]
    unit = {"img/s": "Images/s", "seq/s": "Sequences/s"}.get(speed_unit(summaries), "Items/s")
    columns = ["Run", "Workload", "Framework", "Device", "Precision", "Batch", unit, "95% CI"]
    columns += ["Tokens/s"] if tokens else []
    columns += ["Step (ms)", "TFLOP/s", "MFU", "Accuracy", "Quality", "Status"]
    return _table(columns, rows, set(range(5, 12 + tokens)))


def _interval(s: StoredRun) -> Markup:
    interval = s.speed_ci95
    if not interval:
        return _esc(None)
    text = f"{interval[0]:,.1f}–{interval[1]:,.1f}"
    steps = s.timed_steps or 0
    if steps < MIN_RELIABLE_STEPS:
        text += f" (unreliable: {steps} steps)"
    return _esc(text)


QUALITY_CLASS = {"clean": "ok", "noisy": "warn", "contended": "bad"}


def _quality(s: StoredRun) -> Markup:
    """The verdict, its reasons in the cell's tooltip."""
    verdict = s.quality_verdict
    if verdict is None:
        return html("<span class='note'>not measured</span>")
    reasons = " · ".join(s.quality.reasons if s.quality else ())
    return html(
        "<span class='{}' title='{}'>{}</span>", QUALITY_CLASS.get(verdict, ""), reasons, verdict
    )


def _throughput(summaries: list[StoredRun]) -> Markup:
    # a server's runs have their own section: their speed is a request's, not a throughput
    ok = [s for s in summaries if s.status == "ok" and s.mean_speed and s.kind != "serving"]
    if not ok:
        return html("<p class='note'>No run ended ok with timed steps on this machine.</p>")
    fig = throughput_figure(ok, lambda s: plotly_text(s.label + f" ({s.run_id[-6:]})"))
    return _figure(fig)


def _telemetry(store: Store, summaries: list[StoredRun]) -> Markup:
    parts = []
    for s in summaries[:TELEMETRY_RUNS]:
        samples = store.get_samples(s.run_id, list(HEADLINE_METRICS))
        if not samples:
            reason = (s.telemetry and s.telemetry.reason) or "no telemetry was stored"
            parts.append(html("<p class='note'>{}: {}</p>", s.run_id, reason))
            continue
        series: dict[str, list[tuple[float, float, str]]] = {}
        for x in samples:
            series.setdefault(x.metric, []).append((x.t_s, x.value, x.phase))
        percent = [m for m in series if m.endswith(("util_percent", "cpu_percent"))]
        memory = [m for m in series if m.endswith("_bytes")]
        other = [m for m in series if m not in percent and m not in memory]
        fig = make_subplots(
            rows=3,
            cols=1,
            shared_xaxes=True,
            vertical_spacing=0.07,
            subplot_titles=(
                "utilisation (%)",
                "memory (GiB)",
                "clock (MHz), power (W), temperature (°C)",
            ),
        )
        for row, names in ((1, percent), (2, memory), (3, other)):
            for metric in sorted(names):
                points = sorted(series[metric])
                t, v = downsample(
                    np.array([p[0] for p in points]), np.array([p[1] for p in points]), MAX_POINTS
                )
                if metric.endswith("_bytes"):
                    v, metric = v / 2**30, metric.replace("_bytes", " (GiB)")
                fig.add_scatter(x=t, y=v, mode="lines", name=metric, row=row, col=1)
        timeline = sorted((at, phase) for values in series.values() for at, _, phase in values)
        shade_phases(fig, phase_spans(timeline))
        fig.update_layout(
            title=plotly_text(f"{s.label} — {s.run_id}"),
            height=640,
            xaxis3_title="seconds since sampling began",
        )
        parts.append(_figure(fig))
    return join(parts)


def _profiles(summaries: list[StoredRun]) -> Markup:
    fig = profile_figure(summaries, lambda s: plotly_text(f"{s.label} ({s.run_id[-6:]})"))
    if fig is None:
        return html("<p class='note'>No run here was profiled (dlbench run --profile).</p>")
    return _figure(fig)


def _comparison(store: Store, summaries: list[StoredRun]) -> Markup:
    """As ``dlbench compare`` without --by: grouped by the first field the runs differ in."""
    ok = [s for s in summaries if s.status == "ok" and s.timed_steps]
    try:
        result = compare(store, [s.run_id for s in ok])
    except DlbenchError as exc:
        return html(
            "<p class='note'>{}. Add runs on another device to see CPU vs GPU.</p>",
            exc.one_line(),
        )
    return _comparison_html(result)


def _comparison_html(result: Comparison) -> Markup:
    parts = [
        html(
            "<p class='note'>Runs grouped by <b>{}</b>; baseline {}.</p>",
            result.by,
            result.groups[0].value,
        )
    ]
    for c in result.contrasts:
        if c.within:
            parts.append(html("<p class='note'>Within {}:</p>", c.within))
        if c.quality_warning:
            kind = "bad" if c.quality_warning.startswith("Warning") else "warn"
            parts.append(html("<p class='{}'>{}</p>", kind, c.quality_warning))
        parts.append(
            html(
                "<p class='verdict'>{}</p><ul><li>Hypothesis {}</li><li>Hypothesis {}</li>"
                "<li>Mann-Whitney U on step speeds: {}; speed-up interval by {}</li></ul>",
                c.claim,  # the caveat above, once
                c.claim_a,
                c.claim_b,
                stats.format_p(c.mann_whitney_p),
                c.method,
            )
        )
        differing = [m for m in c.metrics if m.differs][:12]
        if differing:
            parts.append(
                _table(
                    [
                        "Metric (train phase)",
                        f"Median {c.group}",
                        f"Median {c.baseline}",
                        "KS D",
                        "p (Holm)",
                        "Cliff's delta",
                    ],
                    [
                        [
                            _esc(m.metric),
                            fmt_metric(m.metric, m.median_group) or "—",
                            fmt_metric(m.metric, m.median_baseline) or "—",
                            f"{m.ks_statistic:.2f}",
                            _esc(stats.format_p(m.p_value)),
                            f"{m.cliffs_delta:+.2f} ({stats.magnitude(m.cliffs_delta)})",
                        ]
                        for m in differing
                    ],
                    {1, 2, 3},
                )
            )
    if result.unmatched:
        parts.append(
            html("<p class='warn'>Left out, no counterpart: {}</p>", "; ".join(result.unmatched))
        )
    return join(parts)


def _scaling(runs: list[StoredRun]) -> Markup:
    series = scaling.scaling(runs)
    if not series:
        return html(
            "<p class='note'>No scaling series: runs that differ only in GPU count, staging "
            "tier or batch size make one (dlbench sweep).</p>"
        )
    parts = []
    for s in series:
        if s.quality_warning:
            parts.append(html("<p class='warn'>{}</p>", s.quality_warning))
        parts.append(_figure(scaling_figure(s)))
    return join(parts)


def _collectives(summaries: list[StoredRun]) -> Markup:
    """Collectives runs: bus bandwidth by message size, one figure per operation."""
    runs = [s for s in summaries if s.collectives]
    operations = dict.fromkeys(r.operation for run in runs for r in run.collectives)
    return join([_figure(collectives_figure(runs, operation)) for operation in operations])


def _bottlenecks(store: Store, summaries: list[StoredRun]) -> Markup:
    rows = []
    for s in summaries:
        if s.status != "ok":
            continue
        samples = store.get_samples(s.run_id, ["cpu.freq_mhz", "cpu.temp_c"])
        found = bottleneck.verdicts(s, samples)
        text = join((html("<b>{}</b>: {}", v.name, v.evidence) for v in found), "<br>")
        rows.append([_esc(s.run_id), _esc(s.label), text or "none found"])
    return _table(["Run", "Configuration", "Verdicts and evidence"], rows)


def _costs(
    summaries: list[StoredRun], price_per_hour: float | None, price_per_kwh: float | None
) -> Markup:
    rows = []
    table = cost.load_prices()
    for s in summaries:
        if s.status != "ok" or not s.mean_step_time_s or s.kind != "train":
            continue  # an epoch is of training: a generation or a server has none
        c = cost.run_cost(s, None, 1, price_per_hour, price_per_kwh, table)
        rows.append(
            [
                _esc(s.run_id),
                _esc(s.label),
                f"{c.dataset_size:,}",
                _num((c.epoch_s or 0) / 60, 1),
                _num(c.usd_per_epoch, 2),
                _num(c.kwh_per_epoch, 4),
                _esc(c.price_note),
                _esc(c.energy_note),
            ]
        )
    return _table(
        [
            "Run",
            "Configuration",
            "Images per epoch",
            "Epoch (min)",
            "USD per epoch",
            "kWh per epoch",
            "Price",
            "Energy",
        ],
        rows,
        {2, 3, 4, 5},
    )


def _insights(summaries: list[StoredRun]) -> Markup:
    """Per device with enough runs: rank correlations with step time, and the runs' spread."""
    from dlbench.analysis.insights import correlations
    from dlbench.predict.features import frame
    from dlbench.report.figures import insights_figure, step_time_figure

    table = frame(summaries)
    parts = []
    for device, mine in table.groupby("device") if not table.empty else []:
        found = correlations(mine)
        if found:
            parts.append(html("<h3>{}: {} runs</h3>", device, len(mine)))
            parts += [_figure(insights_figure(found)), _figure(step_time_figure(mine))]
    return join(parts)


def build(
    store: Store,
    summaries: list[StoredRun],
    title: str,
    price_per_hour: float | None = None,
    price_per_kwh: float | None = None,
) -> str:
    if not summaries:
        raise DlbenchError("no runs to report", "run some first: dlbench quickstart")
    sections = [
        ("Hardware", _hardware(summaries)),
        ("Results", _results(summaries)),
        ("Throughput", _throughput(summaries)),
        ("Comparison with statistics", _comparison(store, summaries)),
        ("Scaling", _scaling(summaries)),
        ("Bottlenecks", _bottlenecks(store, summaries)),
        ("Where the step time goes (profiled runs)", _profiles(summaries)),
        (
            "Cost and energy, one epoch of the workload's dataset",
            _costs(summaries, price_per_hour, price_per_kwh),
        ),
        ("Telemetry over each run (phases shaded)", _telemetry(store, summaries)),
    ]
    if any(s.collectives for s in summaries):
        sections.insert(5, ("Collectives: bus bandwidth by message size", _collectives(summaries)))
    answering = answering_section(summaries, _figure)
    if answering is not None:
        sections.insert(3, ("Language models answering: generation and serving", answering))
    found = _insights(summaries)
    if found:  # with a calibration's or a sweep's many model shapes
        sections.insert(-1, ("Insights: what goes with step time", found))
    made = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    return page(title, CSS, get_plotlyjs(), len(summaries), __version__, made, sections)

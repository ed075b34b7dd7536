"""The dlbench dashboard (Streamlit): ``dlbench dashboard`` runs this script with ``--db URL``.

The database is opened read-only. Queries are cached; only the selected runs' samples are
read, and they are downsampled for plotting without hiding peaks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dlbench.dashboard import data
from dlbench.dashboard.data import markdown_text as md
from dlbench.errors import DlbenchError
from dlbench.report.figures import plotly_text, profile_figure, shade_phases, throughput_figure
from dlbench.store.database import Store, default_url
from dlbench.store.stored import StoredRun

PAGES = ("Runs", "Telemetry", "Compare", "Scaling", "Hardware", "Calculator")
CACHE_TTL_S = 30  # new runs appear within this


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db", default=None)
    parser.add_argument("--model-dir", default=None)
    known, _ = parser.parse_known_args(sys.argv[1:])
    return known


def _db_url() -> str:
    return str(_arguments().db or default_url())


def _model_dir() -> Path | None:
    """The operator's folder of model files for the Calculator (``dlbench dashboard
    --model-dir``); without it, the page imports no file at all."""
    given = _arguments().model_dir
    return Path(given) if given else None


@st.cache_resource
def _store(url: str) -> Store:
    return Store(url, read_only=True)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _runs(url: str) -> pd.DataFrame:
    return data.runs_frame(_store(url))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _calculator_table(url: str) -> pd.DataFrame:
    return data.calculator_frame(_store(url))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _run(url: str, run_id: str) -> dict[str, Any]:
    return _store(url).get_run(run_id)


@st.cache_data(show_spinner=False)
def _metrics(url: str, run_id: str) -> list[str]:
    return _store(url).sample_metrics(run_id)


@st.cache_data(show_spinner=False, max_entries=256)
def _series(url: str, run_id: str, metric: str, align: str) -> tuple[Any, Any, list[Any]]:
    return data.series(_store(url).get_samples(run_id, [metric]), align)


def main() -> None:
    st.set_page_config(page_title="dlbench", layout="wide")
    st.markdown(SIDEBAR_CSS, unsafe_allow_html=True)
    url = _db_url()
    try:
        runs = _runs(url)
    except DlbenchError as exc:
        st.error(md(exc.one_line()))
        return
    st.sidebar.title("dlbench")
    page = str(st.sidebar.radio("Page", PAGES, key="page"))
    if runs.empty:
        st.info(
            "No runs in this database yet. Produce some with `dlbench quickstart`, "
            "`dlbench run WORKLOAD` or `dlbench sweep FILE`, then reload this page."
        )
        return
    labels = {row["run_id"]: data.label(row) for row in runs.to_dict("records")}
    selected = st.sidebar.multiselect(
        "Selected runs",
        list(labels),
        format_func=labels.__getitem__,
        key="selected_runs",
        help="Pick runs here or tick them in the Runs table.",
    )
    {
        "Runs": _runs_page,
        "Telemetry": _telemetry_page,
        "Compare": _compare_page,
        "Scaling": _scaling_page,
        "Hardware": _hardware_page,
        "Calculator": _calculator_page,
    }[page](url, runs, selected)


# -- pages -------------------------------------------------------------------------------------
# The runs table's columns as a person reads them (the data keeps the store's field names).
# In this order: what a person looks for first comes first (the speed within 1400 px).
RUN_TABLE_LABELS: dict[str, Any] = {
    "run_id": "Run",
    "workload": "Workload",
    "device_name": "Device",
    "mean_speed": st.column_config.Column(
        "Speed", help="Images/s (sequences/s for language models), the mean over the timed steps"
    ),
    "quality_verdict": "Quality",
    "status": "Status",
    "batch": "Batch",
    "gpus": "GPUs",
    "precision": "Precision",
    "date": "Date (UTC)",
    "accuracy": "Accuracy",
    "foreign_cpu_cores": st.column_config.Column(
        "Other work (cores)", help="Other processes' CPU during the timed steps, in cores"
    ),
    "tags": "Tags",
    "sweep": "Sweep",
    "error": "Error",
}
NUMBER_FORMATS = {"mean_speed": "{:,.1f}", "accuracy": "{:.4f}", "foreign_cpu_cores": "{:.2f}"}
ROWS_SHOWN = 25  # the runs table's height: more rows scroll inside it
# The sidebar wide enough for a run's chip to show whole (its id and workload): constant
# CSS, no stored text in it.
SIDEBAR_CSS = "<style>section[data-testid='stSidebar']{min-width:400px}</style>"


def _runs_page(url: str, runs: pd.DataFrame, selected: list[str]) -> None:
    st.header("Runs")
    shown = _filtered(runs)
    st.caption(f"{len(shown)} of {len(runs)} runs; tick rows to select them for the other pages")
    view = shown[list(RUN_TABLE_LABELS)]
    event = st.dataframe(
        # numbers stay numbers (they sort), shown to their precision, a missing one as "—"
        view.style.format(NUMBER_FORMATS, na_rep="—"),
        column_config=RUN_TABLE_LABELS,
        height=38 + 35 * min(max(len(view), 1), ROWS_SHOWN),
        hide_index=True,
        on_select="rerun",
        selection_mode="multi-row",
        key="runs_table",
        width="stretch",
    )
    ticked = [view.iloc[i]["run_id"] for i in event.selection.rows] if event else []
    if ticked and set(ticked) != set(selected):
        st.session_state["selected_runs"] = list(dict.fromkeys([*selected, *ticked]))
        st.rerun()


def _filtered(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that pass the Runs page's filters (none ticked: all)."""
    columns = st.columns(5)
    filters = {
        "workload": columns[0].multiselect(
            "Workload", sorted(runs["workload"].dropna().unique()), key="filter_workload"
        ),
        "device": columns[1].multiselect(
            "Device", sorted(runs["device"].dropna().unique()), key="filter_device"
        ),
        "status": columns[2].multiselect(
            "Status", sorted(runs["status"].dropna().unique()), key="filter_status"
        ),
        "sweep": columns[3].multiselect(
            "Sweep", sorted(runs["sweep"].dropna().unique()), key="filter_sweep"
        ),
        "quality_verdict": columns[4].multiselect(
            "Quality",
            sorted(runs["quality_verdict"].dropna().unique()),
            key="filter_quality",
            help="How clean each run's measurement was: clean, noisy or contended.",
        ),
    }
    shown = runs
    for column, values in filters.items():
        if values:
            shown = shown[shown[column].isin(values)]
    text = st.text_input("Tags or id contain")
    if text:
        shown = shown[
            shown["tags"].str.contains(text, regex=False)
            | shown["run_id"].str.contains(text, regex=False)
        ]
    return shown


def _telemetry_page(url: str, runs: pd.DataFrame, selected: list[str]) -> None:
    st.header("Telemetry")
    if not selected:
        st.info("Select runs in the sidebar (or tick them on the Runs page).")
        return
    available = sorted({m for run_id in selected for m in _metrics(url, run_id)})
    if not available:
        for run_id in selected:
            result = _run(url, run_id).get("result")
            summary = result.get("telemetry") if isinstance(result, dict) else None
            summary = summary if isinstance(summary, dict) else {}
            st.warning(
                md(
                    f"{run_id}: no telemetry stored"
                    + (f" ({summary['reason']})" if summary.get("reason") else "")
                )
            )
        return
    gpus = sorted({m.split(".")[0] for m in available if m.startswith("gpu")})
    controls = st.columns(3)
    align = controls[0].radio(
        "Align runs at",
        ("start", "train"),
        horizontal=True,
        format_func={"start": "their start", "train": "the train phase"}.__getitem__,
    )
    align = str(align)
    gpu = str(controls[1].selectbox("GPU", ["all", *gpus])) if gpus else "all"
    metrics = [
        m for m in available if gpu == "all" or not m.startswith("gpu") or m.startswith(gpu + ".")
    ]
    default = [
        m
        for m in ("cpu.util_percent", "gpu0.util_percent", "gpu0.temp_c", "cpu.temp_c")
        if m in metrics
    ][:2] or metrics[:1]
    chosen = controls[2].multiselect(
        "Metrics (side by side)", metrics, default=default, max_selections=2
    )
    for column, metric in zip(st.columns(max(1, len(chosen))), chosen, strict=False):
        with column:
            st.plotly_chart(
                _telemetry_figure(url, selected, metric, align),
                width="stretch",
                key=f"chart-{metric}",
            )
    missing = [r for r in selected if not _metrics(url, r)]
    for run_id in missing:
        st.caption(md(f"{run_id}: no telemetry stored for this run"))


def _telemetry_figure(url: str, run_ids: list[str], metric: str, align: str) -> go.Figure:
    fig = go.Figure()
    shaded = False
    for run_id in run_ids:
        t, v, spans = _series(url, run_id, metric, align)
        if len(t) == 0:
            continue
        fig.add_scatter(x=t, y=v, mode="lines", name=plotly_text(run_id))
        if not shaded:  # the first run's phases; the others are aligned to them
            shade_phases(fig, spans)
            shaded = True
    fig.update_layout(
        title=plotly_text(metric),
        xaxis_title="seconds",
        template="plotly_white",
        height=420,
        legend={"orientation": "h"},
        margin={"t": 50, "b": 40},
    )
    return fig


def _compare_page(url: str, runs: pd.DataFrame, selected: list[str]) -> None:
    from dlbench.analysis import bottleneck, cost

    st.header("Compare")
    if len(selected) < 1:
        st.info("Select runs in the sidebar to compare them.")
        return
    summaries = []
    for run_id in selected:
        try:
            summaries.append(StoredRun.from_row(_run(url, run_id)))
        except DlbenchError as exc:  # a row another program wrote, or gone since
            st.warning(md(exc.one_line()))
    ok = [s for s in summaries if s.status == "ok" and s.mean_speed]
    for s in summaries:
        if s.status != "ok":
            st.error(md(f"{s.run_id}: {s.status} — {s.error or ''}"))
    if ok:
        st.plotly_chart(throughput_figure(ok, _bar_label, height=380), width="stretch")
        _quality_notes(summaries)
        _language_figures(ok)
    if len(ok) >= 2:
        _contrasts(url, ok)
    profiled = profile_figure(ok, _bar_label)
    if profiled is not None:
        st.plotly_chart(profiled, width="stretch")
    st.subheader("Bottlenecks")
    for s in ok:
        found = bottleneck.verdicts(s)
        st.markdown(
            f"**{md(s.run_id)}**: "
            + md("; ".join(f"{v.name} ({v.evidence})" for v in found) or "none found")
        )
    st.subheader("Cost and energy, one epoch of the workload's dataset")
    price = st.number_input("USD per GPU-hour (0: the price table)", min_value=0.0, value=0.0)
    rows = []
    for s in ok:
        priced = cost.run_cost(s, price_per_hour=price or None)
        rows.append(
            {
                "run": s.run_id,
                "images": priced.dataset_size,
                "epoch (min)": round((priced.epoch_s or 0) / 60, 2),
                "USD/epoch": priced.usd_per_epoch,
                "kWh/epoch": priced.kwh_per_epoch,
                "price": priced.price_note,
                "energy": priced.energy_note,
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _language_figures(ok: list[StoredRun]) -> None:
    """Tokens/s (95% interval), validation loss and perplexity of the language runs."""
    rows = [
        {
            "run": s.run_id,
            "data": s.data,  # a synthetic run's loss is a random text's: no learning to see
            "tokens/s": round(s.tokens_per_s or 0),
            "95% CI": "—"
            if not s.tokens_per_s_ci95
            else f"{s.tokens_per_s_ci95[0]:,.0f}–{s.tokens_per_s_ci95[1]:,.0f}",
            "tokens per sequence": s.seq_len,
            "validation loss": s.val_loss,
            "perplexity": s.perplexity,
            "attention": s.model.attention_backend if s.model else None,
        }
        for s in ok
        if s.seq_len
    ]
    if rows:
        st.subheader("Language models")
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _bar_label(s: StoredRun) -> str:
    return plotly_text(s.run_id) + "<br>" + plotly_text(s.label)


def _contrasts(url: str, ok: list[StoredRun]) -> None:
    """The compare verdicts, grouped by the first field the runs differ on (or the chosen)."""
    from dlbench.analysis.compare import FIELDS, compare, differing_field

    differing = differing_field(ok)
    start = FIELDS.index(differing) if differing else 0
    by = str(st.selectbox("Group by", FIELDS, index=start))
    try:
        result = compare(_store(url), [s.run_id for s in ok], by)
        for c in result.contrasts:
            if c.within:
                st.caption(md(f"within {c.within}"))
            if c.quality_warning and c.quality_warning.startswith("Warning"):
                st.error(md(c.quality_warning))
            elif c.quality_warning:
                st.warning(md(c.quality_warning))
            st.success(md(c.claim))  # the caveat above, once
            st.markdown(f"- Hypothesis {md(c.claim_a)}\n- Hypothesis {md(c.claim_b)}")
        if result.unmatched:
            st.caption(md("left out, no counterpart: " + "; ".join(result.unmatched)))
    except DlbenchError as exc:
        st.info(md(exc.one_line()))


def _quality_notes(summaries: list[StoredRun]) -> None:
    """Each selected run's measurement quality, with its reasons when not clean."""
    st.subheader("Measurement quality")
    for s in summaries:
        verdict = s.quality.verdict if s.quality else None
        reasons = md("; ".join(s.quality.reasons if s.quality else ()))
        run_id = md(s.run_id)
        if verdict == "contended":
            st.error(f"{run_id}: contended — {reasons}")
        elif verdict == "noisy":
            st.warning(f"{run_id}: noisy — {reasons}")
        elif verdict == "clean":
            st.markdown(f"**{run_id}**: clean — {reasons}")
        else:
            st.caption(f"{run_id}: quality not measured (an older run, or no timed phase)")


def _scaling_page(url: str, runs: pd.DataFrame, selected: list[str]) -> None:
    from dlbench.analysis.scaling import scaling
    from dlbench.report.figures import scaling_figure

    st.header("Scaling")
    sweeps = sorted(runs["sweep"].dropna().unique())
    sweep = st.selectbox("Sweep", ["(all runs)", *sweeps])
    store = _store(url)
    found = store.runs(sweep=None if sweep == "(all runs)" else sweep, status="ok")
    series = scaling(found)
    if not series:
        st.info(
            "No scaling series: runs that differ only in GPU count, staging tier or "
            "batch size make one (dlbench sweep)."
        )
        return
    for s in series:
        if s.quality_warning:
            st.warning(md(s.quality_warning))
        st.plotly_chart(scaling_figure(s), width="stretch")


def _hardware_page(url: str, runs: pd.DataFrame, selected: list[str]) -> None:
    st.header("Hardware")
    by_host = runs.drop_duplicates("hostname")
    rows = [_run(url, r) for r in by_host["run_id"]]
    st.dataframe(data.hardware_frame(rows), width="stretch")


def _calculator_page(url: str, runs: pd.DataFrame, selected: list[str]) -> None:
    from dlbench.dashboard import calculator

    calculator.page(url, _calculator_table(url), _model_dir())


main()

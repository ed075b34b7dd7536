"""The dashboard's Calculator page: the form and answer of ``dlbench predict``, and the
insights figures.

The answer comes from ``dlbench predict --json --read-only`` in a child process: the same
code, the same answer as the command line, and no framework imported into the dashboard
(describing a model builds it with PyTorch).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dlbench.analysis.insights import correlations
from dlbench.dashboard.data import markdown_text
from dlbench.frameworks import PRECISIONS
from dlbench.predict.question import FAMILIES
from dlbench.render.console import hms
from dlbench.report.figures import insights_figure, step_time_figure
from dlbench.workloads import WORKLOADS

PREDICT_TIMEOUT_S = 300
ALL_DEVICES = "(every device: rank by time and cost)"


def model_files(model_dir: Path | None) -> list[str]:
    """The .py files the operator put in ``--model-dir`` (none without it)."""
    if model_dir is None or not model_dir.is_dir():
        return []
    return sorted(p.name for p in model_dir.iterdir() if p.suffix == ".py" and p.is_file())


def confined_model_file(model_dir: Path | None, name: str, function: str) -> str:
    """``FILE.py:FUNCTION`` for ``dlbench predict --model-file``, only for a file directly in
    the operator's ``--model-dir``: a visitor's text never names a file elsewhere, since
    describing a model imports (runs) its file."""
    if model_dir is None:
        raise ValueError("model files are off: start the dashboard with --model-dir FOLDER")
    folder = model_dir.resolve()
    path = (folder / name).resolve()
    if path.parent != folder or path.suffix != ".py" or not path.is_file():
        raise ValueError(f"{name!r} is not a .py file in the dashboard's model folder")
    if not function.isidentifier():
        raise ValueError(f"{function!r} is not a Python function name")
    return f"{path}:{function}"


def predict_command(url: str, form: dict[str, Any], model_dir: Path | None = None) -> list[str]:
    """``dlbench predict`` arguments for the form's values (empty ones left to defaults)."""
    command = [sys.executable, "-m", "dlbench", "predict", "--json", "--read-only", "--db", url]
    if form.get("how") == "Family":
        command += ["--family", form["family"], "--depth", str(form["depth"])]
        command += ["--width", str(form["width"])]
    elif form.get("how") == "Model file":
        model = confined_model_file(model_dir, form["model_file"], form["function"])
        command += ["--model-file", model]
    else:
        command.insert(4, form["workload"])
    options = {
        "--dataset-size": form["dataset_size"],
        "--epochs": form["epochs"],
        "--batch": form.get("batch_size") or None,
        "--input": form.get("input_size") or None,
        "--precision": form["precision"],
        "--gpus": form["gpus"],
        "--val-size": form.get("val_size") or None,
        "--price-per-hour": form.get("price_per_hour") or None,
    }
    for flag, value in options.items():
        if value is not None:
            command += [flag, str(value)]
    if form["device"] == ALL_DEVICES:
        command.append("--compare-devices")
    else:
        command += ["--device", form["device"]]
    return command


def ask(
    url: str, form: dict[str, Any], model_dir: Path | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON answer, or the command's one-line error."""
    try:
        command = predict_command(url, form, model_dir)
    except ValueError as exc:
        return None, str(exc)
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=PREDICT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return None, f"dlbench predict took over {PREDICT_TIMEOUT_S} s"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["dlbench predict failed"]
        return None, lines[-1].removeprefix("error: ")
    return json.loads(done.stdout), None


def page(url: str, table: pd.DataFrame, model_dir: Path | None = None) -> None:
    """``table``: the calculator's table of stored runs (``predict.features.frame``);
    ``model_dir``: the operator's folder of model files (``--model-dir``), or None."""
    st.header("Calculator")
    if table.empty:
        st.info(
            "No stored runs with model descriptors yet: `dlbench calibrate` benchmarks a "
            "design of model shapes on this machine for the calculator."
        )
        return
    devices = sorted(table["device"].dropna().unique())
    files = model_files(model_dir)
    kinds = ["Zoo workload", "Family", *(["Model file"] if files else [])]
    how = st.radio("Model", kinds, horizontal=True, key="how")
    with st.form("calculator"):
        form: dict[str, Any] = {"how": how}
        left, middle, right = st.columns(3)
        if how == "Family":
            form["family"] = left.selectbox("Family", FAMILIES, index=2)
            form["depth"] = middle.number_input("Depth (weight layers)", 2, 200, 18)
            form["width"] = right.number_input("Width (base channels or units)", 8, 4096, 64)
        elif how == "Model file":
            form["model_file"] = left.selectbox(f"File in {markdown_text(model_dir)}", files)
            form["function"] = middle.text_input("Function that builds the model", "build")
        else:
            names = [w.name for w in WORKLOADS.values() if w.task in ("classify", "language")]
            form["workload"] = left.selectbox(
                "Workload", names, index=names.index("resnet18") if "resnet18" in names else 0
            )
        left, middle, right = st.columns(3)
        form["batch_size"] = left.number_input("Batch size (0: the model's)", 0, 65536, 64)
        form["input_size"] = middle.number_input(
            "Input side in pixels; a transformer's tokens (0: default)", 0, 65536, 0
        )
        form["precision"] = right.selectbox("Precision", list(PRECISIONS))
        left, middle, right = st.columns(3)
        form["dataset_size"] = left.number_input("Images per epoch", 1, 10**10, 50_000)
        form["epochs"] = middle.number_input("Epochs", 1, 100_000, 10)
        form["val_size"] = right.number_input("Images validated per epoch", 0, 10**9, 0)
        left, middle, right = st.columns(3)
        form["device"] = left.selectbox("Device", [*devices, ALL_DEVICES])
        form["gpus"] = middle.number_input("GPUs (data parallel)", 1, 1024, 1)
        form["price_per_hour"] = right.number_input(
            "USD per GPU-hour (0: the price table's)", 0.0, 1000.0, 0.0
        )
        asked = st.form_submit_button("Predict")
    if asked:
        with st.spinner("counting the model's FLOPs and fitting the predictor"):
            # Kept for the page's later reruns (the insights' selector, a sidebar pick), which
            # would otherwise wipe the answer: it stays until the form is sent again.
            st.session_state["calculator_answer"] = ask(url, form, model_dir)
    answer, error = st.session_state.get("calculator_answer", (None, None))
    if error:
        st.error(markdown_text(error))
    elif answer is not None and "by_time" in answer:
        _ranking(answer)
    elif answer is not None:
        _answer(answer)
    _insights(table)


def _interval(part: dict[str, Any] | None, show: Any) -> tuple[str, str]:
    if not part:
        return "—", "no price: give USD per GPU-hour"
    return str(show(part["predicted"])), f"90%: {show(part['low'])} - {show(part['high'])}"


def _answer(answer: dict[str, Any]) -> None:
    columns = st.columns(4)
    shown: list[tuple[str, Any, Any]] = [
        ("Step time", answer["step_s"], lambda v: f"{v * 1e3:,.2f} ms"),
        ("Epoch", answer["epoch_s"], hms),
        ("Total", answer["total_s"], hms),
        ("Cost (USD)", answer["usd"], lambda v: f"{v:,.2f}"),
    ]
    for column, (name, part, show) in zip(columns, shown, strict=True):
        value, band = _interval(part, show)
        column.metric(name, value)
        column.caption(band)
    startup = answer["startup_s"]
    notes = [
        f"{answer['steps_per_epoch']:,} steps per epoch on {markdown_text(answer['device'])}; "
        + (f"start-up {startup:.1f} s" if startup is not None else "start-up not counted")
    ]
    if answer.get("price_source"):
        notes.append(f"price: {markdown_text(answer['price_source'])}")
    if answer.get("transfer"):
        notes.append(markdown_text(answer["transfer"]["note"]))
    notes += [f"**warning**: {markdown_text(line)}" for line in answer.get("extrapolation") or []]
    predictor = answer["predictor"]
    errors = predictor["errors"].get("random 5-fold", {})
    notes.append(
        f"predictor: {markdown_text(predictor['model'])}, "
        f"learned from {predictor['training']['runs']} runs; "
        f"cross-validated MAPE {errors.get('mape', float('nan')):.1f}%, "
        f"P90 {errors.get('p90_ape', float('nan')):.1f}%"
    )
    taken = predictor["training"].get("included_contended") or 0
    if taken:
        notes.append(
            f"**warning**: {taken} of those runs were measured contended and learned from all "
            "the same (--include-contended): the prediction may be slower than the device is"
        )
    st.success("\n\n".join(notes))  # each note's stored text escaped as Markdown
    st.subheader("Nearest stored runs")
    nearest = pd.DataFrame(
        {
            "run": [r["run_id"] for r in answer["nearest"]],
            "workload": [r["workload"] for r in answer["nearest"]],
            "batch": [int(r["batch_size"]) for r in answer["nearest"]],
            "GFLOP/step": [round(r["flops"] / 1e9, 2) for r in answer["nearest"]],
            "step (ms)": [round(r["step_s"] * 1e3, 2) for r in answer["nearest"]],
        }
    )
    st.dataframe(nearest, width="stretch", hide_index=True)


def _ranking(answer: dict[str, Any]) -> None:
    cheapest = {device: i + 1 for i, device in enumerate(answer["by_cost"])}
    rows = [
        {
            "device": a["device"],
            "rank by time": i + 1,
            "rank by cost": cheapest[a["device"]],
            "total": hms(a["total_s"]["predicted"]),
            "90% interval": f"{hms(a['total_s']['low'])} - {hms(a['total_s']['high'])}",
            "USD": None if a["usd"] is None else round(a["usd"]["predicted"], 2),
            "from": "transfer" if a["transfer"] else "own runs",
        }
        for i, a in enumerate(answer["by_time"])
    ]
    st.dataframe(pd.DataFrame(rows), width="stretch", hide_index=True)
    for device, why in answer["refused"].items():
        st.warning(markdown_text(f"{device}: not predicted ({why})"))


def _insights(table: pd.DataFrame) -> None:
    st.subheader("Insights: what goes with step time")
    devices = sorted(table["device"].dropna().unique())
    device = st.selectbox("Runs on", devices, key="insights_device")
    mine = table[table["device"] == device]
    found = correlations(mine)
    if not found:
        st.info("Too few runs on this device for correlations (5 of one family at least).")
        return
    st.plotly_chart(insights_figure(found), width="stretch")
    st.plotly_chart(step_time_figure(mine), width="stretch")

"""What the dashboard's pages show, as data frames: no Streamlit here, so it is testable and
the app stays a thin layer of widgets and cached calls."""

from __future__ import annotations

import re
import string
from typing import Any

import numpy as np
import pandas as pd

from dlbench.frameworks import DEFAULT_FRAMEWORK, DEFAULT_PRECISION
from dlbench.records import TelemetrySample
from dlbench.report.figures import downsample, phase_spans
from dlbench.store.database import Store
from dlbench.store.stored import learned_accuracy

# Every ASCII punctuation character may start Markdown (links, images, emphasis, HTML) or one of
# Streamlit's own directives (:red[...], $math$); a backslash before each makes it text.
_MARKDOWN = str.maketrans({c: "\\" + c for c in string.punctuation})
MAX_POINTS = 2000  # per trace; each bin keeps its maximum, so peaks stay visible
RUN_COLUMNS = (
    "run_id",
    "kind",
    "created_at",
    "workload",
    "framework",
    "device",
    "device_name",
    "num_gpus",
    "precision",
    "batch_size",
    "data",
    "status",
    "sweep",
    "mean_speed",
    "speed_stderr",
    "throughput_e2e",
    "quality_verdict",
    "foreign_cpu_cores",
    "accuracy",
    "staged_from",
    "hostname",
    "tags",
    "error",
)


def runs_frame(store: Store) -> pd.DataFrame:
    """One row per run, newest first, without the JSON blobs."""
    rows = store.run_table()
    frame = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    frame["tags"] = frame["tags"].map(
        lambda t: ", ".join(f"{k}={v}" for k, v in sorted((t or {}).items()))
    )
    frame["date"] = frame["created_at"].astype(str).str[:19].str.replace("T", " ")
    # A monitor run trained nothing: its device is the system, its precision none; and a
    # classifier's accuracy on synthetic (random) labels is no accuracy at all (the same
    # judgement as every other view's, StoredRun.learned_accuracy).
    monitor = frame["kind"] == "monitor"
    frame.loc[monitor, "device_name"] = "(monitor: " + frame.loc[monitor, "workload"] + ")"
    frame.loc[monitor, "precision"] = "—"
    # a training run stored before these columns: the defaults, as StoredRun reads it (a
    # server measured from its client has no precision of ours)
    # A server's speed is its requests/s over the benchmark (its steps' is 1 / a request's
    # latency), with no interval; it has no batch of ours.
    serving = frame["kind"] == "serving"
    if serving.any():
        frame.loc[serving, "mean_speed"] = frame.loc[serving, "throughput_e2e"]
        frame.loc[serving, ["speed_stderr", "batch_size"]] = float("nan")
    model = frame["kind"].isin(("train", "generate"))
    frame.loc[model, "framework"] = frame.loc[model, "framework"].fillna(DEFAULT_FRAMEWORK)
    frame.loc[model, "precision"] = frame.loc[model, "precision"].fillna(DEFAULT_PRECISION)
    frame["accuracy"] = [
        learned_accuracy(accuracy, None, data)
        for accuracy, data in zip(frame["accuracy"], frame["data"], strict=True)
    ]
    # Counts a person reads as labels: a CPU run has no GPU count, a monitor run no batch.
    frame["gpus"] = [
        "—" if device in ("cpu", "system", "server") or not gpus or gpus != gpus else str(int(gpus))
        for device, gpus in zip(frame["device"], frame["num_gpus"], strict=True)
    ]
    for column in ("quality_verdict", "sweep", "error", "device_name", "workload", "precision"):
        frame[column] = frame[column].fillna("—")
    frame["batch"] = [
        "—" if batch is None or batch != batch else str(int(batch)) for batch in frame["batch_size"]
    ]
    return frame


# GitHub's Markdown turns bare addresses into links after escapes are read: an invisible word
# joiner inside "://", "www." and "@" leaves them text.
_AUTOLINKS = re.compile(r"(?<=:)(?=//)|(?i:(?<=www))(?=\.)|(?<=@)")


def markdown_text(value: Any) -> str:
    """A stored or typed string as Markdown that shows it literally: ``![](http://x)`` is
    those characters, not an image a viewer's browser fetches, nor a link to click."""
    return _AUTOLINKS.sub("\u2060", str(value)).translate(_MARKDOWN)


def label(row: dict[str, Any]) -> str:
    """A run in the sidebar's list and chips: its id (what one types to find it) and what it
    ran, short enough for a chip to show whole."""
    return f"{row['run_id']} · {row['workload']}"


def series(
    samples: list[TelemetrySample], align: str = "start"
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, float, float]]]:
    """(t, value, phase spans) of one run's samples of one metric; ``align="train"`` puts
    t = 0 at the first sample of the train phase."""
    if not samples:
        return np.array([]), np.array([]), []
    ordered = sorted(samples, key=lambda s: s.t_s)
    t = np.array([s.t_s for s in ordered])
    v = np.array([s.value for s in ordered])
    origin = t[0]
    if align == "train":
        train = [s.t_s for s in ordered if s.phase == "train"]
        origin = train[0] if train else origin
    spans = phase_spans((s.t_s - origin, s.phase) for s in ordered)
    t, v = downsample(t - origin, v, MAX_POINTS)
    return t, v, spans


def hardware_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Each machine's fingerprint as a column, side by side."""
    machines: dict[str, dict[str, Any]] = {}
    for row in rows:
        hw = _mapping(row.get("hardware"))
        host = str(hw.get("hostname") or row.get("hostname") or "unknown")
        if host in machines:
            continue
        cpu, storage = _mapping(hw.get("cpu")), _mapping(hw.get("storage"))
        gpus = [_mapping(g) for g in hw.get("gpus") or [] if isinstance(hw.get("gpus"), list)]
        memory = hw.get("memory_bytes")
        machines[host] = {
            "CPU": cpu.get("model"),
            "usable CPUs": cpu.get("usable_cpus"),
            "physical cores": cpu.get("physical_cores"),
            "memory (GiB)": round(float(memory or 0) / 2**30, 1) if _number(memory) else None,
            "GPUs": ", ".join(str(g.get("name")) for g in gpus) or "none",
            "GPU memory (GiB)": ", ".join(
                str(round(g["memory_bytes"] / 2**30, 1))
                for g in gpus
                if _number(g.get("memory_bytes"))
            )
            or "—",
            "driver": next((g.get("driver") for g in gpus), None),
            "torch": hw.get("torch"),
            "CUDA": hw.get("cuda"),
            "OS": hw.get("os"),
            "data disk": f"{storage.get('device')} ({storage.get('filesystem')})",
            "first run": row["run_id"],
        }
    return pd.DataFrame(machines).astype(str)


def _mapping(value: Any) -> dict[str, Any]:
    """A stored document's part that should be a mapping, or {} where another writer put
    something else there."""
    return dict(value) if isinstance(value, dict) else {}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def calculator_frame(store: Store) -> pd.DataFrame:
    """The calculator's table: every ok run with model descriptors (``predict.features``)."""
    from dlbench.predict.features import frame

    return frame(store.runs(status="ok"))

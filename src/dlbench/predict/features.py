"""From stored runs to the calculator's table: one row per run, descriptors and step time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dlbench.store.measurements import Descriptors
from dlbench.store.stored import StoredRun

FEATURES = (
    "log_flops",
    "log_layers",
    "log_params",
    "log_activation_bytes",
    "batch_size",
    "input_size",
    "depth",
    "width",
    "amp",
    "log_flops_per_layer",
    "log_intensity",
)


def frame(summaries: list[StoredRun], include_contended: bool = False) -> pd.DataFrame:
    """Runs that ended ok with descriptors and a step time, as a table with the features.

    Runs measured on a contended machine are left out (their step times are the contention's,
    not the model's) unless ``include_contended``. ``table.attrs["left_out"]`` counts, per
    device, the runs left out and why; ``["included_contended"]`` the contended ones kept."""
    rows = []
    left_out: dict[str, dict[str, int]] = {}
    included: dict[str, int] = {}

    def leave_out(device: str, why: str) -> None:
        counts = left_out.setdefault(device, {})
        counts[why] = counts.get(why, 0) + 1

    for s in summaries:
        d = s.descriptors
        # The median step: robust to a shared machine's hiccups, which belong to no model.
        step = s.median_step_time_s or s.mean_step_time_s
        device = str(d.device_name if d is not None else s.device_name)
        if s.status != "ok" or s.is_monitor:
            continue
        if s.excluded:
            leave_out(device, "excluded by hand")
            continue
        if not step or d is None or not d.flops_per_step:
            leave_out(device, "without a model's descriptors")
            continue
        if s.quality_verdict == "contended":
            if not include_contended:
                leave_out(device, "contended")
                continue
            included[device] = included.get(device, 0) + 1
        rows.append(_row(s, d, float(step)))
    table = pd.DataFrame(rows)
    table.attrs["left_out"] = left_out
    table.attrs["included_contended"] = included
    if table.empty:
        return table
    table["log_flops"] = np.log(table["flops"])
    table["log_params"] = np.log(table["params"])
    table["log_layers"] = np.log1p(table["layers"])
    # Work per layer (small layers waste a device) and FLOPs per activation byte (arithmetic
    # intensity: low intensity is bound by memory, not compute).
    table["log_flops_per_layer"] = table["log_flops"] - table["log_layers"]
    table["log_activation_bytes"] = np.log(table["activation_bytes"])
    table["log_intensity"] = table["log_flops"] - table["log_activation_bytes"]
    table["amp"] = table["precision"].str.startswith("amp").astype(float)
    # The roofline floor: the step's FLOPs at the device's peak (NaN without a peak).
    table["roofline_s"] = table["flops"] / (table["peak_tflops"] * 1e12)
    return table


def _row(s: StoredRun, d: Descriptors, step: float) -> dict[str, Any]:
    peak = d.device_peak_tflops
    return {
        "run_id": s.run_id,
        "workload": s.workload,
        "sweep": s.sweep,
        "family": d.family,
        "device": d.device_name,
        "precision": d.precision,
        "flops": float(d.flops_per_step or 0),
        "params": float(d.params or 1),
        "layers": float(sum(d.layers.values())),
        "activation_bytes": float(d.activation_bytes or 1),
        "batch_size": float(d.batch_size or 1),
        "input_size": float(d.input_size or 0),
        "depth": float(d.depth or 0),
        "width": float(d.width or 0),
        "peak_tflops": float(peak) if peak else np.nan,
        "bandwidth_gb_s": float(d.device_bandwidth_gb_s or np.nan),
        "step_s": step,
        "startup_s": float(s.setup_time_s or np.nan),
        "config": s.config,  # the resolved run configuration: what to walk
    }


def contention(table: pd.DataFrame, device: str) -> tuple[int, int]:
    """(contended runs of ``device`` left out, contended runs taken in) of ``frame``'s table."""
    left = table.attrs.get("left_out", {}).get(device, {}).get("contended", 0)
    return int(left), int(table.attrs.get("included_contended", {}).get(device, 0))


def left_out_text(table: pd.DataFrame, device: str) -> str:
    """'19 contended, 2 excluded by hand' of ``device``'s runs not learned from ('' if none)."""
    counts = table.attrs.get("left_out", {}).get(device, {})
    return ", ".join(f"{n} {why}" for why, n in sorted(counts.items()))

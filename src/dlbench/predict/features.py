"""From stored runs to the calculator's table: one row per run, descriptors and step time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

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


def frame(summaries: list[dict[str, Any]]) -> pd.DataFrame:
    """Runs that ended ok with descriptors and a step time, as a table with the features.

    Runs measured on a contended machine are left out: their step times are the contention's,
    not the model's. ``table.attrs["left_out_contended"]`` counts them per device."""
    rows = []
    left_out: dict[str, int] = {}
    for s in summaries:
        d = s.get("descriptors") or {}
        # The median step: robust to a shared machine's hiccups, which belong to no model.
        step = s.get("median_step_time_s") or s.get("mean_step_time_s")
        if s.get("status") != "ok" or not step or not d.get("flops_per_step"):
            continue
        if s.get("quality_verdict") == "contended":
            device = str(d.get("device_name"))
            left_out[device] = left_out.get(device, 0) + 1
            continue
        peak = d.get("device_peak_tflops")
        rows.append(
            {
                "run_id": s.get("run_id"),
                "workload": s.get("workload"),
                "sweep": s.get("sweep"),
                "family": d.get("family"),
                "device": d.get("device_name"),
                "precision": d.get("precision"),
                "flops": float(d["flops_per_step"]),
                "params": float(d.get("params") or 1),
                "layers": float(sum((d.get("layers") or {}).values())),
                "activation_bytes": float(d.get("activation_bytes") or 1),
                "batch_size": float(d.get("batch_size") or 1),
                "input_size": float(d.get("input_size") or 0),
                "depth": float(d.get("depth") or 0),
                "width": float(d.get("width") or 0),
                "peak_tflops": float(peak) if peak else np.nan,
                "bandwidth_gb_s": float(d.get("device_bandwidth_gb_s") or np.nan),
                "step_s": float(step),
                "startup_s": float(s.get("setup_time_s") or np.nan),
            }
        )
    table = pd.DataFrame(rows)
    table.attrs["left_out_contended"] = left_out
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

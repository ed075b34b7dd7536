"""From stored runs to the calculator's table: one row per run, descriptors and step time."""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def frame(summaries: list[StoredRun]) -> pd.DataFrame:
    """Runs that ended ok with descriptors and a step time, as a table with the features.

    Runs measured on a contended machine are left out: their step times are the contention's,
    not the model's. ``table.attrs["left_out_contended"]`` counts them per device."""
    rows = []
    left_out: dict[str, int] = {}
    for s in summaries:
        d = s.descriptors
        # The median step: robust to a shared machine's hiccups, which belong to no model.
        step = s.median_step_time_s or s.mean_step_time_s
        if s.status != "ok" or not step or d is None or not d.flops_per_step or s.excluded:
            continue
        if s.quality_verdict == "contended":
            device = str(d.device_name)
            left_out[device] = left_out.get(device, 0) + 1
            continue
        peak = d.device_peak_tflops
        rows.append(
            {
                "run_id": s.run_id,
                "workload": s.workload,
                "sweep": s.sweep,
                "family": d.family,
                "device": d.device_name,
                "precision": d.precision,
                "flops": float(d.flops_per_step),
                "params": float(d.params or 1),
                "layers": float(sum(d.layers.values())),
                "activation_bytes": float(d.activation_bytes or 1),
                "batch_size": float(d.batch_size or 1),
                "input_size": float(d.input_size or 0),
                "depth": float(d.depth or 0),
                "width": float(d.width or 0),
                "peak_tflops": float(peak) if peak else np.nan,
                "bandwidth_gb_s": float(d.device_bandwidth_gb_s or np.nan),
                "step_s": float(step),
                "startup_s": float(s.setup_time_s or np.nan),
                "config": s.config,  # the resolved run configuration: what to walk
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

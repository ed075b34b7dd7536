"""``dlbench predict``: how long, and what cost, for a model on a device, from stored runs.

The query's descriptors are counted on the real model (built on PyTorch's meta device); the
step time comes from the best of the roofline and boosted models by cross-validation on the
stored runs of that device, with a split-conformal 90% interval from the same held-out errors;
epochs and dataset size multiply exactly (``decompose.plan``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dlbench.config import RunSpec
from dlbench.errors import DlbenchError
from dlbench.predict import decompose
from dlbench.predict.evaluate import evaluate
from dlbench.predict.features import frame
from dlbench.predict.models import BoostedModel, RooflineModel, interval
from dlbench.store import Store
from dlbench.store.summary import run_summary

MIN_RUNS = 6  # stored runs on the device before a prediction is attempted
MIN_RUNS_BOOSTED = 20  # before the trees are tried
COVERAGE = 0.9


@dataclass(frozen=True)
class Answer:
    device: str
    model: str
    cv_mape: float
    runs_used: int
    step_s: tuple[float, float, float]  # prediction, low, high
    plan: tuple[decompose.Plan, decompose.Plan, decompose.Plan]
    descriptors: dict[str, Any]
    nearest: list[dict[str, Any]]


def _query_row(descriptors: dict[str, Any], peak: float | None) -> pd.DataFrame:
    summary = {
        "run_id": "query",
        "status": "ok",
        "mean_step_time_s": 1.0,
        "descriptors": {**descriptors, "device_peak_tflops": peak},
    }
    return frame([summary])


def answer(
    store: Store,
    spec: RunSpec,
    descriptors: dict[str, Any],
    device: str,
    dataset_size: int,
    epochs: int,
    price_per_hour: float | None = None,
) -> Answer:
    runs = frame([run_summary(r) for r in store.list_runs(status="ok")])
    if runs.empty:
        raise DlbenchError(
            "no stored runs with model descriptors to learn from",
            "benchmark some first: dlbench sweep or dlbench run",
        )
    on_device = runs[runs["device"].fillna("").str.contains(device, case=False, regex=False)]
    if len(on_device) < MIN_RUNS:
        known = ", ".join(sorted(runs["device"].dropna().unique()))
        raise DlbenchError(
            f"{len(on_device)} stored runs on a device matching {device!r}; predicting needs "
            f"at least {MIN_RUNS}",
            f"benchmark more models there (a sweep), or pick one of: {known}",
        )
    name = str(on_device["device"].mode().iloc[0])
    same = on_device[on_device["precision"] == spec.precision]
    peak = float(same["peak_tflops"].median()) if len(same) else float("nan")
    query = _query_row(descriptors, None if np.isnan(peak) else peak)
    makers: list[Any] = [RooflineModel]
    if len(on_device) >= MIN_RUNS_BOOSTED:
        makers.append(BoostedModel)
    scored = [(evaluate(make, on_device, "random 5-fold"), make) for make in makers]
    errors, make = min(((e, m) for e, m in scored if e is not None), key=lambda p: p[0].mape)
    model = make().fit(on_device)
    step = float(model.predict(query)[0])
    low, high = interval(np.array([step]), np.array(errors.log_errors), COVERAGE)
    steps = (step, float(low[0]), float(high[0]))
    batch = int(descriptors["batch_size"])
    plans = tuple(
        decompose.plan(
            s, dataset_size, batch, epochs, usd_per_gpu_hour=price_per_hour, gpus=spec.gpus
        )
        for s in steps
    )
    distance = np.abs(on_device["log_flops"] - query["log_flops"].iloc[0]) + np.abs(
        np.log(on_device["batch_size"]) - np.log(batch)
    )
    nearest = on_device.assign(distance=distance).nsmallest(3, "distance")
    return Answer(
        device=name,
        model=errors.model,
        cv_mape=errors.mape,
        runs_used=len(on_device),
        step_s=steps,
        plan=plans,  # type: ignore[arg-type]
        descriptors=descriptors,
        nearest=nearest[["run_id", "family", "batch_size", "flops", "step_s"]].to_dict("records"),
    )

"""The calculator's operator path: a device's operator curves from the store, the stored runs'
operators (walked by the engine, which the CLI hands in as ``OperatorsOf``), and a device
with operator measurements but no whole-model runs predicted from one that has both, by the
ratio of their operator times per class (compute- or memory-bound)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dlbench.predict.fitting import MIN_RUNS, OperatorData
from dlbench.predict.operators import (
    ClassRatios,
    MissingOperators,
    OpUse,
    class_ratios,
    complete,
    fit_curves,
    op_sum,
    ridge,
)
from dlbench.store import operators as stored_ops
from dlbench.store.database import Store

# A stored run's configuration -> the operators of its training step.
OperatorsOf = Callable[[Mapping[str, Any]], tuple[OpUse, ...]]


def measurements(store: Store, device: str) -> pd.DataFrame:
    """The device's usable measurements, each shape with every field of its kind."""
    return completed(stored_ops.usable(stored_ops.table(store, device)))


def completed(table: pd.DataFrame) -> pd.DataFrame:
    """Shapes stored before a field was added (a square kernel's width) take its value."""
    shapes = [complete(k, s) for k, s in zip(table["kind"], table["shape"], strict=True)]
    return table.assign(shape=shapes)


def operator_data(store: Store, device: str) -> OperatorData | None:
    """The device's operator curves; None where it has no usable operator measurements."""
    found = measurements(store, device)
    if found.empty:
        return None
    return OperatorData(fit_curves(found), f"{len(found)}:{int(found['id'].max())}", len(found))


def covered(ops: tuple[OpUse, ...], precision: str, data: OperatorData) -> bool:
    """Every operator kind of ``ops`` was measured (at ``precision``, or fp32)."""
    try:
        op_sum(ops, precision, data.curves)
    except MissingOperators:
        return False
    return True


def with_operators(
    runs: pd.DataFrame, operators_of: OperatorsOf, data: OperatorData
) -> pd.DataFrame:
    """``runs`` with an ``ops`` column; runs whose model cannot be walked (a detection model,
    a model file no longer there) or uses an operator never measured are left out."""
    walked: list[tuple[OpUse, ...] | None] = []
    for config, precision in zip(runs["config"], runs["precision"], strict=True):
        try:
            ops = operators_of(config)
        except Exception:  # noqa: BLE001 - whatever the model does, it cannot be walked
            walked.append(None)
            continue
        walked.append(ops if covered(ops, str(precision), data) else None)
    keep = np.array([w is not None for w in walked], dtype=bool)
    return runs.assign(ops=walked)[keep]


@dataclass(frozen=True)
class OperatorTransfer:
    source: str
    ratios: ClassRatios


def best_source(store: Store, runs: pd.DataFrame, target: str) -> OperatorTransfer | None:
    """The device with whole-model runs sharing the most measured operator shapes with
    ``target`` (which has operator measurements); None where none does."""
    mine = measurements(store, target)
    if mine.empty:
        return None
    peak = _median(mine, "peak_tflops")
    bandwidth = _median(mine, "bandwidth_gb_s")
    counts = runs["device"].value_counts()
    best: OperatorTransfer | None = None
    for source in counts[counts >= MIN_RUNS].index:
        if source == target:
            continue
        ratios = class_ratios(measurements(store, str(source)), mine, ridge(peak, bandwidth))
        if ratios and (
            best is None or sum(ratios.shared.values()) > sum(best.ratios.shared.values())
        ):
            best = OperatorTransfer(str(source), ratios)
    return best


def _median(frame: pd.DataFrame, column: str) -> float | None:
    value = (
        float(frame[column].median())
        if column in frame and frame[column].notna().any()
        else math.nan
    )
    return value if math.isfinite(value) and value > 0 else None


__all__ = ["OperatorTransfer", "OperatorsOf", "best_source", "operator_data", "with_operators"]

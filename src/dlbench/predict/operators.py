"""Step time from operators: each forward operator's forward + backward time, measured on the
device by ``dlbench calibrate --ops``, summed over the model's operators, plus the
optimizer's update, composed into a step by a small fit on whole-model runs.

An operator is one call in the model's forward pass (``OpUse``, ``dlbench.measure.operators``,
with its work counted from the shape): a convolution with its shape, a matrix product, a batch
norm...; the engine walks the real module to find them (``dlbench.engines.pytorch.operators``).

Per operator kind and precision, ``OpCurve`` fits seconds = fixed + FLOPs x a + bytes x b
(non-negative, on relative error: a roofline with a launch cost) and corrects it by the
distance-weighted mean log residual of the nearest measured shapes, so a measured shape is
predicted as measured and a new one as its neighbours' efficiency; never below the device's
roofline (work at its datasheet peak and bandwidth) where those are known.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from sklearn.neighbors import KNeighborsRegressor

from dlbench.measure.operators import (
    COMPUTE_KINDS,
    ELEMENT_BYTES,
    KINDS,
    SHAPES,
    OpUse,
    complete,
    work,
)

NEIGHBOURS = 4


def _log_dims(kind: str, rows: Iterable[Mapping[str, int]]) -> np.ndarray:
    full = [complete(kind, r) for r in rows]
    return np.log1p(np.array([[r[f] for f in SHAPES[kind]] for r in full], dtype=float))


@dataclass
class OpCurve:
    """Seconds of one call of ``kind`` at ``precision`` on one device, from its shape."""

    kind: str
    precision: str
    coefficients: np.ndarray  # fixed seconds, seconds per FLOP, seconds per byte
    floor_flop_s: float | None = None  # 1 / peak FLOP/s; None: peak unknown
    floor_byte_s: float | None = None
    neighbours: Any = None  # KNeighborsRegressor on log shape -> log residual
    scale: np.ndarray = field(default_factory=lambda: np.ones(1))
    measured: int = 0

    @classmethod
    def fit(
        cls,
        kind: str,
        precision: str,
        dims: list[Mapping[str, int]],
        seconds: np.ndarray,
        peak_flops: float | None = None,
        bandwidth_bytes: float | None = None,
    ) -> OpCurve:
        element = ELEMENT_BYTES.get(precision, 4)
        flops, moved = np.array([work(kind, d, element) for d in dims]).T
        x = np.column_stack([np.ones(len(dims)), flops, moved])
        scale = x.max(axis=0)
        scale[scale == 0] = 1.0
        coef, _ = nnls(x / scale / seconds[:, None], np.ones(len(dims)))
        curve = cls(
            kind,
            precision,
            coef / scale,
            1 / peak_flops if peak_flops else None,
            1 / bandwidth_bytes if bandwidth_bytes else None,
            measured=len(dims),
        )
        residual = np.log(seconds / curve._parametric(flops, moved))
        features = _log_dims(kind, dims)
        curve.scale = np.maximum(features.std(axis=0), 1e-9)
        curve.neighbours = KNeighborsRegressor(
            n_neighbors=min(NEIGHBOURS, len(dims)), weights="distance"
        ).fit(features / curve.scale, residual)
        return curve

    def _parametric(self, flops: np.ndarray, moved: np.ndarray) -> np.ndarray:
        x = np.column_stack([np.ones(len(flops)), flops, moved])
        return np.maximum(x @ self.coefficients, 1e-9)

    def seconds(self, dims: list[Mapping[str, int]]) -> np.ndarray:
        element = ELEMENT_BYTES.get(self.precision, 4)
        flops, moved = np.array([work(self.kind, d, element) for d in dims]).T
        predicted = self._parametric(flops, moved)
        if self.neighbours is not None:
            features = _log_dims(self.kind, dims) / self.scale
            predicted = predicted * np.exp(self.neighbours.predict(features))
        floor = np.zeros(len(dims))
        if self.floor_flop_s:
            floor = np.maximum(floor, flops * self.floor_flop_s)
        if self.floor_byte_s:
            floor = np.maximum(floor, moved * self.floor_byte_s)
        return np.maximum(predicted, floor)


def fit_curves(measurements: pd.DataFrame) -> dict[tuple[str, str], OpCurve]:
    """One curve per (kind, precision) measured; ``measurements`` has columns kind, precision,
    shape (dict), train_s and, optionally, peak_tflops and bandwidth_gb_s."""
    curves = {}
    for (kind, precision), part in measurements.groupby(["kind", "precision"]):
        peak = _first(part, "peak_tflops")
        bandwidth = _first(part, "bandwidth_gb_s")
        curves[(str(kind), str(precision))] = OpCurve.fit(
            str(kind),
            str(precision),
            list(part["shape"]),
            part["train_s"].to_numpy(dtype=float),
            peak * 1e12 if peak else None,
            bandwidth * 1e9 if bandwidth else None,
        )
    return curves


def _first(part: pd.DataFrame, column: str) -> float | None:
    if column not in part:
        return None
    values = part[column].dropna()
    return float(values.iloc[0]) if len(values) and values.iloc[0] else None


class MissingOperators(ValueError):
    """The model uses an operator kind the device's calibration never measured."""


def op_sum(
    uses: Iterable[OpUse], precision: str, curves: Mapping[tuple[str, str], Any]
) -> tuple[float, int, dict[str, float]]:
    """Seconds of every operator's forward + backward in one step, the number of operator
    calls, and seconds per kind."""
    by_kind: dict[str, list[OpUse]] = {}
    for use in uses:
        by_kind.setdefault(use.kind, []).append(use)
    per_kind: dict[str, float] = {}
    calls = 0
    for kind, group in by_kind.items():
        curve = curves.get((kind, precision)) or curves.get((kind, "fp32"))
        if curve is None:
            raise MissingOperators(f"no {kind} measurements at {precision}")
        counts = np.array([u.count for u in group], dtype=float)
        per_kind[kind] = float(counts @ curve.seconds([u.dims for u in group]))
        calls += int(counts.sum())
    return sum(per_kind.values()), calls, per_kind


@dataclass(frozen=True)
class Composition:
    """step = scale x operators' seconds + per_call x operator calls + fixed: how the
    measured operators add up to a whole step on this device (framework dispatch between
    them, the loss, the input copy)."""

    scale: float
    per_call_s: float
    fixed_s: float

    def step(self, operators_s: np.ndarray, calls: np.ndarray) -> np.ndarray:
        return self.scale * operators_s + self.per_call_s * calls + self.fixed_s


def fit_composition(operators_s: np.ndarray, calls: np.ndarray, step_s: np.ndarray) -> Composition:
    """Non-negative least squares on relative error over whole-model runs."""
    x = np.column_stack([operators_s, calls, np.ones(len(step_s))])
    scale = np.maximum(x.max(axis=0), 1e-12)
    coef, _ = nnls(x / scale / step_s[:, None], np.ones(len(step_s)))
    coef = coef / scale
    return Composition(float(coef[0]), float(coef[1]), float(coef[2]))


@dataclass
class OperatorModel:
    """A step-time model (``models.StepModel``) over a runs table with an ``ops`` column (the
    model's ``OpUse`` tuple per run): operator curves fitted on the device's operator
    measurements, composed by a fit on the training runs."""

    curves: Mapping[tuple[str, str], Any]  # OpCurve, or ScaledCurve on another device
    name: str = "operators"
    composition: Composition = Composition(1.0, 0.0, 0.0)

    def _sums(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        sums = [
            op_sum(ops, p, self.curves)
            for ops, p in zip(table["ops"], table["precision"], strict=True)
        ]
        return np.array([s[0] for s in sums]), np.array([s[1] for s in sums], dtype=float)

    def fit(self, table: pd.DataFrame) -> OperatorModel:
        operators, calls = self._sums(table)
        self.composition = fit_composition(operators, calls, table["step_s"].to_numpy(float))
        return self

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        operators, calls = self._sums(table)
        return np.maximum(self.composition.step(operators, calls), 1e-9)

    def breakdown(self, ops: tuple[OpUse, ...], precision: str) -> dict[str, float]:
        """Predicted seconds per operator kind in one step (before composition)."""
        return op_sum(ops, precision, self.curves)[2]


def _shape_key(kind: str, precision: str, dims: Mapping[str, int]) -> str:
    return f"{kind}|{precision}|" + ",".join(f"{k}={dims[k]}" for k in sorted(dims))


def ridge(peak_tflops: float | None, bandwidth_gb_s: float | None) -> float | None:
    """FLOPs per byte where the device turns from memory- to compute-bound (None: unknown)."""
    if not peak_tflops or not bandwidth_gb_s:
        return None
    return peak_tflops * 1e12 / (bandwidth_gb_s * 1e9)


def bound(kind: str, dims: Mapping[str, int], precision: str, ridge_point: float | None) -> str:
    """ "compute" or "memory": the operator's arithmetic intensity against the device's ridge
    point; by kind where the device's datasheet figures are unknown."""
    if ridge_point is None:
        return "compute" if kind in COMPUTE_KINDS else "memory"
    flops, moved = work(kind, dims, ELEMENT_BYTES.get(precision, 4))
    return "compute" if flops / moved >= ridge_point else "memory"


@dataclass(frozen=True)
class ClassRatios:
    """Seconds on the target device / seconds on the source, per operator class, from the
    operator shapes both devices measured (geometric means)."""

    ratios: dict[str, float]  # "compute" / "memory" -> ratio
    shared: dict[str, int]  # shapes behind each ratio
    spread: float  # the largest |log ratio - log class ratio|: how well one ratio fits
    target_ridge: float | None

    def ratio(self, kind: str, dims: Mapping[str, int], precision: str) -> float:
        found = bound(kind, dims, precision, self.target_ridge)
        return self.ratios.get(found) or next(iter(self.ratios.values()))


def class_ratios(
    source: pd.DataFrame, target: pd.DataFrame, target_ridge: float | None
) -> ClassRatios | None:
    """The per-class ratios of ``target``'s operator times to ``source``'s (frames with kind,
    precision, shape, train_s); None when the devices share no measured shape."""

    def keyed(frame: pd.DataFrame) -> pd.Series:
        keys = [
            _shape_key(k, p, s)
            for k, p, s in zip(frame["kind"], frame["precision"], frame["shape"], strict=True)
        ]
        return (
            pd.Series(frame["train_s"].to_numpy(dtype=float), index=keys).groupby(level=0).median()
        )

    shared = pd.concat([keyed(source), keyed(target)], axis=1, join="inner", keys=["a", "b"])
    if shared.empty:
        return None
    rows = (
        target.assign(
            _key=[
                _shape_key(k, p, s)
                for k, p, s in zip(
                    target["kind"], target["precision"], target["shape"], strict=True
                )
            ]
        )
        .drop_duplicates("_key")
        .set_index("_key")
    )
    classes = [
        bound(rows.at[k, "kind"], rows.at[k, "shape"], rows.at[k, "precision"], target_ridge)
        for k in shared.index
    ]
    logs = np.log(shared["b"] / shared["a"]).to_numpy()
    ratios, counts, spread = {}, {}, 0.0
    for name in ("compute", "memory"):
        mine = logs[np.array(classes) == name]
        if mine.size:
            ratios[name] = float(np.exp(mine.mean()))
            counts[name] = int(mine.size)
            spread = max(spread, float(np.abs(mine - mine.mean()).max()))
    return ClassRatios(ratios, counts, spread, target_ridge)


@dataclass(frozen=True)
class ScaledCurve:
    """A source device's curve times the class ratio: a target device's operator times."""

    curve: OpCurve
    ratios: ClassRatios

    def seconds(self, dims: list[Mapping[str, int]]) -> np.ndarray:
        scale = [self.ratios.ratio(self.curve.kind, d, self.curve.precision) for d in dims]
        return self.curve.seconds(dims) * np.array(scale)


def scaled(
    curves: Mapping[tuple[str, str], OpCurve], ratios: ClassRatios
) -> dict[tuple[str, str], Any]:
    return {key: ScaledCurve(curve, ratios) for key, curve in curves.items()}


__all__ = [
    "KINDS", "SHAPES", "ClassRatios", "OpCurve", "OpUse", "OperatorModel", "class_ratios",
    "fit_curves", "scaled", "work",
]  # fmt: skip

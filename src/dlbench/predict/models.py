"""Three ways to predict a step's time, compared by cross-validation (``evaluate.py``):

(a) ``RooflineModel``: step = overhead + per-layer cost x layers + FLOPs / (peak x efficiency)
    + cost per activation byte, fitted per family and precision (non-negative least squares
    on relative error), globally where a group has too few runs;
(b) ``BoostedModel``: gradient-boosted trees on log(step / roofline step), so the trees learn
    only what the roofline misses;
(c) ``ForestBaseline``: the original calculator's approach, a random forest per family on the
    raw descriptors, predicting the step time itself.

Each predicts seconds; ``interval`` gives a split-conformal band from held-out log errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor

from dlbench.predict.features import FEATURES

MIN_GROUP = 8  # runs a family/precision group needs for its own roofline fit
ROBUST_PASSES = 3
HUBER_K = 2.0


class StepModel(Protocol):
    name: str

    def fit(self, table: pd.DataFrame) -> StepModel: ...

    def predict(self, table: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True)
class Roofline:
    """step = overhead + per_layer x layers + FLOPs / (peak x efficiency) + per_byte x bytes
    + per_param x params: fixed cost, per-operation dispatch cost, compute, activation memory
    traffic, and the weights' traffic (gradients and the optimiser's update touch every
    parameter once a step, whatever the batch)."""

    overhead_s: float
    per_layer_s: float
    efficiency: float | None  # share of peak FLOP/s reached (None: compute term vanished)
    per_gb_s: float  # seconds per GB of forward activations
    per_mparam_s: float = 0.0  # seconds per million parameters

    def terms(self) -> np.ndarray:
        compute = 1 / self.efficiency if self.efficiency else 0.0
        return np.array(
            [self.overhead_s, self.per_layer_s, compute, self.per_gb_s, self.per_mparam_s]
        )


def _design(table: pd.DataFrame) -> np.ndarray:
    return np.column_stack(
        [
            np.ones(len(table)),
            table["layers"].to_numpy(dtype=float),
            _work(table),
            table["activation_bytes"].to_numpy(dtype=float) / 1e9,
            table["params"].to_numpy(dtype=float) / 1e6,
        ]
    )


def _fit(table: pd.DataFrame) -> Roofline:
    """Non-negative least squares on relative error (rows divided by the step time), so that
    a fast model's error weighs as much as a slow one's and no term goes negative."""
    x, y = _design(table), table["step_s"].to_numpy(dtype=float)
    scale = x.max(axis=0)
    scale[scale == 0] = 1.0
    weights = np.ones_like(y)
    for _ in range(ROBUST_PASSES):
        rows = weights[:, None] / y[:, None]
        coef, _ = nnls(x / scale * rows, weights)
        # Huber weights on the relative residuals: a run slowed by a busy machine pulls the
        # line less than the runs that agree.
        relative = np.abs(x / scale @ coef / y - 1)
        spread = max(1.4826 * float(np.median(relative)), 1e-6)
        weights = np.minimum(1.0, HUBER_K * spread / np.maximum(relative, 1e-12))
    coef = coef / scale
    return Roofline(
        float(coef[0]),
        float(coef[1]),
        1 / coef[2] if coef[2] > 0 else None,
        float(coef[3]),
        float(coef[4]),
    )


@dataclass
class RooflineModel:
    name: str = "roofline"
    groups: dict[tuple[str, str], Roofline] = field(default_factory=dict)
    overall: Roofline = Roofline(0.0, 0.0, 1.0, 0.0, 0.0)

    def fit(self, table: pd.DataFrame) -> RooflineModel:
        self.overall = _fit(table)
        for key, part in table.groupby(["family", "precision"]):
            if len(part) >= MIN_GROUP:
                self.groups[(str(key[0]), str(key[1]))] = _fit(part)
        return self

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        x = _design(table)
        out = np.empty(len(table))
        for i, (family, precision) in enumerate(
            zip(table["family"], table["precision"], strict=True)
        ):
            out[i] = x[i] @ self.groups.get((str(family), str(precision)), self.overall).terms()
        return np.maximum(out, 1e-9)

    def efficiency(self, family: str, precision: str) -> float | None:
        """The fitted share of peak FLOP/s the family reaches."""
        line = self.groups.get((family, precision))
        return line.efficiency if line else None


def _work(table: pd.DataFrame) -> np.ndarray:
    """Seconds at the device's peak; FLOPs / 1e12 where no peak is known (the efficiency then
    absorbs the device's speed)."""
    roof = table["roofline_s"].to_numpy(dtype=float)
    fallback = table["flops"].to_numpy(dtype=float) / 1e12
    return np.where(np.isfinite(roof), roof, fallback)


@dataclass
class BoostedModel:
    name: str = "roofline + boosted trees"
    seed: int = 0
    roofline: RooflineModel = field(default_factory=RooflineModel)
    trees: Any = None

    def fit(self, table: pd.DataFrame) -> BoostedModel:
        self.roofline = RooflineModel().fit(table)
        residual = np.log(table["step_s"].to_numpy() / self.roofline.predict(table))
        self.trees = GradientBoostingRegressor(
            n_estimators=300,
            max_depth=3,
            learning_rate=0.05,
            subsample=0.8,
            loss="huber",  # repeats a busy machine slowed must not steer the trees
            random_state=self.seed,
        ).fit(table[list(FEATURES)].to_numpy(), residual)
        return self

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        correction = self.trees.predict(table[list(FEATURES)].to_numpy())
        return self.roofline.predict(table) * np.exp(correction)


RAW = ("params", "batch_size", "input_size", "depth", "width")  # what the original knew


@dataclass
class ForestBaseline:
    """The original calculator: one random forest per family on raw descriptors."""

    name: str = "random forest per family (original)"
    seed: int = 0
    forests: dict[str, Any] = field(default_factory=dict)
    overall: Any = None

    def fit(self, table: pd.DataFrame) -> ForestBaseline:
        self.overall = self._forest().fit(table[list(RAW)].to_numpy(), table["step_s"])
        for family, part in table.groupby("family"):
            if len(part) >= MIN_GROUP:
                self.forests[str(family)] = self._forest().fit(
                    part[list(RAW)].to_numpy(), part["step_s"]
                )
        return self

    def _forest(self) -> RandomForestRegressor:
        return RandomForestRegressor(n_estimators=200, random_state=self.seed)

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        out = np.empty(len(table))
        for i, (family, row) in enumerate(
            zip(table["family"], table[list(RAW)].to_numpy(), strict=True)
        ):
            forest = self.forests.get(str(family), self.overall)
            out[i] = forest.predict(row.reshape(1, -1))[0]
        return out


def interval(
    prediction: np.ndarray, log_errors: np.ndarray, coverage: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """Split-conformal band: the ``coverage`` quantile of held-out |log(actual / predicted)|
    around each prediction (multiplicative, as step times are)."""
    n = log_errors.size
    level = min(1.0, np.ceil((n + 1) * coverage) / n) if n else 1.0
    q = float(np.quantile(np.abs(log_errors), level)) if n else np.inf
    return prediction * np.exp(-q), prediction * np.exp(q)

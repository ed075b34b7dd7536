"""Three ways to predict a step's time, compared by cross-validation (``evaluate.py``):

(a) ``RooflineModel``: step = overhead + FLOPs / (peak x efficiency), overhead and efficiency
    fitted per family and precision (least squares, efficiency kept positive), globally where
    a group has too few runs;
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
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor

from dlbench.predict.features import FEATURES

MIN_GROUP = 3  # runs a family/precision group needs for its own roofline fit


class StepModel(Protocol):
    name: str

    def fit(self, table: pd.DataFrame) -> StepModel: ...

    def predict(self, table: pd.DataFrame) -> np.ndarray: ...


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(intercept >= 0, slope > 0) of y = a + b x by least squares."""
    if x.size >= 2 and np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
    else:
        slope, intercept = float(np.mean(y / np.maximum(x, 1e-30))), 0.0
    if slope <= 0:
        slope, intercept = float(np.mean(y) / max(np.mean(x), 1e-30)), 0.0
    if intercept < 0:
        slope, intercept = float(np.sum(x * y) / max(np.sum(x * x), 1e-30)), 0.0
    return float(intercept), float(slope)


@dataclass
class RooflineModel:
    name: str = "roofline"
    groups: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    overall: tuple[float, float] = (0.0, 1.0)

    def fit(self, table: pd.DataFrame) -> RooflineModel:
        x = _work(table)
        self.overall = _line(x, table["step_s"].to_numpy())
        for key, part in table.groupby(["family", "precision"]):
            if len(part) >= MIN_GROUP:
                self.groups[(str(key[0]), str(key[1]))] = _line(
                    _work(part), part["step_s"].to_numpy()
                )
        return self

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        x = _work(table)
        out = np.empty(len(table))
        for i, (family, precision) in enumerate(
            zip(table["family"], table["precision"], strict=True)
        ):
            a, b = self.groups.get((str(family), str(precision)), self.overall)
            out[i] = a + b * x[i]
        return np.maximum(out, 1e-9)

    def efficiency(self, family: str, precision: str) -> float | None:
        """The fitted share of peak FLOP/s the family reaches (1 / slope)."""
        line = self.groups.get((family, precision))
        return 1 / line[1] if line and line[1] > 0 else None


def _work(table: pd.DataFrame) -> np.ndarray:
    """Seconds at the device's peak; FLOPs / 1e12 where no peak is known (the slope then
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
            random_state=self.seed,
        ).fit(table[list(FEATURES)].to_numpy(), residual)
        return self

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        correction = self.trees.predict(table[list(FEATURES)].to_numpy())
        return self.roofline.predict(table) * np.exp(correction)


RAW = ("params", "batch_size", "input_size", "depth", "width")


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

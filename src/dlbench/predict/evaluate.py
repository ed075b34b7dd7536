"""Honest accuracy of a step-time model: cross-validated MAPE, median and P90 absolute
percentage error under random K-fold, leave-one-family-out, and extrapolation (train on
batch <= 128 or on the shallower half, test beyond)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_percentage_error
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

from dlbench.predict.models import StepModel

Split = tuple[np.ndarray, np.ndarray]  # train indices, test indices
EXTRAPOLATION_BATCH = 128


@dataclass(frozen=True)
class Errors:
    split: str
    model: str
    mape: float
    median_ape: float
    p90_ape: float
    tested: int
    log_errors: tuple[float, ...]  # log(actual / predicted) of every held-out run


CONFIGURATION = ("family", "flops", "params", "batch_size", "input_size", "precision", "device")


def random_folds(table: pd.DataFrame, k: int = 5, seed: int = 0) -> Iterator[Split]:
    """K folds of whole configurations: the repeats of one configuration are tested together,
    never one of them trained on while another is tested (that would flatter the model by
    letting it remember the answer)."""
    key = table[list(CONFIGURATION)].astype(str).agg("|".join, axis=1).to_numpy()
    folds = min(k, np.unique(key).size)
    if folds < 2:
        return
    yield from GroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(table, groups=key)


def family_folds(table: pd.DataFrame) -> Iterator[Split]:
    """Each family held out in turn: its runs are never in its own training fold."""
    families = table["family"].to_numpy()
    if np.unique(families).size < 2:
        return
    yield from LeaveOneGroupOut().split(table, groups=families)


def threshold_folds(table: pd.DataFrame, column: str, limit: float) -> Iterator[Split]:
    values = table[column].to_numpy()
    train, test = np.flatnonzero(values <= limit), np.flatnonzero(values > limit)
    if train.size and test.size:
        yield train, test


SPLITS: dict[str, Callable[[pd.DataFrame], Iterator[Split]]] = {
    "random 5-fold": random_folds,
    "leave one family out": family_folds,
    f"batch <= {EXTRAPOLATION_BATCH} -> larger": lambda t: threshold_folds(
        t, "batch_size", EXTRAPOLATION_BATCH
    ),
    "shallower half -> deeper": lambda t: threshold_folds(t, "depth", float(t["depth"].median())),
}


def evaluate(make: Callable[[], StepModel], table: pd.DataFrame, split: str) -> Errors | None:
    actual, predicted = [], []
    for train, test in SPLITS[split](table):
        model = make().fit(table.iloc[train])
        predicted.append(model.predict(table.iloc[test]))
        actual.append(table["step_s"].to_numpy()[test])
    if not actual:
        return None
    a, p = np.concatenate(actual), np.concatenate(predicted)
    ape = np.abs(p - a) / a * 100
    return Errors(
        split,
        make().name,
        float(mean_absolute_percentage_error(a, p) * 100),
        float(np.median(ape)),
        float(np.percentile(ape, 90)),
        int(a.size),
        tuple(np.log(a / p)),
    )


def repeat_noise(
    table: pd.DataFrame,
    key: tuple[str, ...] = CONFIGURATION,
) -> float:
    """Mean absolute percentage deviation of repeats from their group's mean: the floor no
    predictor can beat (NaN without repeats)."""
    deviations = []
    for _, group in table.groupby(list(key)):
        if len(group) >= 2:
            values = group["step_s"].to_numpy()
            deviations.extend(np.abs(values - values.mean()) / values.mean() * 100)
    return float(np.mean(deviations)) if deviations else float("nan")

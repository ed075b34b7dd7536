"""A device's step-time predictor: chosen by cross-validation and kept in the store.

The candidates (``models.py``) are scored by random 5-fold cross-validation on the device's
runs; the best is described (its training data, its errors under every split that applies,
its roofline coefficients) in a note in the store, under the device's name. The next
question about the same runs reuses the choice and its held-out errors instead of
cross-validating again; new runs (a different fingerprint) make a fresh choice. Refitting the
chosen model is deterministic (fixed seeds), so the same runs give the same predictor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dlbench.errors import StoreError
from dlbench.predict.evaluate import SPLITS, Errors, evaluate
from dlbench.predict.models import BoostedModel, RooflineModel, StepModel
from dlbench.predict.operators import OperatorModel
from dlbench.store.database import Store, utc_now

MIN_RUNS = 6  # stored runs on the device before it gets a predictor of its own
MIN_RUNS_BOOSTED = 20  # before the trees are tried
CHOOSING_SPLIT = "random 5-fold"
CANDIDATES: dict[str, Callable[[], StepModel]] = {
    RooflineModel.name: RooflineModel,
    BoostedModel.name: BoostedModel,
}


@dataclass(frozen=True)
class Predictor:
    device: str
    name: str
    model: StepModel
    errors: dict[str, dict[str, float]]  # split -> mape, median_ape, p90_ape, tested
    log_errors: tuple[float, ...]  # held-out log(actual / predicted) under the chosen split
    training: dict[str, Any]  # what it learned from
    reused: bool  # the choice came from the store's note
    # With operator data: the whole-model predictors' random-fold MAPE, for comparison.
    alternatives: dict[str, float] = field(default_factory=dict)

    @property
    def mape(self) -> float:
        return float(self.errors[CHOOSING_SPLIT]["mape"])


def note_key(device: str) -> str:
    return "predictor:" + hashlib.sha256(device.encode()).hexdigest()[:40]


def fingerprint(table: pd.DataFrame) -> str:
    return hashlib.sha256(",".join(sorted(table["run_id"].astype(str))).encode()).hexdigest()


def describe_training(table: pd.DataFrame) -> dict[str, Any]:
    def span(column: str, scale: float = 1.0) -> list[float]:
        return [float(table[column].min()) / scale, float(table[column].max()) / scale]

    return {
        "runs": len(table),
        "families": {str(k): int(v) for k, v in table["family"].value_counts().items()},
        "precisions": sorted(str(p) for p in table["precision"].dropna().unique()),
        "batch_size": span("batch_size"),
        "input_size": span("input_size"),
        "gflop_per_step": span("flops", 1e9),
        "step_s": span("step_s"),
        "fingerprint": fingerprint(table),
    }


def _summary(errors: Errors) -> dict[str, float]:
    return {
        "mape": errors.mape,
        "median_ape": errors.median_ape,
        "p90_ape": errors.p90_ape,
        "tested": errors.tested,
    }


def whole_model_candidates(table: pd.DataFrame) -> dict[str, Callable[[], StepModel]]:
    names = [RooflineModel.name] + ([BoostedModel.name] if len(table) >= MIN_RUNS_BOOSTED else [])
    return {n: CANDIDATES[n] for n in names}


def choose(
    table: pd.DataFrame, candidates: dict[str, Callable[[], StepModel]]
) -> tuple[str, dict[str, dict[str, float]], tuple[float, ...]]:
    """The candidate with the lowest cross-validated MAPE; its errors under every split."""
    scored = [(evaluate(make, table, CHOOSING_SPLIT), n) for n, make in candidates.items()]
    best, name = min(((e, n) for e, n in scored if e is not None), key=lambda p: p[0].mape)
    errors = {CHOOSING_SPLIT: _summary(best)}
    for split in SPLITS:
        if split != CHOOSING_SPLIT:
            other = evaluate(candidates[name], table, split)
            if other is not None:
                errors[split] = _summary(other)
    return name, errors, best.log_errors


@dataclass(frozen=True)
class OperatorData:
    """A device's operator curves (``calibrate --ops``) and what identifies them."""

    curves: dict[tuple[str, str], Any]
    fingerprint: str
    measurements: int


def _coefficients(model: StepModel) -> dict[str, Any]:
    if isinstance(model, OperatorModel):
        c = model.composition
        return {"scale": c.scale, "per_call_us": c.per_call_s * 1e6, "fixed_ms": c.fixed_s * 1e3}
    roofline = getattr(model, "roofline", model)
    if not isinstance(roofline, RooflineModel):
        return {}
    return {
        f"{family} {precision}": {
            "overhead_ms": line.overhead_s * 1e3,
            "per_layer_us": line.per_layer_s * 1e6,
            "efficiency": line.efficiency,
            "s_per_activation_gb": line.per_gb_s,
            "s_per_million_params": line.per_mparam_s,
        }
        for (family, precision), line in sorted(roofline.groups.items())
    }


def fit_predictor(
    store: Store,
    table: pd.DataFrame,
    device: str,
    left_out_contended: int = 0,
    operators: OperatorData | None = None,
    included_contended: int = 0,
) -> Predictor:
    """The device's predictor on ``table`` (its runs): the kept choice when the runs are the
    same, else a fresh cross-validated choice, kept for next time where the store is
    writable. ``left_out_contended`` counts the device's contended runs not learned from,
    ``included_contended`` those learned from all the same (``--include-contended``).

    With ``operators`` (and an ``ops`` column in ``table``) the predictor adds each model up
    from its operators; the whole-model predictors' errors are kept beside it."""
    training = {
        **describe_training(table),
        "left_out_contended": left_out_contended,
        "included_contended": included_contended,
    }
    candidates = whole_model_candidates(table)
    if operators is not None:
        candidates = {OperatorModel.name: lambda: OperatorModel(operators.curves)}
        training["operator_measurements"] = operators.measurements
        training["fingerprint"] = hashlib.sha256(
            (training["fingerprint"] + operators.fingerprint).encode()
        ).hexdigest()
    note = store.get_note(note_key(device))
    if (
        note
        and note.get("training", {}).get("fingerprint") == training["fingerprint"]
        and note.get("model") in candidates
    ):
        name = str(note["model"])
        model = candidates[name]().fit(table)
        return Predictor(
            device,
            name,
            model,
            note["errors"],
            tuple(note["log_errors"]),
            training,
            reused=True,
            alternatives=note.get("alternatives") or {},
        )
    name, errors, log_errors = choose(table, candidates)
    alternatives: dict[str, float] = {}
    if operators is not None:
        for other, make in whole_model_candidates(table).items():
            found = evaluate(make, table, CHOOSING_SPLIT)
            if found is not None:
                alternatives[other] = found.mape
    model = candidates[name]().fit(table)
    record = {
        "device": device,
        "model": name,
        "fitted_at": utc_now(),
        "training": training,
        "errors": errors,
        "log_errors": list(log_errors),
        "coefficients": _coefficients(model),
        "alternatives": alternatives,
    }
    try:
        store.put_note(note_key(device), record)
    except StoreError:
        pass  # a read-only store (the dashboard): the choice is made again next time
    return Predictor(device, name, model, errors, tuple(log_errors), training, False, alternatives)


def kept_predictors(store: Store, devices: list[str]) -> dict[str, dict[str, Any]]:
    """The notes kept for ``devices`` (those that have one)."""
    notes = {d: store.get_note(note_key(d)) for d in devices}
    return {d: n for d, n in notes.items() if n}


__all__ = ["MIN_RUNS", "OperatorData", "Predictor", "fit_predictor", "kept_predictors"]

"""``dlbench predict``: how long, and what cost, for a model on a device, from stored runs.

The query's descriptors are counted on the real model (built on PyTorch's meta device); the
step time comes from the device's predictor (``fitting.py``: the best of the roofline and
boosted models by cross-validation, kept in the store), with a split-conformal 90% interval
from its held-out errors; epochs and dataset size multiply exactly (``decompose.plan``).

A device with too few runs of its own borrows a calibrated device's predictor, scaled by the
measured ratio of step times on a reference workload both devices ran (``transfer``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dlbench.errors import DlbenchError
from dlbench.measure import training_plan as decompose
from dlbench.predict.by_operators import (
    OperatorsOf,
    OperatorTransfer,
    best_source,
    covered,
    operator_data,
    with_operators,
)
from dlbench.predict.features import contention, frame, left_out_text
from dlbench.predict.fitting import MIN_RUNS, Predictor, fit_predictor
from dlbench.predict.models import interval
from dlbench.predict.operators import OperatorModel, OpUse, scaled
from dlbench.store import operators as stored_ops
from dlbench.store.database import Store
from dlbench.store.stored import StoredRun

COVERAGE = 0.9
FORWARD_SHARE = 1 / 3  # a validation (forward-only) step's share of a training step's time
REFERENCE_KEY = ("workload", "batch_size", "input_size", "precision", "depth", "width")


@dataclass(frozen=True)
class Transfer:
    """Step times on ``target`` = predictions for ``source`` x ``ratio``, the geometric mean
    of the two devices' measured step-time ratios on the workloads both ran."""

    source: str
    target: str
    ratio: float
    references: tuple[str, ...]  # the shared workloads, as "workload batch B"
    spread: float  # largest |log ratio - log mean ratio| over the references
    peak_ratio: float | None  # source peak TFLOP/s / target's: the datasheet's speed-up
    bandwidth_ratio: float | None
    method: str = "reference workloads"  # or "operator classes" (by_operators.py)


@dataclass(frozen=True)
class Answer:
    device: str
    predictor: Predictor
    step_s: tuple[float, float, float]  # prediction, low, high
    plan: tuple[decompose.Plan, decompose.Plan, decompose.Plan]
    descriptors: dict[str, Any]
    nearest: list[dict[str, Any]]
    startup_s: float | None  # None: the nearest runs did not measure it (older dlbench)
    price_source: str | None
    transfer: Transfer | None = None
    extrapolation: tuple[str, ...] = ()  # where the question lies outside what was learned

    @property
    def model(self) -> str:
        return self.predictor.name

    @property
    def cv_mape(self) -> float:
        return self.predictor.mape

    @property
    def runs_used(self) -> int:
        return int(self.predictor.training["runs"])


def stored_table(store: Store, include_contended: bool = False) -> pd.DataFrame:
    """The calculator's table of every stored ok run (``features.frame``)."""
    runs = frame(store.runs(status="ok"), include_contended)
    if runs.empty:
        raise DlbenchError(
            "no stored runs with model descriptors to learn from",
            "benchmark some first: dlbench calibrate, dlbench sweep or dlbench run",
        )
    return runs


def match_device(runs: pd.DataFrame, device: str, also: tuple[str, ...] = ()) -> str:
    """The stored device name ``device`` names (a case-insensitive part of it); ``also``:
    devices known otherwise (operator measurements)."""
    names = sorted({*runs["device"].dropna().unique(), *also})
    exact = [n for n in names if n.lower() == device.lower()]
    found = exact or [n for n in names if device.lower() in n.lower()]
    if len(found) != 1:
        what = "no stored device" if not found else f"{len(found)} stored devices"
        raise DlbenchError(
            f"{what} matching {device!r}", f"name one of: {', '.join(names) or 'none stored'}"
        )
    return str(found[0])


def _query_row(descriptors: dict[str, Any], peak: float | None) -> pd.DataFrame:
    query = StoredRun.from_summary(
        {
            "run_id": "query",
            "kind": "query",
            "status": "ok",
            "mean_step_time_s": 1.0,
            "descriptors": {**descriptors, "device_peak_tflops": peak},
        }
    )
    return frame([query])


def _medians(runs: pd.DataFrame) -> pd.Series:
    keyed = runs.assign(**{k: runs[k].fillna(0) for k in REFERENCE_KEY if k != "workload"})
    return keyed.groupby(list(REFERENCE_KEY))["step_s"].median()


def transfer(runs: pd.DataFrame, target: str) -> Transfer:
    """The calibrated device sharing the most reference workloads with ``target``."""
    on_target = _medians(runs[runs["device"] == target])
    counts = runs["device"].value_counts()
    best: tuple[int, str, pd.Series] | None = None
    for source in counts[counts >= MIN_RUNS].index:
        if source == target:
            continue
        ratios = (on_target / _medians(runs[runs["device"] == source])).dropna()
        if len(ratios) and (best is None or len(ratios) > best[0]):
            best = (len(ratios), str(source), ratios)
    if best is None:
        calibrated = ", ".join(counts[counts >= MIN_RUNS].index) or "none"
        left = left_out_text(runs, target)
        raise DlbenchError(
            f"{int(counts.get(target, 0))} stored runs on {target} to learn from"
            + (f" (left out: {left})" if left else "")
            + f"; predicting needs at least {MIN_RUNS}, or a run of a workload also run on a "
            f"calibrated device ({calibrated})",
            f"run dlbench calibrate on {target}, or one workload there that a calibrated "
            "device ran (same batch, size and precision)"
            + (
                "; on a machine that is never quiet, --cpus auto measures on its idle CPUs, "
                "and --include-contended learns from contended runs, said beside the answer"
                if "contended" in left
                else ""
            ),
        )
    _, source, ratios = best
    logs = np.log(ratios.to_numpy(dtype=float))
    ratio = float(np.exp(logs.mean()))

    def device_median(column: str, device: str) -> float:
        return float(runs.loc[runs["device"] == device, column].median())

    def datasheet(column: str) -> float | None:
        value = device_median(column, source) / device_median(column, target)
        return value if math.isfinite(value) else None

    return Transfer(
        source=source,
        target=target,
        ratio=ratio,
        references=tuple(f"{key[0]} batch {int(key[1])}" for key in ratios.index),
        spread=float(np.abs(logs - logs.mean()).max()),
        peak_ratio=datasheet("peak_tflops"),
        bandwidth_ratio=datasheet("bandwidth_gb_s"),
    )


def answer(
    store: Store,
    descriptors: dict[str, Any],
    device: str,
    dataset_size: int,
    epochs: int,
    price_per_hour: float | None = None,
    gpus: int = 1,
    val_size: int = 0,
    prices: list[dict[str, Any]] | None = None,
    runs: pd.DataFrame | None = None,
    operators_of: OperatorsOf | None = None,
) -> Answer:
    """Step, epoch and total time (and cost) of training the described model on ``device``.

    ``price_per_hour`` wins; else the price table's entry for the device, if any. With
    ``operators_of`` (the engine's walk of a stored run's model) and the device's operator
    measurements, the step is added up from the model's operators."""
    runs = stored_table(store) if runs is None else runs
    op_devices = tuple(stored_ops.devices(store)) if operators_of else ()
    name = match_device(runs, device, op_devices)
    on_device = runs[runs["device"] == name]
    source, predictor, query, by_classes = _learner(
        store, runs, name, len(on_device) >= MIN_RUNS, descriptors, operators_of
    )
    training = runs[runs["device"] == source]
    step = float(predictor.model.predict(query)[0])
    log_errors = np.asarray(predictor.log_errors)
    moved: Transfer | None = None
    if len(on_device) < MIN_RUNS:
        moved = _by_classes(by_classes, predictor, query, name) if by_classes else None
        moved = moved or transfer(runs, name)
        step *= moved.ratio
        log_errors = np.abs(log_errors) + moved.spread  # the transfer's own uncertainty
    low, high = interval(np.array([step]), log_errors, COVERAGE)
    steps = (step, float(low[0]), float(high[0]))
    batch = int(descriptors["batch_size"])
    nearest = _nearest(on_device if len(on_device) else training, query, batch)
    measured = [float(r["startup_s"]) for r in nearest if math.isfinite(r["startup_s"])]
    startup = float(np.median(measured)) if measured else None
    price_per_hour, price_source = _price(name, price_per_hour, prices)
    plans = tuple(
        decompose.plan(
            s,
            dataset_size,
            batch,
            epochs,
            validation_s_per_epoch=math.ceil(val_size / (batch * gpus)) * s * FORWARD_SHARE,
            startup_s=startup or 0.0,
            usd_per_gpu_hour=price_per_hour,
            gpus=gpus,
        )
        for s in steps
    )
    return Answer(
        device=name,
        predictor=predictor,
        step_s=steps,
        plan=plans,  # type: ignore[arg-type]
        descriptors=descriptors,
        nearest=nearest,
        startup_s=startup,
        price_source=price_source,
        transfer=moved,
        extrapolation=outside_range(training, query),
    )


def _learner(
    store: Store,
    runs: pd.DataFrame,
    name: str,
    calibrated: bool,
    descriptors: dict[str, Any],
    operators_of: OperatorsOf | None,
) -> tuple[str, Predictor, pd.DataFrame, OperatorTransfer | None]:
    """The device whose runs answer for ``name`` (itself when ``calibrated``), its predictor
    (operator-level where its measurements allow), the question as its table row, and the
    operator-class transfer when one carries the answer to ``name``."""
    query_ops = _query_ops(descriptors) if operators_of else None
    precision = descriptors.get("precision", "fp32")
    by_classes = best_source(store, runs, name) if query_ops and not calibrated else None
    source = by_classes.source if by_classes else name
    found = _operator_predictor(store, runs, source, query_ops, precision, operators_of)
    if found is None and not calibrated:
        by_classes = None  # the source's operators cannot answer it: the reference workloads
        source = transfer(runs, name).source
    training = runs[runs["device"] == source]
    same = training[training["precision"] == precision]
    peak = float(same["peak_tflops"].median()) if len(same) else float("nan")
    query = _query_row(descriptors, None if np.isnan(peak) else peak)
    if found is not None:
        return source, found, query.assign(ops=[query_ops]), by_classes
    left_out, included = contention(runs, source)
    predictor = fit_predictor(store, training, source, left_out, included_contended=included)
    return source, predictor, query, by_classes


def _query_ops(descriptors: dict[str, Any]) -> tuple[OpUse, ...] | None:
    listed = descriptors.get("operators")
    if not listed:
        return None
    return tuple(OpUse.of(o["kind"], int(o["count"]), **o["shape"]) for o in listed)


def _operator_predictor(
    store: Store,
    runs: pd.DataFrame,
    source: str,
    query_ops: tuple[OpUse, ...] | None,
    precision: str,
    operators_of: OperatorsOf | None,
) -> Predictor | None:
    """The source device's operator-level predictor, where its operator measurements cover
    the question's operators and enough of its runs; None: the whole-model predictors."""
    if not query_ops or operators_of is None:
        return None
    data = operator_data(store, source)
    if data is None or not covered(query_ops, precision, data):
        return None
    walked = with_operators(runs[runs["device"] == source], operators_of, data)
    if len(walked) < MIN_RUNS:
        return None
    left_out, included = contention(runs, source)
    return fit_predictor(store, walked, source, left_out, data, included_contended=included)


def _by_classes(
    found: OperatorTransfer, predictor: Predictor, query: pd.DataFrame, target: str
) -> Transfer:
    """The target's step / the source's for the question, from the operator class ratios."""
    model = predictor.model
    assert isinstance(model, OperatorModel)
    on_target = OperatorModel(scaled(model.curves, found.ratios), composition=model.composition)
    ratio = float(on_target.predict(query)[0] / model.predict(query)[0])
    shares = ", ".join(
        f"{kind}-bound operators x {value:.3g} ({found.ratios.shared[kind]} shapes)"
        for kind, value in found.ratios.ratios.items()
    )
    return Transfer(
        source=found.source,
        target=target,
        ratio=ratio,
        references=(shares,),
        spread=found.ratios.spread,
        peak_ratio=None,
        bandwidth_ratio=None,
        method="operator classes",
    )


def _price(
    device: str, price_per_hour: float | None, prices: list[dict[str, Any]] | None
) -> tuple[float | None, str | None]:
    """USD per GPU-hour and where it came from: --price-per-hour, else the price table."""
    from dlbench.analysis.cost import find_price, load_prices

    if price_per_hour is not None:
        return price_per_hour, "--price-per-hour"
    found = find_price(device, prices if prices is not None else load_prices())
    return (found.usd_per_gpu_hour, found.source) if found else (None, None)


RANGE_FEATURES = {  # feature column: what the user calls it, and how to print a value
    "flops": ("FLOPs per step", lambda v: f"{v / 1e9:,.3g} GFLOP"),
    "params": ("parameters", lambda v: f"{v / 1e6:,.3g} M"),
    "batch_size": ("batch size", lambda v: f"{v:,.0f}"),
    "input_size": ("input side", lambda v: f"{v:,.0f} px"),
}


def outside_range(training: pd.DataFrame, query: pd.DataFrame) -> tuple[str, ...]:
    """One line per feature the question takes beyond the runs the predictor learned from:
    which, by how much, and the range it learned (a prediction there is an extrapolation)."""
    lines = []
    for column, (label, show) in RANGE_FEATURES.items():
        value = float(query[column].iloc[0])
        low, high = float(training[column].min()), float(training[column].max())
        if not value > 0 or not low > 0:
            continue
        if value > high:
            lines.append(f"{label} {show(value)} is {value / high:,.3g}x the largest learned")
        elif value < low:
            lines.append(f"{label} {show(value)} is 1/{low / value:,.3g} of the smallest learned")
        else:
            continue
        lines[-1] += f" ({show(low)} - {show(high)}): the prediction extrapolates"
    return tuple(lines)


def _nearest(runs: pd.DataFrame, query: pd.DataFrame, batch: int) -> list[dict[str, Any]]:
    distance = np.abs(runs["log_flops"] - query["log_flops"].iloc[0]) + np.abs(
        np.log(runs["batch_size"]) - math.log(batch)
    )
    nearest = runs.assign(distance=distance).nsmallest(3, "distance")
    columns = ["run_id", "workload", "family", "batch_size", "flops", "step_s", "startup_s"]
    return nearest[columns].to_dict("records")


def compare_devices(
    store: Store,
    descriptors: dict[str, Any],
    dataset_size: int,
    epochs: int,
    price_per_hour: float | None = None,
    gpus: int = 1,
    val_size: int = 0,
    prices: list[dict[str, Any]] | None = None,
    operators_of: OperatorsOf | None = None,
    include_contended: bool = False,
) -> tuple[list[Answer], dict[str, str]]:
    """One answer per stored device that can be predicted (its own runs or a transfer),
    fastest first; and, for the others, why not. ``price_per_hour`` prices the devices the
    price table does not know."""
    from dlbench.analysis.cost import find_price, load_prices

    runs = stored_table(store, include_contended)
    table = prices if prices is not None else load_prices()
    answers, refused = [], {}
    op_devices = stored_ops.devices(store) if operators_of else {}
    for device in sorted({*runs["device"].dropna().unique(), *op_devices}):
        price = None if find_price(device, table) else price_per_hour
        try:
            found = answer(
                store, descriptors, device, dataset_size, epochs, price, gpus, val_size,
                table, runs, operators_of,
            )  # fmt: skip
        except DlbenchError as exc:
            refused[str(device)] = exc.message
            continue
        answers.append(found)
    answers.sort(key=lambda a: a.plan[0].total_s)
    return answers, refused


def by_cost(answers: list[Answer]) -> list[Answer]:
    """Cheapest first; devices without a price last."""
    return sorted(answers, key=lambda a: (a.plan[0].usd is None, a.plan[0].usd or 0.0))


__all__ = ["Answer", "Transfer", "answer", "by_cost", "compare_devices"]

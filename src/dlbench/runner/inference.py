"""The infer phase of a run: checkpoint saved and reloaded into a fresh model, the test set
predicted, latency at batch 1 and at the batch size (device synchronised around each call)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dlbench.config import RunSpec
from dlbench.engines import Engine
from dlbench.measure.stats import percentiles_ms
from dlbench.measure.timer import time_calls
from dlbench.records import InferenceStats
from dlbench.runner.result import Measured

T = TypeVar("T")
LATENCY_WARMUP_CALLS = 3
LATENCY_REPEATS = {"single": 100, "batch": 30}
LATENCY_BUDGET_S = 2.0  # per latency series; a slow model is timed fewer times, never none
MIN_LATENCY_BUDGET_S = 0.25


def latency_budget(train_time_s: float | None) -> float:
    """Seconds per latency series: LATENCY_BUDGET_S, but at most a quarter of the timed
    training, so that a short run spends its time training, not measuring latency."""
    if not train_time_s:
        return LATENCY_BUDGET_S
    return min(LATENCY_BUDGET_S, max(MIN_LATENCY_BUDGET_S, train_time_s / 4))


def infer_phase(
    spec: RunSpec, engine: Engine, measured: Measured, progress: Any, batches: int | None
) -> None:
    """``batches``: how many test batches to predict (None: the whole test set)."""
    measured.enter("infer")
    progress.phase("infer", None)
    with tempfile.TemporaryDirectory(prefix="dlbench-") as tmp:
        checkpoint = Path(spec.checkpoint or Path(tmp) / "checkpoint.pt").expanduser()
        engine.save_checkpoint(checkpoint)
        load_s, model = _timed(engine, lambda: engine.load_checkpoint(checkpoint))
    predict_s, images = _timed(engine, lambda: engine.predict_all(model, batches))
    budget = latency_budget(measured.train_time_s)
    single = _latencies(engine, model, 1, LATENCY_REPEATS["single"], budget)
    batch, batch_size = _latencies_sized(engine, model, int(spec.batch_size or 1), budget)
    p50, p95 = percentiles_ms(single, 50, 95)
    b50, b95 = percentiles_ms(batch, 50, 95)
    measured.inference = InferenceStats(
        load_time_s=load_s,
        predict_time_s=predict_s,
        predict_images=images,
        predict_speed=images / predict_s if predict_s > 0 else 0.0,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        latency_samples=len(single),
        batch_latency_p50_ms=b50,
        batch_latency_p95_ms=b95,
        batch_latency_size=batch_size,
    )


def _timed(engine: Engine, call: Callable[[], T]) -> tuple[float, T]:
    engine.sync()
    start = time.perf_counter_ns()
    value = call()
    engine.sync()
    return (time.perf_counter_ns() - start) * 1e-9, value


def _latencies(
    engine: Engine, model: object, size: int, repeats: int, budget_s: float
) -> list[float]:
    call, _ = engine.predict_call(model, size)
    for _ in range(LATENCY_WARMUP_CALLS):
        call()
    return time_calls(call, engine.sync, repeats, budget_s)


def _latencies_sized(
    engine: Engine, model: object, size: int, budget_s: float
) -> tuple[list[float], int]:
    call, actual = engine.predict_call(model, size)
    for _ in range(LATENCY_WARMUP_CALLS):
        call()
    return time_calls(call, engine.sync, LATENCY_REPEATS["batch"], budget_s), actual

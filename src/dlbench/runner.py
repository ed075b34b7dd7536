"""Runs one benchmark in this process, phase by phase, and stores what it measured.

Phases: setup, warm-up (untimed), train (each step timed, device synchronised), validate,
infer (checkpoint reload, prediction, latency). Whatever happens, the run ends stored with a
status: ``ok``, ``oom``, ``failed`` or ``interrupted``, with the steps completed so far.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from dlbench import datasets, staging, sysinfo
from dlbench.config import RunSpec
from dlbench.engines import DeviceInfo, Engine, get_engine
from dlbench.errors import DlbenchError
from dlbench.measure import peaks
from dlbench.measure.stats import percentiles_ms, speed_stats
from dlbench.measure.timer import StepTimer, time_calls
from dlbench.records import (
    Feasibility,
    InferenceStats,
    ModelStats,
    RunResult,
    SpeedStats,
    StagingStats,
    TimeToAccuracy,
)
from dlbench.store import Store
from dlbench.telemetry import build_sources
from dlbench.telemetry.sampler import NullSampler, Sampler
from dlbench.telemetry.summary import summarise
from dlbench.workloads import get_workload

T = TypeVar("T")
LATENCY_WARMUP_CALLS = 3
LATENCY_REPEATS = {"single": 100, "batch": 30}
LATENCY_BUDGET_S = 2.0  # per latency series; a slow model is timed fewer times, never none


class RunInterrupted(Exception):
    """Raised in the run's process on SIGTERM (Slurm's time limit, a kill), like Ctrl-C."""


class Progress(Protocol):
    def phase(self, name: str, total: int | None) -> None: ...

    def advance(self) -> None: ...

    def close(self) -> None: ...


class NullProgress:
    def phase(self, name: str, total: int | None) -> None:
        pass

    def advance(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class _Measured:
    """What the phases have measured so far; turned into a RunResult at the end."""

    store: Store | None  # None in the other ranks of a multi-process run: rank 0 stores
    run_id: str
    phase: str = "setup"
    timer: StepTimer | None = None
    warmup_time_s: float | None = None
    train_time_s: float | None = None
    val_time_s: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    map50: float | None = None
    inference: InferenceStats | None = None
    model: ModelStats | None = None
    device: DeviceInfo | None = None
    hardware: dict[str, Any] = field(default_factory=dict, repr=False)
    tta: TimeToAccuracy | None = None
    staging: StagingStats | None = None
    ranks: tuple[dict[str, Any], ...] = ()
    stream: Iterator[tuple[int, object]] | None = field(default=None, repr=False)
    sampler: Sampler | NullSampler = field(default_factory=NullSampler, repr=False)

    def enter(self, phase: str) -> None:
        """Mark the phase begun, in the store and the telemetry too: a run killed hard still
        says where, and every sample says which phase it belongs to."""
        self.phase = phase
        self.sampler.set_phase(phase)
        if self.store is not None:
            self.store.set_phase(self.run_id, phase)


def execute(
    spec: RunSpec,
    run_id: str,
    store: Store | None,
    progress: Progress | None = None,
    engine: Engine | None = None,
) -> RunResult:
    """Run ``spec`` (resolved) in this process and store its result under ``run_id``.

    Under torchrun every rank calls this; rank 0 alone gets a ``store`` and samples the
    machine, the others (``store=None``) train, validate their share and report their steps.
    """
    progress = progress or NullProgress()
    measured = _Measured(store, run_id)
    status, error = "ok", None
    started = time.monotonic()
    try:
        engine = engine or get_engine(spec.framework)
        if store is None:
            measured.device = engine.resolve_device(spec.device)
        else:
            measured.device, measured.hardware = _register(spec, run_id, store, engine)
            measured.sampler = _start_sampler(spec, run_id, store, measured.hardware)
        spec = _stage(spec, measured)
        _prepare(spec, engine)
        measured.model = engine.model_stats()
        _warmup(spec, engine, measured, progress)
        if spec.target_accuracy is None:
            _train(spec, engine, measured, progress)
            _validate(spec, engine, measured, progress)
        else:
            _train_to_accuracy(spec, engine, measured, progress)
        measured.ranks = _gather_ranks(engine, measured, spec)
        if store is not None:
            _infer(spec, engine, measured, progress)
    except (KeyboardInterrupt, RunInterrupted):
        status, error = "interrupted", f"interrupted during the {measured.phase} phase"
    except Exception as exc:  # noqa: BLE001 - a failed run is a result, never a traceback
        oom = engine is not None and engine.is_out_of_memory(exc)
        status, error = ("oom" if oom else "failed"), _describe(exc, measured.phase)
    finally:
        progress.close()
        measured.sampler.stop()
        if measured.staging:
            staging.remove(measured.staging)
        if engine is not None:
            engine.shutdown()
    result = _result(spec, run_id, status, error, measured, engine)
    if store is None:
        return result
    result = dataclasses.replace(
        result,
        wall_time_s=time.monotonic() - started,
        telemetry=telemetry_summary(store, run_id, measured.sampler, result.images_trained),
    )
    store.finish_run(result)
    return result


def _gather_ranks(engine: Engine, measured: _Measured, spec: RunSpec) -> tuple[dict[str, Any], ...]:
    """Each rank's step statistics, collected on every rank (one process: itself only)."""
    if engine.world_size == 1:
        return ()
    steps = measured.timer.steps() if measured.timer else ()
    own = speed_stats(
        [s.step_time_s for s in steps], [s.data_wait_s for s in steps], int(spec.batch_size or 0)
    )
    mine = {"rank": engine.rank, **(dataclasses.asdict(own) if own else {})}
    return tuple(engine.gather(mine))


def _register(
    spec: RunSpec, run_id: str, store: Store, engine: Engine
) -> tuple[DeviceInfo, dict[str, Any]]:
    """Store the device and hardware fingerprint; return both."""
    device = engine.resolve_device(spec.device)
    data_dir = None if spec.data in (datasets.SYNTHETIC, datasets.DIGITS) else spec.data
    hardware = sysinfo.collect(data_dir)
    store.set_hardware(
        run_id,
        hardware,
        device=device.device,
        device_name=device.device_name,
        num_gpus=device.num_gpus * spec.gpus,
    )
    return device, hardware


def _start_sampler(
    spec: RunSpec, run_id: str, store: Store, hardware: dict[str, Any]
) -> Sampler | NullSampler:
    if not spec.telemetry:
        return NullSampler()
    # Under torchrun the process tree to watch is the launcher's: every rank is its child.
    pid = os.getppid() if spec.gpus > 1 else os.getpid()
    sources = build_sources(pid=pid, data_disk=hardware["storage"].get("device"))
    sink = functools.partial(store.add_samples, run_id)
    return Sampler(sources, spec.interval, sink).start()


def telemetry_summary(
    store: Store, run_id: str, sampler: Sampler | NullSampler, images_trained: int
) -> dict[str, Any]:
    """The sampler's report and the per-phase summary of what it stored."""
    report = sampler.report
    if isinstance(sampler, NullSampler):
        return {"enabled": False, "reason": "telemetry was off for this run (--no-telemetry)"}
    try:
        summary = summarise(store.get_samples(run_id), {"train": images_trained})
    except DlbenchError as exc:
        summary = {"phases": {}, "run": None, "error": exc.one_line()}
    return {"enabled": True, **dataclasses.asdict(report), **summary}


def _stage(spec: RunSpec, measured: _Measured) -> RunSpec:
    """Copy the data to its staging target (timed, its own phase); train from the copy."""
    if spec.stage_from is None or spec.stage_to is None:
        return spec
    measured.enter("stage")
    measured.staging = staging.stage(spec.stage_from, spec.stage_to)
    return spec.model_copy(update={"data": staging.staged_data(spec.data, measured.staging)})


def _prepare(spec: RunSpec, engine: Engine) -> None:
    """Load the data (unless synthetic) and build the model, optimiser and input pipeline."""
    workload = get_workload(spec.workload)
    data = None
    if spec.data != datasets.SYNTHETIC:
        assert spec.dataset is not None
        data = datasets.load(
            staging.expand(spec.data) if spec.data != datasets.DIGITS else spec.data,
            workload.data_format,
            spec.dataset,
            spec.input_shape,
        )
    engine.setup(spec, workload, data)


def _stream(engine: Engine) -> Iterator[tuple[int, object]]:
    """(epoch, batch) pairs, epoch after epoch, without end."""
    epoch = 0
    while True:
        for batch in engine.train_epoch():
            yield epoch, batch
        epoch += 1


def _warmup(spec: RunSpec, engine: Engine, measured: _Measured, progress: Progress) -> None:
    stream = _stream(engine)
    if spec.warmup:
        measured.enter("warmup")
        progress.phase("warm-up", spec.warmup)
        engine.sync()
        start = time.perf_counter_ns()
        for _ in range(spec.warmup):
            _, batch = next(stream)
            engine.train_step(batch)
            progress.advance()
        engine.sync()
        measured.warmup_time_s = (time.perf_counter_ns() - start) * 1e-9
    # --steps continues the same pass over the data; --epochs times whole fresh epochs.
    measured.stream = stream if spec.timed_epochs is None else _stream(engine)


def _train(spec: RunSpec, engine: Engine, measured: _Measured, progress: Progress) -> None:
    measured.enter("train")
    stream = measured.stream
    assert stream is not None
    if spec.timed_epochs:
        total = spec.timed_epochs * engine.steps_per_epoch
    else:
        total = int(spec.steps or 0) - spec.warmup
    timer = measured.timer = StepTimer(engine.sync)
    progress.phase("train", total)
    timer.start_phase()
    _timed_steps(engine, timer, stream, total, progress)
    measured.train_time_s = timer.end_phase()


def _timed_steps(
    engine: Engine,
    timer: StepTimer,
    stream: Iterator[tuple[int, object]],
    count: int,
    progress: Progress,
) -> None:
    for _ in range(count):
        timer.step_start()
        epoch, batch = next(stream)
        timer.data_ready(epoch)
        engine.train_step(batch)
        timer.step_end()
        progress.advance()


def _train_to_accuracy(
    spec: RunSpec, engine: Engine, measured: _Measured, progress: Progress
) -> None:
    """Whole epochs, each followed by a validation pass, until the target is reached."""
    assert spec.target_accuracy is not None and spec.epochs is not None
    stream = measured.stream
    assert stream is not None
    measured.enter("train")
    timer = measured.timer = StepTimer(engine.sync)
    progress.phase("train to accuracy", spec.epochs * engine.steps_per_epoch)
    scores: list[float] = []
    eval_s = 0.0
    timer.start_phase()
    for _ in range(spec.epochs):
        _timed_steps(engine, timer, stream, engine.steps_per_epoch, progress)
        _validate(spec, engine, measured, None)
        measured.enter("train")
        eval_s += measured.val_time_s or 0.0
        score = measured.accuracy if measured.accuracy is not None else measured.map50
        scores.append(score or 0.0)
        if scores[-1] >= spec.target_accuracy:
            break
    wall_s = timer.end_phase()
    measured.train_time_s = wall_s - eval_s
    measured.tta = TimeToAccuracy(
        target=spec.target_accuracy,
        reached=scores[-1] >= spec.target_accuracy,
        epochs=len(scores),
        train_time_s=measured.train_time_s,
        wall_time_s=wall_s,
        accuracy_by_epoch=tuple(scores),
    )


def _validate(
    spec: RunSpec, engine: Engine, measured: _Measured, progress: Progress | None
) -> None:
    measured.enter("validate")
    if progress:
        progress.phase("validate", engine.test_batch_count(spec.val_batches))
    engine.sync()
    start = time.perf_counter_ns()
    evaluation = engine.validate(spec.val_batches, progress.advance if progress else None)
    engine.sync()
    measured.val_time_s = (time.perf_counter_ns() - start) * 1e-9
    measured.accuracy = evaluation.accuracy
    measured.val_loss = evaluation.mean_loss
    measured.map50 = evaluation.map50


def _infer(spec: RunSpec, engine: Engine, measured: _Measured, progress: Progress) -> None:
    measured.enter("infer")
    progress.phase("infer", None)
    with tempfile.TemporaryDirectory(prefix="dlbench-") as tmp:
        checkpoint = Path(spec.checkpoint or Path(tmp) / "checkpoint.pt").expanduser()
        engine.save_checkpoint(checkpoint)
        load_s, model = _timed(engine, lambda: engine.load_checkpoint(checkpoint))
    predict_s, images = _timed(engine, lambda: engine.predict_all(model, spec.val_batches))
    single = _latencies(engine, model, 1, LATENCY_REPEATS["single"])
    batch, batch_size = _latencies_sized(engine, model, int(spec.batch_size or 1))
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


def _latencies(engine: Engine, model: object, size: int, repeats: int) -> list[float]:
    call, _ = engine.predict_call(model, size)
    for _ in range(LATENCY_WARMUP_CALLS):
        call()
    return time_calls(call, engine.sync, repeats, LATENCY_BUDGET_S)


def _latencies_sized(engine: Engine, model: object, size: int) -> tuple[list[float], int]:
    call, actual = engine.predict_call(model, size)
    for _ in range(LATENCY_WARMUP_CALLS):
        call()
    return time_calls(call, engine.sync, LATENCY_REPEATS["batch"], LATENCY_BUDGET_S), actual


def _result(
    spec: RunSpec,
    run_id: str,
    status: str,
    error: str | None,
    measured: _Measured,
    engine: Engine | None,
) -> RunResult:
    timer = measured.timer
    steps = timer.steps() if timer else ()
    # Under DDP a step trains batch_size images on each of the world_size ranks.
    world = engine.world_size if engine is not None and hasattr(engine, "world_size") else 1
    batch = int(spec.batch_size or 0) * world
    speed = speed_stats([s.step_time_s for s in steps], [s.data_wait_s for s in steps], batch)
    train_s = measured.train_time_s
    if train_s is None and timer and steps:
        train_s = timer.elapsed_s()  # interrupted or failed mid-phase: up to the last step
    images = batch * len(steps)
    total = train_s + measured.val_time_s if train_s and measured.val_time_s else None
    peak, source = engine.peak_memory() if engine else (None, None)
    loss = _safe_loss(engine) if status == "ok" else None
    device_peak = peaks.Peak(None, "the run ended before its device was known")
    if measured.device is not None:
        device_peak = peaks.device_peak(
            measured.device.kind, measured.device.device_name, spec.precision, measured.hardware
        )
    flops = (
        measured.model.flops_per_step * world
        if measured.model and measured.model.flops_per_step
        else None
    )
    if device_peak.tflops and world > 1:
        device_peak = peaks.Peak(device_peak.tflops * world, f"{world} x {device_peak.source}")
    achieved, mfu = peaks.mfu(flops, speed.mean_step_time_s if speed else None, device_peak)
    return RunResult(
        run_id=run_id,
        status=status,  # type: ignore[arg-type]
        error=error,
        phase_reached=measured.phase if status != "ok" else "done",
        speed=speed,
        throughput_e2e=images / train_s if train_s else None,
        images_trained=images,
        train_time_s=train_s,
        val_time_s=measured.val_time_s,
        total_time_s=total,
        accuracy=measured.accuracy,
        val_loss=measured.val_loss,
        map50=measured.map50,
        final_train_loss=loss,
        warmup_time_s=measured.warmup_time_s,
        inference=measured.inference,
        peak_memory_bytes=peak,
        peak_memory_source=source,
        model=measured.model,
        achieved_tflops=achieved,
        peak_tflops=device_peak.tflops,
        peak_source=device_peak.source,
        mfu=mfu,
        time_to_accuracy=measured.tta,
        feasibility=_feasibility(spec, status, speed),
        staging=measured.staging,
        ranks=measured.ranks,
        steps=steps,
    )


def _feasibility(spec: RunSpec, status: str, speed: SpeedStats | None) -> Feasibility | None:
    """With --dataset-size: whether the batch fits, and E epochs of N images at this speed."""
    if spec.dataset_size is None or status not in ("ok", "oom"):
        return None
    batch = int(spec.batch_size or 1)
    steps_per_epoch = math.ceil(spec.dataset_size / batch)
    epochs = spec.epochs or 1
    projected = None
    if status == "ok" and speed is not None:
        projected = epochs * steps_per_epoch * speed.mean_step_time_s
    return Feasibility(
        fits=status == "ok",
        batch_size=batch,
        dataset_size=spec.dataset_size,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        projected_train_s=projected,
    )


def _safe_loss(engine: Engine | None) -> float | None:
    try:
        return engine.final_train_loss() if engine else None
    except Exception:  # noqa: BLE001 - a loss we cannot read is not a failed run
        return None


def _describe(exc: BaseException, phase: str) -> str:
    """One line for the store: type, message and where it was raised."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"{text} (in the {phase} phase{where})"

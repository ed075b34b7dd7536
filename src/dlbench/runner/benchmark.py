"""Runs one benchmark in this process, phase by phase, and stores what it measured.

Phases: setup, warm-up (untimed), train (each step timed, device synchronised), validate,
infer (checkpoint reload, prediction, latency). Whatever happens, the run ends stored with a
status: ``ok``, ``oom``, ``failed`` or ``interrupted``, with the steps completed so far.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import numpy as np
import psutil

from dlbench import datasets, sysinfo
from dlbench.config import RunSpec
from dlbench.engines import DeviceInfo, Engine, get_engine
from dlbench.errors import RunInterrupted
from dlbench.measure.stats import MIN_RELIABLE_STEPS, relative_half_width
from dlbench.measure.timer import StepTimer
from dlbench.records import (
    RunResult,
    Stability,
    TimeToAccuracy,
)
from dlbench.runner import staging
from dlbench.runner.generating import generation_phase
from dlbench.runner.inference import infer_phase
from dlbench.runner.ranks import gather_ranks
from dlbench.runner.result import Measured, build_result, describe
from dlbench.runner.storing import store_result
from dlbench.store.database import Store
from dlbench.store.liveness import Heartbeat
from dlbench.telemetry import build_sources
from dlbench.telemetry.sampler import NullSampler, Sampler
from dlbench.workloads import get_workload

T = TypeVar("T")
PROFILE_STEPS = 5  # profiled after the timed steps: the profiler slows a step
SYNTHETIC_EVAL_BATCHES = 20  # test batches validated and predicted on synthetic data by default
LANGUAGE_EVAL_BATCHES = 200  # a language model's text, by default (nanoGPT's eval_iters)


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
    measured = Measured(store, run_id)
    heartbeat: Heartbeat | None = None
    server, progress, on_tick = _serving(spec, run_id, store, progress)
    status, error = "ok", None
    started = time.monotonic()
    try:
        engine = engine or get_engine(spec.framework)
        if store is None:
            measured.device = engine.resolve_device(spec.device)
        else:
            heartbeat = Heartbeat(store, run_id, also=measured.store_new_steps).start()
            measured.device, measured.hardware = _register(spec, run_id, store, engine)
            measured.sampler = _start_sampler(spec, run_id, store, measured.hardware, on_tick)
        spec = _stage(spec, measured)
        _phases(spec, engine, measured, progress, infer=store is not None)
    except (KeyboardInterrupt, RunInterrupted):
        status, error = "interrupted", f"interrupted during the {measured.phase} phase"
    except Exception as exc:  # noqa: BLE001 - a failed run is a result, never a traceback
        oom = engine is not None and engine.is_out_of_memory(exc)
        status, error = ("oom" if oom else "failed"), describe(exc, measured.phase)
    finally:
        progress.close()
        if heartbeat is not None:
            heartbeat.stop()
        measured.stop_meter()
        measured.sampler.stop()
        if measured.staging:
            staging.remove(measured.staging)
        if server is not None:
            server.close()
    try:
        result = build_result(spec, run_id, status, error, measured, engine)
        return result if store is None else store_result(spec, store, result, measured, started)
    finally:
        if engine is not None:  # after storing: a teardown that hangs on a peer that is
            engine.shutdown()  # gone cannot keep the run open (other nodes then stop theirs)


def _serving(
    spec: RunSpec, run_id: str, store: Store | None, progress: Progress
) -> tuple[Any, Progress, Callable[[dict[str, float]], None] | None]:
    """With --metrics-port, on rank 0: the run's /metrics server, the progress reporter that
    feeds it, and the sampler's hook; else nothing changes."""
    if not spec.metrics_port or store is None:
        return None, progress, None
    from dlbench.runner.serving import serve_run

    server, run, collector = serve_run(spec, run_id, progress)
    return server, run, collector.update


def _phases(
    spec: RunSpec, engine: Engine, measured: Measured, progress: Progress, infer: bool
) -> None:
    """Setup, warm-up, timed training, validation (or training to the target accuracy), the
    ranks' steps and inference, in order."""
    _prepare(spec, engine)
    measured.model = engine.model_stats()
    # From the process's start: interpreter, imports, data and model, as a job pays them.
    measured.setup_time_s = time.time() - psutil.Process().create_time()
    if spec.generates:
        generation_phase(spec, engine, measured, progress, _pid_to_follow(spec))
        return
    _warmup(spec, engine, measured, progress)
    if spec.target_accuracy is None:
        _train(spec, engine, measured, progress)
        if spec.profile:
            measured.profile = _profile(engine, measured, progress)
        if not spec.no_validate:
            _validate(spec, engine, measured, progress)
    else:
        _train_to_accuracy(spec, engine, measured, progress)
    measured.ranks = gather_ranks(engine, measured, spec)
    if infer and not spec.no_infer:
        infer_phase(spec, engine, measured, progress, eval_batches(spec, engine))


def _register(
    spec: RunSpec, run_id: str, store: Store, engine: Engine
) -> tuple[DeviceInfo, dict[str, Any]]:
    """Store the device and hardware fingerprint; return both."""
    device = engine.resolve_device(spec.device)
    data_dir = None if spec.data in datasets.BUILT_IN else spec.data
    hardware = sysinfo.collect(data_dir)
    store.set_hardware(
        run_id,
        hardware,
        device=device.device,
        device_name=device.device_name,
        num_gpus=device.num_gpus * spec.processes,
    )
    return device, hardware


def _start_sampler(
    spec: RunSpec,
    run_id: str,
    store: Store,
    hardware: dict[str, Any],
    on_tick: Callable[[dict[str, float]], None] | None = None,
) -> Sampler | NullSampler:
    if not spec.telemetry:
        return NullSampler()
    sources = build_sources(pid=_pid_to_follow(spec), data_disk=hardware["storage"].get("device"))
    sink = functools.partial(store.add_samples, run_id)
    return Sampler(
        sources, spec.interval, sink, on_sink_error=store.warn_write_failure, on_tick=on_tick
    ).start()


def _pid_to_follow(spec: RunSpec) -> int:
    """The run's process tree: under torchrun the launcher's, whose children are the ranks
    (this node's, over several nodes)."""
    return os.getppid() if spec.processes > 1 else os.getpid()


def _stage(spec: RunSpec, measured: Measured) -> RunSpec:
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
            staging.expand(spec.data) if spec.data not in datasets.BUILT_IN else spec.data,
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


def _warmup(spec: RunSpec, engine: Engine, measured: Measured, progress: Progress) -> None:
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


def _train(spec: RunSpec, engine: Engine, measured: Measured, progress: Progress) -> None:
    measured.enter("train")
    stream = measured.stream
    assert stream is not None
    if spec.timed_epochs:
        total = spec.timed_epochs * engine.steps_per_epoch
    else:
        total = int(spec.steps or 0) - spec.warmup
    timer = measured.timer = StepTimer(engine.sync)
    progress.phase("train", None if spec.until_stable else total)
    measured.start_meter(spec, _pid_to_follow(spec))
    timer.start_phase()
    _timed_steps(engine, timer, stream, total, progress)
    if spec.until_stable is not None:
        measured.stability = _until_stable(spec, engine, timer, stream, progress)
    measured.train_time_s = timer.end_phase()
    measured.stop_meter()


def _until_stable(
    spec: RunSpec,
    engine: Engine,
    timer: StepTimer,
    stream: Iterator[tuple[int, object]],
    progress: Progress,
) -> Stability:
    """More timed steps, in chunks that grow with the steps done, until the mean step time's
    95% interval is within --until-stable percent of it or --max-time seconds have passed."""
    assert spec.until_stable is not None and spec.max_time is not None
    target = spec.until_stable / 100
    deadline = time.monotonic() - timer.elapsed_s() + spec.max_time
    while True:
        times = np.asarray(timer.step_times_s())
        reached = relative_half_width(times)
        if times.size >= MIN_RELIABLE_STEPS and reached <= target:
            return Stability(spec.until_stable, reached * 100, True, spec.max_time)
        left = deadline - time.monotonic()
        if left <= 0:
            shown = reached * 100 if np.isfinite(reached) else None
            return Stability(spec.until_stable, shown, False, spec.max_time)
        fits = int(left / times.mean()) if times.size and times.mean() > 0 else 1
        chunk = max(1, min(max(MIN_RELIABLE_STEPS, times.size // 4), fits))
        _timed_steps(engine, timer, stream, chunk, progress)


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
    spec: RunSpec, engine: Engine, measured: Measured, progress: Progress
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
    measured.start_meter(spec, _pid_to_follow(spec))
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
    measured.stop_meter()
    measured.train_time_s = wall_s - eval_s
    measured.tta = TimeToAccuracy(
        target=spec.target_accuracy,
        reached=scores[-1] >= spec.target_accuracy,
        epochs=len(scores),
        train_time_s=measured.train_time_s,
        wall_time_s=wall_s,
        accuracy_by_epoch=tuple(scores),
    )


def _profile(engine: Engine, measured: Measured, progress: Progress) -> dict[str, Any]:
    """PROFILE_STEPS more training steps under the profiler, after the timed ones."""
    measured.enter("profile")
    progress.phase("profile", None)
    profiler = getattr(engine, "profile", None)
    if profiler is None:
        return {"available": False, "reason": f"the {engine.name} engine has no profiler here"}
    stream = measured.stream
    assert stream is not None
    try:
        found: dict[str, Any] = profiler((batch for _, batch in stream), PROFILE_STEPS)
    except (RuntimeError, ValueError) as exc:  # a profiler that cannot run: said, run goes on
        return {"available": False, "reason": f"the profiler failed: {exc}"}
    return {"available": True, **found}


def eval_batches(spec: RunSpec, engine: Engine) -> int | None:
    """Batches of the test set that validation and inference pass over: --val-batches when
    given; on synthetic data (where accuracy means nothing) at most half the timed steps and
    SYNTHETIC_EVAL_BATCHES, so they cost less than the timed training; a language model's
    text at most LANGUAGE_EVAL_BATCHES (nanoGPT's eval_iters); else all of it."""
    if spec.val_batches:
        return spec.val_batches
    if spec.data != datasets.SYNTHETIC:
        return LANGUAGE_EVAL_BATCHES if spec.seq_len is not None else None
    timed = (
        spec.timed_epochs * engine.steps_per_epoch
        if spec.timed_epochs
        else int(spec.steps or 0) - spec.warmup
    )
    return max(1, min(SYNTHETIC_EVAL_BATCHES, timed // 2))


def _validate(spec: RunSpec, engine: Engine, measured: Measured, progress: Progress | None) -> None:
    measured.enter("validate")
    if progress:
        progress.phase("validate", engine.test_batch_count(eval_batches(spec, engine)))
    engine.sync()
    start = time.perf_counter_ns()
    evaluation = engine.validate(eval_batches(spec, engine), progress.advance if progress else None)
    engine.sync()
    measured.val_time_s = (time.perf_counter_ns() - start) * 1e-9
    measured.accuracy = evaluation.accuracy
    measured.val_loss = evaluation.mean_loss
    measured.map50 = evaluation.map50

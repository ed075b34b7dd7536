"""What a run measured, turned into its RunResult: speed over the timed steps (global under
DDP), FLOPs and MFU against the device's peak, feasibility, and one-line error descriptions."""

from __future__ import annotations

import logging
import math
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlbench.config import RunSpec
from dlbench.engines import DeviceInfo, Engine
from dlbench.errors import StoreError
from dlbench.measure import peaks
from dlbench.measure.stats import speed_stats
from dlbench.measure.timer import StepTimer
from dlbench.records import (
    Feasibility,
    InferenceStats,
    Interference,
    ModelStats,
    RunResult,
    SpeedStats,
    Stability,
    StagingStats,
    TimeToAccuracy,
)
from dlbench.store.database import Store
from dlbench.telemetry.interference import InterferenceMeter
from dlbench.telemetry.nvml import nvml_indices
from dlbench.telemetry.sampler import NullSampler, Sampler

log = logging.getLogger("dlbench.runner")


@dataclass
class Measured:
    """What the phases have measured so far; turned into a RunResult at the end."""

    store: Store | None  # None in the other ranks of a multi-process run: rank 0 stores
    run_id: str
    phase: str = "setup"
    timer: StepTimer | None = None
    warmup_time_s: float | None = None
    setup_time_s: float | None = None
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
    meter: InterferenceMeter | None = field(default=None, repr=False)
    interference: Interference | None = None
    stability: Stability | None = None
    profile: dict[str, Any] | None = None
    generation: dict[str, Any] | None = None  # dlbench generate's figures
    steps_stored: int = 0  # completed steps already in the store (a SIGKILL keeps them)
    _storing: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start_meter(self, spec: RunSpec, pid: int) -> None:
        """Account other work from here (the timed phase's start); rank 0 only. Accounting
        that cannot start leaves the run without a quality verdict, never without a result."""
        if self.store is None:
            return
        gpus: tuple[int, ...] = ()
        if self.device is not None and self.device.kind == "cuda":
            first = int(self.device.device.partition(":")[2] or 0)
            gpus = nvml_indices(list(range(first, first + spec.gpus)))
        try:
            self.meter = InterferenceMeter(pid, gpus).start()
        except Exception as exc:  # noqa: BLE001 - the run matters more than its quality
            log.warning("interference accounting did not start: %s", exc)

    def stop_meter(self) -> None:
        """Close the accounting (the timed phase's end, or wherever a failure stopped it)."""
        if self.meter is None or self.interference is not None:
            return
        meter, self.meter = self.meter, None
        try:
            self.interference = meter.stop()
        except Exception as exc:  # noqa: BLE001 - never lose the run to its accounting
            log.warning("interference accounting failed: %s", exc)

    def enter(self, phase: str) -> None:
        """Mark the phase begun, in the store and the telemetry too: a run killed hard still
        says where, and every sample says which phase it belongs to."""
        self.phase = phase
        self.sampler.set_phase(phase)
        if self.store is not None:
            try:
                # The timed steps are in the store as the phase that made them ends: a run
                # killed while it validates or predicts keeps every one.
                self.store_new_steps()
                self.store.set_phase(self.run_id, phase)
            except StoreError as exc:  # a full disk: the run goes on, its result is kept
                self.store.warn_write_failure(exc)

    def store_new_steps(self) -> None:
        """Store the steps completed since the last call (from the heartbeat thread and at
        each phase's start: the timer's lists only grow, and a step counts once its end is
        recorded)."""
        timer = self.timer
        if self.store is None or timer is None:
            return
        with self._storing:
            completed = timer.steps(start=self.steps_stored)
            if completed:
                self.store.add_steps(self.run_id, list(completed))
                self.steps_stored = completed[-1].step + 1


def build_result(
    spec: RunSpec,
    run_id: str,
    status: str,
    error: str | None,
    measured: Measured,
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
    device_peak = _device_peak(spec, measured, world)
    flops = (
        measured.model.flops_per_step * world
        if measured.model and measured.model.flops_per_step and not spec.generates
        else None  # a generation run's requests are not training steps: no MFU from them
    )
    achieved, mfu = peaks.mfu(flops, speed.mean_step_time_s if speed else None, device_peak)
    tokens, tokens_ci95, perplexity = _token_figures(spec, speed, measured.val_loss)
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
        tokens_per_s=tokens,
        tokens_per_s_ci95=tokens_ci95,
        perplexity=perplexity,
        final_train_loss=loss,
        warmup_time_s=measured.warmup_time_s,
        setup_time_s=measured.setup_time_s,
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
        descriptors=_descriptors(spec, measured, device_peak),
        stability=measured.stability,
        profile=_scaled_profile(measured.profile, speed),
        steps=steps,
        generation=measured.generation,
    )


def _device_peak(spec: RunSpec, measured: Measured, world: int) -> peaks.Peak:
    """The dense peak of the run's devices (all ``world`` of them) at its precision."""
    if measured.device is None:
        return peaks.Peak(None, "the run ended before its device was known")
    peak = peaks.device_peak(
        measured.device.kind, measured.device.device_name, spec.precision, measured.hardware
    )
    if peak.tflops and world > 1:
        return peaks.Peak(peak.tflops * world, f"{world} x {peak.source}")
    return peak


def _token_figures(
    spec: RunSpec, speed: SpeedStats | None, val_loss: float | None
) -> tuple[float | None, tuple[float, float] | None, float | None]:
    """A language model's tokens/s (sequences/s x seq_len, with its 95% interval) and
    validation perplexity; None for the others."""
    if spec.seq_len is None or spec.generates:  # a generation run's tokens: its own figures
        return None, None, None
    perplexity = math.exp(val_loss) if val_loss is not None and val_loss < 700 else None
    if speed is None:
        return None, None, perplexity
    low_high = speed.speed_ci95
    interval = (low_high[0] * spec.seq_len, low_high[1] * spec.seq_len) if low_high else None
    return speed.mean_speed * spec.seq_len, interval, perplexity


def _descriptors(spec: RunSpec, measured: Measured, peak: peaks.Peak) -> dict[str, Any] | None:
    """What the run's model and device are, in the calculator's terms (issue: predict)."""
    from dlbench.workloads import get_workload

    model = measured.model
    if model is None:
        return None
    workload = get_workload(spec.workload)
    device = measured.device
    return {
        "family": workload.family,
        "depth": spec.depth or workload.depth,
        "width": model.width,
        "params": model.params,
        "flops_per_step": model.flops_per_step,
        "activation_bytes": model.activation_bytes,
        "layers": model.layers,
        "input_size": model.input_shape[1],
        "batch_size": spec.batch_size,
        "precision": spec.precision,
        "device_name": device.device_name if device else None,
        "device_peak_tflops": peak.tflops,
        "device_bandwidth_gb_s": peaks.gpu_bandwidth(device.device_name)
        if device and device.kind == "cuda"
        else None,
    }


def _feasibility(spec: RunSpec, status: str, speed: SpeedStats | None) -> Feasibility | None:
    """With --dataset-size: whether the batch fits, and E epochs of N images at this speed
    (under DDP a step trains batch_size images on each of the --gpus processes)."""
    from dlbench.measure.training_plan import plan

    if spec.dataset_size is None or status not in ("ok", "oom"):
        return None
    batch = int(spec.batch_size or 1)
    epochs = spec.epochs or 1
    step = speed.mean_step_time_s if status == "ok" and speed is not None else 0.0
    job = plan(step, spec.dataset_size, batch, epochs, gpus=spec.gpus)
    return Feasibility(
        fits=status == "ok",
        batch_size=batch,
        dataset_size=spec.dataset_size,
        epochs=epochs,
        steps_per_epoch=job.steps_per_epoch,
        projected_train_s=job.total_s if status == "ok" and speed is not None else None,
    )


def _safe_loss(engine: Engine | None) -> float | None:
    try:
        return engine.final_train_loss() if engine else None
    except Exception:  # noqa: BLE001 - a loss we cannot read is not a failed run
        return None


def describe(exc: BaseException, phase: str) -> str:
    """One line for the store: type, message and where it was raised."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"{text} (in the {phase} phase{where})"


def _scaled_profile(
    profile: dict[str, Any] | None, speed: SpeedStats | None
) -> dict[str, Any] | None:
    """The profiled categories applied to the step time measured without the profiler."""
    if not profile or not profile.get("categories"):
        return profile
    timed = speed.mean_step_time_s if speed else None
    if not timed:
        return profile
    scaled = dict(profile, timed_step_s=timed)
    scaled["profiler_overhead"] = profile["profiled_step_s"] / timed - 1
    scaled["categories"] = {
        kind: dict(entry, seconds_per_step=entry["share"] * timed)
        for kind, entry in profile["categories"].items()
    }
    return scaled

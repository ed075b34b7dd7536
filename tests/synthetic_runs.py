"""Runs whose step time follows a known law, as summaries and in a store."""

import numpy as np

from dlbench.records import RunResult, SpeedStats, StepRecord, TelemetrySample
from dlbench.store.stored import StoredRun
from dlbench.telemetry.summary import summarise

PEAK = 100.0  # TFLOP/s
EFFICIENCY = {"vgg": 0.55, "resnet": 0.40, "mlp": 0.15}
OVERHEAD_S = 0.002


def summaries(n=160, noise=0.02, seed=0):
    """Runs following step = overhead + FLOPs / (peak x efficiency(family)), with noise."""
    rng = np.random.default_rng(seed)
    runs = []
    for i in range(n):
        family = list(EFFICIENCY)[i % 3]
        depth = int(rng.integers(2, 60))
        width = int(rng.choice([16, 32, 64, 128]))
        batch = int(rng.choice([16, 32, 64, 128, 256]))
        size = int(rng.choice([32, 64, 128, 224]))
        flops = 3.0 * batch * depth * width * width * size * size * 9 / 50
        step = (OVERHEAD_S + flops / (PEAK * 1e12 * EFFICIENCY[family])) * rng.lognormal(0, noise)
        runs.append(
            {
                "run_id": f"r{i}",
                "status": "ok",
                "mean_step_time_s": step,
                "descriptors": {
                    "family": family,
                    "depth": depth,
                    "width": width,
                    "params": depth * width * width * 9,
                    "flops_per_step": flops,
                    "activation_bytes": 4 * batch * depth * width * size * size,
                    "batch_size": batch,
                    "input_size": size,
                    "precision": "fp32",
                    "device_name": "X",
                    "device_peak_tflops": PEAK,
                },
            }
        )
    return runs


def typed(summaries):
    """The summaries as readers get runs from the store."""
    return [StoredRun.from_summary({"kind": "train", **s}) for s in summaries]


def stored_runs(
    store, summaries, device="X", workload="resnet18", step_factor=1.0, quality=None, prefix=""
):
    """Store ``summaries`` as ok runs on ``device`` (run ids prefixed unless on X), step times
    multiplied by ``step_factor``, with ``quality`` (a Quality record) if given."""
    for s in summaries:
        run_id = prefix + (s["run_id"] if device == "X" else f"{device}-{s['run_id']}")
        descriptors = {**s["descriptors"], "device_name": device}
        store.create_run(run_id, "train", {"gpus": 1}, workload=workload)
        store.set_hardware(
            run_id, {"hostname": "h"}, device="cuda:0", device_name=device, num_gpus=1
        )
        step = s["mean_step_time_s"] * step_factor
        speed = SpeedStats(10, step, step, step, 1.0, 1.0, 1.0, 1.0, None, 0.0, 0.0, 0.0)
        store.finish_run(
            RunResult(
                run_id=run_id, status="ok", speed=speed, descriptors=descriptors, quality=quality
            )
        )


def stored_device_run(
    store, run_id, device, step_s, util, batch=64, seed=0, gpu_util=None, name=None, quality=None,
    workload="resnet18", kind="train",
):  # fmt: skip
    """A finished 200-step run on DEVICE with CPU (and GPU) utilisation telemetry."""
    rng = np.random.default_rng(seed)
    times = np.abs(rng.normal(step_s, step_s * 0.03, 200))
    phase = {"generate": "generate", "serving": "serve"}.get(kind, "train")  # the timed one
    store.create_run(
        run_id,
        kind,
        {"workload": workload, "gpus": 1},
        workload=workload,
        device=device,
        batch_size=batch,
        precision="fp32",
    )
    store.set_hardware(
        run_id,
        {"hostname": "node1", "cpu": {"model": "x"}, "gpus": []},
        device=device,
        device_name=name or device,
        num_gpus=0 if device == "cpu" else 1,
    )
    mean = float(times.mean())
    speed = SpeedStats(200, mean, mean, mean, batch / mean, batch / mean, 1, 1, 1.0, 1.0, 0.0, 0.0)
    steps = tuple(StepRecord(i, 0, float(t), 0.0) for i, t in enumerate(times))
    samples = [
        TelemetrySample(
            i * 0.5,
            1e9 + i,
            phase,
            "cpu.util_percent",
            float(np.clip(rng.normal(util, 2), 0, 100)),
        )
        for i in range(120)
    ]
    if gpu_util is not None:
        samples += [
            TelemetrySample(i * 0.5, 1e9 + i, phase, "gpu0.util_percent", gpu_util)
            for i in range(120)
        ]
    store.add_samples(run_id, samples)
    telemetry = {"enabled": True, **summarise(samples, {phase: 200 * batch})}
    store.finish_run(
        RunResult(
            run_id=run_id,
            status="ok",
            speed=speed,
            steps=steps,
            telemetry=telemetry,
            images_trained=200 * batch,
            quality=quality,
        )
    )


def rank_record(rank, host, synced_s, own_s=None, **more):
    """One rank's stored record: its step statistics (``synced_s`` a step), host and pace."""
    record = {
        "rank": rank,
        "host": host,
        "local_rank": rank % 2,
        "timed_steps": 20,
        "mean_step_time_s": synced_s,
        "median_step_time_s": synced_s,
        "p95_step_time_s": synced_s,
        "mean_speed": 1 / synced_s,
        "median_speed": 1 / synced_s,
        "p5_speed": 1 / synced_s,
        "p95_speed": 1 / synced_s,
        "speed_stderr": 0.0,
        "speed_jitter": 0.0,
        "mean_data_wait_s": 0.0,
        "data_wait_fraction": 0.0,
        "speed_ci95": None,
        "sync_free_step_time_s": own_s,
    }
    return {**record, **more}

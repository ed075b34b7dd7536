"""Runs whose step time follows a known law, as summaries and in a store."""

import numpy as np

from dlbench.records import RunResult, SpeedStats

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



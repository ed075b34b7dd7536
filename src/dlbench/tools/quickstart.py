"""``dlbench quickstart``: every standard workload once on the best device, a small ResNet-18
(FLOPs and MFU), a real-data accuracy run on scikit-learn's digits, and a small GPT on the
standard library's source (tokens/s, perplexity), in under a minute on a 2-core CPU."""

from __future__ import annotations

import statistics
from datetime import datetime

from dlbench.config import RunSpec, build_spec
from dlbench.errors import require
from dlbench.store.database import Store

# Timed steps are chosen so that each run trains for a few seconds on a laptop CPU.
PLAN: tuple[dict[str, object], ...] = (
    {"workload": "lenet-mnist", "steps": 70, "warmup": 10},
    {"workload": "deepmnist", "steps": 70, "warmup": 10},
    {"workload": "cifar10-cnn", "steps": 35, "warmup": 5},
    {"workload": "mlp-mnist", "steps": 110, "warmup": 10},
    {"workload": "resnet18", "image_size": 64, "batch_size": 32, "steps": 17, "warmup": 5},
    {"workload": "lenet-mnist", "data": "digits", "epochs": 8, "warmup": 5},
    # a small GPT on the standard library's source: tokens/s, and a loss that falls
    {
        "workload": "gpt",
        "data": "stdlib",
        "depth": 2,
        "width": 128,
        "seq_len": 64,
        "batch_size": 16,
        "steps": 90,
        "warmup": 10,
        "val_batches": 20,
    },
)
VAL_BATCHES_SYNTHETIC = 5  # synthetic accuracy is chance; a short pass times validation


def plan(device: str = "auto", cpus: str | None = None) -> list[RunSpec]:
    require("sklearn", "digits", "the quick start's real-data run (scikit-learn's digits)")
    specs = []
    for entry in PLAN:
        options = {"device": device, "cpus": cpus, "tags": {"suite": "quickstart"}, **entry}
        if options.get("data", "synthetic") == "synthetic":
            options["val_batches"] = VAL_BATCHES_SYNTHETIC
            options["no_infer"] = True  # its table times training; inference is `dlbench run`'s
        specs.append(build_spec(**options))
    return specs


def estimate(store: Store, specs: list[RunSpec]) -> tuple[float, int]:
    """(seconds the plan took here before, how many runs have no earlier run to go by): for
    each run the median, over its earlier runs on this machine and device, of the time from its
    row's creation (before its process started) to its end: a run's whole life, imports,
    validation and inference included."""
    total, unknown = 0.0, 0
    for spec in specs:
        before = [
            (
                datetime.fromisoformat(r.finished_at) - datetime.fromisoformat(r.created_at)
            ).total_seconds()
            for r in store.runs(run_key=spec.run_key, status="ok")
            if r.created_at and r.finished_at
        ]
        if before:
            total += statistics.median(before)
        else:
            unknown += 1
    return total, unknown

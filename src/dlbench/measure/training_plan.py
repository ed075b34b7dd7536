"""Total time and cost of a training job from one step's time: exact arithmetic, no learning."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    steps_per_epoch: int
    epoch_s: float
    total_s: float
    usd: float | None


def plan(
    step_s: float,
    dataset_size: int,
    batch_size: int,
    epochs: int,
    validation_s_per_epoch: float = 0.0,
    startup_s: float = 0.0,
    usd_per_gpu_hour: float | None = None,
    gpus: int = 1,
) -> Plan:
    """epochs x (ceil(N / (B x gpus)) x step + validation) + start-up; cost = hours x price x
    GPUs."""
    if step_s < 0 or dataset_size < 1 or batch_size < 1 or epochs < 1 or gpus < 1:
        raise ValueError("step time >= 0 and dataset size, batch, epochs, gpus >= 1")
    steps = math.ceil(dataset_size / (batch_size * gpus))
    epoch = steps * step_s + validation_s_per_epoch
    total = epochs * epoch + startup_s
    usd = total / 3600 * usd_per_gpu_hour * gpus if usd_per_gpu_hour is not None else None
    return Plan(steps, epoch, total, usd)

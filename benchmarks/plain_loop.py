"""The baseline of harness_overhead.py: a minimal hand-written PyTorch training loop.

Same model builder, optimiser, batch, synthetic uint8 batches on the device and the same
uint8 -> float normalisation as dlbench's step; no per-step timing, one sync at the end.
Prints images/s as JSON.
"""

from __future__ import annotations

import json
import sys
import time

import torch

from dlbench.engines.pytorch.engine import make_optimizer
from dlbench.registry import resolve
from dlbench.workloads import get_workload


def main(name: str, warmup: int, steps: int, device_name: str) -> None:
    workload = get_workload(name)
    device = torch.device(device_name)
    torch.manual_seed(0)
    model = resolve(workload.builders["pytorch"])(workload.input_shape, workload.num_classes)
    model = model.to(device)
    optimizer = make_optimizer(workload.optimizer, model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    batch = workload.default_batch_size
    shape = (batch, *workload.input_shape)
    pool = [
        (
            torch.randint(0, 256, shape, dtype=torch.uint8, device=device),
            torch.randint(0, workload.num_classes, (batch,), device=device),
        )
        for _ in range(4)
    ]
    mean = torch.full((1, workload.input_shape[0], 1, 1), 0.5, device=device)
    std = torch.full_like(mean, 0.29)

    def step(i: int) -> None:
        images, labels = pool[i % 4]
        loss = loss_fn(model((images.float().div_(255.0) - mean) / std), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(warmup):
        step(i)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for i in range(steps):
        step(warmup + i)
    sync()
    print(json.dumps({"images_per_s": steps * batch / (time.perf_counter() - start)}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])

"""Models that fail on purpose, registered as workloads by the runner tests."""

from __future__ import annotations

import torch
from torch import nn

from dlbench.workloads.mnist_models import mlp


class FailsAt(nn.Module):
    """An MLP that raises ``error`` on its ``at``-th forward call in ``mode``."""

    def __init__(self, error: BaseException, at: int, mode: str = "train"):
        super().__init__()
        self.inner = mlp((1, 28, 28), 10)
        self.error, self.at, self.mode, self.calls = error, at, mode, 0

    def forward(self, x):
        if (self.mode == "train") == self.training:
            self.calls += 1
            if self.calls >= self.at:
                raise self.error
        return self.inner(x)


def cuda_oom(shape, classes):
    return FailsAt(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"), 14)


def host_oom(shape, classes):
    return FailsAt(MemoryError(), 14)


def bug_in_validation(shape, classes):
    return FailsAt(ValueError("shapes do not match"), 1, mode="eval")


def ctrl_c(shape, classes):
    return FailsAt(KeyboardInterrupt(), 18)

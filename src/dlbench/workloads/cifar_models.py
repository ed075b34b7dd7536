"""PyTorch models of the CIFAR-10-sized workloads (32x32 colour images, 10 classes)."""

from __future__ import annotations

import math

from torch import nn


# TensorFlow's tf.nn.lrn(depth_radius=4, bias=1.0, alpha=0.001/9, beta=0.75) multiplies the
# sum of squares by alpha; torch's LocalResponseNorm divides alpha by the window size, so the
# same normalisation is size 2*4+1 = 9 with alpha 0.001.
def _lrn() -> nn.LocalResponseNorm:
    return nn.LocalResponseNorm(size=9, alpha=0.001, beta=0.75, k=1.0)


def cifar10_cnn(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """TensorFlow's CIFAR-10 tutorial network (conv-pool-norm, conv-norm-pool, fc384, fc192)."""
    channels, height, width = input_shape
    # Each 3x3 stride-2 pool with padding 1 gives ceil(size / 2).
    out_h, out_w = math.ceil(math.ceil(height / 2) / 2), math.ceil(math.ceil(width / 2) / 2)
    return nn.Sequential(
        nn.Conv2d(channels, 64, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        _lrn(),
        nn.Conv2d(64, 64, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        _lrn(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        nn.Flatten(),
        nn.Linear(64 * out_h * out_w, 384),
        nn.ReLU(inplace=True),
        nn.Linear(384, 192),
        nn.ReLU(inplace=True),
        nn.Linear(192, num_classes),
    )

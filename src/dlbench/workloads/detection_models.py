"""PyTorch builders of the detection workloads (torchvision Faster R-CNN, no weights).

The model's own transform normalises and resizes; it is told the run's image size so that
it does not upscale every image to 800 pixels behind the benchmark's back.
"""

from __future__ import annotations

import torchvision
from torch import nn


def fasterrcnn_resnet50_fpn(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    size = input_shape[1]
    return torchvision.models.detection.fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=num_classes, min_size=size, max_size=size
    )


def fasterrcnn_mobilenet_v3_large_fpn(
    input_shape: tuple[int, int, int], num_classes: int
) -> nn.Module:
    size = input_shape[1]
    return torchvision.models.detection.fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=num_classes, min_size=size, max_size=size
    )

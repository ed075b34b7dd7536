"""Families of models with depth and width as knobs (``--depth``, ``--width``): what
``dlbench calibrate`` varies to learn how step time follows a model's shape."""

from __future__ import annotations

import torch
from torch import nn


def _split(total: int, parts: int) -> list[int]:
    """``total`` layers over ``parts`` stages, as evenly as possible, at least one each."""
    total = max(total, parts)
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def mlp(
    input_shape: tuple[int, int, int], num_classes: int, depth: int = 3, width: int = 512
) -> nn.Module:
    """``depth`` weight layers: depth - 1 hidden layers of ``width`` units and the output."""
    features = input_shape[0] * input_shape[1] * input_shape[2]
    layers: list[nn.Module] = [nn.Flatten()]
    for _ in range(max(1, depth - 1)):
        layers += [nn.Linear(features, width), nn.ReLU(inplace=True)]
        features = width
    return nn.Sequential(*layers, nn.Linear(features, num_classes))


def vgg(
    input_shape: tuple[int, int, int], num_classes: int, depth: int = 11, width: int = 64
) -> nn.Module:
    """VGG: depth - 3 convolutions over 5 stages (width, 2w, 4w, 8w, 8w), pooling after each
    stage that the input still allows, then 3 fully connected layers."""
    layers: list[nn.Module] = []
    channels, size = input_shape[0], input_shape[1]
    for stage, count in enumerate(_split(depth - 3, 5)):
        out = width * (1, 2, 4, 8, 8)[stage]
        for _ in range(count):
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(inplace=True)]
            channels = out
        if size >= 2:
            layers.append(nn.MaxPool2d(2))
            size //= 2
    head = [
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, 4 * width),
        nn.ReLU(inplace=True),
        nn.Linear(4 * width, 4 * width),
        nn.ReLU(inplace=True),
        nn.Linear(4 * width, num_classes),
    ]
    return nn.Sequential(*layers, *head)


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.skip(x))


def resnet(
    input_shape: tuple[int, int, int], num_classes: int, depth: int = 18, width: int = 64
) -> nn.Module:
    """ResNet with basic blocks: depth = 2 + 2 x blocks, blocks over 4 stages (w, 2w, 4w,
    8w), a 3x3 stem (for small inputs as for large)."""
    blocks = _split(max(4, (depth - 2) // 2), 4)
    layers: list[nn.Module] = [
        nn.Conv2d(input_shape[0], width, 3, 1, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]
    channels = width
    for stage, count in enumerate(blocks):
        out = width * 2**stage
        for i in range(count):
            layers.append(_Basic(channels, out, 2 if i == 0 and stage > 0 else 1))
            channels = out
    return nn.Sequential(
        *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)
    )


class _Inception(nn.Module):
    def __init__(self, cin: int, width: int) -> None:
        super().__init__()
        half = max(1, width // 2)
        self.branches = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(cin, width, 1), nn.ReLU(inplace=True)),
                nn.Sequential(
                    nn.Conv2d(cin, half, 1),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(half, width, 3, padding=1),
                    nn.ReLU(inplace=True),
                ),
                nn.Sequential(
                    nn.Conv2d(cin, half, 1),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(half, half, 5, padding=2),
                    nn.ReLU(inplace=True),
                ),
                nn.Sequential(
                    nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, half, 1), nn.ReLU(inplace=True)
                ),
            ]
        )
        self.out_channels = 2 * width + 2 * half

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def inception(
    input_shape: tuple[int, int, int], num_classes: int, depth: int = 6, width: int = 32
) -> nn.Module:
    """A stem and ``depth`` inception modules (1x1, 3x3, 5x5 and pooling branches of
    ``width`` channels), downsampling after every second module."""
    layers: list[nn.Module] = [
        nn.Conv2d(input_shape[0], width, 3, padding=1),
        nn.ReLU(inplace=True),
    ]
    channels, size = width, input_shape[1]
    for i in range(max(1, depth)):
        module = _Inception(channels, width)
        layers.append(module)
        channels = module.out_channels
        if i % 2 == 1 and size >= 2:
            layers.append(nn.MaxPool2d(2))
            size //= 2
    return nn.Sequential(
        *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)
    )

"""The calculator's question, as model descriptors: from a zoo workload, from a family
description (``--family resnet --depth 50 --width 64 --input 224 --batch 64``, built by the
parametric families ``param-<family>``), or from the user's own module
(``--model-file my_model.py:build``). Every way counts FLOPs and activations on the real
module, built on PyTorch's meta device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlbench.errors import ConfigError

FAMILIES = ("mlp", "vgg", "resnet", "inception")
DEFAULT_BATCH = 64


@dataclass(frozen=True)
class Question:
    workload: str | None = None
    family: str | None = None
    depth: int | None = None
    width: int | None = None
    input_size: int | None = None
    batch_size: int | None = None
    model_file: str | None = None
    channels: int = 3
    num_classes: int | None = None
    precision: str = "fp32"

    def label(self) -> str:
        if self.model_file:
            return self.model_file
        if self.family:
            return f"{self.family} depth {self.depth} width {self.width}"
        return str(self.workload)


def describe(question: Question) -> dict[str, Any]:
    """The question's descriptors (family, depth, width, params, FLOPs per step, activation
    bytes, layers, input size, batch size, precision)."""
    from dlbench.config import build_spec
    from dlbench.engines import torch_describe

    ways = [question.workload is not None, question.family is not None, bool(question.model_file)]
    if sum(ways) != 1:
        raise ConfigError(
            "say which model: a WORKLOAD, or --family with --depth/--width, or --model-file",
            "exactly one of the three",
        )
    if question.model_file:
        size = question.input_size or 224
        described = torch_describe.describe_model_file(
            question.model_file,
            (question.channels, size, size),
            question.num_classes or 1000,
            question.batch_size or DEFAULT_BATCH,
            question.precision,
        )
        described["depth"] = sum(described["layers"].values())  # weight layers
        return described
    if question.family is not None:
        if question.family not in FAMILIES:
            raise ConfigError(
                f"--family {question.family!r} is not one dlbench can build", f"one of {FAMILIES}"
            )
        spec = build_spec(
            workload=f"param-{question.family}",
            depth=question.depth,
            width=question.width,
            image_size=question.input_size,
            batch_size=question.batch_size,
            num_classes=question.num_classes,
            precision=question.precision,
        )
    else:
        if question.depth is not None or question.width is not None:
            raise ConfigError(
                "--depth and --width describe a --family model, not a workload",
                "drop them, or give --family instead of the workload",
            )
        spec = build_spec(
            workload=str(question.workload),
            image_size=question.input_size,
            batch_size=question.batch_size,
            num_classes=question.num_classes,
            precision=question.precision,
        )
    return torch_describe.describe_model(spec)

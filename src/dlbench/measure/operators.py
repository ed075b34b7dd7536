"""What an operator is, framework-free and light (no SciPy, no scikit-learn: a training
process imports it): its kinds and shape fields, one use of it in a model (``OpUse``), and the
FLOPs and bytes of one call, forward and backward, counted from its shape. The engine walks a
model into ``OpUse``s (``dlbench.engines.pytorch.operators``); the operator-level predictor
times them (``dlbench.predict.operators``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

ELEMENT_BYTES = {"fp32": 4, "tf32": 4, "amp-fp16": 2, "amp-bf16": 2}
# The shape fields of each kind, in the order the calibration grid and the walk give them.
SHAPES: dict[str, tuple[str, ...]] = {
    "conv2d": (
        "batch",
        "in_channels",
        "out_channels",
        "kernel",
        "kernel_w",
        "stride",
        "padding",
        "padding_w",
        "groups",
        "size",
    ),  # kernel and padding are the height's; _w the width's (Inception-v3's 1x7 and 7x1)
    "linear": ("rows", "in_features", "out_features"),
    "batchnorm": ("batch", "channels", "size"),
    "pool": ("batch", "channels", "size", "kernel", "stride"),
    "activation": ("elements",),
    "elementwise": ("elements",),
    "attention": ("batch", "heads", "length", "head_dim"),
    "optimizer": ("params", "tensors"),  # SGD with momentum
    # added with the transformers; kept after the older kinds (each kind's grid is seeded by
    # its place here)
    "layernorm": ("rows", "features"),
    "embedding": ("tokens", "vocab", "width"),
    "adam": ("params", "tensors"),  # Adam and AdamW: two moment buffers
}
KINDS = tuple(SHAPES)
# A field older measurements lack, and the field whose value it takes there (square kernels).
SAME_AS = {"kernel_w": "kernel", "padding_w": "padding"}
COMPUTE_KINDS = ("conv2d", "linear", "attention")  # where FLOPs, not bytes, set the time


@dataclass(frozen=True)
class OpUse:
    """One operator in a model's training step (``count`` identical calls)."""

    kind: str
    shape: tuple[tuple[str, int], ...]  # (field, value) in SHAPES[kind] order
    count: int = 1

    @classmethod
    def of(cls, kind: str, count: int = 1, **shape: int) -> OpUse:
        full = complete(kind, shape)
        return cls(kind, tuple((name, int(full[name])) for name in SHAPES[kind]), count)

    @property
    def dims(self) -> dict[str, int]:
        return dict(self.shape)


def complete(kind: str, dims: Mapping[str, int]) -> dict[str, int]:
    """``dims`` with every field of the kind: a square kernel's width is its height."""
    full = dict(dims)
    for field_name, same in SAME_AS.items():
        if field_name in SHAPES.get(kind, ()) and field_name not in full:
            full[field_name] = full[same]
    return full


def _out_size(size: int, kernel: int, stride: int) -> int:
    # "same"-style padding as the families use: the output shrinks by the stride only.
    return max(1, math.ceil(size / max(stride, 1)))


def work(kind: str, dims: Mapping[str, int], element_bytes: int = 4) -> tuple[float, float]:
    """FLOPs and bytes moved by one call, forward and backward together (backward ~ twice
    the forward's FLOPs for the weighted operators; every tensor read and written once in
    each direction for the others)."""
    d = dims
    if kind == "conv2d":
        d = complete(kind, d)
        stride = max(d["stride"], 1)
        out_h = max(1, (d["size"] + 2 * d["padding"] - d["kernel"]) // stride + 1)
        out_w = max(1, (d["size"] + 2 * d["padding_w"] - d["kernel_w"]) // stride + 1)
        window = d["in_channels"] // d["groups"] * d["kernel"] * d["kernel_w"]
        macs = d["batch"] * d["out_channels"] * out_h * out_w * window
        tensors = (
            d["batch"] * d["in_channels"] * d["size"] ** 2
            + d["out_channels"] * window
            + d["batch"] * d["out_channels"] * out_h * out_w
        )
        return 6.0 * macs, 3.0 * tensors * element_bytes
    if kind == "linear":
        macs = d["rows"] * d["in_features"] * d["out_features"]
        tensors = d["rows"] * (d["in_features"] + d["out_features"])
        tensors += d["in_features"] * d["out_features"]
        return 6.0 * macs, 3.0 * tensors * element_bytes
    if kind == "batchnorm":
        elements = d["batch"] * d["channels"] * d["size"] ** 2
        return 10.0 * elements, 5.0 * elements * element_bytes
    if kind == "pool":
        elements = d["batch"] * d["channels"] * d["size"] ** 2
        out = d["batch"] * d["channels"] * _out_size(d["size"], d["kernel"], d["stride"]) ** 2
        return 2.0 * elements * d["kernel"] ** 2 / max(d["stride"], 1) ** 2, 2.0 * (
            elements + out
        ) * element_bytes
    if kind in ("activation", "elementwise"):
        return 3.0 * d["elements"], 5.0 * d["elements"] * element_bytes
    if kind == "attention":
        rows = d["batch"] * d["heads"] * d["length"]
        return 3.0 * 4.0 * rows * d["length"] * d["head_dim"], 12.0 * rows * d[
            "head_dim"
        ] * element_bytes
    if kind == "optimizer":  # SGD with momentum: read weight, gradient, buffer; write two
        return 4.0 * d["params"], 5.0 * d["params"] * 4
    if kind == "adam":  # read weight, gradient, two moments; write weight and two moments
        return 12.0 * d["params"], 7.0 * d["params"] * 4
    if kind == "layernorm":
        elements = d["rows"] * d["features"]
        return 10.0 * elements, 5.0 * elements * element_bytes
    if kind == "embedding":  # gather rows forward; the gradient table zeroed and scattered into
        gathered = d["tokens"] * d["width"]
        return 1.0 * gathered, (3.0 * gathered + 2.0 * d["vocab"] * d["width"]) * element_bytes
    raise ValueError(f"unknown operator kind {kind!r}")


__all__ = ["COMPUTE_KINDS", "ELEMENT_BYTES", "KINDS", "SHAPES", "OpUse", "complete", "work"]

"""One operator timed forward and backward on a device, with the run timer, for ``dlbench
calibrate --ops``: the same calls a training step makes (``torch.nn.functional``, autocast
at the AMP precisions, TF32 only at --precision tf32)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dlbench.engines.pytorch.engine import AMP_DTYPES, _set_tf32, device_sync
from dlbench.frameworks import FRAMEWORKS
from dlbench.measure.operators import complete
from dlbench.measure.timer import time_calls


def _tensor(shape: tuple[int, ...], device: torch.device, grad: bool = True) -> torch.Tensor:
    return torch.randn(shape, device=device, requires_grad=grad)


def _forward(kind: str, dims: dict[str, int], device: torch.device) -> Callable[[], torch.Tensor]:
    """A closure computing one call of the operator on fresh random inputs."""
    d = complete(kind, dims)
    f = nn.functional
    if kind == "conv2d":
        x = _tensor((d["batch"], d["in_channels"], d["size"], d["size"]), device)
        w = _tensor(
            (d["out_channels"], d["in_channels"] // d["groups"], d["kernel"], d["kernel_w"]), device
        )
        padding = (d["padding"], d["padding_w"])
        return lambda: f.conv2d(x, w, stride=d["stride"], padding=padding, groups=d["groups"])
    if kind == "linear":
        x = _tensor((d["rows"], d["in_features"]), device)
        w = _tensor((d["out_features"], d["in_features"]), device)
        b = _tensor((d["out_features"],), device)
        return lambda: f.linear(x, w, b)
    if kind == "batchnorm":
        x = _tensor((d["batch"], d["channels"], d["size"], d["size"]), device)
        w, b = _tensor((d["channels"],), device), _tensor((d["channels"],), device)
        mean, var = (
            torch.zeros(d["channels"], device=device),
            torch.ones(d["channels"], device=device),
        )
        return lambda: f.batch_norm(x, mean, var, w, b, training=True)
    if kind == "pool":
        x = _tensor((d["batch"], d["channels"], d["size"], d["size"]), device)
        pad = d["kernel"] // 2
        return lambda: f.max_pool2d(x, d["kernel"], d["stride"], padding=pad, ceil_mode=True)
    if kind == "activation":
        x = _tensor((d["elements"],), device)
        return lambda: f.relu(x)
    if kind == "elementwise":
        a, b = _tensor((d["elements"],), device), _tensor((d["elements"],), device)
        return lambda: a + b
    if kind == "attention":
        shape = (d["batch"], d["heads"], d["length"], d["head_dim"])
        q, k, v = (_tensor(shape, device) for _ in range(3))
        return lambda: f.scaled_dot_product_attention(q, k, v, is_causal=True)
    if kind == "layernorm":
        x = _tensor((d["rows"], d["features"]), device)
        w, b = _tensor((d["features"],), device), _tensor((d["features"],), device)
        return lambda: f.layer_norm(x, (d["features"],), w, b)
    if kind == "embedding":
        ids = torch.randint(0, d["vocab"], (d["tokens"],), device=device)
        table = _tensor((d["vocab"], d["width"]), device)
        return lambda: f.embedding(ids, table)
    raise ValueError(f"unknown operator kind {kind!r}")


def _optimizer_step(kind: str, d: dict[str, int], device: torch.device) -> Callable[[], None]:
    """SGD with momentum (the CNN families' optimizer) or AdamW (the transformers') over
    ``tensors`` tensors of ``params``."""
    sizes = [d["params"] // d["tensors"]] * d["tensors"]
    sizes[0] += d["params"] - sum(sizes)
    weights = [torch.zeros(max(s, 1), device=device, requires_grad=True) for s in sizes]
    for w in weights:
        w.grad = torch.randn_like(w)
    optimizer: torch.optim.Optimizer = (
        torch.optim.AdamW(weights, lr=1e-3)
        if kind == "adam"
        else torch.optim.SGD(weights, lr=1e-3, momentum=0.9)
    )
    return optimizer.step


def time_operator(
    kind: str,
    dims: dict[str, int],
    device: torch.device,
    autocast: torch.dtype | None,
    sync: Callable[[], None],
    repeats: int,
    budget_s: float,
) -> tuple[list[float], list[float]]:
    """Seconds per forward call and per forward + backward call (after two warm-up calls)."""
    if kind in ("optimizer", "adam"):
        step = _optimizer_step(kind, dims, device)
        time_calls(step, sync, 2, budget_s)
        return [], time_calls(step, sync, repeats, budget_s)
    forward = _forward(kind, dims, device)
    context: Callable[[], Any] = (
        (lambda: torch.autocast(device.type, dtype=autocast)) if autocast else torch.enable_grad
    )

    def forward_only() -> None:
        with context():
            forward()

    def train() -> None:
        with context():
            out = forward()
        out.backward(torch.ones_like(out))

    time_calls(train, sync, 2, budget_s)
    return (
        time_calls(forward_only, sync, repeats, budget_s / 3),
        time_calls(train, sync, repeats, budget_s),
    )


def operator_timer(
    device: str, repeats: int, budget_s: float
) -> Callable[[str, dict[str, int], str], tuple[list[float], list[float]]]:
    """``time_one(kind, shape, precision)`` on ``device`` for ``dlbench calibrate --ops``: a
    shape the device has no memory for is skipped (no calls), not fatal."""
    where = torch.device(device)
    sync = device_sync(where)

    def time_one(
        kind: str, dims: dict[str, int], precision: str
    ) -> tuple[list[float], list[float]]:
        _set_tf32(where, precision == "tf32")
        try:
            return time_operator(
                kind, dims, where, AMP_DTYPES.get(precision), sync, repeats, budget_s
            )
        except torch.OutOfMemoryError:
            if where.type == "cuda":
                torch.cuda.empty_cache()
            return [], []

    return time_one


def supported_precisions(kind: str, check: Callable[[str], None]) -> tuple[str, ...]:
    """The precisions ``check`` accepts of those the device kind runs."""
    offered = {"cpu": ("fp32", "amp-bf16"), "mps": ("fp32", "amp-fp16")}.get(
        kind, FRAMEWORKS["pytorch"].precisions
    )
    found = []
    for precision in offered:
        try:
            check(precision)
        except Exception:  # noqa: BLE001 - the engine says why; here only whether
            continue
        found.append(precision)
    return tuple(found)

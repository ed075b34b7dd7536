"""Operators in PyTorch: which ones a model's forward pass calls, walked on the meta device
(nothing computed), for the operator-level predictor (``dlbench.predict.operators``); their
timing is ``op_timing.py``.

The walk records ATen operators through a ``TorchDispatchMode``, so what a model does outside
its modules (a residual's add, an Inception module's concatenation) counts as much as its
layers; views, copies of metadata and the like cost nothing and are not recorded.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from dlbench.measure.operators import OpUse

ACTIVATIONS = {
    "relu", "relu_", "gelu", "silu", "silu_", "sigmoid", "tanh", "hardtanh", "hardtanh_",
    "leaky_relu", "leaky_relu_", "elu", "hardswish", "threshold",
}  # fmt: skip
ELEMENTWISE = {"add", "add_", "mul", "mul_", "div", "sub", "cat", "native_dropout", "pow"}
POOLS = {
    "max_pool2d_with_indices", "avg_pool2d", "_adaptive_avg_pool2d", "adaptive_max_pool2d",
    "avg_pool3d",
}  # fmt: skip
NORMS = {"native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_functional"}
MATMULS = {"addmm", "mm", "bmm"}
ATTENTION = {
    "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_attention_math",
}  # fmt: skip


def _size(t: torch.Tensor) -> int:
    return int(t.shape[-1]) if t.dim() >= 3 else 1


def _pair(value: Any) -> int:
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def _second(value: Any) -> int:
    return int(value[-1] if isinstance(value, (list, tuple)) else value)


def classify(name: str, args: tuple[Any, ...], out: Any) -> OpUse | None:
    """The operator a forward ATen call is, with its shape; None for free ones."""
    first = args[0] if args and isinstance(args[0], torch.Tensor) else None
    result = out[0] if isinstance(out, (tuple, list)) else out
    if name == "convolution":
        x, w = args[0], args[1]
        return OpUse.of(
            "conv2d",
            batch=x.shape[0], in_channels=x.shape[1], out_channels=w.shape[0],
            kernel=w.shape[-2], kernel_w=w.shape[-1], stride=_pair(args[3]),
            padding=_pair(args[4]), padding_w=_second(args[4]), groups=int(args[8]),
            size=_size(x),
        )  # fmt: skip
    if name in MATMULS:
        a = args[1] if name == "addmm" else args[0]
        b = args[2] if name == "addmm" else args[1]
        rows = a.shape[0] * (a.shape[1] if name == "bmm" else 1)
        return OpUse.of("linear", rows=rows, in_features=a.shape[-1], out_features=b.shape[-1])
    if name in NORMS and first is not None:
        return OpUse.of(
            "batchnorm", batch=first.shape[0], channels=first.shape[1], size=_size(first)
        )
    if name in POOLS and first is not None and first.dim() == 4:
        kernel = (
            _pair(args[1]) if len(args) > 1 and name != "_adaptive_avg_pool2d" else _size(first)
        )
        stride = _pair(args[2]) if len(args) > 2 and args[2] else kernel
        return OpUse.of(
            "pool", batch=first.shape[0], channels=first.shape[1], size=_size(first),
            kernel=kernel, stride=stride,
        )  # fmt: skip
    if name == "native_layer_norm" and first is not None:
        features = int(first.shape[-1])
        return OpUse.of("layernorm", rows=first.numel() // max(features, 1), features=features)
    if name == "embedding" and len(args) > 1:
        table, ids = args[0], args[1]
        return OpUse.of("embedding", tokens=ids.numel(), vocab=table.shape[0], width=table.shape[1])
    if name in ATTENTION and first is not None:
        q = first
        return OpUse.of(
            "attention", batch=q.shape[0], heads=q.shape[1], length=q.shape[2], head_dim=q.shape[3]
        )
    if isinstance(result, torch.Tensor) and result.numel() > 1:
        if name in ACTIVATIONS:
            return OpUse.of("activation", elements=result.numel())
        if name in ELEMENTWISE:
            return OpUse.of("elementwise", elements=result.numel())
    return None


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.uses: Counter[tuple[str, tuple[tuple[str, int], ...]]] = Counter()
        self.in_attention = False  # inside one scaled_dot_product_attention call

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        use = None if self.in_attention else classify(func.overloadpacket.__name__, args, out)
        if use is not None:
            self.uses[(use.kind, use.shape)] += 1
        return out


class _AttentionCalls(TorchFunctionMode):
    """``scaled_dot_product_attention`` as one attention operator: on the meta device (and
    wherever no fused kernel applies) it decomposes into matrix products and a softmax that
    the device, running a fused kernel, does not run."""

    def __init__(self, recorder: _Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func is not nn.functional.scaled_dot_product_attention or self.recorder.in_attention:
            return func(*args, **(kwargs or {}))
        q = args[0]
        use = OpUse.of(
            "attention", batch=q.shape[0], heads=q.shape[1], length=q.shape[2], head_dim=q.shape[3]
        )
        self.recorder.uses[(use.kind, use.shape)] += 1
        self.recorder.in_attention = True
        try:
            return func(*args, **(kwargs or {}))
        finally:
            self.recorder.in_attention = False


def example_input(model: nn.Module, input_shape: tuple[int, ...], batch: int) -> torch.Tensor:
    """A batch for ``model`` on its own device: token ids (batch, seq_len) for a language
    model (``takes_tokens``, its input shape (1, seq_len, 1)), else images."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if getattr(model, "takes_tokens", False):
        return torch.zeros(batch, input_shape[1], dtype=torch.long, device=device)
    return torch.empty(batch, *input_shape, device=device)


def walk(
    model: nn.Module, input_shape: tuple[int, ...], batch: int, optimizer: str = "sgd"
) -> tuple[OpUse, ...]:
    """The operators of one training step of ``model`` on a batch of ``input_shape``: every
    forward operator (its backward is measured with it) and the optimizer's update (Adam's
    and AdamW's as "adam", the others' as SGD with momentum's). Runs on the model's own
    device; build it on meta to compute nothing."""
    images = example_input(model, input_shape, batch)
    recorder = _Recorder()
    with _AttentionCalls(recorder), recorder:
        model(images)
    params = [p for p in model.parameters() if p.requires_grad]
    uses = [OpUse(kind, shape, count) for (kind, shape), count in sorted(recorder.uses.items())]
    if params:
        kind = "adam" if optimizer in ("adam", "adamw") else "optimizer"
        uses.append(OpUse.of(kind, params=sum(p.numel() for p in params), tensors=len(params)))
    return tuple(uses)

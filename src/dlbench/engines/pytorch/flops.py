"""FLOPs of a training step, counted on the real model by PyTorch's ``FlopCounterMode``, and
which attention kernel (SDPA backend) a model's step actually calls.

``FlopCounterMode`` knows the CUDA attention kernels but not the CPU's flash kernel; its
formula is registered here (the same count, full attention: causal masking saves work that
the standard 12 x layers x width x seq_len count does not subtract either).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils import flop_counter
from torch.utils._python_dispatch import TorchDispatchMode

_aten = torch.ops.aten
# ATen kernel -> SDPA backend, as torch.nn.attention.SDPBackend names them
ATTENTION_BACKENDS = {
    "_scaled_dot_product_flash_attention": "flash",
    "_scaled_dot_product_flash_attention_for_cpu": "flash (CPU)",
    "_scaled_dot_product_efficient_attention": "memory-efficient",
    "_scaled_dot_product_cudnn_attention": "cudnn",
    "_scaled_dot_product_attention_math": "math",
    "_scaled_dot_product_fused_attention_overrideable": "overrideable",
}


def _register_cpu_attention() -> None:
    forward = _aten._scaled_dot_product_flash_attention_for_cpu
    if forward in flop_counter.flop_registry:
        return

    @flop_counter.register_flop_formula(forward)
    def _forward(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
        return int(flop_counter.sdpa_flop_count(query, key, value))

    @flop_counter.register_flop_formula(_aten._scaled_dot_product_flash_attention_for_cpu_backward)
    def _backward(grad: Any, query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
        return int(flop_counter.sdpa_backward_flop_count(grad, query, key, value))


_register_cpu_attention()


def count_step(model: nn.Module, loss: Callable[[], torch.Tensor]) -> tuple[int, tuple[str, ...]]:
    """FLOPs of the forward and backward pass of ``loss()`` and the SDPA backends its forward
    called (first called first; () without attention), gradients cleared after."""
    kernels = _AttentionKernels()
    try:
        with flop_counter.FlopCounterMode(display=False) as counter, kernels:
            loss().backward()
    finally:
        model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops()), tuple(kernels.seen)


class _AttentionKernels(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        name = func.overloadpacket.__name__
        if name in ATTENTION_BACKENDS and ATTENTION_BACKENDS[name] not in self.seen:
            self.seen.append(ATTENTION_BACKENDS[name])
        return func(*args, **(kwargs or {}))

"""The key/value cache of a decoder's attention layers, for generation: what the prompt's
prefill fills and every decoded token reads and extends."""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values of every layer for up to ``capacity`` positions, filled as tokens come:
    2 x layers x kv_heads x head width x capacity x batch values, allocated once."""

    def __init__(
        self,
        layers: int,
        kv_heads: int,
        head_width: int,
        batch: int,
        capacity: int,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> None:
        shape = (layers, batch, kv_heads, capacity, head_width)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.capacity = capacity
        self.length = 0  # positions filled, all layers alike

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.values.nbytes

    def append(
        self, layer: int, keys: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's keys and values after those before; every position's so far."""
        start, end = self.length, self.length + keys.shape[2]
        if end > self.capacity:
            raise ValueError(f"the cache holds {self.capacity} positions, not {end}")
        self.keys[layer, :, :, start:end] = keys
        self.values[layer, :, :, start:end] = values
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

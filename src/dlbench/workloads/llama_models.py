"""Llama-architecture decoders (PyTorch): the ``llama`` workload and the published models it
copies (``workloads/llama_configs.py``), built from a configuration with random weights.

Pre-norm blocks: RMSNorm, attention with rotary position embeddings (RoPE) on queries and
keys and grouped-query attention (``kv_heads`` key/value heads, each serving
``heads / kv_heads`` query heads) through ``scaled_dot_product_attention``, residual; RMSNorm,
SwiGLU MLP (``down(silu(gate(x)) * up(x))``), residual; a final RMSNorm and the output head,
untied from the token embedding unless the configuration ties them. No linear layer has a bias
but Qwen2's query/key/value projections. ``forward`` takes a ``KVCache`` to generate: the
prompt fills it in one pass (prefill), then each new token attends to all before it (decode).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlbench.workloads.kv_cache import KVCache
from dlbench.workloads.llama_configs import LLAMA_CONFIGS, LlamaConfig

# scaled_dot_product_attention shares key/value heads itself from torch 2.5 (enable_gqa);
# before, they are repeated to the query heads' count.
_NATIVE_GQA = tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 5)


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In float32, as Llama's reference does, whatever the autocast precision.
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


def rotary_tables(
    head_width: int, positions: int, theta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of each position's angle for each channel pair, (positions, head_width)."""
    inverse = 1.0 / theta ** (torch.arange(0, head_width, 2, dtype=torch.float32) / head_width)
    angles = torch.outer(torch.arange(positions, dtype=torch.float32), inverse)
    angles = torch.cat((angles, angles), dim=-1)  # the half-split layout of Llama's HF weights
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on (batch, heads, length, head_width), each channel pair turned by its angle."""
    half = x.shape[-1] // 2
    turned = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos.to(x.dtype) + turned * sin.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, config: LlamaConfig, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.heads, self.kv_heads, self.head_width = (
            config.heads, config.kv_heads, config.head_width
        )  # fmt: skip
        bias = config.qkv_bias
        self.q_proj = nn.Linear(config.width, config.heads * self.head_width, bias=bias)
        self.k_proj = nn.Linear(config.width, config.kv_heads * self.head_width, bias=bias)
        self.v_proj = nn.Linear(config.width, config.kv_heads * self.head_width, bias=bias)
        self.o_proj = nn.Linear(config.heads * self.head_width, config.width, bias=False)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None
    ) -> torch.Tensor:
        batch, length, _ = x.shape
        q = self.q_proj(x).view(batch, length, self.heads, self.head_width).transpose(1, 2)
        k = self.k_proj(x).view(batch, length, self.kv_heads, self.head_width).transpose(1, 2)
        v = self.v_proj(x).view(batch, length, self.kv_heads, self.head_width).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        # A prompt (several new positions) is causal within itself; one new token attends to
        # every position before it. A cache is filled by one prompt, then one token at a time.
        causal = length > 1
        if cache is not None:
            k, v = cache.append(self.layer, k, v)
        y = _attend(q, k, v, causal, self.heads // self.kv_heads)
        return self.o_proj(y.transpose(1, 2).reshape(batch, length, -1))


def _attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, groups: int
) -> torch.Tensor:
    attention = nn.functional.scaled_dot_product_attention
    if groups == 1:
        return attention(q, k, v, is_causal=causal)
    if _NATIVE_GQA:
        return attention(q, k, v, is_causal=causal, enable_gqa=True)
    k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return attention(q, k, v, is_causal=causal)


class SwiGLU(nn.Module):
    def __init__(self, width: int, inner: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(width, inner, bias=False)
        self.up_proj = nn.Linear(width, inner, bias=False)
        self.down_proj = nn.Linear(inner, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, config: LlamaConfig, layer: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.width, config.norm_eps)
        self.self_attn = Attention(config, layer)
        self.post_attention_layernorm = RMSNorm(config.width, config.norm_eps)
        self.mlp = SwiGLU(config.width, config.ffn)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    """Token ids (batch, length) in, next-token logits (batch, length, vocab) out."""

    takes_tokens = True  # what describes and walks it feeds it token ids, not images

    def __init__(self, config: LlamaConfig, seq_len: int) -> None:
        super().__init__()
        self.config, self.seq_len = config, seq_len
        self.embed_tokens = nn.Embedding(config.vocab, config.width)
        self.layers = nn.ModuleList(Block(config, layer) for layer in range(config.depth))
        self.norm = RMSNorm(config.width, config.norm_eps)
        self.lm_head = nn.Linear(config.width, config.vocab, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        cos, sin = rotary_tables(config.head_width, seq_len, config.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(_init)
        for name, param in self.named_parameters():  # residual projections, as in GPT-2
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.depth))

    def new_cache(self, batch: int, capacity: int, dtype: torch.dtype | None = None) -> KVCache:
        """An empty cache for ``batch`` sequences of up to ``capacity`` tokens, on the model's
        device, in its dtype unless given (autocast's, for mixed precision)."""
        weight, config = self.embed_tokens.weight, self.config
        return KVCache(
            config.depth, config.kv_heads, config.head_width, batch, capacity,
            dtype or weight.dtype, weight.device,
        )  # fmt: skip

    @property
    def vocab(self) -> int:
        return self.config.vocab

    def rope_cos_sin(self, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = self.get_buffer("rope_cos"), self.get_buffer("rope_sin")
        return cos[start:end], sin[start:end]

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        start = cache.length if cache is not None else 0
        end = start + tokens.shape[1]
        if end > self.seq_len:
            raise ValueError(f"position {end} is past the model's {self.seq_len} (--seq-len)")
        cos, sin = self.rope_cos_sin(start, end)
        x = self.embed_tokens(tokens)
        for block in self.layers:
            x = block(x, cos, sin, cache)
        if cache is not None:
            cache.length = end
        logits: torch.Tensor = self.lm_head(self.norm(x))
        return logits


def _init(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def build(
    name: str, input_shape: tuple[int, int, int], num_classes: int, **overrides: int
) -> Llama:
    """``name``'s configuration (``LLAMA_CONFIGS``) with the run's overrides (depth, width,
    heads, kv_heads) and its vocabulary (``num_classes``) and sequence length."""
    config = LLAMA_CONFIGS[name].with_overrides(vocab=num_classes, **overrides)
    problem = config.problem()
    if problem:
        raise ValueError(problem)
    return Llama(config, input_shape[1])


def llama(input_shape: tuple[int, int, int], num_classes: int, **overrides: int) -> nn.Module:
    return build("llama", input_shape, num_classes, **overrides)


def llama_3_2_1b(
    input_shape: tuple[int, int, int], num_classes: int, **overrides: int
) -> nn.Module:
    return build("llama-3.2-1b", input_shape, num_classes, **overrides)


def llama_3_2_3b(
    input_shape: tuple[int, int, int], num_classes: int, **overrides: int
) -> nn.Module:
    return build("llama-3.2-3b", input_shape, num_classes, **overrides)


def qwen2_5_0_5b(
    input_shape: tuple[int, int, int], num_classes: int, **overrides: int
) -> nn.Module:
    return build("qwen2.5-0.5b", input_shape, num_classes, **overrides)

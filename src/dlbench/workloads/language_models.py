"""GPT-2-style decoder language models (PyTorch), sized by depth, width, sequence length and
vocabulary: the ``gpt`` workload and the ``param-transformer`` calibration family.

Pre-norm blocks (layer norm, causal self-attention through
``scaled_dot_product_attention``, residual; layer norm, GELU MLP of 4 x width, residual), a
final layer norm, and the output projection tied to the token embedding, as in GPT-2.
The builder takes ``(input_shape, num_classes)`` like every builder: ``input_shape[1]`` is
the sequence length and ``num_classes`` the vocabulary. ``forward`` takes a ``KVCache`` to
generate, as the llama models do.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlbench.workloads.kv_cache import KVCache

HEAD_WIDTH = 64  # GPT-2's head width: heads = width / 64


def heads_of(width: int) -> int:
    return max(1, width // HEAD_WIDTH)


class CausalSelfAttention(nn.Module):
    def __init__(self, width: int, heads: int, layer: int = 0) -> None:
        super().__init__()
        self.heads, self.layer = heads, layer
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        shape = (batch, length, self.heads, width // self.heads)
        q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))
        if cache is not None:  # a prompt fills it, causal within itself; a token reads it all
            k, v = cache.append(self.layer, k, v)
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=length > 1)
        return self.proj(y.transpose(1, 2).contiguous().view(batch, length, width))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, layer: int = 0) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads, layer)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"), nn.Linear(4 * width, width)
        )

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Token ids (batch, length) in, next-token logits (batch, length, vocab) out."""

    takes_tokens = True  # what describes and walks it feeds it token ids, not images

    def __init__(self, vocab: int, seq_len: int, depth: int, width: int) -> None:
        super().__init__()
        self.seq_len, self.width, self.vocab = seq_len, width, vocab
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(seq_len, width)
        self.blocks = nn.ModuleList(Block(width, heads_of(width), i) for i in range(depth))
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.wte.weight  # tied, as in GPT-2
        self.apply(self._init)
        # GPT-2: residual projections scaled by 1/sqrt(2 x layers)
        for name, param in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * depth))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def new_cache(self, batch: int, capacity: int, dtype: torch.dtype | None = None) -> KVCache:
        """An empty cache for ``batch`` sequences of up to ``capacity`` tokens, on the model's
        device, in its dtype unless given (autocast's, for mixed precision)."""
        weight, heads = self.wte.weight, heads_of(self.width)
        return KVCache(
            len(self.blocks), heads, self.width // heads, batch, capacity,
            dtype or weight.dtype, weight.device,
        )  # fmt: skip

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        start = cache.length if cache is not None else 0
        end = start + tokens.shape[1]
        if end > self.seq_len:
            raise ValueError(f"position {end} is past the model's {self.seq_len} (--seq-len)")
        x = self.wte(tokens) + self.wpe(torch.arange(start, end, device=tokens.device))
        for block in self.blocks:
            x = block(x, cache)
        if cache is not None:
            cache.length = end
        logits: torch.Tensor = self.head(self.ln_f(x))
        return logits


def gpt(
    input_shape: tuple[int, int, int], num_classes: int, depth: int = 12, width: int = 768
) -> nn.Module:
    """GPT-2 small at the defaults (12 x 768, 1,024 tokens, vocabulary 50,257: 124 M
    parameters)."""
    return GPT(num_classes, input_shape[1], depth, width)


def transformer(
    input_shape: tuple[int, int, int], num_classes: int, depth: int = 4, width: int = 256
) -> nn.Module:
    """The calibration family: the same decoder, small by default."""
    return GPT(num_classes, input_shape[1], depth, width)


def standard_train_flops(params: int, seq_len: int, vocab: int, depth: int, width: int) -> int:
    """FLOPs per training step *per sequence* by the standard count (Kaplan et al. 2020;
    PaLM, appendix B; nanoGPT's ``estimate_mfu``): 6 N per token with N the parameters less
    the position embeddings, plus 12 x layers x width x seq_len per token for attention."""
    n = params - seq_len * width
    return (6 * n + 12 * depth * width * seq_len) * seq_len

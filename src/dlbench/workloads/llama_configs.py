"""Llama-architecture configurations: the ``llama`` workload's and the published models' it
copies, without torch (the options are checked against them before any framework loads).

The published figures are each model's ``config.json`` on the Hugging Face Hub:
meta-llama/Llama-3.2-1B and meta-llama/Llama-3.2-3B (hidden_size, intermediate_size,
num_hidden_layers, num_attention_heads, num_key_value_heads, vocab_size, rope_theta,
tie_word_embeddings, rms_norm_eps) and Qwen/Qwen2.5-0.5B (the same keys; its query, key and
value projections carry biases). Their parameter counts, which the builder reproduces exactly
(tests/workloads/test_llama.py), are the model cards': 1,235,814,400, 3,212,749,824 and
494,032,768. Llama 3.2's rope scaling (rope_type llama3) changes the rotary frequencies only,
not a FLOP or a byte: it is left out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

FFN_MULTIPLE = 64  # an overridden width's MLP is rounded up to whole 64-wide columns


@dataclass(frozen=True)
class LlamaConfig:
    vocab: int
    depth: int  # decoder blocks
    width: int  # hidden size
    heads: int  # query heads; head width = width / heads
    kv_heads: int  # key/value heads, each shared by heads / kv_heads query heads (GQA)
    ffn: int  # SwiGLU's inner width (intermediate_size)
    rope_theta: float
    tie_embeddings: bool  # the output head is the token embedding (Llama 3.2 1B, 3B; Qwen)
    qkv_bias: bool = False  # Qwen2's query/key/value projections have biases
    norm_eps: float = 1e-5
    seq_len: int = 2048  # the workload's default --seq-len (the models take far longer)

    @property
    def head_width(self) -> int:
        return self.width // self.heads

    def with_overrides(
        self,
        depth: int | None = None,
        width: int | None = None,
        heads: int | None = None,
        kv_heads: int | None = None,
        vocab: int | None = None,
    ) -> LlamaConfig:
        """This configuration with --depth, --width, --heads, --kv-heads, --vocab applied; a
        new width keeps the MLP's ratio to it, rounded up to whole 64-wide columns."""
        changed = dataclasses.replace(
            self,
            depth=depth or self.depth,
            width=width or self.width,
            heads=heads or self.heads,
            kv_heads=kv_heads or self.kv_heads,
            vocab=vocab or self.vocab,
        )
        if width and width != self.width:
            ffn = -(-self.ffn * width // self.width // FFN_MULTIPLE) * FFN_MULTIPLE
            changed = dataclasses.replace(changed, ffn=ffn)
        return changed

    def problem(self) -> str | None:
        """Why these heads cannot split this width, or None."""
        if self.width % self.heads:
            return f"--width {self.width} is not whole --heads {self.heads} wide heads"
        if self.head_width % 2:
            return (
                f"a head is {self.head_width} wide (--width / --heads): rotary embeddings turn "
                "pairs of channels, so it must be even"
            )
        if self.heads % self.kv_heads:
            return (
                f"--heads {self.heads} cannot share --kv-heads {self.kv_heads} key/value heads "
                "evenly (give a divisor of --heads)"
            )
        return None

    def kv_cache_bytes(self, tokens: int, batch: int, bytes_per_value: int) -> int:
        """Keys and values of every layer for ``tokens`` positions of ``batch`` sequences:
        2 x layers x kv_heads x head width x tokens x batch x bytes."""
        return 2 * self.depth * self.kv_heads * self.head_width * tokens * batch * bytes_per_value


LLAMA_CONFIGS: dict[str, LlamaConfig] = {
    # A small decoder of the same architecture, sized for a CPU: 4 blocks of 256, 4 query heads
    # sharing 2 key/value heads, Llama's 8/3 MLP ratio, Llama 2's 32,000-token vocabulary.
    "llama": LlamaConfig(
        vocab=32_000,
        depth=4,
        width=256,
        heads=4,
        kv_heads=2,
        ffn=704,
        rope_theta=10_000.0,
        tie_embeddings=False,
        seq_len=512,
    ),  # fmt: skip
    "llama-3.2-1b": LlamaConfig(
        vocab=128_256,
        depth=16,
        width=2048,
        heads=32,
        kv_heads=8,
        ffn=8192,
        rope_theta=500_000.0,
        tie_embeddings=True,
    ),  # fmt: skip
    "llama-3.2-3b": LlamaConfig(
        vocab=128_256,
        depth=28,
        width=3072,
        heads=24,
        kv_heads=8,
        ffn=8192,
        rope_theta=500_000.0,
        tie_embeddings=True,
    ),  # fmt: skip
    "qwen2.5-0.5b": LlamaConfig(
        vocab=151_936,
        depth=24,
        width=896,
        heads=14,
        kv_heads=2,
        ffn=4864,
        rope_theta=1_000_000.0,
        tie_embeddings=True,
        qkv_bias=True,
        norm_eps=1e-6,
    ),  # fmt: skip
}

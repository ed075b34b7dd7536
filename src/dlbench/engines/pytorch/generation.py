"""Greedy autoregressive generation with a KV cache, timed as a request batch
(``dlbench generate``).

The prompt fills the cache in one forward pass (prefill) whose last position gives the first
token; each further token is one forward pass of the token before it against the cache
(decode). The device is synchronised before the request and after every token, so each
token's clock reading is when it was ready, as a streaming server would send it.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from typing import Any

import torch

from dlbench.errors import EngineUnavailable
from dlbench.measure.generation import Generated, RequestTimes


def greedy(
    model: Any,
    prompt: torch.Tensor,
    gen_len: int,
    sync: Callable[[], None],
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
    cache_dtype: torch.dtype | None = None,
    forward: Callable[..., torch.Tensor] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    cache: Any = None,
) -> tuple[torch.Tensor, RequestTimes]:
    """``gen_len`` tokens after each of ``prompt``'s (batch, length) sequences, the most
    likely each time: the tokens (batch, gen_len) and when each was ready. ``forward`` is the
    module that computes (a compiled one), ``model`` the one that makes the cache; ``cache``,
    one to reuse (emptied first), as a server keeps its KV memory from request to request."""
    forward = forward if forward is not None else model  # a compiled module has no len()
    batch, prompt_len = prompt.shape
    if cache is None:
        cache = model.new_cache(batch, prompt_len + gen_len, cache_dtype)
    cache.length = 0  # positions are written before they are read: no need to zero them
    ready: list[float] = []
    tokens: list[torch.Tensor] = []
    with torch.inference_mode(), autocast():
        sync()
        submitted = clock()
        logits = forward(prompt, cache)
        for step in range(gen_len):
            if step:
                logits = forward(tokens[-1][:, None], cache)
            tokens.append(logits[:, -1].argmax(dim=-1))
            sync()
            ready.append(clock())
    return torch.stack(tokens, dim=1), RequestTimes(submitted, tuple(ready), prompt_len, batch)


def request(engine: Any, prompt_len: int, gen_len: int) -> Generated:
    """One request batch on a set-up TorchEngine: ``batch_size`` prompts of random tokens (the
    same at every request: the run's seed), generated greedily into a KV cache allocated at
    the first request and reused by the next (a fresh one each time would time the allocator:
    its page faults made a CPU prefill up to a third slower, by the run)."""
    model = engine.model
    if not hasattr(model, "new_cache"):
        raise EngineUnavailable(
            f"{engine.spec.workload} keeps no KV cache to generate with",
            "dlbench generate runs gpt, param-transformer and the llama workloads",
        )
    prompt = getattr(engine, "_prompt", None)
    if prompt is None or prompt.shape[1] != prompt_len:
        seeded = torch.Generator().manual_seed(engine.spec.seed)
        shape = (int(engine.spec.batch_size), prompt_len)
        prompt = torch.randint(0, model.vocab, shape, generator=seeded)
        prompt = engine._prompt = prompt.to(engine.device)
    cache = getattr(engine, "_cache", None)
    if cache is None or cache.capacity != prompt_len + gen_len:
        cache = engine._cache = model.new_cache(
            prompt.shape[0], prompt_len + gen_len, engine.amp_dtype
        )
    tokens, times = greedy(
        model,
        prompt,
        gen_len,
        engine.sync,
        engine._autocast,
        forward=engine.step_model,
        cache=cache,
    )
    digest = hashlib.sha256(tokens.cpu().numpy().tobytes()).hexdigest()[:16]
    return Generated(digest, times, cache.nbytes)  # what the cache holds, as allocated

"""Figures of autoregressive generation from clock readings: time to first token, time per
output token, inter-token latencies, prefill and decode tokens/s, with 95% intervals over
repetitions of a request batch.

The first output token belongs to the prefill, as vLLM's benchmark_serving and
optimum-benchmark count it: time to first token (TTFT) is from the request to the first
token, and the prefill's tokens/s is the prompt's tokens (all sequences) over it. The decode
is every token after the first: its tokens/s is (G - 1) x batch over the time from the first
token to the last, and the time per output token (TPOT) is that time over G - 1. An
inter-token latency (ITL) is the gap between two consecutive tokens. llama-bench's ``pp`` and
``tg`` figures time the prompt alone and the generation alone in separate tests; its ``tg``
is close to the decode tokens/s here, its ``pp`` to the prefill's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlbench.measure.stats import half_width, speed_interval


@dataclass(frozen=True)
class RequestTimes:
    """One request batch: when it was submitted and when each output token was ready (every
    sequence's i-th token at once, on a device that generates the batch together)."""

    submitted_s: float
    token_ready_s: tuple[float, ...]
    prompt_tokens: int  # per sequence
    batch: int

    def __post_init__(self) -> None:
        if not self.token_ready_s:
            raise ValueError("a request produced no token")
        times = (self.submitted_s, *self.token_ready_s)
        if any(later < earlier for earlier, later in zip(times, times[1:], strict=False)):
            raise ValueError("token times go backwards")

    @property
    def output_tokens(self) -> int:
        return len(self.token_ready_s)

    @property
    def ttft_s(self) -> float:
        return self.token_ready_s[0] - self.submitted_s

    @property
    def e2e_s(self) -> float:
        return self.token_ready_s[-1] - self.submitted_s

    @property
    def decode_s(self) -> float:
        return self.token_ready_s[-1] - self.token_ready_s[0]

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first; None for a single token."""
        after_first = self.output_tokens - 1
        return self.decode_s / after_first if after_first else None

    @property
    def itl_s(self) -> tuple[float, ...]:
        ready = self.token_ready_s
        return tuple(later - earlier for earlier, later in zip(ready, ready[1:], strict=False))

    @property
    def prefill_tokens_per_s(self) -> float:
        return self.prompt_tokens * self.batch / self.ttft_s

    @property
    def decode_tokens_per_s(self) -> float | None:
        after_first = self.output_tokens - 1
        if not after_first or self.decode_s <= 0:
            return None
        return after_first * self.batch / self.decode_s


@dataclass(frozen=True)
class Generated:
    """One request batch as the engine reports it: its clock readings, a digest of the tokens
    it produced (greedy decoding of one prompt gives the same tokens every time) and the bytes
    of the KV cache it filled."""

    tokens_digest: str
    times: RequestTimes
    kv_cache_bytes: int


@dataclass(frozen=True)
class Figure:
    """A figure's mean over the repetitions, its 95% Student-t interval (None below two) and,
    for latencies, percentiles of every observation."""

    mean: float
    ci95: tuple[float, float] | None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


def duration(values: Sequence[float], interval: bool = True) -> Figure | None:
    """A latency's mean, p50/p95/p99 and the 95% Student-t interval of its mean, whose lower
    end is at least the shortest observed (noise only adds time, as for step times): never
    below zero. ``interval=False`` where the values are not independent draws."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return None
    mean, half = float(data.mean()), half_width(data)
    ci95 = (max(mean - half, float(data.min())), mean + half)
    p50, p95, p99 = (float(np.percentile(data, q)) for q in (50, 95, 99))
    return Figure(mean, ci95 if interval and np.isfinite(half) else None, p50, p95, p99)


def rate(tokens: int, durations_s: Sequence[float]) -> Figure | None:
    """Tokens/s as the speeds of steps are: the same ``tokens`` each request over the mean
    duration (not a mean of per-request rates, which favours the fast ones), its interval
    the duration's mapped through tokens / t (``speed_interval``: 0 < low <= mean <= high)."""
    times = np.asarray(durations_s, dtype=np.float64)
    if times.size == 0 or float(times.min()) <= 0:
        return None
    return Figure(tokens / float(times.mean()), speed_interval(times, tokens))


@dataclass(frozen=True)
class GenerationStats:
    requests: int  # repetitions of the request batch, timed
    ttft_s: Figure
    e2e_s: Figure
    prefill_tokens_per_s: Figure
    tpot_s: Figure | None  # None when each sequence generated one token
    itl_s: Figure | None  # percentiles over every gap of every request
    decode_tokens_per_s: Figure | None


def generation_stats(requests: Sequence[RequestTimes]) -> GenerationStats:
    """Over timed repetitions of one request batch (the same prompt and output lengths):
    latencies per request, tokens/s from their mean durations. Inter-token latencies are
    pooled over every gap of every request for their percentiles; consecutive gaps are not
    independent draws, so they get no interval (TPOT carries the per-request one)."""
    if not requests:
        raise ValueError("no request was timed")
    first = requests[0]
    if any((r.prompt_tokens, r.batch, r.output_tokens) != (first.prompt_tokens, first.batch,
           first.output_tokens) for r in requests):  # fmt: skip
        raise ValueError("the requests differ in shape: their figures cannot be pooled")
    ttft = duration([r.ttft_s for r in requests])
    e2e = duration([r.e2e_s for r in requests])
    prefill = rate(first.prompt_tokens * first.batch, [r.ttft_s for r in requests])
    if ttft is None or e2e is None or prefill is None:
        raise ValueError("a request took no time: the clock did not advance")
    after_first = first.output_tokens - 1
    return GenerationStats(
        requests=len(requests),
        ttft_s=ttft,
        e2e_s=e2e,
        prefill_tokens_per_s=prefill,
        tpot_s=duration([r.tpot_s for r in requests if r.tpot_s is not None]),
        itl_s=duration([gap for r in requests for gap in r.itl_s], interval=False),
        decode_tokens_per_s=(
            rate(after_first * first.batch, [r.decode_s for r in requests]) if after_first else None
        ),
    )


@dataclass(frozen=True)
class GenerationSummary:
    """A generation run's ``generation`` document, as readers take it."""

    prompt_len: int
    gen_len: int
    batch: int
    kv_cache_bytes: int
    deterministic: bool  # every timed request gave the same tokens
    tokens_digest: str
    stats: GenerationStats


def figure_from(value: Any) -> Figure | None:
    """A stored figure (a mapping of mean, ci95 and percentiles) as a record."""
    if value is None:
        return None
    ci95 = value.get("ci95")
    quantiles = (value.get(q) for q in ("p50", "p95", "p99"))
    low_high = (float(ci95[0]), float(ci95[1])) if ci95 else None
    return Figure(
        float(value["mean"]), low_high, *(None if q is None else float(q) for q in quantiles)
    )


def generation_from(document: Any) -> GenerationSummary | None:
    """The stored document as a record (None for a run that generated nothing)."""
    if not document:
        return None

    ttft, e2e, prefill = (
        figure_from(document[k]) for k in ("ttft_s", "e2e_s", "prefill_tokens_per_s")
    )
    if ttft is None or e2e is None or prefill is None:
        raise ValueError("a generation document without its first token's figures")
    return GenerationSummary(
        prompt_len=int(document["prompt_len"]),
        gen_len=int(document["gen_len"]),
        batch=int(document["batch"]),
        kv_cache_bytes=int(document["kv_cache_bytes"]),
        deterministic=bool(document["deterministic"]),
        tokens_digest=str(document["tokens_digest"]),
        stats=GenerationStats(
            requests=int(document["requests"]),
            ttft_s=ttft,
            e2e_s=e2e,
            prefill_tokens_per_s=prefill,
            tpot_s=figure_from(document.get("tpot_s")),
            itl_s=figure_from(document.get("itl_s")),
            decode_tokens_per_s=figure_from(document.get("decode_tokens_per_s")),
        ),
    )

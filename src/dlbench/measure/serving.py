"""Figures of a model server under load (``dlbench serve-bench``), from what its client saw of
each streamed request, as vLLM's benchmark_serving counts them:

- time to first token (TTFT): from sending the request to the first chunk that carries text;
- time per output token (TPOT): (end-to-end - TTFT) / (output tokens - 1), per request; none
  where all the text came in one chunk (the client saw no decode to divide);
- inter-token latency (ITL): the gap between two consecutive chunks that carry text (a server
  that sends several tokens in one chunk makes fewer, longer gaps);
- end-to-end latency: from sending the request to the end of its stream;
- request/s and output tokens/s: completed requests and their output tokens over the time from
  the first request sent to the last stream ended;
- goodput: completed requests/s that met every SLO asked (``--slo ttft=2s,tpot=200ms``).

Latencies carry the 95% Student-t interval of their mean over the completed requests (each a
draw of the server's answer to the load), and p50/p95/p99; ITL pools every gap, which are not
independent draws, so it has percentiles but no interval. A failed request counts in
``failed`` with its error and in no latency.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dlbench.errors import ConfigError
from dlbench.measure.generation import Figure, duration, figure_from

# serve-bench's bounds: what no benchmark needs more of (a typo's extra zeros are refused)
MAX_REQUESTS = 1_000_000
MAX_CONCURRENCY = 10_000
MAX_PROMPT_WORDS = 1_000_000
MAX_GEN_TOKENS = 1_000_000
MAX_ERRORS_KEPT = 10  # distinct error texts stored with their counts
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class RequestOutcome:
    """One streamed request as its client saw it, on one monotonic clock (seconds)."""

    sent_s: float
    ended_s: float
    text_chunk_s: tuple[float, ...]  # when each chunk that carried text arrived
    output_tokens: int  # the server's usage count where it gives one, else the text chunks
    prompt_tokens: int | None = None  # the server's usage count, where it gives one
    error: str | None = None  # why the request failed; None: it completed
    counted_by_server: bool = False  # output_tokens is the server's usage count

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.text_chunk_s)

    @property
    def ttft_s(self) -> float:
        return self.text_chunk_s[0] - self.sent_s

    @property
    def e2e_s(self) -> float:
        return self.ended_s - self.sent_s

    @property
    def tpot_s(self) -> float | None:
        """None for a request that produced one token (it has no decode), or whose text came
        in one chunk: the tokens after the first arrived with it, so the time after the first
        is not theirs (vLLM's formula would give them about 0)."""
        if self.output_tokens < 2 or len(self.text_chunk_s) < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)

    @property
    def itl_s(self) -> tuple[float, ...]:
        chunks = self.text_chunk_s
        return tuple(later - earlier for earlier, later in zip(chunks, chunks[1:], strict=False))


_SLO_UNITS = {"ms": 1e-3, "s": 1.0}
SLO_METRICS = ("ttft", "tpot", "e2e")


@dataclass(frozen=True)
class Slo:
    """Service-level objectives, in seconds; a request meets them when it meets each given."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None

    def met_by(self, outcome: RequestOutcome) -> bool:
        tpot = outcome.tpot_s or 0.0  # one token: no decode to be slow in
        return outcome.ok and all(
            limit is None or value <= limit
            for value, limit in (
                (outcome.ttft_s, self.ttft_s),
                (tpot, self.tpot_s),
                (outcome.e2e_s, self.e2e_s),
            )
        )

    def words(self) -> str:
        given = [(m, getattr(self, f"{m}_s")) for m in SLO_METRICS]
        return ", ".join(f"{m} <= {v * 1e3:g} ms" for m, v in given if v is not None)


def parse_slo(text: str) -> Slo:
    """``ttft=2s,tpot=200ms,e2e=10s`` (any of the three, each with its unit) as an ``Slo``."""
    limits: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        name, _, value = part.partition("=")
        name = name.strip().lower()
        if name not in SLO_METRICS:
            raise ConfigError(
                f"--slo {part!r}: not one of {', '.join(SLO_METRICS)}",
                "e.g. --slo ttft=2s,tpot=200ms",
                option="--slo",
            )
        found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s)\s*", value)
        if not found:
            raise ConfigError(
                f"--slo {part!r}: give a duration with its unit, ms or s",
                "e.g. ttft=2s or tpot=200ms",
                option="--slo",
            )
        seconds = float(found[1]) * _SLO_UNITS[found[2]]
        if not 0 < seconds <= 86_400 or name in limits:
            raise ConfigError(
                f"--slo {part!r}: each limit once, above 0 and at most a day", option="--slo"
            )
        limits[name] = seconds
    return Slo(**{f"{name}_s": value for name, value in limits.items()})


@dataclass(frozen=True)
class ServingStats:
    requests: int  # sent and timed
    completed: int
    failed: int
    errors: Mapping[str, int]  # distinct error texts (the first MAX_ERRORS_KEPT) and counts
    duration_s: float  # first request sent to last stream ended
    requests_per_s: float  # completed
    output_tokens: int
    output_tokens_per_s: float
    prompt_tokens: int | None  # where the server counted them
    total_tokens_per_s: float | None
    ttft_s: Figure | None
    tpot_s: Figure | None
    itl_s: Figure | None
    e2e_s: Figure | None
    slo_met: int | None = None  # with an SLO: completed requests that met it
    goodput_per_s: float | None = None


def serving_stats(outcomes: Sequence[RequestOutcome], slo: Slo | None = None) -> ServingStats:
    """The figures of one benchmark over every request it sent."""
    if not outcomes:
        raise ValueError("no request was sent")
    done = [o for o in outcomes if o.ok]
    span = max(o.ended_s for o in outcomes) - min(o.sent_s for o in outcomes)
    span = max(span, 1e-9)  # a clock that did not advance: the rates stay finite
    output = sum(o.output_tokens for o in done)
    prompts = [o.prompt_tokens for o in done]
    prompt = sum(p for p in prompts if p is not None) if done and None not in prompts else None
    met = sum(slo.met_by(o) for o in done) if slo else None
    return ServingStats(
        requests=len(outcomes),
        completed=len(done),
        failed=len(outcomes) - len(done),
        errors=_errors(outcomes),
        duration_s=span,
        requests_per_s=len(done) / span,
        output_tokens=output,
        output_tokens_per_s=output / span,
        prompt_tokens=prompt,
        total_tokens_per_s=None if prompt is None else (prompt + output) / span,
        ttft_s=duration([o.ttft_s for o in done]),
        tpot_s=duration([t for o in done if (t := o.tpot_s) is not None]),
        itl_s=duration([gap for o in done for gap in o.itl_s], interval=False),
        e2e_s=duration([o.e2e_s for o in done]),
        slo_met=met,
        goodput_per_s=None if met is None else met / span,
    )


def _errors(outcomes: Sequence[RequestOutcome]) -> dict[str, int]:
    texts = Counter(
        (o.error or "the stream carried no text")[:MAX_ERROR_CHARS] for o in outcomes if not o.ok
    )
    return dict(texts.most_common(MAX_ERRORS_KEPT))


@dataclass(frozen=True)
class ServingSummary:
    """A serving run's ``serving`` document, as readers take it."""

    url: str
    model: str
    api: str  # completions or chat
    concurrency: int
    rate_per_s: float | None  # None: every request as soon as a slot is free
    prompt_len: int | None  # words per synthetic prompt; None: prompts from a file
    gen_len: int
    tokens_from: str  # "usage" (the server's count) or "chunks" (one token per text chunk)
    slo: Slo | None
    stats: ServingStats


def serving_document(summary: ServingSummary) -> dict[str, Any]:
    document = asdict(summary)
    document["stats"]["errors"] = dict(summary.stats.errors)
    return document


def serving_from(document: Any) -> ServingSummary | None:
    """The stored document as a record (None for a run that served nothing)."""
    if not document:
        return None

    stats: dict[str, Any] = dict(document["stats"])
    for name in ("ttft_s", "tpot_s", "itl_s", "e2e_s"):
        stats[name] = figure_from(stats.get(name))
    stats["errors"] = {str(k): int(v) for k, v in (stats.get("errors") or {}).items()}
    slo = document.get("slo")
    return ServingSummary(
        **{**document, "slo": Slo(**slo) if slo else None, "stats": ServingStats(**stats)}
    )

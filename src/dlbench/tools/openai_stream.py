"""A streaming client of an OpenAI-compatible server (``/v1/completions`` or
``/v1/chat/completions``), as vLLM's benchmark_serving drives one: each request streams its
answer as server-sent events, and the client notes when each chunk that carries text arrives.

Nothing a server sends stops the benchmark: a refusal, a timeout, a line that is not JSON, an
error event or a stream cut before its end is the request's error, counted and kept.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import aiohttp.http_exceptions

from dlbench.measure.serving import RequestOutcome

MAX_BODY_SHOWN = 200  # characters of a refusal's body kept in its error
READ_LIMIT_BYTES = 2**20  # one event line longer than this is malformed


@dataclass(frozen=True)
class Endpoint:
    """Where the requests go and how they are written."""

    base_url: str  # http://host:port/v1
    model: str
    api: str = "completions"  # or "chat"
    api_key: str | None = None  # sent as a bearer token, never stored
    timeout_s: float = 300.0  # per request, first byte to last
    ignore_eos: bool = False  # vLLM's extension: generate gen_len tokens whatever comes

    @property
    def url(self) -> str:
        path = "chat/completions" if self.api == "chat" else "completions"
        return f"{self.base_url.rstrip('/')}/{path}"

    def body(self, prompt: str, gen_len: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": gen_len,
            "temperature": 0.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.api == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        if self.ignore_eos:
            body["ignore_eos"] = True
        return body

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def api_key_from_env() -> str | None:
    """The key a server asks for, from $OPENAI_API_KEY as OpenAI's own clients read it."""
    return os.environ.get("OPENAI_API_KEY") or None


class _Stream:
    """What one request's events said so far."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.chunk_s: list[float] = []
        self.finished_s: float | None = None  # when a finish_reason or [DONE] came
        self.completion_tokens: int | None = None
        self.prompt_tokens: int | None = None

    def take(self, line: bytes, now: float) -> None:
        """One line of the event stream; raises ValueError for one that is not an event."""
        text = line.decode("utf-8", errors="replace").strip()
        if not text or text.startswith(":") or not text.startswith("data:"):
            return  # blank separators, comments, event/id/retry fields
        data = text[5:].strip()
        if data == "[DONE]":
            self._finish(now)
            return
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            problem = f"malformed stream: an event that is not JSON: {data[:80]!r}"
            raise ValueError(problem) from None
        if not isinstance(event, dict):
            raise ValueError(f"malformed stream: an event that is not an object: {data[:80]!r}")
        if event.get("error"):
            raise ValueError(f"the server sent an error: {str(event['error'])[:MAX_BODY_SHOWN]}")
        self._usage(event.get("usage"))
        for choice in event.get("choices") or ():
            if not isinstance(choice, dict):
                raise ValueError("malformed stream: a choice that is not an object")
            if self._text(choice):
                self.chunk_s.append(now)
            if choice.get("finish_reason"):
                self._finish(now)

    def _finish(self, now: float) -> None:
        if self.finished_s is None:
            self.finished_s = now

    def arrivals(self) -> tuple[float, ...]:
        """When text came; a stream that finished with none (every token a special or partial
        one, which servers do not show) delivered its answer, empty, at its finish."""
        if not self.chunk_s and self.finished_s is not None:
            return (self.finished_s,)
        return tuple(self.chunk_s)

    def _text(self, choice: dict[str, Any]) -> str:
        if self.api == "chat":
            delta = choice.get("delta") or {}
            found = delta.get("content") or delta.get("reasoning_content") or ""
        else:
            found = choice.get("text") or ""
        return found if isinstance(found, str) else ""

    def _usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            completion, prompt = usage.get("completion_tokens"), usage.get("prompt_tokens")
            if isinstance(completion, int) and completion >= 0:
                self.completion_tokens = completion
            if isinstance(prompt, int) and prompt >= 0:
                self.prompt_tokens = prompt


async def stream_one(
    session: aiohttp.ClientSession, endpoint: Endpoint, prompt: str, gen_len: int
) -> RequestOutcome:
    """Send one request and follow its stream to the end; never raises for what the server
    does (its error is the outcome's)."""
    stream = _Stream(endpoint.api)
    sent = time.perf_counter()
    error: str | None = None
    try:
        async with session.post(
            endpoint.url,
            json=endpoint.body(prompt, gen_len),
            headers=endpoint.headers(),
            timeout=aiohttp.ClientTimeout(total=endpoint.timeout_s),
        ) as response:
            if response.status != 200:
                body = (await response.content.read(4096)).decode("utf-8", errors="replace")
                error = f"HTTP {response.status}: {' '.join(body.split())[:MAX_BODY_SHOWN]}"
            else:
                limit = 2 * gen_len + 64  # chunks with text: a server past it ignores max_tokens
                while line := await response.content.readline():
                    stream.take(line, time.perf_counter())
                    if len(stream.chunk_s) > limit:
                        raise ValueError(
                            f"the server sent over {limit} chunks of text for --gen-len "
                            f"{gen_len}: it does not honour max_tokens"
                        )
                if stream.finished_s is None:
                    error = f"the stream ended before the answer did ({len(stream.chunk_s)} chunks)"
    except asyncio.TimeoutError:
        error = f"no complete answer within {endpoint.timeout_s:g} s (--request-timeout)"
    except aiohttp.ClientPayloadError:
        error = f"the stream was cut mid-way ({len(stream.chunk_s)} chunks)"
    except aiohttp.ClientConnectorError as exc:
        error = f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    except aiohttp.ClientResponseError as exc:  # e.g. an answer that is not HTTP at all
        error = f"a bad answer: {' '.join(str(exc.message).split())[:MAX_BODY_SHOWN]}"
    except (aiohttp.ClientError, OSError) as exc:
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:MAX_BODY_SHOWN]}"
    except ValueError as exc:  # a malformed event
        error = str(exc) or f"malformed stream: {type(exc).__name__}"
    except aiohttp.http_exceptions.LineTooLong:
        error = f"malformed stream: an event line over {2 * READ_LIMIT_BYTES // 2**20} MiB"
    except aiohttp.http_exceptions.HttpProcessingError as exc:  # a response HTTP cannot parse
        error = f"malformed response: {' '.join(str(exc.message).split())[:MAX_BODY_SHOWN]}"
    tokens = stream.completion_tokens
    return RequestOutcome(
        sent_s=sent,
        ended_s=time.perf_counter(),
        text_chunk_s=stream.arrivals(),
        output_tokens=len(stream.chunk_s) if tokens is None else tokens,
        prompt_tokens=stream.prompt_tokens,
        error=error,
        counted_by_server=tokens is not None,
    )


def new_session(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    return aiohttp.ClientSession(connector=connector, read_bufsize=READ_LIMIT_BYTES)


async def drive(
    endpoint: Endpoint,
    prompts: Sequence[str],
    gen_len: int,
    concurrency: int,
    rate_per_s: float | None = None,
    seed: int = 0,
    on_done: Callable[[RequestOutcome], None] | None = None,
) -> list[RequestOutcome]:
    """Every prompt as one request, at most ``concurrency`` in flight; with ``rate_per_s``,
    requests arrive as a Poisson process of that rate (exponential gaps, seeded), as
    benchmark_serving's ``--request-rate``. A request's clock starts when it is sent, after
    any wait for a free slot."""
    slots = asyncio.Semaphore(concurrency)
    gaps = random.Random(seed)
    outcomes: list[RequestOutcome | None] = [None] * len(prompts)

    async def one(index: int, prompt: str) -> None:
        async with slots:
            outcome = await stream_one(session, endpoint, prompt, gen_len)
        outcomes[index] = outcome
        if on_done is not None:
            on_done(outcome)

    async with new_session(concurrency) as session:
        tasks = []
        for index, prompt in enumerate(prompts):
            if rate_per_s is not None and index:
                await asyncio.sleep(gaps.expovariate(rate_per_s))
            tasks.append(asyncio.create_task(one(index, prompt)))
        await asyncio.gather(*tasks)
    return [o for o in outcomes if o is not None]


async def probe(endpoint: Endpoint, prompt: str, gen_len: int) -> RequestOutcome:
    """One request before the benchmark: is the server there, and does it stream?"""
    async with new_session(1) as session:
        return await stream_one(session, endpoint, prompt, gen_len)

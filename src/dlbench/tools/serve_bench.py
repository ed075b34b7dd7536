"""``dlbench serve-bench``: a model server under load, measured from its client, stored as a
run of kind ``serving``.

One request first checks that the server is there and streams (a refusal then is one line and
exit 2, nothing stored); then the timed requests run with this process's telemetry sampled.
Each completed request is one of the run's steps (its time: the end-to-end latency), so the
quality verdict, ``compare`` and the report treat it as any run; the per-token figures are the
run's ``serving`` document (measure/serving.py). Requests that fail are counted with their
errors and the run is stored with them.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dlbench import sysinfo
from dlbench.api import new_run_id
from dlbench.errors import ConfigError, ResultNotStored, StoreError
from dlbench.input_files import read_text
from dlbench.launch.supervise import shielded
from dlbench.measure.quality import judge
from dlbench.measure.serving import (
    MAX_CONCURRENCY,
    MAX_GEN_TOKENS,
    MAX_PROMPT_WORDS,
    MAX_REQUESTS,
    RequestOutcome,
    ServingSummary,
    Slo,
    serving_document,
    serving_stats,
)
from dlbench.measure.stats import speed_stats
from dlbench.records import RunResult, StepRecord
from dlbench.runner.storing import phase_metrics, telemetry_summary
from dlbench.store import unsaved
from dlbench.store.database import Store
from dlbench.store.liveness import Heartbeat
from dlbench.telemetry import build_sources
from dlbench.telemetry.interference import InterferenceMeter
from dlbench.telemetry.sampler import Sampler
from dlbench.tools.monitor import terminate_as_interrupt
from dlbench.tools.openai_stream import Endpoint, drive, probe

PHASE = "serve"
MAX_PROMPTS_BYTES = 256 * 2**20
MAX_SYNTHETIC_WORDS = 50_000_000  # every synthetic prompt of a run together: ~300 MB of text
# Common English words: a synthetic prompt of P of them is about P tokens in most tokenizers;
# the server's own count, where it gives one, is what is stored.
WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there been one all we their has would when if so no "
    "will more can who its out time up about into than them only other new some could these "
    "two may first then do any like my now over such our man me even most made after also did"
).split()


@dataclass(frozen=True)
class ServePlan:
    endpoint: Endpoint
    requests: int = 64
    concurrency: int = 1
    rate_per_s: float | None = None  # None: each request as soon as a slot is free
    prompt_len: int = 128  # words of a synthetic prompt
    gen_len: int = 128
    prompts_file: Path | None = None
    seed: int = 0
    slo: Slo | None = None
    interval_s: float = 1.0
    tags: dict[str, str] = field(default_factory=dict)
    warmup: int = 0  # untimed requests at the run's concurrency, after the first one
    repeat: int = 0  # which pass of the same load this is (--repeat)

    def check(self) -> None:
        _check_url(self.endpoint.base_url)
        bounds: list[tuple[str, float, float, float]] = [
            ("--requests", self.requests, 1, MAX_REQUESTS),
            ("--warmup", self.warmup, 0, MAX_REQUESTS),
            ("--concurrency", self.concurrency, 1, MAX_CONCURRENCY),
            ("--prompt-len", self.prompt_len, 1, MAX_PROMPT_WORDS),
            ("--gen-len", self.gen_len, 1, MAX_GEN_TOKENS),
            ("--request-timeout", self.endpoint.timeout_s, 0.01, 86_400),
            ("--interval", self.interval_s, 0.01, 3600),
        ]
        if self.rate_per_s is not None:
            bounds.append(("--rate", self.rate_per_s, 1e-6, 1e6))
        for option, value, low, high in bounds:
            if not low <= value <= high:  # NaN is refused too
                raise ConfigError(f"{option} must be {low:g} to {high:,g}", option=option)
        if not self.endpoint.model.strip():
            raise ConfigError("--model is empty", "the model's name as the server lists it")
        if self.endpoint.api not in ("completions", "chat"):
            raise ConfigError("--api must be completions or chat", option="--api")
        words = self.prompt_len * self.requests
        if self.prompts_file is None and words > MAX_SYNTHETIC_WORDS:
            raise ConfigError(
                f"--requests {self.requests:,} x --prompt-len {self.prompt_len:,} makes "
                f"{words:,} words of synthetic prompts, more than {MAX_SYNTHETIC_WORDS:,}",
                "give fewer requests or shorter prompts",
                option="--prompt-len",
            )

    def prompts(self) -> list[str]:
        """One prompt per request: the file's in turn, or synthetic ones (distinct, so that
        a server's prefix cache does not answer for the model)."""
        if self.prompts_file is not None:
            given = read_prompts(self.prompts_file)
            return [given[i % len(given)] for i in range(self.requests)]
        words = random.Random(self.seed)
        return [
            " ".join(words.choice(WORDS) for _ in range(self.prompt_len))
            for _ in range(self.requests)
        ]

    def config(self) -> dict[str, Any]:
        """The run's stored configuration: everything but the key."""
        return {
            "url": self.endpoint.base_url,
            "model": self.endpoint.model,
            "api": self.endpoint.api,
            "ignore_eos": self.endpoint.ignore_eos,
            "request_timeout": self.endpoint.timeout_s,
            "requests": self.requests,
            "warmup": self.warmup,
            "concurrency": self.concurrency,
            "rate": self.rate_per_s,
            "prompt_len": None if self.prompts_file else self.prompt_len,
            "prompts": str(self.prompts_file) if self.prompts_file else None,
            "gen_len": self.gen_len,
            "seed": self.seed,
            "slo": self.slo.words() if self.slo else None,
            "interval": self.interval_s,
            "tags": self.tags,
            "repeat": self.repeat,
        }


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--url {url!r} is not an http(s) address",
            "e.g. --url http://localhost:8000/v1",
            option="--url",
        )
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise ConfigError(f"--url {url!r}: its port is not a number", option="--url") from None


def read_prompts(path: Path) -> list[str]:
    """Prompts, one per line; in a ``.jsonl`` file, each line an object with ``prompt``."""
    text = read_text(path, "prompts file", MAX_PROMPTS_BYTES)
    lines = [line for line in text.splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        lines = [_jsonl_prompt(path, number, line) for number, line in enumerate(lines, 1)]
    if not lines:
        raise ConfigError(f"prompts file {path} holds no prompt", "one prompt per line")
    return lines


def _jsonl_prompt(path: Path, number: int, line: str) -> str:
    import json

    try:
        found = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}, line {number}: not JSON ({exc.msg})") from None
    prompt = found.get("prompt") if isinstance(found, dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError(
            f'{path}, line {number}: no "prompt" text', 'each line: {"prompt": "..."}'
        )
    return prompt


def check_server(plan: ServePlan, prompt: str) -> RequestOutcome:
    """One untimed request (it also warms the server up); a failure is the user's to fix."""
    found = asyncio.run(probe(plan.endpoint, prompt, plan.gen_len))
    if not found.ok:
        raise ConfigError(
            f"the server at {plan.endpoint.url} did not stream an answer to a first request: "
            f"{found.error or 'no text came'}",
            "check --url, --model and --api",
        )
    return found


def serve_bench(
    plan: ServePlan,
    store: Store,
    on_done: Callable[[RequestOutcome], None] | None = None,
    series: str | None = None,
    on_start: Callable[[], None] | None = None,
    run_key: str | None = None,
) -> str:
    """Measure and store; return the run id. ``series`` names the runs of one series of
    loads (``--concurrency 1,2,4``, a serving sweep), stored as a sweep's, and ``run_key``
    the combination (what a sweep's --resume finds); ``on_start`` is called once the server
    has answered its first request, as the timed ones begin."""
    plan.check()
    prompts = plan.prompts()
    store.check_writable()
    first = check_server(plan, prompts[0])
    if plan.warmup:  # a server's caches, compiled graphs and batch sizes, at this load
        warm = [prompts[i % len(prompts)] for i in range(plan.warmup)]
        asyncio.run(drive(plan.endpoint, warm, plan.gen_len, plan.concurrency, None, plan.seed))
    if on_start is not None:
        on_start()
    run_id = new_run_id()
    with terminate_as_interrupt():  # SIGTERM ends it as Ctrl-C does: what is done is stored
        store.create_run(run_id, "serving", plan.config(), **_columns(plan, series, run_key))
        try:
            result, samples = _measure(plan, store, run_id, prompts, first, on_done)
        except KeyboardInterrupt:
            with shielded():
                store.end_unfinished(run_id, "interrupted", "interrupted before any request ended")
            raise
        except Exception as exc:  # dlbench's own fault: the run is closed as failed, never left
            with shielded():
                store.end_unfinished(run_id, "failed", f"{type(exc).__name__}: {exc}"[:500])
            raise
        try:
            with shielded():
                store.finish_run(result)
        except StoreError as exc:
            path = unsaved.keep(store, result, samples["samples"], {"kind": "serving"}, exc)
            if path is None:
                raise
            raise ResultNotStored(run_id, str(path)) from exc
    if result.status == "interrupted":
        raise KeyboardInterrupt  # stored: now the caller stops as asked
    return run_id


def _columns(plan: ServePlan, series: str | None, run_key: str | None) -> dict[str, Any]:
    """A serving run's columns: the model, the server as its device, the series it is of."""
    return {
        "workload": plan.endpoint.model,
        "framework": "openai-api",
        "device": "server",
        "device_name": netloc_of(plan),
        "batch_size": 1,
        "sweep": series,
        "run_key": run_key,
    }


def store_refused(
    plan: ServePlan, store: Store, error: str, series: str | None, run_key: str | None
) -> str:
    """A run of a series whose server refused its first request: stored failed with why, so
    that the series goes on and --resume runs it again."""
    run_id = new_run_id()
    config = plan.config()
    store.record_unstarted(
        run_id, "serving", config, "failed", error, **_columns(plan, series, run_key)
    )
    return run_id


def _measure(
    plan: ServePlan,
    store: Store,
    run_id: str,
    prompts: list[str],
    first: RequestOutcome,
    on_done: Callable[[RequestOutcome], None] | None,
) -> tuple[RunResult, dict[str, Any]]:
    heartbeat = Heartbeat(store, run_id).start()
    try:
        hardware = sysinfo.collect()
        store.set_hardware(run_id, hardware, num_gpus=0)
        meter = InterferenceMeter(os.getpid(), gpus=None)
        sources = build_sources(pid=os.getpid(), data_disk=hardware["storage"].get("device"))
        sampler = Sampler(
            sources,
            plan.interval_s,
            functools.partial(store.add_samples, run_id),
            on_sink_error=store.warn_write_failure,
        )
        sampler.set_phase(PHASE)
        started = time.monotonic()
        meter.start()
        sampler.start()
        ended: list[RequestOutcome] = []  # what Ctrl-C leaves: the requests that ended

        def noted(outcome: RequestOutcome) -> None:
            ended.append(outcome)
            if on_done is not None:
                on_done(outcome)

        interrupted = False
        try:
            asyncio.run(
                drive(
                    plan.endpoint,
                    prompts,
                    plan.gen_len,
                    plan.concurrency,
                    plan.rate_per_s,
                    plan.seed,
                    noted,
                )  # fmt: skip
            )
        except KeyboardInterrupt:
            interrupted = True
        finally:
            interference = meter.stop()
            sampler.stop()
    finally:
        heartbeat.stop()
    if interrupted and not ended:
        raise KeyboardInterrupt
    telemetry = telemetry_summary(store, run_id, sampler, 0)
    result = _result(plan, run_id, ended, first, time.monotonic() - started)
    if interrupted:
        said = f"interrupted after {len(ended)} of {plan.requests} requests ended"
        error = "; ".join(part for part in (said, result.error) if part)
        result = replace(result, status="interrupted", error=error)
    quality = judge(interference, phase_metrics(telemetry, PHASE))
    if quality is not None and _on_this_machine(plan.endpoint.base_url):
        why = (
            "the server runs on this machine (its address is a loopback one): its work counts "
            "as other work here, and the client's as other work to it"
        )
        quality = replace(quality, reasons=(*quality.reasons, why))
    return replace(result, telemetry=telemetry, quality=quality), {"samples": sampler.unsaved}


def _on_this_machine(url: str) -> bool:
    import ipaddress

    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def netloc_of(plan: ServePlan) -> str:
    """The server as the run's device name: host:port."""
    return urlsplit(plan.endpoint.base_url).netloc


def _result(
    plan: ServePlan, run_id: str, outcomes: list[RequestOutcome], first: RequestOutcome, wall: float
) -> RunResult:
    stats = serving_stats(outcomes, plan.slo)
    done = [o for o in outcomes if o.ok]
    summary = ServingSummary(
        url=plan.endpoint.base_url,
        model=plan.endpoint.model,
        api=plan.endpoint.api,
        concurrency=plan.concurrency,
        rate_per_s=plan.rate_per_s,
        prompt_len=None if plan.prompts_file else plan.prompt_len,
        gen_len=plan.gen_len,
        tokens_from="usage" if first.counted_by_server else "chunks",
        slo=plan.slo,
        stats=stats,
    )
    steps = tuple(StepRecord(i, 0, o.e2e_s, 0.0) for i, o in enumerate(done))
    failed = stats.failed
    return RunResult(
        run_id=run_id,
        status="ok" if done else "failed",
        error=(
            None
            if not failed
            else f"{failed} of {stats.requests} requests failed: {next(iter(stats.errors))}"
        ),
        phase_reached="done",
        speed=speed_stats([s.step_time_s for s in steps], [0.0] * len(steps), 1),
        throughput_e2e=stats.requests_per_s,
        train_time_s=stats.duration_s,
        wall_time_s=wall,
        serving=serving_document(summary),
        steps=steps,
    )

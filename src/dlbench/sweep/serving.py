"""Serving sweeps: a sweep file whose ``serve:`` names a server runs ``dlbench serve-bench``
over a matrix of loads, each combination one stored run of the sweep.

    name: load-curve
    serve: {url: http://gpu-box:8000/v1, model: meta-llama/Llama-3.2-1B}  # --url, --model,
    base: {requests: 200, gen_len: 128}                                 #   --api, ...
    matrix:
      concurrency: [1, 4, 16, 64]
      prompt_len: [128, 512]
    exclude: [{concurrency: 64, prompt_len: 512}]
    repeat: 2

The runs go one after another from this machine, the client (a server is measured from where
its users are, not on a Slurm node of its own); ``--resume`` skips those already stored ok.
The report draws the sweep as throughput against latency, a line per prompt and output
length through the concurrencies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dlbench.errors import ConfigError, DlbenchError, require
from dlbench.registry import unknown_name
from dlbench.store.database import Store
from dlbench.store.stored import StoredRun
from dlbench.sweep.file import Where, validated

MAX_RUNS = 10_000
# serve-bench's load options as sweep keys, and the type each takes
LOAD_KEYS: dict[str, type | tuple[type, ...]] = {
    "requests": int,
    "warmup": int,
    "concurrency": int,
    "rate": (int, float),
    "prompt_len": int,
    "gen_len": int,
    "prompts": str,
    "seed": int,
    "slo": str,
    "interval": (int, float),
}


class ServerSection(BaseModel):
    """The server, as serve-bench's --url, --model, --api, --ignore-eos, --request-timeout."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048)
    model: str = Field(min_length=1, max_length=1024)
    api: str = "completions"
    ignore_eos: bool = False
    request_timeout: float = Field(default=300.0, gt=0, le=86_400, allow_inf_nan=False)


class ServeSweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=128)
    serve: ServerSection
    base: dict[str, Any] = Field(default_factory=dict)
    matrix: dict[str, list[Any]] = Field(default_factory=dict)
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    repeat: int = Field(default=1, ge=1, le=1000)


@dataclass(frozen=True)
class ServeRun:
    plan: Any  # a tools.serve_bench.ServePlan
    key: str  # stable across reads: what --resume finds
    options: dict[str, Any]  # the matrix values that make it differ from the base
    repeat: int

    @property
    def label(self) -> str:
        shown = " ".join(f"{k}={v}" for k, v in self.options.items()) or "base"
        return f"{shown} #{self.repeat + 1}" if self.repeat else shown


def load(content: dict[str, Any], where: Where) -> tuple[ServeSweepFile, list[ServeRun]]:
    """A serving sweep file's document (``file.read_document``), validated and expanded."""
    sweep = validated(ServeSweepFile, content, where)
    return sweep, expand(sweep, where)


def expand(sweep: ServeSweepFile, where: Where) -> list[ServeRun]:
    """Every combination of the matrix, minus the excluded, times ``repeat``, each checked as
    serve-bench checks its options."""
    require("aiohttp", "serving", "a serving sweep")
    _check_keys(sweep, where)
    keys = list(sweep.matrix)
    count = math.prod(len(values) for values in sweep.matrix.values()) * sweep.repeat
    if count > MAX_RUNS:
        raise ConfigError(f"{where(('matrix',))}: {count:,} runs: more than {MAX_RUNS:,}")
    runs: list[ServeRun] = []
    for values in itertools.product(*(sweep.matrix[k] for k in keys)):
        combination = dict(zip(keys, values, strict=True))
        if any(all(combination.get(k) == v for k, v in rule.items()) for rule in sweep.exclude):
            continue
        section = "matrix" if combination else "base"
        plan = _plan(sweep, {**sweep.base, **combination}, where, section)
        for repeat in range(sweep.repeat):
            again = dataclasses.replace(plan, repeat=repeat)
            runs.append(ServeRun(again, _key(sweep.name, again), combination, repeat))
    if not runs:
        raise DlbenchError(f"sweep {sweep.name}: every combination is excluded")
    return runs


def _check_keys(sweep: ServeSweepFile, where: Where) -> None:
    for section, options in (("base", sweep.base), ("matrix", sweep.matrix)):
        for key in options:
            if key not in LOAD_KEYS:
                error = unknown_name(f"{section} key", str(key), sorted(LOAD_KEYS))
                raise ConfigError(f"{where((section, key))}: {error.message}", error.hint)
    for index, rule in enumerate(sweep.exclude):
        for key in rule:
            if key not in sweep.matrix:
                raise ConfigError(
                    f"{where(('exclude', index, key))}: exclude key {key!r} is not in the matrix"
                )


def _plan(sweep: ServeSweepFile, options: dict[str, Any], where: Where, section: str) -> Any:
    from dlbench.measure.serving import parse_slo
    from dlbench.tools.openai_stream import Endpoint, api_key_from_env
    from dlbench.tools.serve_bench import ServePlan, read_prompts

    for key, value in options.items():
        kind = LOAD_KEYS[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            wanted = "a whole number" if kind is int else "text" if kind is str else "a number"
            raise ConfigError(f"{where((section, key))}: {key} is {wanted}, not {value!r}")
    server = sweep.serve
    endpoint = Endpoint(
        server.url, server.model, server.api, api_key_from_env(), server.request_timeout,
        server.ignore_eos,
    )  # fmt: skip
    fields = {"rate": "rate_per_s", "prompts": "prompts_file", "interval": "interval_s"}
    values: dict[str, Any] = {fields.get(k, k): v for k, v in options.items()}
    try:
        if "prompts_file" in values:
            values["prompts_file"] = Path(values["prompts_file"])
        if "slo" in values:
            values["slo"] = parse_slo(values["slo"])
        plan = ServePlan(endpoint=endpoint, **values)
        plan.check()
        if plan.prompts_file is not None:
            read_prompts(plan.prompts_file)  # before any run: not after hours of others
    except ConfigError as exc:
        culprit = next((k for k in options if k in exc.message), None)
        location = (section, culprit) if culprit else (section,)
        raise ConfigError(f"{where(location)}: {exc.message}", exc.hint) from None
    return plan


def _key(name: str, plan: Any) -> str:
    document = {**plan.config(), "sweep": name}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]


def run(
    name: str,
    runs: list[ServeRun],
    store: Store,
    resume: bool,
    say: Callable[[str], None],
) -> list[StoredRun]:
    """Each run in turn, stored in the sweep; with ``resume``, those already ok skipped."""
    from dlbench.tools.serve_bench import serve_bench, store_refused

    done = {r.run_key for r in store.runs(sweep=name) if r.status == "ok"} if resume else set()
    stored = []
    for index, item in enumerate(runs, 1):
        if item.key in done:
            say(f"[{index}/{len(runs)}] {item.label}: skip, already ok")
            continue
        try:
            run_id = serve_bench(item.plan, store, series=name, run_key=item.key)
        except ConfigError as exc:  # the server refused this load's first request: stored
            run_id = store_refused(item.plan, store, exc.message, name, item.key)
        found = store.run(run_id)
        stats = found.serving.stats if found.serving else None
        figures = (
            f"{stats.requests_per_s:,.2f} requests/s, {stats.failed} failed"
            if stats
            else found.error or ""
        )
        say(f"[{index}/{len(runs)}] {item.label}: {found.status} {run_id} {figures}")
        stored.append(found)
    return stored

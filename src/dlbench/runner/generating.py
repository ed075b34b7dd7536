"""A generation run's phases (``dlbench generate``): untimed warm-up requests, then timed
requests, each a batch of prompts generating --gen-len tokens greedily with a KV cache.

Each timed request is one of the run's steps (its time: the request's end-to-end latency), so
the speed statistics, the quality verdict and telemetry are those of any run; the per-token
figures are the run's ``generation`` document.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from dlbench.config import RunSpec
from dlbench.engines import Engine
from dlbench.measure.generation import Generated, generation_stats
from dlbench.measure.timer import StepTimer


def generation_phase(spec: RunSpec, engine: Engine, measured: Any, progress: Any, pid: int) -> None:
    assert spec.prompt_len is not None and spec.gen_len is not None
    if spec.warmup:
        measured.enter("warmup")
        progress.phase("warm-up", spec.warmup)
        start = time.perf_counter()
        for _ in range(spec.warmup):
            engine.generate(spec.prompt_len, spec.gen_len)
            progress.advance()
        measured.warmup_time_s = time.perf_counter() - start
    measured.enter("generate")
    total = int(spec.steps or 0) - spec.warmup
    timer = measured.timer = StepTimer(engine.sync)
    progress.phase("generate", total)
    measured.start_meter(spec, pid)
    timer.start_phase()
    done: list[Generated] = []
    for _ in range(total):
        timer.step_start()
        timer.data_ready(0)
        done.append(engine.generate(spec.prompt_len, spec.gen_len))
        timer.step_end()
        progress.advance()
    measured.train_time_s = timer.end_phase()
    measured.stop_meter()
    if done:
        measured.generation = generation_document(spec, done)


def generation_document(spec: RunSpec, done: list[Generated]) -> dict[str, Any]:
    """The run's ``generation`` document: what was asked, the per-token figures, the cache."""
    digests = {g.tokens_digest for g in done}
    return {
        "prompt_len": spec.prompt_len,
        "gen_len": spec.gen_len,
        "batch": spec.batch_size,
        "kv_cache_bytes": done[0].kv_cache_bytes,
        # greedy decoding of one prompt: every request must give the same tokens
        "deterministic": len(digests) == 1,
        "tokens_digest": sorted(digests)[0],
        **asdict(generation_stats([g.times for g in done])),
    }

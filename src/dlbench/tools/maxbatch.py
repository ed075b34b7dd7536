"""``dlbench maxbatch``: the largest batch that trains without running out of memory, or, with
``--gen-len``, that generates (its KV cache allocated for the prompt and every token).

Each probe is a fresh process (``dlbench.launch.probe``) that builds the model and takes a few
training steps at one batch size: a caching allocator fragmented by an earlier, larger batch
would otherwise fail batches that fit. The search doubles from ``start`` until a probe runs
out of memory (or halves while it does), then bisects between the last batch that fitted and
the first that did not. ``--memory-limit`` probes as though the device had that much memory.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

from dlbench.config import RunSpec
from dlbench.errors import ConfigError, DlbenchError
from dlbench.launch.local import classify_exit
from dlbench.launch.oom import oom_kills
from dlbench.launch.supervise import supervise

PROBE_MODULE = "dlbench.launch.probe"
PROBE_STEPS = 3  # training steps per probe: the first allocates, later ones reuse
DEFAULT_LIMIT = 65_536  # largest batch tried
HOST_MEMORY_SHARE = 0.9  # a CPU probe is capped at this share of the memory available now
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


@dataclass(frozen=True)
class Probe:
    batch_size: int
    status: str  # ok | oom | failed | timeout
    peak_memory_bytes: int | None = None
    peak_memory_source: str | None = None
    step_time_s: float | None = None  # the last probe step: a rough speed, not a benchmark
    error: str | None = None
    kv_cache_bytes: int | None = None  # a generation probe's KV cache, whole batch


@dataclass
class MaxBatch:
    workload: str
    device: str
    precision: str
    image_size: int | None
    memory_limit_bytes: int | None
    max_batch_size: int | None = None  # None: not even batch 1 fits
    probes: list[Probe] = field(default_factory=list)
    capped: bool = False  # the search stopped at --limit, not at an out-of-memory
    seq_len: int | None = None  # a language model's tokens per sequence
    prompt_len: int | None = None  # a generation probe's prompt and generated tokens
    gen_len: int | None = None

    @property
    def best(self) -> Probe | None:
        return next((p for p in self.probes if p.batch_size == self.max_batch_size), None)

    def memory_per_sample(self) -> tuple[float, float] | None:
        """(bytes each sample of a batch adds, the footprint at batch 0: model, optimiser,
        framework) from a straight-line fit of peak memory on batch size over the probes that
        fitted; None with fewer than two distinct sizes measured."""
        points = {
            p.batch_size: p.peak_memory_bytes
            for p in self.probes
            if p.status == "ok" and p.peak_memory_bytes
        }
        if len(points) < 2:
            return None
        batches = np.array(list(points), dtype=float)
        peaks = np.array(list(points.values()), dtype=float)
        slope, intercept = np.polyfit(batches, peaks, 1)
        return float(slope), float(intercept)


MAX_MEMORY_BYTES = 2**60  # 1 EiB: no device has more


def parse_bytes(text: str) -> int:
    """``8GiB``, ``512MiB``, ``16G``, ``2000000`` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*", text.lower())
    if not match:
        raise ConfigError(
            f"--memory-limit {text!r} is not a size", "e.g. --memory-limit 8GiB or 512MiB"
        )
    unit = match.group(2) or ""
    scale = _BINARY[unit] if unit.endswith("i") else _UNITS[unit]
    value = float(match.group(1)) * scale
    if not 0 < value <= MAX_MEMORY_BYTES:
        raise ConfigError("--memory-limit must be more than 0 bytes and at most 1 EiB")
    return int(value)


def search(
    probe: Callable[[int], Probe], start: int, limit: int, granularity: int = 1
) -> tuple[int | None, list[Probe], bool]:
    """(largest batch that fits, every probe in order, whether ``limit`` stopped the search).

    Doubles up from ``start`` (or halves down if it does not fit), then bisects to within
    ``granularity`` (the answer is a multiple of it, when any multiple fits): about
    2 log2(B / granularity) probes. A probe that fails for another reason than memory stops
    the search with its error.
    """
    probes: list[Probe] = []

    def fits(batch: int) -> bool:
        result = probe(batch)
        probes.append(result)
        if result.status == "ok":
            return True
        if result.status == "oom":
            return False
        raise DlbenchError(
            f"the probe at batch {batch} {result.status}: {result.error}",
            "run it with dlbench run --batch-size to see the failure whole",
        )

    fitted: int | None = None
    failed: int | None = None
    batch = min(max(granularity, start // granularity * granularity), limit)
    while True:  # grow
        if not fits(batch):
            failed = batch
            break
        fitted = batch
        if batch >= limit:
            return fitted, probes, True
        batch = min(batch * 2, limit)
    if fitted is None:  # shrink
        batch = failed // 2
        while batch >= 1 and not fits(batch):
            failed, batch = batch, batch // 2
        if batch < 1:
            return None, probes, False
        fitted = batch
    step = granularity if fitted >= granularity else 1
    while failed - fitted > step:  # bisect, on multiples of the granularity
        middle = (fitted + failed) // 2 // step * step
        if middle <= fitted:
            break
        if fits(middle):
            fitted = middle
        else:
            failed = middle
    return fitted, probes, False


def default_memory_limit(device_kind: str) -> int | None:
    """CPU probes are capped below what the machine has free, so that a probe runs out of
    memory in its own process instead of making the whole machine swap."""
    if device_kind != "cpu":
        return None
    return int(psutil.virtual_memory().available * HOST_MEMORY_SHARE)


def run_probe(
    spec: RunSpec, batch: int, memory_limit: int | None, timeout_s: float | None
) -> Probe:
    """One training probe at ``batch`` in a fresh process."""
    probe_spec = spec.model_copy(update={"batch_size": batch})
    with tempfile.TemporaryDirectory(prefix="dlbench-probe-") as tmp:
        payload, result = Path(tmp) / "payload.json", Path(tmp) / "result.json"
        payload.write_text(
            json.dumps(
                {
                    "spec": probe_spec.model_dump(mode="json"),
                    "memory_limit": memory_limit,
                    "steps": PROBE_STEPS,
                    "result": str(result),
                }
            )
        )
        before = oom_kills()
        ended = supervise([sys.executable, "-m", PROBE_MODULE, str(payload)], timeout_s)
        if result.exists():
            return Probe(**json.loads(result.read_text()))
    status, error = classify_exit(ended, before)
    return Probe(batch, status, error=error)


def find_max_batch(
    spec: RunSpec,
    device_kind: str,
    *,
    start: int,
    limit: int = DEFAULT_LIMIT,
    memory_limit: int | None = None,
    timeout_s: float | None = None,
    on_probe: Callable[[Probe], None] | None = None,
    granularity: int = 1,
) -> MaxBatch:
    memory_limit = memory_limit or default_memory_limit(device_kind)

    def probe(batch: int) -> Probe:
        result = run_probe(spec, batch, memory_limit, timeout_s)
        if on_probe:
            on_probe(result)
        return result

    found = MaxBatch(
        spec.workload,
        spec.device,
        spec.precision,
        spec.image_size,
        memory_limit,
        seq_len=None if spec.generates else spec.seq_len,
        prompt_len=spec.prompt_len if spec.generates else None,
        gen_len=spec.gen_len,
    )
    found.max_batch_size, found.probes, found.capped = search(probe, start, limit, granularity)
    return found

"""One ``dlbench maxbatch`` probe: ``python -m dlbench.launch.probe PAYLOAD.json``.

Builds the model in a fresh process, takes a few training steps (or, for a generation run,
generates a few request batches with their KV cache) at one batch size, and writes
``ok`` or ``oom`` with the peak memory to the payload's result file. A memory limit is applied
before anything is allocated: on a GPU as the caching allocator's share of the device, on the
CPU as the process's data-segment limit (RLIMIT_DATA: heap and anonymous mappings, which is
where tensors live, and not the shared libraries' code).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlbench.config import RunSpec
from dlbench.engines import get_engine
from dlbench.workloads import get_workload


def _limit_memory(engine: Any, device: str, limit: int | None) -> None:
    if limit is None:
        return
    info = engine.resolve_device(device)
    if info.kind == "cuda":
        import torch

        index = int(info.device.partition(":")[2] or 0)
        total = torch.cuda.get_device_properties(index).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, limit / total), index)
    elif info.kind == "cpu":
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _endless(engine: Any) -> Iterator[Any]:
    """Epoch after epoch: a batch as large as the data set makes a one-step epoch, and a
    probe takes several steps."""
    while True:
        empty = True
        for batch in engine.train_epoch():
            empty = False
            yield batch
        if empty:
            raise RuntimeError("the training data gave no batch")


def _training_step(engine: Any) -> Any:
    batches = _endless(engine)
    return lambda: engine.train_step(next(batches))


def _generation_step(engine: Any, spec: RunSpec) -> Any:
    """One request batch: the prompts' prefill and every token after, with the KV cache of
    the whole length allocated (the first request allocates it, as a server does)."""
    assert spec.prompt_len is not None and spec.gen_len is not None
    return lambda: engine.generate(spec.prompt_len, spec.gen_len)


def probe(spec: RunSpec, memory_limit: int | None, steps: int) -> dict[str, Any]:
    engine = get_engine(spec.framework)
    _limit_memory(engine, spec.device, memory_limit)
    step_time, made = None, None
    try:
        engine.setup(spec, get_workload(spec.workload), None)
        step = _generation_step(engine, spec) if spec.generates else _training_step(engine)
        for _ in range(steps):
            start = time.perf_counter()
            made = step()
            engine.sync()
            step_time = time.perf_counter() - start
        status, error = "ok", None
    except Exception as exc:  # noqa: BLE001 - the probe's outcome is its result
        status = "oom" if engine.is_out_of_memory(exc) else "failed"
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    peak, source = engine.peak_memory()
    return {
        "batch_size": int(spec.batch_size or 0),
        "status": status,
        "peak_memory_bytes": peak,
        "peak_memory_source": source,
        "step_time_s": step_time,
        "error": error,
        # a generation probe's KV cache, as the engine allocated it
        "kv_cache_bytes": getattr(made, "kv_cache_bytes", None),
    }


def main(argv: list[str]) -> int:
    payload = json.loads(Path(argv[0]).read_text())
    spec = RunSpec.model_validate(payload["spec"])
    result = probe(spec, payload.get("memory_limit"), int(payload["steps"]))
    Path(payload["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

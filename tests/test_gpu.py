"""GPU paths: a CUDA run with NVML telemetry and its quality accounting, and another process
on the same GPU seen as contention. Run where a CUDA GPU is (scripts/device-check does)."""

import os
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")

from dlbench.config import build_spec  # noqa: E402
from dlbench.runner.benchmark import execute  # noqa: E402
from dlbench.telemetry.interference import NAMESPACE_NOTE, InterferenceMeter  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.serial,  # a GPU's other processes and contexts, measured live
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
CONTEXT = """
import sys, time, torch
x = torch.randn(2048, 2048, device="cuda")
print("ready", flush=True)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    if sys.argv[2] == "busy":
        x = (x @ x).tanh()
        torch.cuda.synchronize()
    else:
        time.sleep(0.05)
"""


def _gpu_process(seconds, mode):
    proc = subprocess.Popen(
        [sys.executable, "-c", CONTEXT, str(seconds), mode], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_cuda_run_samples_nvml_and_accounts_for_its_gpu(store):
    spec = build_spec(workload="resnet18", device="cuda", batch_size=32, image_size=64,
                      steps=40, warmup=5, val_batches=1, interval=0.2)  # fmt: skip
    store.create_run("g", "train", spec.model_dump(mode="json"))
    result = execute(spec, "g", store)
    assert result.status == "ok", result.error
    train = result.telemetry["phases"]["train"]["metrics"]
    assert train["gpu0.mem_used_bytes"]["max"] > 0 and "gpu0.util_percent" in train
    assert result.peak_memory_bytes > 0 and "cuda" in result.peak_memory_source
    quality = result.quality
    assert quality is not None and quality.verdict in ("clean", "noisy", "contended")
    if quality.other_gpu_processes is None:  # NVML's pids from another namespace
        assert any(NAMESPACE_NOTE in r for r in quality.reasons)
    else:
        assert all(p.pid != os.getpid() for p in quality.other_gpu_processes)


def test_another_process_on_the_same_gpu_is_named():
    run = _gpu_process(20, "idle")  # the "run": a CUDA context of its own
    other = _gpu_process(20, "busy")  # someone else's job on the same GPU
    try:
        meter = InterferenceMeter(run.pid, gpus=(0,)).start()
        time.sleep(1.0)
        found = meter.stop()
    finally:
        for proc in (run, other):
            proc.kill()
            proc.communicate()  # closes the pipe too (warnings are errors here)
    if found.gpu_note == NAMESPACE_NOTE:
        pytest.skip(NAMESPACE_NOTE)
    assert found.gpu_note is None, found.gpu_note
    assert other.pid in {p.pid for p in found.other_gpu_processes}
    assert run.pid not in {p.pid for p in found.other_gpu_processes}

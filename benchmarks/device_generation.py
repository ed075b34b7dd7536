"""The device check's generation step: GPT-2 small and Llama-3.2-1B (random weights) generating
greedily with their KV cache in bf16 on the GPU, each a `dlbench generate` run in a fresh
process: time to first token, time per output token, prefill and decode tokens/s with their
intervals, the KV cache, peak memory and energy per output token where NVML reports energy."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

# (workload, shape options on the GPU, shape options in a CPU rehearsal)
MODELS = (
    ("gpt", [], ["--depth", "2", "--width", "128", "--seq-len", "64", "--vocab", "256"]),
    ("llama-3.2-1b", [], ["--depth", "2", "--width", "128", "--heads", "4", "--kv-heads", "2",
                          "--vocab", "256", "--seq-len", "64"]),
)  # fmt: skip


def generate(check: Any, workload: str, shape: list[str], lengths: dict[str, int]) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "dlbench", "generate", workload, *shape,
         "--device", check.device, "--precision", "amp-bf16", "--db", str(check.db),
         *(item for k, v in lengths.items() for item in (f"--{k.replace('_', '-')}", str(v))),
         "--json", "-"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"dlbench generate {workload}: {done.stderr[-600:]}")
    summary: dict = json.loads(done.stdout)
    check.gpu_name = summary.get("device_name") or check.gpu_name
    return summary


def _figure(found: dict | None, scale: float = 1.0, digits: int = 2) -> str:
    if not found:
        return "n/a"
    shown = f"{found['mean'] * scale:,.{digits}f}"
    if found.get("ci95"):
        low, high = found["ci95"]
        shown += f" ({low * scale:,.{digits}f}–{high * scale:,.{digits}f})"
    return shown


def _energy_per_token(summary: dict, tokens: int) -> str:
    phase = ((summary.get("telemetry") or {}).get("phases") or {}).get("generate") or {}
    joules = phase.get("total_energy_j")
    return f"{joules / tokens:.4g}" if joules and tokens else "n/a"


def generation(check: Any) -> None:
    """Step: GPT-2 small and the 1B llama generating in bf16, one fresh process each."""
    lengths = (
        {"prompt_len": 16, "gen_len": 8, "batch_size": 2, "requests": 3, "warmup": 1}
        if check.rehearse
        else {"prompt_len": 512, "gen_len": 128, "batch_size": 8, "requests": 10, "warmup": 3}
    )
    rows = []
    for workload, gpu_shape, cpu_shape in MODELS:
        summary = generate(check, workload, cpu_shape if check.rehearse else gpu_shape, lengths)
        g = summary["generation"]
        tokens = g["requests"] * g["batch"] * g["gen_len"]
        peak = summary.get("peak_memory_bytes")
        rows.append(
            f"| {workload} | {_figure(g['ttft_s'], 1e3)} | {_figure(g['tpot_s'], 1e3)} | "
            f"{_figure(g['prefill_tokens_per_s'], digits=0)} | "
            f"{_figure(g['decode_tokens_per_s'], digits=0)} | "
            f"{g['kv_cache_bytes'] / 2**20:,.1f} | "
            f"{'n/a' if peak is None else f'{peak / 2**30:,.2f}'} | "
            f"{_energy_per_token(summary, tokens)} | {'yes' if g['deterministic'] else 'NO'} | "
            f"{summary.get('quality_verdict')} |"
        )
        print(rows[-1], flush=True)
    asked = ", ".join(f"{k} {v}" for k, v in lengths.items())
    check.write(
        "device-check-generation",
        f"{check.header()} `dlbench generate`, amp-bf16, random weights, greedy; {asked}; "
        "latencies in ms with their 95% intervals.\n\n"
        "| workload | TTFT (ms) | TPOT (ms) | prefill tokens/s | decode tokens/s | KV cache "
        "(MiB) | peak memory (GiB) | J per output token | same tokens | quality |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows),
    )

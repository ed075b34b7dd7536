"""dlbench generate's prefill and decode tokens/s beside a plain PyTorch generation loop.

A small llama and a small gpt (the same seed, prompt shape and greedy KV-cache decoding) are
each timed two ways, interleaved (dlbench, plain, dlbench, plain, ...), each in its own
process: by `dlbench generate` (a synchronisation and a clock reading after every token) and
by a loop written for this benchmark, which reads the clock once around the prompt and once
around the rest. Each
figure is the median over rounds of each process's mean; the ratio is dlbench / plain (goal:
at least 0.97). The counting is llama-bench's: prompt tokens over the prefill's time (its
``pp``), generated tokens after the first over the decode's time (its ``tg``).

    .venv/bin/python benchmarks/generation_overhead.py [--rounds 5] [--workloads gpt]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _report import machine, write_section

SHAPE = {"prompt_len": 128, "gen_len": 64, "batch": 4, "requests": 10, "warmup": 5}
# glibc serves an allocation above its mmap threshold (128 KiB, raised as large blocks are
# freed) with fresh pages, faulted in on first touch. A prefill's activations are such blocks:
# in a fresh process it ran at 25-31 k tokens/s, after three training steps at 40 k (this VM).
# Both processes get glibc's top threshold, so neither times page faults and the ratio is
# the loops' own.
ENV = {
    **os.environ,
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(64 * 2**20),
}
# Each workload's shape on the command line, and the same model built by the plain loop.
MODELS = {
    "llama": (
        ["--depth", "4", "--width", "256", "--heads", "4", "--kv-heads", "2", "--vocab", "256",
         "--seq-len", "256"],
        "from dlbench.workloads import llama_models\n"
        "model = llama_models.llama((1, 256, 1), 256, depth=4, width=256, heads=4, kv_heads=2)",
    ),
    "gpt": (
        ["--depth", "4", "--width", "256", "--vocab", "256", "--seq-len", "256"],
        "from dlbench.workloads import language_models\n"
        "model = language_models.gpt((1, 256, 1), 256, depth=4, width=256)",
    ),
}  # fmt: skip

PLAIN = """
import json, statistics, sys, time
import torch
precision = sys.argv[1]
prompt_len, gen_len, batch, requests, warmup = map(int, sys.argv[2:7])
torch.manual_seed(0)
exec(sys.argv[7])  # builds `model`
model = model.eval()
dtype = torch.bfloat16 if precision == "amp-bf16" else None
prompt = torch.randint(0, 256, (batch, prompt_len), generator=torch.Generator().manual_seed(0))
prefill, decode = [], []
cache = model.new_cache(batch, prompt_len + gen_len, dtype)  # allocated once, as dlbench does
for index in range(warmup + requests):
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
        cache.length = 0
        start = time.perf_counter()
        token = model(prompt, cache)[:, -1].argmax(-1)
        first = time.perf_counter()
        for _ in range(gen_len - 1):
            token = model(token[:, None], cache)[:, -1].argmax(-1)
        end = time.perf_counter()
    if index >= warmup:
        prefill.append(first - start)
        decode.append(end - first)
# tokens over the mean duration, as dlbench counts them
print(json.dumps({"prefill": prompt_len * batch / statistics.mean(prefill),
                  "decode": (gen_len - 1) * batch / statistics.mean(decode)}))
"""


def dlbench_figures(workload: str, precision: str, db: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "dlbench", "generate", workload, *MODELS[workload][0],
         "--device", "cpu",
         "--precision", precision, "--prompt-len", str(SHAPE["prompt_len"]),
         "--gen-len", str(SHAPE["gen_len"]), "--batch-size", str(SHAPE["batch"]),
         "--requests", str(SHAPE["requests"]), "--warmup", str(SHAPE["warmup"]),
         "--no-telemetry", "--db", str(db), "--json", "-"],
        capture_output=True, text=True, check=True, env=ENV,
    )  # fmt: skip
    generation = json.loads(done.stdout)["generation"]
    return {
        "prefill": generation["prefill_tokens_per_s"]["mean"],
        "decode": generation["decode_tokens_per_s"]["mean"],
    }


def plain_figures(workload: str, precision: str) -> dict[str, float]:
    arguments = [str(SHAPE[k]) for k in ("prompt_len", "gen_len", "batch", "requests", "warmup")]
    done = subprocess.run(
        [sys.executable, "-c", PLAIN, precision, *arguments, MODELS[workload][1]],
        capture_output=True,
        text=True,
        check=True,
        env=ENV,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workloads", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "amp-bf16"])
    parser.add_argument("--print-only", action="store_true", help="do not edit the doc")
    options = parser.parse_args()
    rounds = options.rounds
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for workload, precision in itertools.product(options.workloads, options.precisions):
            ours: list[dict[str, float]] = []
            theirs: list[dict[str, float]] = []
            for index in range(rounds):
                db = Path(folder) / f"{workload}-{precision}{index}.db"
                ours.append(dlbench_figures(workload, precision, db))
                theirs.append(plain_figures(workload, precision))
            for phase in ("prefill", "decode"):
                a = statistics.median(f[phase] for f in ours)
                b = statistics.median(f[phase] for f in theirs)
                rows.append(
                    f"| {workload} | {precision} | {phase} | {a:,.0f} | {b:,.0f} | {a / b:.3f} |"
                )
                print(rows[-1], flush=True)
    shape = ", ".join(f"{k} {v}" for k, v in SHAPE.items())
    table = "\n".join(
        [
            f"{machine()}; llama 4 x 256, 4 heads sharing 2 key/value heads, and gpt 4 x 256 "
            f"(4 heads of 64), vocabulary 256; {shape}; median of {rounds} interleaved rounds, "
            "each its own process.",
            "",
            "| workload | precision | phase | dlbench generate (tokens/s) | plain loop (tokens/s) "
            "| ratio |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "Command: `.venv/bin/python benchmarks/generation_overhead.py`",
        ]
    )
    print(table)
    if not options.print_only:
        write_section("generation-overhead", table)


if __name__ == "__main__":
    main()

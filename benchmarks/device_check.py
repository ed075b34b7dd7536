"""Every GPU path of dlbench, measured on a GPU machine, into docs/benchmarks.md.

Nine steps, each with its own time budget, each writing its own section as soon as it is done
(so a step that runs out of time keeps the others' figures):

1. ``pytest -m gpu``: the tests that need a CUDA GPU;
2. resnet50 training throughput in fp32, tf32, amp-bf16, amp-bf16 channels-last and compiled,
   with achieved TFLOP/s, MFU and each run's quality verdict;
3. the telemetry sampler at 0.1 s with the NVML source: throughput on/off and its CPU per tick;
4. CPU vs GPU ``compare`` on the Faster R-CNN scene detector, with its p-values;
5. interference: a run beside a second process computing on the same GPU must be called
   contended, naming that process, and a run without it must not;
6. ``calibrate --ops`` on the GPU (and briefly on the host CPU): operator shapes timed, the
   best achieved TFLOP/s per kind, and the GPU/CPU operator-class ratios the calculator
   would carry a CPU-calibrated model to the GPU with;
7. GPT-2 small in bf16 with flash attention, eager and compiled: tokens/s and MFU beside
   published GPT-2 124M training figures (run third, after the throughput step);
8. ``dlbench collectives`` over the node's GPUs (NCCL): all-reduce and all-gather bus
   bandwidth from 8 B to 1 GiB;
9. GPT-2 small and Llama-3.2-1B generating in bf16 with their KV cache: TTFT, TPOT, prefill
   and decode tokens/s, the cache, peak memory and energy per token (device_generation.py).

    scripts/device-check                       # the whole check, at most 8 minutes
    .venv/bin/python benchmarks/device_check.py --rehearse   # every step on the CPU, tiny,
                                                             # nothing written (no GPU needed)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _report import dlbench_run, machine, write_section
from device_generation import generation

ROOT = Path(__file__).resolve().parent.parent
GPU_TEST_FILES = [
    "tests/test_gpu.py",
    "tests/engines/test_pytorch.py",
    "tests/telemetry/test_sources.py",
]
HOG = """
import os, sys, time, torch
x = torch.randn(4096, 4096, device="cuda")
open(sys.argv[1], "w").write(str(os.getpid()))
end = time.time() + float(sys.argv[2])
while time.time() < end:
    x = (x @ x).tanh()
    torch.cuda.synchronize()
"""


class Check:
    def __init__(self, rehearse: bool, db: Path) -> None:
        self.rehearse, self.db = rehearse, db
        self.device = "cpu" if rehearse else "cuda"
        self.gpu_name = "(rehearsal on the CPU)"

    def write(self, name: str, text: str) -> None:
        print(f"\n## {name}\n{text}\n", flush=True)
        if not self.rehearse:
            write_section(name, text)

    def run(self, workload: str, warmup: int, steps: int, *options: str) -> dict:
        summary = dlbench_run(workload, warmup, steps, self.db, "--device", self.device, *options)
        self.gpu_name = summary.get("device_name") or self.gpu_name
        return summary

    def header(self) -> str:
        return f"Device: {self.gpu_name}; host: {machine()}."

    # -- 1 --------------------------------------------------------------------------------
    def gpu_tests(self) -> None:
        marker = "not gpu" if self.rehearse else "gpu"
        # Only the files with GPU tests: collecting all would import the dashboard's packages.
        selection = ["tests/measure"] if self.rehearse else GPU_TEST_FILES
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-m",
                marker,
                "-q",
                "-p",
                "no:cacheprovider",
                *selection,
            ],  # fmt: skip
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=150,
        )
        last = (done.stdout.strip().splitlines() or ["no output"])[-1]
        failures = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
        text = f"{self.header()}\n\n`pytest -m gpu`: {last} (exit code {done.returncode})."
        if failures:
            text += "\n\n" + "\n".join(f"- {line}" for line in failures[:10])
        self.write("device-check-gpu-tests", text)

    # -- 2 --------------------------------------------------------------------------------
    def throughput(self) -> None:
        variants = {
            "fp32": ["--precision", "fp32"],
            "tf32": ["--precision", "tf32"],
            "amp-bf16": ["--precision", "amp-bf16"],
            "amp-bf16 channels-last": ["--precision", "amp-bf16", "--channels-last"],
            "amp-bf16 channels-last compiled": [
                "--precision",
                "amp-bf16",
                "--channels-last",
                "--compile",
            ],  # fmt: skip
        }
        if self.rehearse:
            variants = {"fp32": variants["fp32"], "amp-bf16": variants["amp-bf16"]}
        batch, steps = ("8", 3) if self.rehearse else ("256", 50)
        rows = []
        base = None
        for name, options in variants.items():
            warmup = 15 if "--compile" in options else 5
            s = self.run("resnet50", warmup, steps, "--batch-size", batch, "--no-telemetry",
                         *options, *(["--image-size", "64"] if self.rehearse else []))  # fmt: skip
            base = base or s["mean_speed"]
            low, high = s["speed_ci95"] or (None, None)
            mfu = f"{s['mfu']:.1%}" if s.get("mfu") is not None else "n/a"
            rows.append(
                f"| {name} | {s['mean_speed']:,.1f} | {low:,.1f}–{high:,.1f} | "
                f"{s['mean_speed'] / base:.2f} | {s['achieved_tflops']:.3g} | {mfu} | "
                f"{s.get('peak_tflops') or 'n/a'} | {s.get('quality_verdict')} | "
                f"{(s.get('warmup_time_s') or 0):.1f} |"
            )
            print(rows[-1], flush=True)
        text = "\n".join(
            [
                f"{self.header()} resnet50, batch {batch}, {steps} timed steps each, one fresh "
                "process per variant, synthetic data.",
                "",
                "| variant | img/s | 95% CI | vs fp32 | achieved TFLOP/s | MFU | peak TFLOP/s | "
                "quality | warm-up (s) |",
                "|---|---|---|---|---|---|---|---|---|",
                *rows,
                "",
                "Command: `scripts/device-check`",
            ]
        )
        self.write("device-check-resnet50", text)

    # -- 3 --------------------------------------------------------------------------------
    def telemetry(self) -> None:
        sys.path.insert(0, str(Path(__file__).parent))
        import telemetry_overhead

        workload = "mlp-mnist" if self.rehearse else "resnet18"
        table = telemetry_overhead.main(
            [
                "--device",
                self.device,
                "--workload",
                workload,
                "--intervals",
                "1,0.1",
                "--pairs",
                "2" if self.rehearse else "4",
                "--block-s",
                "1" if self.rehearse else "3",
                "--no-write",
            ]  # fmt: skip
        )
        self.write("device-check-telemetry", table)

    # -- 4 --------------------------------------------------------------------------------
    def compare(self) -> None:
        from dlbench.analysis.compare import compare
        from dlbench.analysis.stats import format_p
        from dlbench.store.database import Store

        size = ["--image-size", "128" if self.rehearse else "256", "--batch-size", "2"]
        cpu = dlbench_run("fasterrcnn", 1, 3 if self.rehearse else 6, self.db, "--device", "cpu",
                          "--no-telemetry", "--val-batches", "1", *size)  # fmt: skip
        # Rehearsing on the CPU, the "GPU" side differs by precision instead.
        other = ["--precision", "amp-bf16"] if self.rehearse else []
        gpu = self.run("fasterrcnn", 3, 4 if self.rehearse else 40, "--no-telemetry",
                       "--val-batches", "1", *size, *other)  # fmt: skip
        store = Store(str(self.db))
        by = "precision" if self.rehearse else "device"
        c = compare(store, [cpu["run_id"], gpu["run_id"]], by=by).contrasts[0]
        text = "\n".join(
            [
                f"{self.header()} fasterrcnn (Waldo scenes), {' '.join(size)}; CPU "
                f"{cpu['timed_steps']} timed steps, GPU {gpu['timed_steps']}.",
                "",
                "| side | img/s | 95% CI | quality |",
                "|---|---|---|---|",
                *(
                    f"| {s['device_name']} | {s['mean_speed']:,.2f} | "
                    f"{s['speed_ci95'][0]:,.2f}–{s['speed_ci95'][1]:,.2f} | "
                    f"{s['quality_verdict']} |"
                    for s in (cpu, gpu)
                ),
                "",
                f"Speed-up {c.speedup.estimate:.2f}x (95% CI {c.speedup.low:.2f}–"
                f"{c.speedup.high:.2f}, {c.method}); Welch {format_p(c.welch_p)}, "
                f"Mann-Whitney {format_p(c.mann_whitney_p)}.",
                "",
                f"Verdict: {c.verdict}",
                "",
                "Command: `scripts/device-check`",
            ]
        )
        self.write("device-check-compare", text)

    # -- 5 --------------------------------------------------------------------------------
    def interference(self) -> None:
        shape = ["--batch-size", "64", "--val-batches", "1"]
        steps = 60
        if self.rehearse:
            shape, steps = ["--batch-size", "8", "--image-size", "32", "--val-batches", "1"], 5
        quiet = self.run("resnet18", 3, steps, *shape)
        hog_pid, hog = self._start_hog(120)
        try:
            busy = self.run("resnet18", 3, steps, *shape)
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
        reasons = (busy.get("quality") or {}).get("reasons") or []
        named = any(f"pid {hog_pid}" in r for r in reasons) if hog_pid else None
        text = "\n".join(
            [
                f"{self.header()} resnet18, {' '.join(shape)}, {steps} timed steps; the second "
                "run beside another process running 4096x4096 matrix products on the same GPU.",
                "",
                "| run | img/s | quality | reasons |",
                "|---|---|---|---|",
                *(
                    f"| {label} | {s['mean_speed']:,.1f} | {s['quality_verdict']} | "
                    f"{'; '.join((s.get('quality') or {}).get('reasons') or [])} |"
                    for label, s in (("alone", quiet), ("beside a GPU hog", busy))
                ),
                "",
                f"Second process named in the reasons: {named}; slowdown "
                f"{quiet['mean_speed'] / busy['mean_speed']:.2f}x.",
                "",
                "Command: `scripts/device-check`",
            ]
        )
        self.write("device-check-interference", text)

    def _start_hog(self, seconds: float) -> tuple[int | None, subprocess.Popen | None]:
        if self.rehearse:
            return None, None
        pid_file = self.db.parent / "hog.pid"
        # A new session: not a descendant of the runs that follow, as another user's job is not.
        hog = subprocess.Popen(
            [sys.executable, "-c", HOG, str(pid_file), str(seconds)], start_new_session=True
        )
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # its CUDA context and first products are under way
        return hog.pid, hog


def operators(check: Check) -> None:
    """Step 6: operator calibration on the GPU and the host, and their class ratios."""
    import pandas as pd

    from dlbench.predict.operators import class_ratios, ridge, work
    from dlbench.store import operators as stored_ops
    from dlbench.store.database import Store

    budgets = {"cpu": "0.1"} if check.rehearse else {"cuda": "1.2", "cpu": "0.5"}
    for device, minutes in budgets.items():
        subprocess.run(
            [sys.executable, "-m", "dlbench", "calibrate", "--ops", "--device", device,
             "--budget", minutes, "--precisions", "fp32", "--db", str(check.db)],
            cwd=ROOT, capture_output=True, text=True, timeout=200, check=True,
        )  # fmt: skip
    store = Store(str(check.db))
    found = {d: stored_ops.usable(stored_ops.table(store, d)) for d in stored_ops.devices(store)}
    lines = []
    for device, table in found.items():
        flops = pd.Series(
            [work(k, s)[0] for k, s in zip(table["kind"], table["shape"], strict=True)]
        )
        achieved = (flops.to_numpy() / table["train_s"].to_numpy()) / 1e12
        best = pd.Series(achieved).groupby(table["kind"].to_numpy()).max()
        verdicts = table["quality_verdict"].value_counts().to_dict()
        lines.append(
            f"- {device}: {len(table)} shapes ({verdicts}); best achieved TFLOP/s (forward + "
            "backward): " + ", ".join(f"{k} {v:.3g}" for k, v in best.items())
        )
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    if gpu in found and len(found) == 2:
        cpu = next(d for d in found if d != gpu)
        peak = found[gpu]["peak_tflops"].dropna()
        bandwidth = found[gpu]["bandwidth_gb_s"].dropna()
        ratios = class_ratios(found[cpu], found[gpu], ridge(
            float(peak.iloc[0]) if len(peak) else None,
            float(bandwidth.iloc[0]) if len(bandwidth) else None))  # fmt: skip
        if ratios:
            lines.append(
                f"- {gpu} / {cpu} operator time, by class: "
                + ", ".join(
                    f"{k}-bound x {v:.3g} ({ratios.shared[k]} shapes)"
                    for k, v in ratios.ratios.items()
                )  # fmt: skip
                + f"; largest deviation from the class ratio {ratios.spread:.2f} in log"
            )
    check.write(
        "device-check-operators",
        f"{check.header()}\n\n`dlbench calibrate --ops --precisions fp32` for "
        f"{', '.join(f'{m} min on {d}' for d, m in budgets.items())}:\n\n" + "\n".join(lines),
    )


# Published GPT-2 124M training throughput, per GPU, derived from the figures their authors
# state (tokens trained, wall time, GPUs), with MFU by the same 6N + 12 L d T count.
PUBLISHED_GPT2 = (
    '- llm.c (karpathy/llm.c discussion #481, "Reproducing GPT-2 (124M) in llm.c in 90 '
    'minutes for $20"): 10 B tokens in about 90 minutes on 8x A100 80GB SXM: ~231k '
    "tokens/s per GPU, ~199 TFLOP/s, ~64% of the A100's 312 bf16 TFLOP/s.\n"
    "- The same run on 8x H100 in 45 minutes (KellerJordan/modded-nanogpt README, which "
    "starts from it): ~463k tokens/s per GPU, ~398 TFLOP/s, ~40% of the H100 SXM's 989.\n"
    "- nanoGPT (karpathy/nanoGPT README and config/train_gpt2.py): 600,000 iterations of "
    "491,520 tokens in about 4 days on 8x A100 40GB: ~107k tokens/s per GPU, ~29% MFU."
)
WHY_GPT2_DIFFERS = (
    "Why they differ from dlbench's figure: llm.c is hand-written CUDA (fused kernels, cuDNN "
    "flash attention, bf16 master weights, fused AdamW); nanoGPT pads the vocabulary to "
    "50,304 (a multiple of 64) and uses fused AdamW, dlbench keeps GPT-2's 50,257 and "
    "PyTorch's default AdamW; their figures are whole runs of 8 GPUs with gradient "
    "accumulation and data loading, dlbench's one GPU's timed steps on synthetic tokens."
)


def gpt2(check: Check) -> None:
    """Step 7: GPT-2 small (124 M, 1,024 tokens) in bf16 with flash attention, eager and
    compiled: tokens/s, MFU and the attention kernel, beside published GPT-2 figures."""
    shape = ["--depth", "2", "--width", "128", "--seq-len", "64"] if check.rehearse else []
    batch, steps = ("4", 3) if check.rehearse else ("16", 30)
    rows = []
    for name, options in {"amp-bf16": [], "amp-bf16 compiled": ["--compile"]}.items():
        warmup = 15 if options else 5
        s = check.run("gpt", warmup, steps, "--batch-size", batch, "--precision", "amp-bf16",
                      "--no-telemetry", "--no-infer", *shape, *options)  # fmt: skip
        low, high = s["tokens_per_s_ci95"] or (0.0, 0.0)
        mfu = f"{s['mfu']:.1%}" if s.get("mfu") is not None else "n/a"
        rows.append(
            f"| {name} | {s['tokens_per_s']:,.0f} | {low:,.0f}–{high:,.0f} | "
            f"{s['achieved_tflops']:.3g} | {mfu} | {s['model']['attention_backend']} | "
            f"{s.get('quality_verdict')} | {(s.get('warmup_time_s') or 0):.1f} |"
        )
        print(rows[-1], flush=True)
    check.write(
        "device-check-gpt2",
        f"{check.header()} gpt ("
        + (
            "rehearsal: 2 x 128, 64 tokens"
            if check.rehearse
            else "GPT-2 small, 124 M, 1,024 tokens"
        )
        + f"), batch {batch}, "
        f"{steps} timed steps, synthetic tokens, one fresh process each.\n\n"
        "| variant | tokens/s | 95% CI | achieved TFLOP/s | MFU | attention kernel | quality "
        "| warm-up (s) |\n|---|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\nPublished, for comparison:\n\n{PUBLISHED_GPT2}\n\n{WHY_GPT2_DIFFERS}",
    )


def collectives(check: Check) -> None:
    """All-reduce and all-gather over the node's GPUs (NCCL), nccl-tests' bus bandwidth."""
    import torch

    gpus = 2 if check.rehearse else torch.cuda.device_count()
    if gpus < 2:
        check.write("device-check-collectives", f"{check.header()} One GPU: no collective.")
        return
    sizes = "1KiB:64KiB" if check.rehearse else "8B:1GiB"
    done = subprocess.run(
        [sys.executable, "-m", "dlbench", "collectives", "--device", check.device]
        + ["--gpus-per-node", str(gpus), "--ops", "all_reduce,all_gather", "--sizes", sizes]
        + ["--json", "-", "--db", str(check.db)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-600:])
    summary = json.loads(done.stdout)
    rows = [
        f"| {r['operation']} | {r['size_bytes']:,} | {r['time_s'] * 1e6:,.1f} "
        f"| {r['algbw_gb_s']:,.2f} | {r['busbw_gb_s']:,.2f} | {'ok' if r['correct'] else 'WRONG'} |"
        for r in summary["collectives"]
        if r["size_bytes"] >= 2**20 or check.rehearse
    ]
    check.write(
        "device-check-collectives",
        f"{check.header()} `dlbench collectives` over {gpus} processes "
        f"({'gloo, rehearsal' if check.rehearse else 'NCCL'}), sizes from 1 MiB shown; "
        f"quality {summary.get('quality_verdict')}.\n\n"
        "| operation | size (bytes) | time (µs) | algbw (GB/s) | busbw (GB/s) | check |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows),
    )


STEPS: dict[str, Callable[[Check], None]] = {
    "gpu-tests": Check.gpu_tests,
    "throughput": Check.throughput,
    "gpt2": gpt2,  # third: the headline transformer figure before the longer checks
    "generation": generation,  # then what serving a language model costs
    "telemetry": Check.telemetry,
    "compare": Check.compare,
    "interference": Check.interference,
    "operators": operators,
    "collectives": collectives,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rehearse", action="store_true", help="on the CPU, tiny, no writing")
    parser.add_argument("--only", help=f"comma-separated steps of: {', '.join(STEPS)}")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(STEPS)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        check = Check(args.rehearse, Path(tmp) / "device-check.sqlite")
        for name in chosen:
            started = time.monotonic()
            print(f"== {name}", flush=True)
            try:
                STEPS[name](check)
            except Exception as exc:  # noqa: BLE001 - one broken step must not lose the others
                failed.append(name)
                print(f"!! {name} failed: {type(exc).__name__}: {exc}", flush=True)
            print(f"== {name}: {time.monotonic() - started:.0f} s", flush=True)
    print(json.dumps({"failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

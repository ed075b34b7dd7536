"""Training throughput of the transformers: tokens/s of `gpt` at two sizes and images/s of
`vit-b16`, in fp32 and bf16 autocast, with the FLOPs of the real step (FlopCounterMode),
the TFLOP/s achieved, the MFU and the attention kernel the step called.

Each measurement is a fresh `dlbench run` process; the precisions of one case are
interleaved round by round (A B, B A, ...) so that machine noise hits them alike; the table
quotes medians over rounds and the median per-round ratio to fp32.

    .venv/bin/python benchmarks/transformer_throughput.py [--rounds 3] [--device cpu]
    .venv/bin/python benchmarks/transformer_throughput.py --device cuda --gpu
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from _report import dlbench_run, interleaved, machine, throughput_arguments, write_section

# (label, workload, options, timed steps): 10-60 s of training each on a 2-core CPU.
CPU_CASES = (
    (
        "gpt 6x384, 256 tokens",
        "gpt",
        ["--depth", "6", "--width", "384", "--seq-len", "256", "--batch-size", "8"],
        10,
    ),
    ("gpt GPT-2 small, 1024 tokens", "gpt", ["--batch-size", "1"], 4),
    ("vit-b16 224x224", "vit-b16", ["--batch-size", "4"], 6),
)
GPU_CASES = (
    ("gpt GPT-2 small, 1024 tokens", "gpt", ["--batch-size", "16"], 40),
    ("vit-b16 224x224", "vit-b16", ["--batch-size", "128"], 40),
)
CPU_VARIANTS = {"fp32": ["--precision", "fp32"], "amp-bf16": ["--precision", "amp-bf16"]}
GPU_VARIANTS = {
    "tf32": ["--precision", "tf32"],
    "amp-bf16": ["--precision", "amp-bf16"],
    "amp-bf16 compiled": ["--precision", "amp-bf16", "--compile"],
}
WARMUP = 2


def run(workload: str, options: list[str], steps: int, device: str, db: Path) -> dict:
    warmup = WARMUP * 5 if "--compile" in options else WARMUP
    return dlbench_run(
        workload, warmup, steps, db, "--device", device, "--no-telemetry", "--no-infer", *options
    )


def _row(label: str, name: str, runs: list[dict], base: list[dict]) -> str:
    language = runs[0]["tokens_per_s"] is not None
    speeds = [s["tokens_per_s"] if language else s["mean_speed"] for s in runs]
    ratios = [s["mean_speed"] / b["mean_speed"] for s, b in zip(runs, base, strict=True)]
    tflops = statistics.median(s["achieved_tflops"] for s in runs)
    mfu = statistics.median(s["mfu"] for s in runs) if runs[-1]["mfu"] else None
    attention = (runs[-1]["model"] or {}).get("attention_backend") or "—"
    unit = "tokens/s" if language else "images/s"
    speed = statistics.median(speeds)
    return (
        f"| {label} | {runs[-1]['batch_size']} | {name} | "
        f"{speed:,.{0 if speed >= 100 else 2}f} {unit} | {statistics.median(ratios):.2f} | "
        f"{runs[-1]['params'] / 1e6:,.1f} M | "
        f"{tflops:.3f} | {f'{mfu:.1%}' if mfu is not None else 'n/a'} | {attention} |"
    )


def measure(rounds: int, device: str, gpu: bool) -> tuple[str, str]:
    cases, variants = (GPU_CASES, GPU_VARIANTS) if gpu else (CPU_CASES, CPU_VARIANTS)
    rows, names = [], list(variants)
    device_name = ""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite"
        for label, workload, options, steps in cases:
            results = interleaved(
                variants,
                rounds,
                lambda extra, w=workload, o=options, n=steps: run(w, o + extra, n, device, db),
                label,
            )
            device_name = results[names[0]][-1]["device_name"]
            rows += [_row(label, name, results[name], results[names[0]]) for name in names]
    header = (
        f"| Model | Batch | Precision | Speed (median) | vs {names[0]} | Parameters "
        "| Achieved TFLOP/s | MFU | Attention kernel |\n|---|---|---|---|---|---|---|---|---|"
    )
    return device_name, header + "\n" + "\n".join(rows)


def main() -> None:
    args = throughput_arguments()
    device_name, table = measure(args.rounds, args.device, args.gpu)
    text = (
        f"Device: {device_name} ({machine()}). {args.rounds} rounds, precisions interleaved; "
        "speeds over the timed training steps (synthetic tokens and images), FLOPs counted by "
        f"FlopCounterMode on the real step, MFU against the device's peak at the run's "
        f"precision.\n\n{table}\n\n"
        f"Command: `.venv/bin/python benchmarks/transformer_throughput.py --rounds {args.rounds} "
        f"--device {args.device}{' --gpu' if args.gpu else ''}`"
    )
    print(text)
    if not args.print_only:
        write_section(
            "transformer-throughput-gpu" if args.gpu else "transformer-throughput-cpu", text
        )


if __name__ == "__main__":
    main()

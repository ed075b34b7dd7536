"""Training throughput of zoo workloads per precision, with achieved TFLOP/s and MFU.

Each measurement is a fresh `dlbench run` process. Variants of one workload are interleaved
round by round (A B, B A, A B, ...) so that machine noise hits them alike; the table quotes
the median over rounds of images/s, and the median per-round ratio of each variant to the
first (fp32).

    .venv/bin/python benchmarks/zoo_throughput.py [--rounds 3] [--device cpu]
    .venv/bin/python benchmarks/zoo_throughput.py --device cuda --gpu   # adds channels-last
                                                                        # and torch.compile
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from _report import dlbench_run, interleaved, machine, throughput_arguments, write_section

# (workload, extra options, timed steps): about 20-30 s of training each on a 2-core CPU.
CPU_CASES = (
    ("resnet50", ["--batch-size", "16"], 12),
    ("cifar10-cnn", [], 60),
)
GPU_CASES = (
    ("resnet50", ["--batch-size", "256"], 60),
    ("cifar10-cnn", ["--batch-size", "512"], 200),
)
CPU_VARIANTS = {"fp32": ["--precision", "fp32"], "amp-bf16": ["--precision", "amp-bf16"]}
GPU_VARIANTS = {
    "fp32": ["--precision", "fp32"],
    "tf32": ["--precision", "tf32"],
    "amp-bf16": ["--precision", "amp-bf16"],
    "amp-bf16 channels-last": ["--precision", "amp-bf16", "--channels-last"],
    "amp-bf16 channels-last compiled": ["--precision", "amp-bf16", "--channels-last", "--compile"],
}
WARMUP = 3


def run(workload: str, options: list[str], steps: int, device: str, db: Path) -> dict:
    warmup = WARMUP * 5 if "--compile" in options else WARMUP
    return dlbench_run(workload, warmup, steps, db, "--device", device, "--no-telemetry", *options)


def measure(rounds: int, device: str, gpu: bool) -> tuple[str, str]:
    cases, variants = (GPU_CASES, GPU_VARIANTS) if gpu else (CPU_CASES, CPU_VARIANTS)
    rows, names = [], list(variants)
    device_name = ""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite"
        for workload, options, steps in cases:
            results = interleaved(
                variants,
                rounds,
                lambda extra, w=workload, o=options, n=steps: run(w, o + extra, n, device, db),
                workload,
            )
            device_name = results[names[0]][-1]["device_name"]
            base = [s["mean_speed"] for s in results[names[0]]]
            for name in names:
                speeds = [s["mean_speed"] for s in results[name]]
                ratios = [s / b for s, b in zip(speeds, base, strict=True)]
                last = results[name][-1]
                mfu = statistics.median(s["mfu"] for s in results[name]) if last["mfu"] else None
                tflops = statistics.median(s["achieved_tflops"] for s in results[name])
                rows.append(
                    f"| {workload} | {last['batch_size']} | {name} | "
                    f"{statistics.median(speeds):,.1f} | {statistics.median(ratios):.2f} | "
                    f"{tflops:.3f} | {f'{mfu:.1%}' if mfu is not None else 'n/a'} | "
                    f"{last['peak_tflops'] or 'n/a'} |"
                )
    header = (
        "| Workload | Batch | Precision | Images/s (median) | vs fp32 | Achieved TFLOP/s | MFU "
        "| Peak TFLOP/s |\n|---|---|---|---|---|---|---|---|"
    )
    return device_name, header + "\n" + "\n".join(rows)


def main() -> None:
    args = throughput_arguments()
    device_name, table = measure(args.rounds, args.device, args.gpu)
    text = (
        f"Device: {device_name} ({machine()}). {args.rounds} rounds, variants interleaved; "
        f"images/s over the timed training steps (synthetic data), FLOPs counted by "
        f"FlopCounterMode on the real step.\n\n{table}\n\n"
        f"Command: `.venv/bin/python benchmarks/zoo_throughput.py --rounds {args.rounds} "
        f"--device {args.device}{' --gpu' if args.gpu else ''}`"
    )
    print(text)
    if not args.print_only:
        write_section("zoo-throughput-gpu" if args.gpu else "zoo-throughput-cpu", text)


if __name__ == "__main__":
    main()

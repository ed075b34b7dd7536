"""The same workloads on PyTorch, TensorFlow and JAX (Keras 3) on one machine.

Each measurement is a fresh `dlbench run` process; the frameworks are interleaved round by
round (rotating the order) so that machine noise hits them alike. The table quotes, per
workload and framework, the median over rounds of the mean step time and images/s, the ratio
to PyTorch (median of per-round ratios), and the FLOPs per step each framework counts.

    .venv/bin/python benchmarks/framework_throughput.py [--rounds 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from _report import dlbench_run, machine, write_section

FRAMEWORKS = ("pytorch", "tensorflow", "jax")
# (workload, timed steps): a few seconds of training each on a 2-core CPU.
CASES = (("lenet-mnist", 150), ("mlp-mnist", 150), ("cifar10-cnn", 40))
WARMUP = 10


def measure(rounds: int, device: str) -> str:
    rows = []
    device_name = ""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite"
        for workload, steps in CASES:
            results: dict[str, list[dict]] = {f: [] for f in FRAMEWORKS}
            for r in range(rounds):
                order = FRAMEWORKS[r % 3 :] + FRAMEWORKS[: r % 3]
                for framework in order:
                    summary = dlbench_run(
                        workload, WARMUP, steps, db, "--device", device, "--no-telemetry",
                        "--framework", framework,
                    )  # fmt: skip
                    results[framework].append(summary)
                    device_name = summary["device_name"]
            for framework in FRAMEWORKS:
                runs = results[framework]
                ratio = statistics.median(
                    base["mean_step_time_s"] / mine["mean_step_time_s"]
                    for base, mine in zip(results["pytorch"], runs, strict=True)
                )
                flops = runs[0].get("flops_per_step")
                rows.append(
                    f"| {workload} | {framework} | "
                    f"{statistics.median(r['mean_step_time_s'] for r in runs) * 1e3:.2f} | "
                    f"{statistics.median(r['mean_speed'] for r in runs):,.0f} | {ratio:.2f} | "
                    f"{'n/a' if not flops else f'{flops / 1e6:,.1f}'} | "
                    f"{runs[0]['params']:,} |"
                )
    return (
        f"Device: {device_name} ({machine()}); {rounds} rounds, frameworks interleaved, "
        f"{WARMUP} warm-up steps then the timed steps, default batch sizes, synthetic data, "
        "fp32.\n\n"
        "| Workload | Framework | Step (ms) | Images/s | Speed vs PyTorch | MFLOP/step | Params |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\nCommand: "
        "`.venv/bin/python benchmarks/framework_throughput.py --rounds "
        f"{rounds} --device {device}`"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    text = measure(args.rounds, args.device)
    print(text)
    write_section("framework-throughput", text)


if __name__ == "__main__":
    main()

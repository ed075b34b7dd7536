"""`dlbench collectives` against a plain torch.distributed loop: all-reduce bus bandwidth.

For 2 and 4 gloo processes on this machine, all-reduce over message sizes, measured by
`dlbench collectives` and by an independent loop written here with torch.distributed alone
(nccl-tests' method: warm-up calls, then a block of back-to-back calls between a barrier and
the end, the slowest rank's time per call, busbw = size / t x 2(n-1)/n). The two alternate
(dlbench, plain, dlbench, plain ...) and each figure is the median of its repeats; the ratio
says whether dlbench's harness adds anything to what it measures (goal: within 5%).

    .venv/bin/python benchmarks/collectives.py [--repeats 3] [--sizes 1KiB:16MiB]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _report import machine, write_section

PLAIN = r'''
import json, sys, time
import torch, torch.distributed as dist

dist.init_process_group("gloo")
n, rank = dist.get_world_size(), dist.get_rank()
out = {}
for size in json.loads(sys.argv[1]):
    t = torch.zeros(max(1, size // 4))
    calls = 50 if size <= 2**16 else 20 if size <= 2**24 else 5
    for _ in range(5):
        dist.all_reduce(t)
    per_round = []
    for _ in range(5):
        dist.barrier()
        start = time.perf_counter()
        for _ in range(calls):
            dist.all_reduce(t)
        took = torch.tensor([(time.perf_counter() - start) / calls], dtype=torch.float64)
        dist.all_reduce(took, op=dist.ReduceOp.MAX)
        per_round.append(took.item())
    seconds = sum(per_round) / len(per_round)
    out[size] = t.numel() * 4 / seconds / 1e9 * 2 * (n - 1) / n
if rank == 0:
    print("RESULT " + json.dumps(out))
dist.destroy_process_group()
'''


def dlbench_busbw(processes: int, sizes: str, db: Path) -> dict[int, float]:
    done = subprocess.run(
        [sys.executable, "-m", "dlbench", "collectives", "--ops", "all_reduce", "--sizes", sizes]
        + ["--gpus-per-node", str(processes), "--json", "-", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise SystemExit(f"dlbench collectives: {done.stderr[-600:]}")
    summary = json.loads(done.stdout)
    return {int(r["size_bytes"]): float(r["busbw_gb_s"]) for r in summary["collectives"]}


def plain_busbw(processes: int, sizes: list[int], script: Path) -> dict[int, float]:
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        + [f"--nproc-per-node={processes}", str(script), json.dumps(sizes)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"plain loop: {done.stderr[-600:]}")
    return {int(k): float(v) for k, v in json.loads(line[7:]).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="1KiB:16MiB")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    from dlbench.measure.collectives import elements_for, parse_sizes

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "plain_allreduce.py"
        script.write_text(PLAIN)
        db = Path(tmp) / "collectives.sqlite"
        rows = []
        for processes in (2, 4):
            sizes = [elements_for("all_reduce", s, processes) * 4 for s in parse_sizes(args.sizes)]
            ours: dict[int, list[float]] = {s: [] for s in sizes}
            theirs: dict[int, list[float]] = {s: [] for s in sizes}
            for _ in range(args.repeats):  # interleaved: dlbench, plain, dlbench, plain ...
                for size, value in dlbench_busbw(processes, args.sizes, db).items():
                    ours[size].append(value)
                for size, value in plain_busbw(processes, sizes, script).items():
                    theirs[size].append(value)
            for size in sizes:
                a, b = statistics.median(ours[size]), statistics.median(theirs[size])
                # the plain loop against itself: how far apart its own repeats are
                spread = max(theirs[size]) / min(theirs[size]) - 1
                rows.append((processes, size, a, b, a / b, spread))
                print(f"{processes} processes {size:>10} B: dlbench {a:.3f} plain {b:.3f} "
                      f"GB/s, ratio {a / b:.3f}", flush=True)  # fmt: skip
    ratios = [r[4] for r in rows]
    within = sum(1 for r in ratios if abs(r - 1) <= 0.05)
    table = "\n".join(
        f"| {p} | {s:,} | {a:.3f} | {b:.3f} | {ratio:.3f} | {spread:.0%} |"
        for p, s, a, b, ratio, spread in rows
    )
    spreads = sorted(r[5] for r in rows)
    markdown = f"""
All-reduce over gloo on this machine ({machine()}); {args.repeats} repeats of each, interleaved;
medians. Bus bandwidth in GB/s (nccl-tests' 2(n-1)/n factor).

| processes | size (bytes) | dlbench busbw | plain loop busbw | ratio | plain loop's own spread |
|---|---|---|---|---|---|
{table}

{within} of {len(rows)} sizes within 5% (ratio median {statistics.median(ratios):.3f}, range
{min(ratios):.3f}-{max(ratios):.3f}). The plain loop's own repeats differ by a median of
{statistics.median(spreads):.0%} (largest over smallest, per size): the noise any ratio here
carries.

Command: `.venv/bin/python benchmarks/collectives.py --repeats {args.repeats} --sizes {args.sizes}`
"""
    print(markdown)
    if not args.no_write:
        write_section("collectives", markdown)


if __name__ == "__main__":
    main()

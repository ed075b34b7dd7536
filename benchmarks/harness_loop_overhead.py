"""The cost of dlbench's timed loop itself, in one process, on one model.

Alternates blocks of dlbench's real training loop (``runner._train``: the (epoch, batch)
stream, the StepTimer with a sync at each step boundary, the progress hook, and the heartbeat
thread storing completed steps in SQLite every ``--flush-every`` seconds: 0.25 by default, 20
times as often as a run, since a block lasts under a second) with a plain loop that calls the
same engine's step on the same batches, many times, and quotes the median of the per-block-pair
ratios. Same process, same model, same memory: what is left is the
harness. harness_overhead.py measures the same end to end across fresh processes.

    .venv/bin/python benchmarks/harness_loop_overhead.py [--pairs 20] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from dlbench.config import build_spec
from dlbench.engines import get_engine
from dlbench.measure.timer import StepTimer
from dlbench.runner import benchmark as runner
from dlbench.runner.result import Measured
from dlbench.store.database import Store
from dlbench.store.liveness import HEARTBEAT_S, Heartbeat
from dlbench.workloads import get_workload

from _report import machine, write_section

BLOCK_STEPS = {"lenet-mnist": 60, "cifar10-cnn": 12, "mlp-mnist": 200}


def dlbench_block(spec, engine, store, flush_every_s: float) -> float:
    measured = Measured(store, f"bench-{spec.workload}")
    measured.stream = runner._stream(engine)
    heartbeat = Heartbeat(
        store, measured.run_id, also=measured.store_new_steps, every_s=flush_every_s
    )
    heartbeat.start()
    try:
        runner._train(spec, engine, measured, runner.NullProgress())
    finally:
        heartbeat.stop()
    return measured.timer.completed_steps * spec.batch_size / measured.train_time_s


def plain_block(spec, engine, steps: int) -> float:
    batches = engine.train_epoch()
    engine.sync()
    start = time.perf_counter()
    for _ in range(steps):
        engine.train_step(next(batches))
    engine.sync()
    return steps * spec.batch_size / (time.perf_counter() - start)


def measure(
    workload: str, device: str, pairs: int, store: Store, flush_every_s: float
) -> tuple[float, float, float]:
    steps = BLOCK_STEPS[workload]
    spec = build_spec(workload=workload, device=device, warmup=0, steps=steps)
    engine = get_engine("pytorch")
    engine.setup(spec, get_workload(workload), None)
    store.create_run(f"bench-{workload}", "train", spec.model_dump(mode="json"))
    plain_block(spec, engine, steps)  # warm-up
    ratios, plain_speeds = [], []
    for pair in range(pairs):
        if pair % 2:
            plain = plain_block(spec, engine, steps)
            harness = dlbench_block(spec, engine, store, flush_every_s)
        else:
            harness = dlbench_block(spec, engine, store, flush_every_s)
            plain = plain_block(spec, engine, steps)
        ratios.append(harness / plain)
        plain_speeds.append(plain)
    return statistics.median(plain_speeds), statistics.median(ratios), min(ratios)


def flush_cost(store: Store, steps_per_flush: int, flushes: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of one heartbeat that stores ``steps_per_flush`` new
    steps (what a run at that many steps per 5 s pays every 5 s), on the thread that does it."""
    measured = Measured(store, "bench-flush")
    store.create_run("bench-flush", "train", {})
    measured.timer = StepTimer(lambda: None)
    heartbeat = Heartbeat(store, measured.run_id, also=measured.store_new_steps)
    walls, cpus = [], []
    for _ in range(flushes):
        for _ in range(steps_per_flush):
            measured.timer.step_start()
            measured.timer.data_ready(0)
            measured.timer.step_end()
        wall, cpu = time.perf_counter(), time.thread_time()
        heartbeat.beat()
        walls.append((time.perf_counter() - wall) * 1e3)
        cpus.append((time.thread_time() - cpu) * 1e3)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--flush-every", type=float, default=0.25, help="seconds")
    parser.add_argument("--steps-per-flush", type=int, default=1250, help="5 s at 4 ms a step")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "bench.sqlite"))
        for workload, steps in BLOCK_STEPS.items():
            plain, ratio, worst = measure(
                workload, args.device, args.pairs, store, args.flush_every
            )
            rows.append(f"| {workload} | {steps} | {plain:,.0f} | {ratio:.4f} | {worst:.4f} |")
            print(rows[-1], flush=True)
        wall_ms, cpu_ms = flush_cost(store, args.steps_per_flush, 20)
    table = "\n".join(
        [
            f"Device `{args.device}`; {machine()}; {args.pairs} block pairs, order alternating; "
            f"completed steps stored every {args.flush_every} s during dlbench's blocks.",
            "",
            "| workload | steps per block | plain loop (img/s, median) | dlbench loop / plain "
            "(median) | lowest ratio |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"One heartbeat storing {args.steps_per_flush:,} new steps (a run at 4 ms a step "
            f"stores that many every {HEARTBEAT_S:.0f} s) takes {wall_ms:.1f} ms wall, "
            f"{cpu_ms:.1f} ms of CPU on its own thread: {cpu_ms / 1e3 / HEARTBEAT_S:.3%} of "
            "one core over the interval.",
            "",
            f"Command: `.venv/bin/python benchmarks/harness_loop_overhead.py --pairs {args.pairs} "
            f"--device {args.device} --flush-every {args.flush_every}`",
        ]
    )
    print(table)
    if not args.no_write:
        write_section(f"harness-loop-overhead-{args.device}", table)


if __name__ == "__main__":
    main()

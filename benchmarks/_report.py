"""Write a benchmark's figures into its own section of docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine() -> str:
    from dlbench.sysinfo import cpu_model, usable_cpus

    return f"{cpu_model()}, {usable_cpus()} usable CPUs, Python {platform.python_version()}"


BUSY = "import time\nend = time.time() + 3600\nwhile time.time() < end: pass"


def busy_loops(count: int, cpu: int | None = None) -> list[subprocess.Popen]:
    """``count`` processes that each keep a CPU busy for an hour (held on ``cpu`` if given):
    other work that is not the benchmark's."""
    held = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    return [subprocess.Popen([sys.executable, "-c", BUSY], preexec_fn=held) for _ in range(count)]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
        process.wait()


def write_section(name: str, markdown: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    body = f"{start}\n_Measured {date.today():%Y-%m-%d}._\n\n{markdown.strip()}\n{end}"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: body, text) if pattern.search(text) else f"{text}\n{body}\n"
    DOC.write_text(text)


def dlbench_run(workload: str, warmup: int, steps: int, db: Path, *options: str) -> dict:
    """One `dlbench run` in its own process: ``steps`` timed after ``warmup``, one validation
    batch; its JSON summary."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dlbench",
            "run",
            workload,
            "--warmup",
            str(warmup),
            "--steps",
            str(warmup + steps),
            "--val-batches",
            "1",
            "--db",
            str(db),
            *options,
            "--json",
            "-",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"dlbench run {workload} {' '.join(options)}: {done.stderr[-400:]}")
    return json.loads(done.stdout)


def throughput_arguments() -> argparse.Namespace:
    """The options of the interleaved throughput benchmarks (zoo, transformers)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gpu", action="store_true", help="GPU variants and batch sizes")
    parser.add_argument("--print-only", action="store_true", help="do not edit the doc")
    return parser.parse_args()


def interleaved(
    variants: dict[str, list[str]], rounds: int, measure: Callable[[list[str]], dict], label: str
) -> dict[str, list[dict]]:
    """Each variant's run summaries over ``rounds``, the variants interleaved A B, B A, ...
    so that the machine's drift hits them alike."""
    names = list(variants)
    results: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            summary = measure(variants[name])
            results[name].append(summary)
            print(f"{label} {name}: {summary['mean_speed']:.2f} items/s", flush=True)
    return results

"""Bottleneck verdicts: which resource held a run back, each with the evidence behind it.

Read from the train phase of a stored run: its step statistics and telemetry. A healthy run
gets no verdict. The thresholds are named here and documented in docs/guides/analysis.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from dlbench.records import TelemetrySample
from dlbench.store.measurements import MetricSummary
from dlbench.store.stored import StoredRun

INPUT_WAIT_SHARE = 0.20  # data wait >= 20% of step time: the input pipeline is too slow
ACCELERATOR_IDLE_UTIL = 70.0  # ... while the GPU is busy less than this (percent)
IO_DISK_UTIL = 90.0  # the data disk's p95 %util at or above this: I/O-bound
IO_MIN_WAIT_SHARE = 0.05  # ... when steps wait for data at all
CPU_BUSY_UTIL = 90.0  # whole-machine CPU utilisation mean at or above this: CPU-bound
GPU_THROTTLE_BITS = {
    0x4: "SW power cap",
    0x8: "HW slowdown",
    0x20: "SW thermal",
    0x40: "HW thermal",
    0x80: "HW power brake",
}
CLOCK_DROP = 0.15  # GPU SM clock minimum below (1 - this) x its max: clocks dropped
CPU_FREQ_DROP = 0.10  # CPU frequency fell by 10% or more ...
CPU_TEMP_RISE_C = 10.0  # ... while the temperature rose this much: thermal throttling
SWAP_BYTES_PER_S = 1e6  # swap traffic above 1 MB/s on average: memory pressure
UNDERUSED_GPU_UTIL = 50.0  # GPU busy less than half the time ...
UNDERUSED_MFU = 0.10  # ... or under 10% of its peak FLOP/s


@dataclass(frozen=True)
class Verdict:
    name: str  # contended, input-bound, io-bound, cpu-bound, thermal-throttling,
    # power-throttling, memory-pressure, accelerator-underused
    evidence: str


Metrics = Mapping[str, MetricSummary]


def _train(run: StoredRun) -> Metrics:
    train = run.telemetry.phase("train") if run.telemetry else None
    return train.metrics if train else {}


def _mean(metrics: Metrics, name: str) -> float | None:
    entry = metrics.get(name)
    return entry.mean if entry else None


def _gpu_util(metrics: Metrics) -> float | None:
    values = [
        v.mean
        for k, v in metrics.items()
        if k.startswith("gpu") and k.endswith(".util_percent") and "mem" not in k
        if v.mean is not None
    ]
    return float(np.mean(values)) if values else None


def verdicts(summary: StoredRun, samples: list[TelemetrySample] | None = None) -> list[Verdict]:
    """Every bottleneck the run shows, strongest evidence first in each."""
    metrics = _train(summary)
    found: list[Verdict] = []
    quality = summary.quality
    if quality is not None and quality.verdict == "contended":
        # Everything below is read from a machine other work was using: say that first.
        reasons = quality.reasons or ("other work competed with the run",)
        found.append(Verdict("contended", reasons[0]))
    wait = summary.data_wait_fraction or 0.0
    gpu_util = _gpu_util(metrics)
    # On the CPU there is no accelerator to leave idle; on a GPU, the verdicts below need it idle.
    accelerator_idle = gpu_util is None or gpu_util < ACCELERATOR_IDLE_UTIL
    gpu_text = f"the GPU was busy {gpu_util:.0f}% of the time" if gpu_util is not None else ""
    if wait >= INPUT_WAIT_SHARE and accelerator_idle:
        idle = f", {gpu_text}" if gpu_text else ""
        found.append(Verdict("input-bound", f"steps waited for data {wait:.0%} of the time{idle}"))
    disk = (summary.hardware or {}).get("storage", {}).get("device")
    disk_util = metrics.get(f"disk.{disk}.util_percent") if disk else None
    if disk_util and (disk_util.p95 or 0) >= IO_DISK_UTIL and wait >= IO_MIN_WAIT_SHARE:
        found.append(
            Verdict(
                "io-bound",
                f"data disk {disk} {disk_util.p95:.0f}% busy (p95) while steps waited "
                f"{wait:.0%} of the time for data",
            )
        )
    cpu = _mean(metrics, "cpu.util_percent")
    # A run that trains on the CPU is meant to keep it busy: CPU-bound is a GPU run's verdict.
    if cpu is not None and cpu >= CPU_BUSY_UTIL and gpu_util is not None and accelerator_idle:
        found.append(Verdict("cpu-bound", f"CPU {cpu:.0f}% busy on average while {gpu_text}"))
    found += _gpu_throttling(metrics)
    found += _cpu_throttling(samples or [])
    swap = sum(_mean(metrics, m) or 0.0 for m in ("swap.in_bytes_per_s", "swap.out_bytes_per_s"))
    if swap > SWAP_BYTES_PER_S:
        found.append(Verdict("memory-pressure", f"swapping {swap / 1e6:.1f} MB/s on average"))
    mfu = summary.mfu
    if gpu_util is not None and (
        gpu_util < UNDERUSED_GPU_UTIL or (mfu is not None and mfu < UNDERUSED_MFU)
    ):
        figure = f"GPU busy {gpu_util:.0f}% of the time"
        if mfu is not None:
            figure += f", MFU {mfu:.1%}"
        found.append(Verdict("accelerator-underused", figure))
    return found


def _gpu_throttling(metrics: Metrics) -> list[Verdict]:
    out = []
    for name, entry in metrics.items():
        if not name.endswith(".throttle_reasons"):
            continue
        gpu = name.split(".")[0]
        mask = int(entry.mask or 0)
        reasons = [label for bit, label in GPU_THROTTLE_BITS.items() if mask & bit]
        clock = metrics.get(f"{gpu}.sm_clock_mhz")
        dropped = ""
        if clock and clock.max:
            low = clock.min if clock.min is not None else (clock.mean or 0.0)
            if low < (1 - CLOCK_DROP) * clock.max:
                dropped = (
                    f"; SM clock fell to {low:.0f} MHz from {clock.max:.0f} "
                    f"(mean {clock.mean or 0.0:.0f})"
                )
        if reasons:
            kind = (
                "thermal-throttling"
                if any("thermal" in r or "slowdown" in r for r in reasons)
                else "power-throttling"
            )
            out.append(Verdict(kind, f"{gpu} reported {', '.join(reasons)}{dropped}"))
    return out


def _cpu_throttling(samples: list[TelemetrySample]) -> list[Verdict]:
    freq = [(s.t_s, s.value) for s in samples if s.metric == "cpu.freq_mhz" and s.phase == "train"]
    temp = [(s.t_s, s.value) for s in samples if s.metric == "cpu.temp_c" and s.phase == "train"]
    if len(freq) < 4 or len(temp) < 4:
        return []
    f, t = np.array([v for _, v in sorted(freq)]), np.array([v for _, v in sorted(temp)])
    quarter_f, quarter_t = max(1, len(f) // 4), max(1, len(t) // 4)
    f_start, f_end = f[:quarter_f].mean(), f[-quarter_f:].mean()
    t_start, t_end = t[:quarter_t].mean(), t[-quarter_t:].mean()
    if f_end <= (1 - CPU_FREQ_DROP) * f_start and t_end - t_start >= CPU_TEMP_RISE_C:
        return [
            Verdict(
                "thermal-throttling",
                f"CPU frequency fell {1 - f_end / f_start:.0%} ({f_start:.0f} to {f_end:.0f} MHz) "
                f"as its temperature rose {t_end - t_start:.0f} °C",
            )
        ]
    return []

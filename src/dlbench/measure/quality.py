"""Was a run measured on a quiet machine? Its quality verdict and the reasons, with numbers.

From the interference accounting of the timed phase (``telemetry/interference.py``) and the
telemetry of that phase:

- ``contended``: other work took more than ``CONTENDED_FOREIGN_SHARE`` of the CPUs the run may
  use, the hypervisor stole ``CONTENDED_STEAL_PERCENT`` or more of their time, or another process
  computed on the run's GPU. The figures measure the contention as much as the hardware.
- ``noisy``: other work took more than ``NOISY_FOREIGN_SHARE`` of those CPUs, steal reached
  ``NOISY_STEAL_PERCENT``, a GPU slowed its clocks (thermal, hardware slowdown, power brake), or
  the phase was too short to tell: the figures are probably a few percent off.
- ``clean``: none of these.

The CPU figures come from counters that tick every 10 ms; a share is only held against a
threshold beyond that uncertainty, so a short phase is never called contended by rounding.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dlbench.records import GpuProcess, Interference, Quality

CONTENDED_FOREIGN_SHARE = 0.25  # of the cores the run may use
NOISY_FOREIGN_SHARE = 0.10
CONTENDED_STEAL_PERCENT = 10.0
NOISY_STEAL_PERCENT = 2.0
SLOWDOWN_REASONS = (
    "hardware slowdown",
    "software thermal slowdown",
    "hardware thermal slowdown",
    "hardware power brake",
)
VERDICTS = ("clean", "noisy", "contended")


def _worse(a: str, b: str) -> str:
    return a if VERDICTS.index(a) >= VERDICTS.index(b) else b


def _cpu(i: Interference) -> tuple[str, str]:
    share = i.foreign_cpu_cores / i.usable_cores if i.usable_cores else 0.0
    margin = i.resolution_cores / i.usable_cores if i.usable_cores else 0.0
    text = (
        f"other work took {i.foreign_cpu_cores:.2f} of the {i.usable_cores:g} usable cores "
        f"({share:.0%}) over {i.window_s:.1f} s; the run's own processes took "
        f"{i.own_cpu_cores:.2f}"
    )
    if share - margin > CONTENDED_FOREIGN_SHARE:
        return "contended", text + f" (contended above {CONTENDED_FOREIGN_SHARE:.0%})"
    if share - margin > NOISY_FOREIGN_SHARE:
        return "noisy", text + f" (noisy above {NOISY_FOREIGN_SHARE:.0%})"
    if margin > NOISY_FOREIGN_SHARE:
        return "noisy", (
            f"the timed phase lasted {i.window_s:.2f} s, too short to tell other work's share "
            f"of the CPUs closer than ±{margin:.0%} (it measured {share:.0%})"
        )
    return "clean", text


def _steal(i: Interference) -> tuple[str, str] | None:
    if i.steal_percent is None:
        return None
    text = f"the hypervisor stole {i.steal_percent:.1f}% of the CPUs' time"
    if i.steal_percent >= CONTENDED_STEAL_PERCENT:
        return "contended", text + f" (contended at {CONTENDED_STEAL_PERCENT:g}% or more)"
    if i.steal_percent >= NOISY_STEAL_PERCENT:
        return "noisy", text + f" (noisy at {NOISY_STEAL_PERCENT:g}% or more)"
    return "clean", text


def _gib(value: float | None) -> str:
    return "memory unknown" if value is None else f"{value / 2**30:.1f} GiB"


def _named(processes: tuple[GpuProcess, ...]) -> str:
    return ", ".join(f"pid {p.pid} {p.name or '(not visible here)'} ({_gib(p.memory_bytes)})"
                     for p in processes)  # fmt: skip


def _gpus(i: Interference, metrics: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    seen = i.other_gpu_processes
    if i.gpus and seen is None and i.gpu_note:
        found.append(("clean", f"other processes on the GPU not known: {i.gpu_note}"))
    for gpu in i.gpus:
        named = tuple(p for p in seen or () if p.gpu == gpu)
        sampled = (metrics.get(f"gpu{gpu}.other_processes") or {}).get("max") or 0
        if named or sampled:
            count = max(len(named), int(sampled))
            what = f": {_named(named)}" if named else ""
            found.append(("contended", f"{count} other process(es) computed on GPU {gpu}{what}"))
        reasons = (metrics.get(f"gpu{gpu}.throttle_reasons") or {}).get("reasons") or []
        slowed = [r for r in reasons if r in SLOWDOWN_REASONS]
        if slowed:
            found.append(("noisy", f"GPU {gpu} slowed its clocks: {', '.join(slowed)}"))
    return found


def judge(i: Interference | None, metrics: dict[str, Any] | None = None) -> Quality | None:
    """The verdict of a run whose timed phase was accounted as ``i``; ``metrics`` is that
    phase's telemetry summary (GPU throttling and other processes seen between the ends)."""
    if i is None:
        return None
    findings = [_cpu(i)]
    steal = _steal(i)
    if steal:
        findings.append(steal)
    findings += _gpus(i, metrics or {})
    verdict = "clean"
    for level, _ in findings:
        verdict = _worse(level, verdict)
    # The reasons for the verdict first; the figures that did not change it after.
    ordered = [text for level, text in findings if level == verdict]
    ordered += [text for level, text in findings if level != verdict]
    return Quality(
        verdict=verdict,  # type: ignore[arg-type]
        reasons=tuple(ordered),
        foreign_cpu_cores=i.foreign_cpu_cores,
        steal_percent=i.steal_percent,
        other_gpu_processes=i.other_gpu_processes,
        usable_cores=i.usable_cores,
        own_cpu_cores=i.own_cpu_cores,
        load_per_core=i.load_per_core,
        window_s=i.window_s,
    )


def on_cpus(
    quality: Quality | None, cpus: str, pinned: int, online: int, asked: str
) -> Quality | None:
    """``quality`` saying that the run was pinned (``--cpus``) to ``cpus`` of the machine's
    ``online`` (``pinned`` of them): other work on the other CPUs was not the run's to count.
    ``auto`` that found no idle CPU measured on all of them, and says so."""
    if quality is None:
        return None
    if asked == "auto" and pinned >= online:
        note = f"--cpus auto found no idle CPU: measured on all {online} online, beside other work"
    else:
        how = "the idle ones --cpus auto chose" if asked == "auto" else f"--cpus {asked}"
        note = (
            f"measured on CPUs {cpus} of the {online} online ({how}); other work on the "
            "others is not counted against it"
        )
    return replace(quality, reasons=(*quality.reasons, note))


def busy_reasons(
    foreign_cpu_cores: float,
    resolution_cores: float,
    usable_cores: float,
    steal_percent: float | None,
    gpu_processes: tuple[GpuProcess, ...] | None,
) -> list[str]:
    """Why the machine is not quiet enough to start a run on (empty: it is): what would make
    the run more than clean."""
    reasons = []
    share = (foreign_cpu_cores - resolution_cores) / usable_cores if usable_cores else 0.0
    if share > NOISY_FOREIGN_SHARE:
        reasons.append(
            f"other work takes {foreign_cpu_cores:.2f} of the {usable_cores:g} usable cores"
        )
    if steal_percent is not None and steal_percent >= NOISY_STEAL_PERCENT:
        reasons.append(f"the hypervisor steals {steal_percent:.1f}% of the CPUs' time")
    if gpu_processes:
        reasons.append(f"other processes compute on the GPU: {_named(gpu_processes)}")
    return reasons

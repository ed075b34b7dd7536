"""``dlbench check``: is this machine still as fast as its baseline? Pure: reads records only.

The speed ratio is new / reference, as the ratio of the geometric means of the runs' mean
speeds, with a 95% Student-t interval on the difference of mean log speeds: Welch's when both
sides have two runs or more (repeats are where most of the variation is); with one run on a
side, that side is given the other side's between-run variance; with one run on each, only the
step-to-step variation within the runs is known, which understates the uncertainty (said so).

The verdict, with tolerance T (default 5%):

- ``regression``: the whole interval is below 1 - T (slower beyond the tolerance, significant
  at 95%), or a check run did not end ok (it failed, ran out of memory, timed out);
- ``improvement``: the whole interval is above 1 + T;
- ``pass``: the interval's low end is at or above 1 - T;
- ``inconclusive``: a check run was measured contended, or the interval straddles 1 - T.

``p_value`` is Welch's two-sided test of equal speeds (the figure a reader expects beside a
ratio); the verdict itself rests on the interval against the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from dlbench.store.stored import StoredRun

DEFAULT_TOLERANCE = 0.05
CONFIDENCE = 0.95
EXIT_CODES = {"pass": 0, "improvement": 0, "regression": 1, "inconclusive": 3}
# Hardware fingerprint fields a check compares with its baseline's.
FINGERPRINT = (
    ("host", ("hostname",)),
    ("CPU", ("cpu", "model")),
    ("usable CPUs", ("cpu", "usable_cpus")),
    ("memory", ("memory_bytes",)),
    ("torch", ("torch",)),
    ("CUDA", ("cuda",)),
)


@dataclass(frozen=True)
class RunFigures:
    """What a check needs of one run (reference or new)."""

    run_id: str
    status: str
    mean_speed: float | None
    timed_steps: int
    step_time_cv: float | None  # std / mean of its step times
    quality_verdict: str | None


@dataclass(frozen=True)
class Ratio:
    estimate: float
    low: float
    high: float
    p_value: float | None
    method: str


@dataclass(frozen=True)
class CheckResult:
    baseline: str
    verdict: str
    ratio: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    tolerance: float
    runs: tuple[str, ...]  # the check's new runs
    reference_runs: tuple[str, ...]
    speeds: tuple[float | None, ...]
    reference_speeds: tuple[float | None, ...]
    method: str | None
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    unit: str = "img/s"  # of the speeds: seq/s for a language model

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]


def figures(summary: StoredRun, step_time_cv: float | None) -> RunFigures:
    return RunFigures(
        run_id=summary.run_id,
        status=summary.status,
        mean_speed=summary.mean_speed,
        timed_steps=summary.timed_steps,
        step_time_cv=step_time_cv,
        quality_verdict=summary.quality_verdict,
    )


def speed_ratio(reference: list[RunFigures], new: list[RunFigures]) -> Ratio:
    """new / reference speed with its 95% interval (see the module's words)."""
    ref = np.log([r.mean_speed for r in reference if r.mean_speed])
    cur = np.log([r.mean_speed for r in new if r.mean_speed])
    diff = float(cur.mean() - ref.mean())
    if ref.size >= 2 and cur.size >= 2:
        var_r, var_c = float(ref.var(ddof=1)), float(cur.var(ddof=1))
        se = math.sqrt(var_r / ref.size + var_c / cur.size)
        df = _welch_df(var_r, ref.size, var_c, cur.size)
        method = f"Welch's t over runs ({cur.size} vs {ref.size})"
    elif ref.size >= 2 or cur.size >= 2:
        many = ref if ref.size >= 2 else cur
        var = float(many.var(ddof=1))
        se = math.sqrt(var * (1 / ref.size + 1 / cur.size))
        df = float(many.size - 1)
        method = (
            f"t over runs ({cur.size} vs {ref.size}), the single run given the other side's "
            "between-run variance"
        )
    else:
        within = [r.step_time_cv**2 / r.timed_steps for r in (*reference, *new)
                  if r.step_time_cv is not None and r.timed_steps]  # fmt: skip
        se = math.sqrt(sum(within)) if within else 0.0
        df = float(max(1, min(r.timed_steps for r in (*reference, *new)) - 1))
        method = (
            "one run on each side: step-to-step variation only (between-run variation is not "
            "measured, so the interval is too narrow; check with --repeat 3)"
        )
    if se == 0:
        p = 1.0 if diff == 0 else 0.0
        return Ratio(math.exp(diff), math.exp(diff), math.exp(diff), p, method)
    t = float(stats.t.ppf((1 + CONFIDENCE) / 2, df))
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    return Ratio(math.exp(diff), math.exp(diff - t * se), math.exp(diff + t * se), p, method)


def _welch_df(var_a: float, n_a: int, var_b: float, n_b: int) -> float:
    a, b = var_a / n_a, var_b / n_b
    if a + b == 0:
        return float(n_a + n_b - 2)
    return (a + b) ** 2 / (a**2 / (n_a - 1) + b**2 / (n_b - 1))


def hardware_differences(reference: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """'CPU: X (baseline) vs Y (now)' for each fingerprint field that differs."""
    found = []
    for label, path in FINGERPRINT:
        old, new = _field(reference, path), _field(now, path)
        if old != new:
            if label == "memory" and old and new:
                old, new = f"{old / 2**30:.1f} GiB", f"{new / 2**30:.1f} GiB"
            found.append(f"{label}: {old} (baseline) vs {new} (now)")
    old_gpus = [g.get("name") for g in reference.get("gpus") or []]
    new_gpus = [g.get("name") for g in now.get("gpus") or []]
    if old_gpus != new_gpus:
        found.append(f"GPUs: {old_gpus or 'none'} (baseline) vs {new_gpus or 'none'} (now)")
    return found


def _field(document: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = document
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def decide(
    name: str,
    reference: list[RunFigures],
    new: list[RunFigures],
    tolerance: float,
    warnings: list[str] | None = None,
) -> CheckResult:
    """The check's verdict on ``new`` runs against the baseline ``reference`` runs."""
    reasons: list[str] = []
    ratio: Ratio | None = None
    ended = [r for r in new if r.status != "ok" or not r.mean_speed]
    ok = [r for r in new if r.status == "ok" and r.mean_speed]
    if ok:
        ratio = speed_ratio(reference, ok)
    if ended:
        verdict = "regression"
        reasons.append(
            f"{len(ended)} of {len(new)} check run(s) did not train: "
            + ", ".join(f"{r.run_id} {r.status}" for r in ended)
        )
    elif any(r.quality_verdict == "contended" for r in new):
        verdict = "inconclusive"
        contended = [r.run_id for r in new if r.quality_verdict == "contended"]
        reasons.append(
            f"measured under contention ({', '.join(contended)}): other work competed, so the "
            "speed says nothing about the machine; rerun on a quiet machine (--require-quiet)"
        )
    else:
        assert ratio is not None
        verdict = _by_interval(ratio, tolerance)
    if ratio is not None:
        reasons.append(
            f"speed {ratio.estimate:.3f}x the baseline's (95% CI {ratio.low:.3f}-{ratio.high:.3f},"
            f" p = {ratio.p_value:.3g}); tolerance {tolerance:.0%}: regression below "
            f"{1 - tolerance:.3f}, improvement above {1 + tolerance:.3f}"
        )
    noisy = [r.run_id for r in new if r.quality_verdict == "noisy"]
    if noisy:
        reasons.append(f"noisy measurement: {', '.join(noisy)} (see dlbench show)")
    return CheckResult(
        baseline=name,
        verdict=verdict,
        ratio=ratio.estimate if ratio else None,
        ci95=(ratio.low, ratio.high) if ratio else None,
        p_value=ratio.p_value if ratio else None,
        tolerance=tolerance,
        runs=tuple(r.run_id for r in new),
        reference_runs=tuple(r.run_id for r in reference),
        speeds=tuple(r.mean_speed for r in new),
        reference_speeds=tuple(r.mean_speed for r in reference),
        method=ratio.method if ratio else None,
        reasons=tuple(reasons),
        warnings=tuple(warnings or ()),
    )


def _by_interval(ratio: Ratio, tolerance: float) -> str:
    if ratio.high < 1 - tolerance:
        return "regression"
    if ratio.low > 1 + tolerance:
        return "improvement"
    if ratio.low >= 1 - tolerance:
        return "pass"
    return "inconclusive"

"""``dlbench compare``: how much faster, how sure, and does the machine work differently?

Runs are grouped by one field (device, workload, precision, ...); each group is set against
the baseline group (the first, or ``--baseline``):

- speed-up = speed(group) / speed(baseline), speed = images per step / mean step time, with a
  95% percentile-bootstrap interval: over the step times when each group is one run, over
  the runs' speeds when both groups have repeats;
- Welch's t-test and Mann-Whitney U on the step speeds (images/s of each step);
- for every telemetry metric both groups have in the train phase: the two-sample KS test,
  Holm-adjusted across metrics, and Cliff's delta as the effect size.

The two hypotheses of the original study get a sentence each: (A) the groups use the machine
differently (CPU utilisation's distribution), (B) the group trains faster than the baseline.

Only like is set against like: runs are repeats of each other when their configuration apart
from the grouping field (batch, precision, workload, ...: ``MATCH_FIELDS``) is the same. When
the groups hold several configurations, each configuration they share is a contrast of its own
(``within`` says which); configurations one side lacks are named and left out; groups that
share none are refused, saying how they differ.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlbench.analysis import stats
from dlbench.errors import ConfigError, DlbenchError
from dlbench.store.database import Store
from dlbench.store.stored import StoredRun

TRAIN = "train"
SIGNIFICANCE = 0.05
UTILISATION = "cpu.util_percent"  # hypothesis A's metric
FIELDS = (
    "device",
    "device_name",
    "workload",
    "precision",
    "framework",
    "gpus",
    "batch_size",
    "data",
    "staged_from",
    "hostname",
    "image_size",
    "seq_len",
    "depth",
    "width",
    "prompt_len",  # generation and serving
    "gen_len",
    "concurrency",  # serving
)
# The phase whose telemetry each kind of run is compared on: the timed one.
TIMED_PHASE = {"generate": "generate", "serving": "serve"}


@dataclass
class Group:
    value: str
    runs: list[StoredRun]
    step_speeds: np.ndarray  # images/s of every timed step of every run
    step_times: np.ndarray
    images_per_step: float
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # train-phase telemetry

    @property
    def run_speeds(self) -> np.ndarray:
        return np.array([r.mean_speed for r in self.runs if r.mean_speed])


@dataclass
class MetricTest:
    metric: str
    median_group: float
    median_baseline: float
    ks_statistic: float
    p_value: float  # KS, Holm-adjusted across the metrics of one contrast
    cliffs_delta: float

    @property
    def differs(self) -> bool:
        return self.p_value < SIGNIFICANCE and stats.magnitude(self.cliffs_delta) != "negligible"


@dataclass
class Contrast:
    group: str
    baseline: str
    speedup: stats.Interval
    method: str
    welch_p: float | None
    mann_whitney_p: float | None
    metrics: list[MetricTest]
    claim: str  # the verdict, without the quality caveat
    claim_a: str
    claim_b: str
    quality_warning: str | None = None  # a side measured on a contended or noisy machine
    within: str | None = None  # the configuration both sides share, where groups mix several

    # Each sentence on its own carries the quality caveat (it may be pasted anywhere); a page
    # that shows ``quality_warning`` once shows the claims without it.
    @property
    def verdict(self) -> str:
        return self._caveated(self.claim)

    @property
    def hypothesis_a(self) -> str:
        return self._caveated(self.claim_a)

    @property
    def hypothesis_b(self) -> str:
        return self._caveated(self.claim_b)

    def _caveated(self, text: str) -> str:
        return f"{text}. {self.quality_warning}" if self.quality_warning else text


@dataclass
class Comparison:
    by: str
    groups: list[Group]
    contrasts: list[Contrast]
    by_chosen: bool = False  # ``by`` was not given: the first field the runs differ in
    unmatched: list[str] = field(default_factory=list)  # configurations one side lacks


def field_of(summary: StoredRun, by: str) -> str:
    if by.startswith("tags."):
        return str(summary.tags.get(by[5:], "—"))
    value = getattr(summary, by) if hasattr(summary, by) else summary.config.get(by)
    if by == "device" and value == "cpu" and summary.device_name:
        return "cpu"
    return str(value)


def _group(store: Store, value: str, rows: list[StoredRun]) -> Group:
    speeds, times, per_step = [], [], []
    samples: dict[str, list[float]] = {}
    for row in rows:
        batch = (row.batch_size or 0) * int(row.config.get("gpus", 1))
        steps = store.get_steps(row.run_id)
        times += [s.step_time_s for s in steps]
        speeds += [batch / s.step_time_s for s in steps if s.step_time_s > 0]
        per_step.append(batch)
        for sample in store.get_samples(row.run_id):
            if sample.phase == TIMED_PHASE.get(row.kind, TRAIN):
                samples.setdefault(sample.metric, []).append(sample.value)
    return Group(
        value=value,
        runs=rows,
        step_speeds=np.array(speeds),
        step_times=np.array(times),
        images_per_step=float(np.mean(per_step)) if per_step else 0.0,
        samples={k: np.array(v) for k, v in samples.items()},
    )


def differing_field(runs: list[StoredRun]) -> str | None:
    """The first of FIELDS on which ``runs`` differ (the CPU-vs-GPU case: device)."""
    return next((f for f in FIELDS if len({field_of(r, f) for r in runs}) > 1), None)


def compare(
    store: Store, run_ids: list[str], by: str | None = None, baseline: str | None = None
) -> Comparison:
    """Runs grouped by ``by`` (None: the first field they differ in), each group set against
    the baseline group."""
    if by is not None and by not in FIELDS and not by.startswith("tags."):
        raise ConfigError(
            f"--by {by!r} is not a run field", f"one of {', '.join(FIELDS)}, tags.KEY"
        )
    summaries = [store.run(r) for r in run_ids]
    usable = [s for s in summaries if s.status == "ok" and s.timed_steps and not s.excluded]
    if len(usable) < 2:
        excluded = [s.run_id for s in summaries if s.excluded]
        raise DlbenchError(
            f"compare needs at least two runs that ended ok with timed steps; {len(usable)} of "
            f"{len(summaries)} do"
            + (f" ({', '.join(excluded)} excluded with dlbench tag)" if excluded else ""),
            "see dlbench runs",
        )
    chosen = by is None
    if by is None:
        by = differing_field(usable)
        if by is None:
            raise DlbenchError(
                f"these runs agree on every field dlbench compares ({', '.join(FIELDS)})",
                "group them by a tag with --by tags.KEY",
            )
    grouped: dict[str, list[StoredRun]] = {}
    for summary in usable:
        grouped.setdefault(field_of(summary, by), []).append(summary)
    if len(grouped) < 2:
        raise DlbenchError(
            f"every run has the same {by} ({next(iter(grouped))}): nothing to compare"
        )
    if baseline is not None and baseline not in grouped:
        raise ConfigError(
            f"--baseline {baseline!r} is not a {by} of these runs", f"one of {', '.join(grouped)}"
        )
    if baseline is None and by == "device" and "cpu" in grouped:
        baseline = "cpu"  # the original question: does the accelerator beat the CPU?
    if baseline is None and by == "framework" and "pytorch" in grouped:
        baseline = "pytorch"  # dlbench's reference engine
    order = [baseline] if baseline else []
    order += [v for v in grouped if v not in order]
    groups = [_group(store, value, grouped[value]) for value in order]
    base = groups[0]
    contrasts, unmatched = [], []
    for group in groups[1:]:
        found, left = _matched(store, group, base, by)
        contrasts += found
        unmatched += left
    return Comparison(by, groups, contrasts, by_chosen=chosen, unmatched=unmatched)


# What makes two runs repeats of one configuration, apart from the field they are grouped by:
# the fields a user chooses (the workload's defaults follow the workload), and where it ran
# (device, host, storage) left to be the treatment.
MATCH_FIELDS = (
    "workload", "framework", "precision", "gpus", "batch_size", "data", "image_size",
    "seq_len", "depth", "width",
)  # fmt: skip
MATCH_CONFIG = ("channels_last", "compile", "cpus", "threads")


def configuration(run: StoredRun, by: str) -> tuple[tuple[str, str], ...]:
    """``run``'s configuration apart from ``by``: (field, value) pairs."""
    pairs = [(f, field_of(run, f)) for f in MATCH_FIELDS if f != by]
    return tuple(pairs + [(k, str(run.config.get(k))) for k in MATCH_CONFIG if k != by])


def _matched(store: Store, group: Group, base: Group, by: str) -> tuple[list[Contrast], list[str]]:
    """``group`` against ``base`` within each configuration both have: the contrasts, and the
    configurations one side lacks; refused when they share none."""
    mine: dict[tuple[tuple[str, str], ...], list[StoredRun]] = {}
    theirs: dict[tuple[tuple[str, str], ...], list[StoredRun]] = {}
    for runs, into in ((group.runs, mine), (base.runs, theirs)):
        for run in runs:
            into.setdefault(configuration(run, by), []).append(run)
    if len(mine) == 1 and mine.keys() == theirs.keys():
        return [_contrast(group, base, by)], []  # one configuration: the usual question
    varying = [k for k, _ in next(iter(mine)) if len({dict(c)[k] for c in (*mine, *theirs)}) > 1]
    shared = [c for c in mine if c in theirs]
    if not shared:
        raise DlbenchError(
            f"the runs of {by}={group.value} and {by}={base.value} share no configuration "
            f"apart from {by}: they also differ in {', '.join(varying)} "
            f"({_listed(mine, varying)} against {_listed(theirs, varying)}), so their speeds "
            f"would compare those too",
            f"compare runs that differ in {by} alone, or group by {varying[0]} (--by {varying[0]})",
        )
    contrasts = []
    for key in shared:
        within = ", ".join(f"{k}={dict(key)[k]}" for k in varying)
        one, other = _group(store, group.value, mine[key]), _group(store, base.value, theirs[key])
        contrasts.append(dataclasses.replace(_contrast(one, other, by), within=within))
    left = [
        f"{by}={side.value} at {', '.join(f'{k}={dict(key)[k]}' for k in varying)}"
        for side, found, other in ((group, mine, theirs), (base, theirs, mine))
        for key in found
        if key not in other
    ]
    return contrasts, left


def _listed(configurations: dict[Any, Any], fields: list[str]) -> str:
    return "; ".join(", ".join(f"{k}={dict(c)[k]}" for k in fields) for c in sorted(configurations))


def _contrast(group: Group, base: Group, by: str) -> Contrast:
    if len(group.runs) >= 2 and len(base.runs) >= 2:
        speedup = stats.speedup_over_repeats(group.run_speeds, base.run_speeds)
        method = f"bootstrap over repeats ({len(group.runs)} vs {len(base.runs)} runs)"
    else:
        speedup = stats.speedup_over_steps(
            group.step_times, group.images_per_step, base.step_times, base.images_per_step
        )
        method = f"bootstrap over steps ({group.step_times.size} vs {base.step_times.size})"
    welch = stats.welch_p(group.step_speeds, base.step_speeds)
    mwu = stats.mann_whitney_p(group.step_speeds, base.step_speeds)
    metrics = _metric_tests(group, base)
    label = f"{by}={group.value}"
    baseline = f"{by}={base.value}"
    verdict = _verdict(label, baseline, speedup, welch, metrics)
    # what the runs timed: dlbench generate's requests, a server's, or training steps
    kinds = {r.kind for r in (*group.runs, *base.runs)}
    work = {"generate": "generation", "serving": "serving"}.get(
        kinds.pop() if len(kinds) == 1 else "", ""
    )
    hyp_a = _hypothesis_a(label, baseline, metrics, work or "training")
    hyp_b = _hypothesis_b(label, baseline, speedup, welch, work or "training")
    warning = quality_warning([(label, group.runs), (baseline, base.runs)])
    return Contrast(
        group.value,
        base.value,
        speedup,
        method,
        welch,
        mwu,
        metrics,
        verdict,
        hyp_a,
        hyp_b,
        warning,
    )


def quality_warning(sides: list[tuple[str, list[StoredRun]]]) -> str | None:
    """One sentence when a side's runs were measured contended or noisy (None: all clean or
    not measured)."""
    found, worst = [], None
    for label, runs in sides:
        for level in ("contended", "noisy"):
            hit = [r for r in runs if r.quality_verdict == level]
            if not hit:
                continue
            foreign = max((r.foreign_cpu_cores or 0.0) for r in hit)
            found.append(
                f"{label} has {len(hit)} of {len(runs)} run(s) {level} (other work took up to "
                f"{foreign:.2f} cores)"
            )
            worst = "contended" if level == "contended" or worst == "contended" else "noisy"
            break
    if not found:
        return None
    if worst == "contended":
        return (
            "Warning: measured under contention: "
            + "; ".join(found)
            + ": the difference measures the contention as much as the hardware"
        )
    return "Note: " + "; ".join(found) + ": the figures may be a few percent off"


# Whole-machine figures that other processes move as much as the run (memory in use, swap,
# network, every disk, load, other work): a difference there is not the workload's effect.
SYSTEM_WIDE = ("mem.", "swap.", "net.", "disk.", "cpu.load1", "cpu.foreign_cores")


def _metric_tests(group: Group, base: Group) -> list[MetricTest]:
    shared = sorted(
        m for m in set(group.samples) & set(base.samples) if not m.startswith(SYSTEM_WIDE)
    )
    raw = []
    for metric in shared:
        a, b = group.samples[metric], base.samples[metric]
        ks = stats.ks_test(a, b)
        if ks is None:
            continue
        raw.append((metric, a, b, ks))
    adjusted = stats.holm([ks[1] for *_, ks in raw])
    return [
        MetricTest(
            metric, float(np.median(a)), float(np.median(b)), ks[0], p, stats.cliffs_delta(a, b)
        )
        for (metric, a, b, ks), p in zip(raw, adjusted, strict=True)
    ]


def _faster(label: str, baseline: str, speedup: stats.Interval) -> str:
    if speedup.estimate >= 1:
        return (
            f"{label} is {speedup.estimate:.2f}x faster than {baseline} "
            f"(95% CI {speedup.low:.2f}-{speedup.high:.2f}"
        )
    return (
        f"{label} is {1 / speedup.estimate:.2f}x slower than {baseline} "
        f"(speed ratio {speedup.estimate:.2f}, 95% CI {speedup.low:.2f}-{speedup.high:.2f}"
    )


def _verdict(
    label: str,
    baseline: str,
    speedup: stats.Interval,
    welch: float | None,
    metrics: list[MetricTest],
) -> str:
    text = _faster(label, baseline, speedup) + f", Welch {stats.format_p(welch)})"
    util = next((m for m in metrics if m.metric == UTILISATION), None)
    if util:
        text += f"; CPU utilisation median {util.median_group:.0f}% vs {util.median_baseline:.0f}%"
    return text


def _hypothesis_a(
    label: str, baseline: str, metrics: list[MetricTest], work: str = "training"
) -> str:
    util = next((m for m in metrics if m.metric == UTILISATION), None)
    if util is None:
        return "A (resource use differs): not testable, the runs share no CPU utilisation samples"
    differing = [m.metric for m in metrics if m.differs]
    decision = "supported" if util.differs else "not supported"
    return (
        f"A (resource use differs): {decision}. CPU utilisation during {work}, "
        f"{label} median {util.median_group:.1f}% vs {util.median_baseline:.1f}%, KS D = "
        f"{util.ks_statistic:.2f}, {stats.format_p(util.p_value)} (Holm), Cliff's delta "
        f"{util.cliffs_delta:+.2f} ({stats.magnitude(util.cliffs_delta)}); "
        f"{len(differing)} of {len(metrics)} shared metrics differ"
    )


def _hypothesis_b(
    label: str,
    baseline: str,
    speedup: stats.Interval,
    welch: float | None,
    work: str = "training",
) -> str:
    significant = welch is not None and welch < SIGNIFICANCE
    excludes_one = speedup.low > 1 or speedup.high < 1
    if excludes_one and significant:
        decision = "supported" if speedup.low > 1 else "rejected: it is slower"
    elif significant:
        decision = (
            "not supported: the step speeds differ, but the speed-up's interval includes 1 "
            "(the runs vary more than the difference)"
        )
    elif excludes_one:
        decision = "not supported: the interval excludes 1, but Welch's test is not significant"
    else:
        decision = "not supported: no clear difference"
    return (
        f"B ({label} accelerates {work}): {decision}. "
        + _faster(label, baseline, speedup)
        + f", Welch {stats.format_p(welch)})"
    )

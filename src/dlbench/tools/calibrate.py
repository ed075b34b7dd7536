"""``dlbench calibrate``: benchmark a space-filling design of model shapes on this device, so
that ``dlbench predict`` has runs to learn from.

For each family (param-mlp, param-vgg, param-resnet, param-inception, param-transformer) a
scrambled Latin hypercube over depth, width, input size (a transformer's: sequence length)
and batch size (log scales where sizes multiply) gives
configurations that cover the space without a grid's waste; they are run round-robin across
families, each briefly and with repeats, until the time budget is spent. Every run is stored
as part of the sweep ``calibrate-<device>``; a second call resumes (stored runs are skipped).
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from scipy.stats import qmc

from dlbench.config import RunSpec, build_spec
from dlbench.errors import DlbenchError
from dlbench.predict.fitting import MIN_RUNS, Predictor
from dlbench.predict.question import LANGUAGE_FAMILIES, family_workload, input_option
from dlbench.store.database import Store

# (low, high) per knob; log scale for width and batch.
RANGES: dict[str, dict[str, tuple[int, int]]] = {
    "mlp": {"depth": (2, 8), "width": (64, 2048)},
    "vgg": {"depth": (6, 19), "width": (8, 64)},
    "resnet": {"depth": (10, 34), "width": (8, 48)},
    "inception": {"depth": (2, 10), "width": (8, 48)},
    # a step's work grows with tokens (batch x seq_len): fewer sequences, longer ones
    "transformer": {"depth": (1, 8), "width": (64, 512), "input": (32, 512), "batch": (2, 32)},
    "llama": {"depth": (1, 8), "width": (64, 512), "input": (32, 512), "batch": (2, 32)},
}
# the language families' vocabulary when calibrating: the transformer's default, so that the
# output layer does not outweigh the blocks being learnt (FLOPs carry it to larger ones)
CALIBRATION_VOCAB = 256
INPUT_SIZES = (16, 64)
BATCH_SIZES = (8, 128)
WIDTH_STEP = {"transformer": 64, "llama": 64}  # whole heads (64 wide; llama's 4 heads)
DESIGN_POINTS = 64  # per family; the budget decides how many run
WARMUP, TIMED = 3, 20
MIN_RUN_TIMEOUT_S = 30.0  # a run is never stopped sooner, however small the budget
CONTENDED_TRIES = 3  # runs of one configuration measured contended before it is given up


def _log_pick(u: float, low: int, high: int) -> int:
    return int(round(math.exp(math.log(low) + u * (math.log(high) - math.log(low)))))


def design(families: tuple[str, ...], seed: int = 0) -> list[dict[str, Any]]:
    """Configurations, interleaved across families (so any prefix covers every family),
    each family's cheapest first."""
    per_family = {}
    for index, family in enumerate(families):
        points = qmc.LatinHypercube(d=4, scramble=True, seed=seed + index).random(DESIGN_POINTS)
        ranges = RANGES[family]
        inputs, batches = ranges.get("input", INPUT_SIZES), ranges.get("batch", BATCH_SIZES)
        step = WIDTH_STEP.get(family, 8)
        per_family[family] = [
            {
                "family": family,
                "depth": int(
                    round(ranges["depth"][0] + p[0] * (ranges["depth"][1] - ranges["depth"][0]))
                ),
                "width": max(step, _log_pick(p[1], *ranges["width"]) // step * step),
                "image_size": int(round((inputs[0] + p[2] * (inputs[1] - inputs[0])) / 8)) * 8,
                "batch_size": _log_pick(p[3], *batches),
            }
            for p in points
        ]
    for points in per_family.values():
        points.sort(key=cost)  # the cheapest first: a short budget still gets many runs
    return [per_family[f][i] for i in range(DESIGN_POINTS) for f in families]


def cost(config: dict[str, Any]) -> float:
    """A configuration's relative work per step: what orders the design cheapest first."""
    family = config["family"]
    positions = config["image_size"] if family in LANGUAGE_FAMILIES else config["image_size"] ** 2
    pixels = 1 if family == "mlp" else positions
    return float(config["depth"] * config["width"] ** 2 * pixels * config["batch_size"])


def sweep_name(device_name: str) -> str:
    return "calibrate-" + (
        re.sub(r"[^A-Za-z0-9]+", "-", device_name).strip("-").lower()[:60] or "device"
    )


def specs(
    config: dict[str, Any], device: str, sweep: str, repeats: int, cpus: str | None = None
) -> list[RunSpec]:
    return [
        build_spec(
            workload=family_workload(config["family"]),
            depth=config["depth"],
            width=config["width"],
            **input_option(config["family"], config["image_size"]),
            **({"vocab": CALIBRATION_VOCAB} if config["family"] == "llama" else {}),
            batch_size=config["batch_size"],
            device=device,
            warmup=WARMUP,
            steps=WARMUP + TIMED,
            val_batches=1,
            no_validate=True,  # neither is predicted: the budget buys more configurations
            no_infer=True,
            telemetry=False,
            cpus=cpus,
            sweep=sweep,
            repeat=repeat,
            tags={"calibration": "1"},
        )
        for repeat in range(repeats)
    ]


@dataclass(frozen=True)
class Choices:
    """How a calibration treats a machine that is never quiet."""

    cpus: str | None = None  # --cpus: measure on the idle CPUs (auto) or these
    include_contended: bool = False  # keep contended runs, for the fit too (said beside it)
    tries: int = CONTENDED_TRIES  # a configuration measured contended this often is given up


def calibrate(
    store: Store,
    families: tuple[str, ...],
    device: str,
    device_name: str,
    budget_s: float,
    repeats: int = 2,
    run: Callable[[RunSpec], str] | None = None,
    on_run: Callable[[RunSpec, str, str | None], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_start: Callable[[RunSpec], None] | None = None,
    quiet: Any = None,
    report: Any = None,
    choices: Choices = Choices(),
) -> int:
    """Run the design until ``budget_s`` is spent; the number of runs made. A configuration
    stored ok is not run again, unless it was measured contended (it is left out of the fit):
    then it runs again at once, up to ``choices.tries`` contended runs in all (earlier calls'
    included), and is given up. ``run`` replaces launching (the tests' stand-in: it returns a
    status, or "status/verdict"); ``on_run`` hears each run's status and quality verdict."""
    sweep = sweep_name(device_name)
    stored = store.runs(sweep=sweep)
    contended = Counter(r.run_key for r in stored if _contended(r.status, r.quality_verdict))
    done = {
        r.run_key
        for r in stored
        if r.status == "ok" and (choices.include_contended or r.quality_verdict != "contended")
    }
    last: dict[str | None, str | None] = {}  # run key -> the verdict of its latest run
    started = clock()

    def pending() -> Iterator[RunSpec]:
        for config in design(families):
            for spec in specs(config, device, sweep, repeats, choices.cpus):
                key = spec.run_key
                while key not in done and contended[key] < choices.tries:
                    if clock() - started >= budget_s:
                        return
                    yield spec
                    if choices.include_contended or last.get(key) != "contended":
                        break
                    contended[key] += 1

    def heard(spec: RunSpec, status: str, verdict: str | None) -> None:
        last[spec.run_key] = verdict if status == "ok" else None
        if on_run:
            on_run(spec, status, verdict)

    if run is not None:
        made = 0
        for spec in pending():
            if on_start:
                on_start(spec)
            status, _, verdict = run(spec).partition("/")
            made += 1
            heard(spec, status, verdict or None)
        return made
    from dlbench.launch.series import run_series

    outcomes = run_series(
        pending(),
        store,
        timeout_s=run_timeout(budget_s),
        quiet=quiet,
        report=report,
        on_start=(lambda r: on_start(r.spec)) if on_start else None,
        on_end=lambda r, o: heard(r.spec, o.status, _verdict(store, o)),
    )
    return len(outcomes)


def _contended(status: str, verdict: str | None) -> bool:
    return status == "ok" and verdict == "contended"


def _verdict(store: Store, outcome: Any) -> str | None:
    """The quality verdict of a run just ended (None where it could not be read back)."""
    try:
        return store.run(outcome.run_id).quality_verdict
    except DlbenchError:
        return None


def run_timeout(budget_s: float) -> float:
    """A run may take a share of the budget that leaves room for a fit's worth of runs: one
    slow configuration must not spend all of it (it is stored as timeout, and the next runs)."""
    return max(MIN_RUN_TIMEOUT_S, budget_s / MIN_RUNS)


@dataclass(frozen=True)
class Outcome:
    """What a calibration leaves: its runs, and the predictor the device now has."""

    made: int  # runs started by this call
    calibrated: int  # calibration runs of this device stored ok and learned from (all calls)
    used: int  # ok runs with descriptors on this device (the predictor learns from them)
    left_out_contended: int
    predictor: Predictor | None  # None: too few runs for one
    included_contended: int = 0  # contended runs learned from all the same
    left_out: str = ""  # the device's runs not learned from, and why ("19 contended, ...")

    @property
    def enough(self) -> bool:
        return self.predictor is not None


def outcome(store: Store, device_name: str, made: int, include_contended: bool = False) -> Outcome:
    """The device's calibration runs and, with enough of them, its predictor (fitted now, or
    the one kept if nothing changed)."""
    from dlbench.predict.calculator import stored_table
    from dlbench.predict.features import contention, left_out_text
    from dlbench.predict.fitting import fit_predictor

    calibrated = sum(
        1
        for r in store.runs(sweep=sweep_name(device_name), status="ok")
        if not r.excluded and (include_contended or r.quality_verdict != "contended")
    )
    try:
        runs = stored_table(store, include_contended)
    except DlbenchError:  # nothing stored ok with descriptors yet
        return Outcome(made, calibrated, 0, 0, None)
    mine = runs[runs["device"] == device_name]
    left_out, included = contention(runs, device_name)
    why = left_out_text(runs, device_name)
    if calibrated < MIN_RUNS or len(mine) < MIN_RUNS:
        return Outcome(made, calibrated, len(mine), left_out, None, included, why)
    found = fit_predictor(
        store, mine, device_name, left_out_contended=left_out, included_contended=included
    )
    return Outcome(made, calibrated, len(mine), left_out, found, included, why)

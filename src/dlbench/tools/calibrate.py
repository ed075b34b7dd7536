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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from scipy.stats import qmc

from dlbench.config import RunSpec, build_spec
from dlbench.predict.fitting import MIN_RUNS, Predictor
from dlbench.predict.question import LANGUAGE_FAMILIES, input_option
from dlbench.store.database import Store

# (low, high) per knob; log scale for width and batch.
RANGES: dict[str, dict[str, tuple[int, int]]] = {
    "mlp": {"depth": (2, 8), "width": (64, 2048)},
    "vgg": {"depth": (6, 19), "width": (8, 64)},
    "resnet": {"depth": (10, 34), "width": (8, 48)},
    "inception": {"depth": (2, 10), "width": (8, 48)},
    # a step's work grows with tokens (batch x seq_len): fewer sequences, longer ones
    "transformer": {"depth": (1, 8), "width": (64, 512), "input": (32, 512), "batch": (2, 32)},
}
INPUT_SIZES = (16, 64)
BATCH_SIZES = (8, 128)
WIDTH_STEP = {"transformer": 64}  # whole 64-wide heads
DESIGN_POINTS = 64  # per family; the budget decides how many run
WARMUP, TIMED = 3, 20
MIN_RUN_TIMEOUT_S = 30.0  # a run is never stopped sooner, however small the budget


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


def specs(config: dict[str, Any], device: str, sweep: str, repeats: int) -> list[RunSpec]:
    return [
        build_spec(
            workload=f"param-{config['family']}",
            depth=config["depth"],
            width=config["width"],
            **input_option(config["family"], config["image_size"]),
            batch_size=config["batch_size"],
            device=device,
            warmup=WARMUP,
            steps=WARMUP + TIMED,
            val_batches=1,
            no_validate=True,  # neither is predicted: the budget buys more configurations
            no_infer=True,
            telemetry=False,
            sweep=sweep,
            repeat=repeat,
            tags={"calibration": "1"},
        )
        for repeat in range(repeats)
    ]


def calibrate(
    store: Store,
    families: tuple[str, ...],
    device: str,
    device_name: str,
    budget_s: float,
    repeats: int = 2,
    run: Callable[[RunSpec], str] | None = None,
    on_run: Callable[[RunSpec, str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_start: Callable[[RunSpec], None] | None = None,
    quiet: Any = None,
    report: Any = None,
) -> int:
    """Run the design until ``budget_s`` is spent; the number of runs made. A configuration
    stored ok is not run again, unless it was measured contended (it is left out of the fit,
    so it is measured again). ``run`` replaces launching (the tests' stand-in)."""
    sweep = sweep_name(device_name)
    done = {
        r.run_key
        for r in store.runs(sweep=sweep)
        if r.status == "ok" and r.quality_verdict != "contended"
    }
    started = clock()

    def pending() -> Iterator[RunSpec]:
        for config in design(families):
            for spec in specs(config, device, sweep, repeats):
                if spec.run_key in done:
                    continue
                if clock() - started >= budget_s:
                    return
                yield spec

    if run is not None:
        made = 0
        for spec in pending():
            if on_start:
                on_start(spec)
            status = run(spec)
            made += 1
            if on_run:
                on_run(spec, status)
        return made
    from dlbench.launch.series import run_series

    outcomes = run_series(
        pending(),
        store,
        timeout_s=run_timeout(budget_s),
        quiet=quiet,
        report=report,
        on_start=(lambda r: on_start(r.spec)) if on_start else None,
        on_end=(lambda r, o: on_run(r.spec, o.status)) if on_run else None,
    )
    return len(outcomes)


def run_timeout(budget_s: float) -> float:
    """A run may take a share of the budget that leaves room for a fit's worth of runs: one
    slow configuration must not spend all of it (it is stored as timeout, and the next runs)."""
    return max(MIN_RUN_TIMEOUT_S, budget_s / MIN_RUNS)


@dataclass(frozen=True)
class Outcome:
    """What a calibration leaves: its runs, and the predictor the device now has."""

    made: int  # runs started by this call
    calibrated: int  # calibration runs of this device stored ok (all calls)
    used: int  # ok runs with descriptors on this device (the predictor learns from them)
    left_out_contended: int
    predictor: Predictor | None  # None: too few runs for one

    @property
    def enough(self) -> bool:
        return self.predictor is not None


def outcome(store: Store, device_name: str, made: int) -> Outcome:
    """The device's calibration runs and, with enough of them, its predictor (fitted now, or
    the one kept if nothing changed)."""
    from dlbench.errors import DlbenchError
    from dlbench.predict.calculator import stored_table
    from dlbench.predict.fitting import fit_predictor

    calibrated = sum(
        1
        for r in store.runs(sweep=sweep_name(device_name), status="ok")
        if not r.excluded and r.quality_verdict != "contended"
    )
    try:
        runs = stored_table(store)
    except DlbenchError:  # nothing stored ok with descriptors yet
        return Outcome(made, calibrated, 0, 0, None)
    mine = runs[runs["device"] == device_name]
    left_out = int(runs.attrs.get("left_out_contended", {}).get(device_name, 0))
    if calibrated < MIN_RUNS or len(mine) < MIN_RUNS:
        return Outcome(made, calibrated, len(mine), left_out, None)
    found = fit_predictor(store, mine, device_name, left_out_contended=left_out)
    return Outcome(made, calibrated, len(mine), left_out, found)

"""Accuracy of the step-time predictors on this device's calibration runs.

Reads the runs that `dlbench calibrate` stored (sweep calibrate-<device>), and reports, for the
roofline model, the boosted model and the original per-family random forest, the cross-
validated MAPE, median and P90 absolute percentage error under random 5-fold,
leave-one-family-out and the two extrapolation splits, beside the repeats' own noise (the
floor no predictor can beat).

    .venv/bin/dlbench calibrate --device cpu --budget 20
    .venv/bin/python benchmarks/predictor_accuracy.py [--db results/dlbench.sqlite]
"""

from __future__ import annotations

import argparse
import math

from dlbench.predict.calibrate import TIMED, WARMUP
from dlbench.predict.evaluate import SPLITS, evaluate, repeat_noise
from dlbench.predict.features import frame
from dlbench.predict.models import BoostedModel, ForestBaseline, RooflineModel
from dlbench.store import Store
from dlbench.store.summary import run_summary

from _report import machine, write_section


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    store = Store(args.db, read_only=True)
    rows = [r for r in store.list_runs(status="ok") if (r["sweep"] or "").startswith("calibrate")]
    table = frame([run_summary(r) for r in rows])
    if table.empty:
        raise SystemExit("no calibration runs: run dlbench calibrate first")
    lines = []
    for split in SPLITS:
        for make in (RooflineModel, BoostedModel, ForestBaseline):
            errors = evaluate(make, table, split)
            if errors is None:
                continue
            lines.append(
                f"| {split} | {errors.model} | {errors.mape:.1f} | "
                f"{errors.median_ape:.1f} | {errors.p90_ape:.1f} | {errors.tested} |"
            )
    noise = repeat_noise(table)
    by_family = ", ".join(
        f"{family} {repeat_noise(part):.1f}%" for family, part in sorted(table.groupby("family"))
    )
    families = ", ".join(f"{f} {n}" for f, n in table["family"].value_counts().items())
    text = (
        f"Device: {table['device'].mode().iloc[0]} ({machine()}). {len(table)} calibration runs "
        f"({families}), each {TIMED} timed steps after {WARMUP} warm-up (median step time). "
        f"Repeat noise (mean "
        f"absolute deviation of repeats from their mean): "
        f"{'n/a' if math.isnan(noise) else f'{noise:.1f}%'} ({by_family}). Random folds hold "
        "whole configurations (repeats are tested together).\n\n"
        "| Split | Model | MAPE % | Median APE % | P90 APE % | Runs tested |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n\nTargets (issue): MAPE <= 8% "
        "random split, <= 15% leave-one-family-out. Command: "
        "`.venv/bin/dlbench calibrate --device cpu --budget MINUTES` then "
        "`.venv/bin/python benchmarks/predictor_accuracy.py`"
    )
    print(text)
    write_section("predictor-accuracy", text)


if __name__ == "__main__":
    main()

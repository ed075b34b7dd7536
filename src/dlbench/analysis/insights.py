"""``dlbench insights``: how each model descriptor goes with step time, per family.

Spearman's rank correlation of each descriptor with the step time, and the partial rank
correlation controlling for batch size (ranks of both residualised on the batch's ranks):
batch size multiplies almost every cost, so a descriptor's own pull shows only once it is
held fixed. The original calculator studied these before fitting its forests; here they sit
beside a predictor that already uses them, as an explanation, not as the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

DESCRIPTORS = (
    "flops",
    "params",
    "activation_bytes",
    "layers",
    "depth",
    "width",
    "input_size",
    "batch_size",
)
MIN_RUNS = 5  # runs a family needs before its correlations are shown
ALL = "all families"


@dataclass(frozen=True)
class Correlation:
    family: str
    descriptor: str
    runs: int
    spearman: float
    spearman_p: float
    partial: float | None  # controlling for batch size (None for batch size itself)
    partial_p: float | None


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Rank correlation of x and y with z's (linear, on ranks) influence removed; the p-value
    from Student's t with n - 3 degrees of freedom."""
    rx, ry, rz = (stats.rankdata(v) for v in (x, y, z))
    design = np.column_stack([np.ones_like(rz), rz])
    residual_x = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    residual_y = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    # Nothing left once z is removed (x or y moves with z): rounding noise is not a signal.
    if np.ptp(residual_x) <= 1e-9 * np.ptp(rx) or np.ptp(residual_y) <= 1e-9 * np.ptp(ry):
        return math.nan, math.nan
    r = float(np.corrcoef(residual_x, residual_y)[0, 1])
    n = x.size
    if n <= 3 or abs(r) >= 1:
        return r, 0.0 if abs(r) >= 1 else math.nan
    t = r * math.sqrt((n - 3) / (1 - r * r))
    return r, float(2 * stats.t.sf(abs(t), n - 3))


def correlations(table: pd.DataFrame) -> list[Correlation]:
    """Per family (and over all families), every descriptor that varies there."""
    out = []
    groups = [(str(f), part) for f, part in table.groupby("family")] + [(ALL, table)]
    for family, part in groups:
        if len(part) < MIN_RUNS or (family == ALL and part["family"].nunique() < 2):
            continue
        y = part["step_s"].to_numpy(dtype=float)
        batch = part["batch_size"].to_numpy(dtype=float)
        for descriptor in DESCRIPTORS:
            x = part[descriptor].to_numpy(dtype=float)
            if np.ptp(x) == 0:
                continue
            rho, p = stats.spearmanr(x, y)
            if not (math.isfinite(rho) and math.isfinite(p)):
                continue  # step time does not vary in these runs: nothing to correlate
            partial = partial_p = None
            if descriptor != "batch_size" and np.ptp(batch) > 0:
                partial, partial_p = partial_spearman(x, y, batch)
                if not (math.isfinite(partial) and math.isfinite(partial_p)):
                    partial = partial_p = None  # it moves with batch size: not separable here
            out.append(
                Correlation(family, descriptor, len(part), float(rho), float(p), partial, partial_p)
            )
    return out


def strongest(found: list[Correlation], family: str) -> Correlation | None:
    """The descriptor that goes most with step time once batch size is held fixed."""
    mine = [c for c in found if c.family == family and c.partial is not None]
    mine = [c for c in mine if c.partial is not None and math.isfinite(c.partial)]
    return max(mine, key=lambda c: abs(c.partial or 0.0), default=None)

"""dlbench insights: rank correlations with step time, and partial ones with batch held fixed."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dlbench.analysis.insights import ALL, correlations, partial_spearman, strongest


def test_partial_correlation_removes_what_batch_size_explains():
    rng = np.random.default_rng(0)
    batch = rng.uniform(8, 256, 200)
    own = rng.uniform(1, 10, 200)  # independent of batch
    shadow = batch + rng.normal(0, 1, 200)  # batch in disguise
    step = batch * own
    r_own, p_own = partial_spearman(own, step, batch)
    r_shadow, _ = partial_spearman(shadow, step, batch)
    assert r_own > 0.8 and p_own < 1e-9  # its pull shows once batch is fixed
    assert abs(r_shadow) < 0.2 < stats.spearmanr(shadow, step)[0]  # it had none of its own


def test_partial_correlation_matches_the_residual_definition():
    rng = np.random.default_rng(1)
    x, y, z = rng.normal(size=(3, 50))
    rx, ry, rz = (stats.rankdata(v) for v in (x, y, z))
    ex = rx - np.polyval(np.polyfit(rz, rx, 1), rz)
    ey = ry - np.polyval(np.polyfit(rz, ry, 1), rz)
    assert partial_spearman(x, y, z)[0] == pytest.approx(np.corrcoef(ex, ey)[0, 1])


def _table(n=40, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        family = ("vgg", "mlp")[i % 2]
        batch, depth, width = rng.choice([8, 32, 128]), rng.integers(2, 20), rng.integers(8, 64)
        flops = batch * depth * width * width * 1e6
        rows.append(
            {
                "family": family,
                "batch_size": float(batch),
                "depth": float(depth),
                "width": float(width),
                "flops": flops,
                "params": float(depth * width * width),
                "activation_bytes": float(batch * depth * width),
                "layers": float(depth),
                "input_size": 32.0,  # constant: left out
                "step_s": 1e-3 + flops / 1e12,
            }
        )
    return pd.DataFrame(rows)


def test_correlations_per_family_and_overall():
    found = correlations(_table())
    families = {c.family for c in found}
    assert families == {"vgg", "mlp", ALL}
    assert not [c for c in found if c.descriptor == "input_size"]  # it never varies
    flops = next(c for c in found if c.family == "vgg" and c.descriptor == "flops")
    assert flops.spearman > 0.95 and flops.partial > 0.95
    batch = next(c for c in found if c.family == "vgg" and c.descriptor == "batch_size")
    assert batch.partial is None
    assert strongest(found, "vgg").descriptor == "flops"


def test_too_few_runs_give_no_correlations():
    assert correlations(_table(n=4)) == []

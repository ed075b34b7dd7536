"""The calculator's learning part on generated data whose law is known."""

import math

import numpy as np
import pandas as pd
import pytest

from dlbench.measure.training_plan import plan
from dlbench.predict.evaluate import SPLITS, evaluate, family_folds, repeat_noise
from dlbench.predict.features import frame
from dlbench.predict.models import BoostedModel, ForestBaseline, RooflineModel, interval
from synthetic_runs import EFFICIENCY, OVERHEAD_S, PEAK, stored_runs, summaries, typed


def test_the_roofline_recovers_the_known_efficiencies():
    table = frame(typed(summaries(noise=0.0)))
    model = RooflineModel().fit(table)
    for family, efficiency in EFFICIENCY.items():
        assert model.efficiency(family, "fp32") == pytest.approx(efficiency, rel=1e-6)
        assert model.groups[(family, "fp32")].overhead_s == pytest.approx(OVERHEAD_S, rel=1e-6)


def test_cross_validated_errors_rank_the_models_and_stay_near_the_noise():
    table = frame(typed(summaries(noise=0.03)))
    roof = evaluate(RooflineModel, table, "random 5-fold")
    boosted = evaluate(BoostedModel, table, "random 5-fold")
    forest = evaluate(ForestBaseline, table, "random 5-fold")
    assert roof.tested == len(table) == 160
    assert roof.mape < 5 and boosted.mape < 8  # the law is the roofline's; noise is 3%
    assert forest.mape > roof.mape  # the original approach, on the same data, does worse
    assert roof.p90_ape >= roof.median_ape


def test_leave_one_family_out_never_trains_on_the_family_it_tests():
    table = frame(typed(summaries(n=30)))
    folds = list(family_folds(table))
    assert len(folds) == 3
    for train, test in folds:
        held_out = set(table.iloc[test]["family"])
        assert len(held_out) == 1 and not held_out & set(table.iloc[train]["family"])
        assert len(train) + len(test) == len(table)


def test_extrapolation_splits_train_below_and_test_above():
    table = frame(typed(summaries(n=60)))
    ((train, test),) = SPLITS["batch <= 128 -> larger"](table)
    assert table.iloc[train]["batch_size"].max() <= 128 < table.iloc[test]["batch_size"].min()


def test_conformal_interval_covers_held_out_errors():
    errors = np.log(np.random.default_rng(1).lognormal(0, 0.1, 200))
    low, high = interval(np.array([1.0]), errors, coverage=0.9)
    inside = np.mean(np.abs(errors) <= math.log(high[0]))
    assert low[0] < 1.0 < high[0] and 0.89 <= inside <= 0.95


def test_repeat_noise_is_the_floor():
    table = pd.DataFrame(
        {
            "family": ["a"] * 4,
            "flops": [1.0] * 4,
            "params": [5.0] * 4,
            "input_size": [32] * 4,
            "batch_size": [8] * 4,
            "device": ["x"] * 4,
            "precision": ["fp32"] * 4,
            "step_s": [0.9, 1.1, 0.9, 1.1],
        }
    )
    assert repeat_noise(table) == pytest.approx(10.0)


def test_the_decomposition_is_exact_arithmetic():
    job = plan(
        step_s=0.25,
        dataset_size=1_281_167,
        batch_size=256,
        epochs=90,
        validation_s_per_epoch=30,
        startup_s=60,
        usd_per_gpu_hour=2.0,
        gpus=4,
    )
    assert job.steps_per_epoch == math.ceil(1_281_167 / 1024) == 1252
    assert job.epoch_s == pytest.approx(1252 * 0.25 + 30)
    assert job.total_s == pytest.approx(90 * job.epoch_s + 60)
    assert job.usd == pytest.approx(job.total_s / 3600 * 2.0 * 4)
    with pytest.raises(ValueError):
        plan(step_s=0.1, dataset_size=0, batch_size=1, epochs=1)


def test_runs_without_descriptors_or_not_ok_are_left_out():
    runs = summaries(n=3)
    runs[0]["status"] = "oom"
    runs[1]["descriptors"] = None
    assert list(frame(typed(runs))["run_id"]) == ["r2"]


def test_predict_answers_from_stored_runs_with_an_interval_and_exact_multipliers(store):
    from dlbench.predict.calculator import answer

    runs = summaries(n=60, noise=0.02)
    stored_runs(store, runs)
    query = dict(runs[0]["descriptors"])  # a vgg-family configuration
    query.pop("device_name"), query.pop("device_peak_tflops")
    truth = OVERHEAD_S + query["flops_per_step"] / (PEAK * 1e12 * EFFICIENCY["vgg"])
    result = answer(store, query, "X", dataset_size=10_000, epochs=3, price_per_hour=2.0)
    step, low, high = result.step_s
    assert step == pytest.approx(truth, rel=0.05) and low < step < high
    assert result.runs_used == 60 and result.cv_mape < 5
    main = result.plan[0]
    assert main.steps_per_epoch == math.ceil(10_000 / query["batch_size"])
    assert main.total_s == pytest.approx(3 * main.steps_per_epoch * step)
    assert main.usd == pytest.approx(main.total_s / 3600 * 2.0)
    assert len(result.nearest) == 3


def test_predict_refuses_a_device_without_enough_runs(store):
    from dlbench.errors import DlbenchError
    from dlbench.predict.calculator import answer

    stored_runs(store, summaries(n=4))
    with pytest.raises(DlbenchError, match="4 stored runs on X to learn from; predicting needs"):
        answer(store, {}, "X", 100, 1)


def test_random_folds_keep_the_repeats_of_a_configuration_together():
    from dlbench.predict.evaluate import CONFIGURATION, random_folds

    runs = summaries(n=30)
    table = frame(typed(runs + [{**r, "run_id": r["run_id"] + "-again"} for r in runs]))  # repeats
    key = table[list(CONFIGURATION)].astype(str).agg("|".join, axis=1)
    tested = []
    for train, test in random_folds(table):
        assert not set(key.iloc[train]) & set(key.iloc[test])
        tested.extend(test)
    assert sorted(tested) == list(range(len(table)))  # every run tested once

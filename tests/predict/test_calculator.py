"""dlbench predict: the question (zoo, family, user model file), the kept predictor, transfer
between devices, device ranking, and the time and money arithmetic."""

import json
import math

import pytest

from dlbench.engines.pytorch.describe import describe_question as describe
from dlbench.errors import ConfigError, DlbenchError
from dlbench.predict.calculator import FORWARD_SHARE, answer, by_cost, compare_devices
from dlbench.predict.fitting import note_key
from dlbench.predict.question import Question
from synthetic_runs import EFFICIENCY, OVERHEAD_S, PEAK, stored_runs, summaries, typed

from conftest import dlbench_here

USER_MODEL = """
import torch
from torch import nn


def build(input_shape, num_classes):
    channels, size, _ = input_shape
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * size * size, num_classes),
    )


def not_a_model():
    return 42
"""


def _query(runs):
    query = dict(runs[0]["descriptors"])  # a vgg-family configuration
    query.pop("device_name"), query.pop("device_peak_tflops")
    return query


def _truth(query):
    return OVERHEAD_S + query["flops_per_step"] / (PEAK * 1e12 * EFFICIENCY["vgg"])


def test_a_user_model_file_is_counted_on_the_real_module(tmp_path):
    path = tmp_path / "my_model.py"
    path.write_text(USER_MODEL)
    found = describe(
        Question(model_file=f"{path}:build", input_size=16, batch_size=4, num_classes=10)
    )
    # Hand count, forward x 3 (backward: gradients of inputs and weights; the first conv's
    # input needs none): conv 2*16*16*8*(3*3*3) per image, linear 2*(8*16*16)*10 per image.
    conv, linear = 2 * 16 * 16 * 8 * 27, 2 * 8 * 16 * 16 * 10
    assert found["flops_per_step"] == 4 * (2 * conv + 3 * linear)
    assert found["params"] == (8 * 27 + 8) + (8 * 16 * 16 * 10 + 10)
    assert found["layers"] == {"Conv2d": 1, "Linear": 1}
    assert found["family"] == "custom" and found["depth"] == 2
    assert found["activation_bytes"] > 0 and found["input_size"] == 16


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing.py:build", "no file"),
        ("{path}", "give FILE.py:FUNCTION"),
        ("{path}:nothing", "has no function 'nothing'"),
        ("{path}:not_a_model", "returned int, not a torch.nn.Module"),
    ],
)
def test_a_bad_model_file_is_one_clear_error(tmp_path, target, message):
    path = tmp_path / "my_model.py"
    path.write_text(USER_MODEL)
    with pytest.raises(ConfigError, match=message):
        describe(Question(model_file=target.format(path=path), input_size=16))


def test_a_family_description_builds_the_parametric_model():
    found = describe(Question(family="resnet", depth=18, width=16, input_size=32, batch_size=8))
    assert found["family"] == "resnet" and found["depth"] == 18 and found["width"] == 16
    assert found["layers"]["Conv2d"] >= 17 and found["flops_per_step"] > 0
    with pytest.raises(ConfigError, match="say which model"):
        describe(Question(workload="resnet18", family="vgg"))
    with pytest.raises(ConfigError, match="not one dlbench can build"):
        describe(Question(family="rnn"))


def test_a_transformer_question_is_sized_by_its_sequence_length():
    """--family transformer --input is the sequence length; gpt's FLOPs follow it, and its
    operators include causal attention of that length (the operator predictor's input)."""
    found = describe(
        Question(family="transformer", depth=2, width=128, input_size=64, batch_size=4)
    )
    assert (found["family"], found["depth"], found["width"]) == ("transformer", 2, 128)
    assert found["input_size"] == 64 and found["layers"]["LayerNorm"] == 5
    attention = [op for op in found["operators"] if op["kind"] == "attention"]
    assert attention and attention[0]["shape"]["length"] == 64
    assert attention[0]["shape"]["heads"] == 2 and attention[0]["count"] == 2
    short = describe(Question(workload="gpt", input_size=128, batch_size=1))
    long = describe(Question(workload="gpt", input_size=256, batch_size=1))
    assert long["params"] - short["params"] == 128 * 768  # position embeddings only
    assert 2 < long["flops_per_step"] / short["flops_per_step"] < 2.2  # tokens, and attention


def test_a_llama_question_is_described_as_the_llama_workload_at_that_shape():
    found = describe(Question(family="llama", depth=2, width=128, input_size=64, batch_size=4))
    assert (found["family"], found["depth"], found["width"]) == ("llama", 2, 128)
    assert found["input_size"] == 64
    attention = [op for op in found["operators"] if op["kind"] == "attention"]
    assert attention and attention[0]["shape"]["length"] == 64


def test_validation_start_up_gpus_and_price_are_exact_arithmetic(store):
    runs = summaries(n=60)
    stored_runs(store, runs)
    query = {**_query(runs), "batch_size": 32}
    result = answer(store, query, "X", 10_000, 3, price_per_hour=2.5, gpus=2, val_size=1000)
    step, main = result.step_s[0], result.plan[0]
    assert main.steps_per_epoch == math.ceil(10_000 / (32 * 2))
    validation = math.ceil(1000 / 64) * step * FORWARD_SHARE
    assert main.epoch_s == pytest.approx(main.steps_per_epoch * step + validation)
    assert main.total_s == pytest.approx(3 * main.epoch_s)  # no start-up measured here
    assert result.startup_s is None
    assert main.usd == pytest.approx(main.total_s / 3600 * 2.5 * 2)
    assert result.price_source == "--price-per-hour"


def test_the_price_table_prices_a_device_it_knows(store):
    runs = summaries(n=30)
    stored_runs(store, runs, device="NVIDIA H100 80GB HBM3")
    table = [{"match": "H100", "usd_per_gpu_hour": 4.0, "source": "test", "date": "2026"}]
    result = answer(store, _query(runs), "h100", 5000, 2, prices=table)
    assert result.device == "NVIDIA H100 80GB HBM3"
    assert result.plan[0].usd == pytest.approx(result.plan[0].total_s / 3600 * 4.0)
    assert result.price_source == "test (2026)"


def test_the_chosen_predictor_is_kept_with_its_training_data_and_errors(store):
    runs = summaries(n=40)
    stored_runs(store, runs)
    first = answer(store, _query(runs), "X", 1000, 1)
    note = store.get_note(note_key("X"))
    assert note["model"] == first.model and note["training"]["runs"] == 40
    assert set(note["errors"]) >= {"random 5-fold", "leave one family out"}
    assert note["training"]["families"] == {"vgg": 14, "resnet": 13, "mlp": 13}
    assert "vgg fp32" in note["coefficients"]
    again = answer(store, _query(runs), "X", 1000, 1)
    assert not first.predictor.reused and again.predictor.reused
    assert again.step_s == pytest.approx(first.step_s)
    stored_runs(store, summaries(n=41)[40:])  # a new run: a fresh choice
    assert not answer(store, _query(runs), "X", 1000, 1).predictor.reused


def test_a_device_without_calibration_borrows_by_a_shared_reference_workload(store):
    runs = summaries(n=60, noise=0.0)
    stored_runs(store, runs)
    # Device Y ran two of X's workload configurations, each 2.5x slower.
    stored_runs(store, runs[:2], device="Y", step_factor=2.5)
    query = _query(runs)
    result = answer(store, query, "Y", 1000, 1)
    assert result.transfer is not None and result.transfer.source == "X"
    assert result.transfer.ratio == pytest.approx(2.5)
    assert result.step_s[0] == pytest.approx(2.5 * _truth(query), rel=0.05)
    # A device sharing no workload with a calibrated one is refused, and says why.
    stored_runs(store, runs[:2], device="Z", workload="vgg16")
    stored_runs(store, runs[2:3], device="W", workload="lenet-mnist")
    with pytest.raises(DlbenchError, match="1 stored runs on W to learn from; predicting needs"):
        answer(store, query, "W", 1000, 1)


def test_compare_devices_ranks_by_time_and_by_cost(store):
    runs = summaries(n=30)
    stored_runs(store, runs, device="fast GPU")
    stored_runs(store, runs, device="slow GPU", step_factor=3.0)
    table = [
        {"match": "fast", "usd_per_gpu_hour": 10.0},
        {"match": "slow", "usd_per_gpu_hour": 1.0},
    ]
    answers, refused = compare_devices(store, _query(runs), 100_000, 5, prices=table)
    assert [a.device for a in answers] == ["fast GPU", "slow GPU"] and not refused
    assert [a.device for a in by_cost(answers)] == ["slow GPU", "fast GPU"]


def test_cli_predict_on_a_model_file_and_compare_devices(tmp_path, db_path, capsys):
    from dlbench.store.database import Store

    store = Store(str(db_path))
    runs = summaries(n=30)
    stored_runs(store, runs)
    stored_runs(store, runs[:3], device="Y", step_factor=2.0)
    store.close()
    path = tmp_path / "net.py"
    path.write_text(USER_MODEL)
    common = ("--dataset-size", "50000", "--epochs", "10", "--input", "32", "--batch", "64")
    done = dlbench_here(
        capsys, "predict", "--model-file", f"{path}:build", *common, "--device", "X", "--json"
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["descriptors"]["family"] == "custom" and found["steps_per_epoch"] == 782
    low, mid, high = (found["total_s"][k] for k in ("low", "predicted", "high"))
    assert low < mid < high and found["predictor"]["training"]["runs"] == 30
    ranked = dlbench_here(
        capsys, "predict", "--family", "vgg", "--depth", "11", "--width", "16",
        *common, "--compare-devices", "--price-per-hour", "1.0",
    )  # fmt: skip
    assert ranked.returncode == 0, ranked.stderr
    assert ranked.stdout.index("│ X ") < ranked.stdout.index("│ Y ")
    assert "transferred: Y has too few runs of its own" in ranked.stdout
    bad = dlbench_here(capsys, "predict", "--model-file", "nowhere.py:build", *common)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no file" in bad.stderr
    none = dlbench_here(capsys, "predict", *common)
    assert none.returncode == 2 and "exactly one" in none.stderr
    zero = dlbench_here(
        capsys, "predict", "--model-file", f"{path}:build", "--dataset-size", "9", "--batch", "0"
    )
    assert zero.returncode == 2 and zero.stderr.count("\n") == 1
    assert "--batch" in zero.stderr and "greater than or equal to 1" in zero.stderr


def test_a_model_that_needs_the_cpu_is_built_there(tmp_path):
    path = tmp_path / "odd.py"
    path.write_text(
        "import torch\nfrom torch import nn\n\n"
        "def build():\n"
        "    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))\n"
        "    assert net[1].weight.sum().item() == net[1].weight.sum().item()\n"  # meta fails
        "    return net\n"
    )
    found = describe(Question(model_file=f"{path}:build", input_size=8, batch_size=2))
    assert found["params"] == 3 * 8 * 8 * 5 + 5


def test_cli_insights_per_family_and_its_refusal(db_path, capsys):
    from dlbench.store.database import Store

    store = Store(str(db_path))
    stored_runs(store, summaries(n=30))
    store.close()
    done = dlbench_here(capsys, "insights", "--device", "X")
    assert done.returncode == 0, done.stderr
    assert "vgg (10 runs)" in done.stdout and "Partial ρ (batch fixed)" in done.stdout
    as_json = json.loads(dlbench_here(capsys, "insights", "--json").stdout)
    assert {c["family"] for c in as_json} == {"vgg", "resnet", "mlp", "all families"}
    none = dlbench_here(capsys, "insights", "--family", "inception")
    assert none.returncode == 2 and "0 stored run(s) with descriptors match" in none.stderr


def test_contended_runs_are_left_out_of_the_fit_and_counted(store):
    from dlbench.predict.calculator import stored_table
    from dlbench.records import Quality
    from dlbench.render.calculator import predictor

    runs = summaries(60)
    stored_runs(store, runs)
    busy = Quality("contended", ("other work took 1.9 of the 2 usable cores",), 1.9, 0.0, None)
    # The same shapes measured ten times slower beside other work: they must not be learned.
    stored_runs(store, runs[:7], step_factor=10.0, quality=busy, prefix="busy-")
    table = stored_table(store)
    assert len(table) == 60 and not table["run_id"].str.startswith("busy-").any()
    assert table.attrs["left_out"] == {"X": {"contended": 7}}
    found = answer(store, _query(runs), "X", dataset_size=1000, epochs=1)
    assert found.predictor.training["left_out_contended"] == 7
    assert found.predictor.training["runs"] == 60
    assert "7 contended run(s) left out" in predictor(found.predictor)
    expected = runs[0]["mean_step_time_s"]
    assert found.step_s[0] == pytest.approx(expected, rel=0.3)  # not pulled towards 10x


def test_insights_never_print_nan_when_a_descriptor_moves_with_batch():
    from rich.console import Console

    from dlbench.analysis.insights import correlations
    from dlbench.predict.features import frame
    from dlbench.render.calculator import insights

    runs = summaries(n=5)
    for i, run in enumerate(runs):  # one shape, five batch sizes: FLOPs follow batch exactly
        run["descriptors"] = {**runs[0]["descriptors"], "family": "vgg", "batch_size": 2**i}
        run["descriptors"]["flops_per_step"] = 1e9 * 2**i
        run["mean_step_time_s"] = 0.01 * 2**i
    console = Console(width=200, record=True)
    console.print(insights(correlations(frame(typed(runs)))))
    text = console.export_text()
    assert "nan" not in text and "moves with batch size" in text
    console.print(insights([]))
    assert "too few runs for correlations" in console.export_text()


def test_predict_device_means_what_it_means_for_run_and_calibrate(store, capsys):
    from dlbench.engines import get_engine

    from conftest import call_main

    here = get_engine("pytorch").resolve_device("cpu").device_name
    stored_runs(store, summaries(n=30), device=here)
    question = ["predict", "--family", "vgg", "--depth", "11", "--width", "16", "--batch", "32"]
    common = ["--dataset-size", "1000", "--json", "--read-only", "--db", store.url]
    code, out, err = call_main(capsys, *question, "--device", "cpu", *common)
    assert code == 0, err
    assert json.loads(out)["device"] == here
    code, out, err = call_main(capsys, *question, "--device", here[:6], *common)
    assert code == 0 and json.loads(out)["device"] == here  # part of a stored name


def test_a_question_beyond_the_learned_range_says_it_extrapolates(store):
    runs = summaries(n=30)
    stored_runs(store, runs)
    query = _query(runs)
    inside = answer(store, query, "X", 1000, 1)
    assert inside.extrapolation == ()
    learned = max(r["descriptors"]["flops_per_step"] for r in runs)
    huge = {**query, "flops_per_step": learned * 55, "batch_size": 4096}
    found = answer(store, huge, "X", 1000, 1)
    flops, batch = found.extrapolation
    assert flops.startswith("FLOPs per step") and "55x the largest learned" in flops
    assert flops.endswith("the prediction extrapolates")
    assert batch.startswith("batch size 4,096 is 16x the largest learned (16 - 256)")



def test_contended_runs_are_learned_from_only_when_asked_and_then_said(store):
    from dlbench.predict.calculator import stored_table
    from dlbench.records import Quality
    from dlbench.render.calculator import predictor

    runs = summaries(12)
    busy = Quality("contended", ("other work took 1.9 of the 2 usable cores",), 1.9, 0.0, None)
    stored_runs(store, runs[:3])
    stored_runs(store, runs[3:], quality=busy, prefix="busy-")
    with pytest.raises(DlbenchError) as refused:
        answer(store, _query(runs), "X", dataset_size=1000, epochs=1)
    assert "3 stored runs on X to learn from (left out: 9 contended)" in refused.value.message
    assert "--include-contended" in refused.value.hint
    table = stored_table(store, include_contended=True)
    found = answer(store, _query(runs), "X", dataset_size=1000, epochs=1, runs=table)
    assert found.predictor.training["included_contended"] == 9
    assert "9 of them measured contended and learned from all the same" in predictor(
        found.predictor
    )

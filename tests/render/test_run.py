"""What `dlbench show` prints for a run: every row says what its label promises."""

from rich.console import Console

from dlbench.render.run import run_panel
from dlbench.store.stored import StoredRun


def _shown(summary):
    console = Console(width=200, record=True)
    console.print(run_panel(StoredRun.from_summary({"kind": "train", "status": "ok", **summary})))
    return console.export_text()


def test_precision_layout_and_optimiser_are_all_three_said():
    text = _shown(
        {
            "run_id": "r",
            "workload": "resnet18",
            "precision": "amp-bf16",
            "config": {"channels_last": True, "optimizer": "sgd", "lr": 0.1},
        }
    )
    assert "amp-bf16, channels-last, sgd lr 0.1" in text
    plain = _shown({"run_id": "r", "workload": "lenet-mnist", "config": {}})
    assert "fp32, channels-first, the workload's optimiser" in plain


def test_a_classifier_on_synthetic_data_has_its_accuracy_marked():
    text = _shown({"run_id": "r", "workload": "lenet-mnist", "data": "synthetic", "accuracy": 0.1})
    assert "0.1000 (synthetic)" in text


def test_the_input_size_is_said_for_images_and_sequences():
    from dlbench.render.run import input_text

    images = {"run_id": "r", "workload": "resnet18", "config": {"image_size": 64}}
    assert "64x64 images" in _shown(images)
    assert input_text(StoredRun.from_summary({"kind": "train", "status": "ok", **images})) == (
        "64 px"
    )
    tokens = {"run_id": "r", "workload": "gpt", "config": {"seq_len": 1024}}
    assert "sequences of 1,024 tokens" in _shown(tokens)
    assert input_text(StoredRun.from_summary({"kind": "train", "status": "ok", **tokens})) == (
        "1024 tok"
    )
    monitor = StoredRun.from_summary(
        {"kind": "monitor", "status": "ok", "run_id": "m", "config": {}}
    )
    assert input_text(monitor) is None


def test_the_workload_list_fits_100_columns_without_wrapping_a_name():
    import io

    from dlbench.render.listings import workloads_table
    from dlbench.workloads import WORKLOADS

    console = Console(width=100, record=True, file=io.StringIO())
    console.print(workloads_table(WORKLOADS.values()))
    shown = console.export_text()
    assert all(len(line) <= 100 for line in shown.splitlines())
    for spec in WORKLOADS.values():
        assert f"│ {spec.name} " in shown, spec.name

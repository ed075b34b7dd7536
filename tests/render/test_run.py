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

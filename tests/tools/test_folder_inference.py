"""dlbench infer: a saved checkpoint predicts the PNG/JPEG files of a folder."""

import json

import numpy as np
import pytest
from PIL import Image

from dlbench.config import build_spec
from dlbench.engines.pytorch.engine import TorchEngine
from dlbench.errors import ConfigError, DataError
from dlbench.tools.folder_inference import infer_folder
from dlbench.workloads import get_workload

from conftest import cli_env, run_dlbench


def _checkpoint(tmp_path, workload, **options):
    engine = TorchEngine()
    engine.setup(
        build_spec(workload=workload, device="cpu", batch_size=2, **options),
        get_workload(workload),
        None,
    )
    path = tmp_path / f"{workload}.pt"
    engine.save_checkpoint(path)
    return path


def _pngs(folder, count, size, mode="RGB"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        shape = (size, size + 7, 3) if mode == "RGB" else (size, size)
        suffix = ".png" if i % 2 else ".jpeg"
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(folder / f"{i}{suffix}")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_infer_predicts_every_image_and_times_each(tmp_path):
    checkpoint = _checkpoint(tmp_path, "resnet18", image_size=32, num_classes=7)
    report = infer_folder("resnet18", checkpoint, _pngs(tmp_path / "imgs", 5, 40), "cpu")
    assert [p.file for p in report.predictions] == ["0.jpeg", "1.png", "2.jpeg", "3.png", "4.jpeg"]
    for p in report.predictions:
        assert 0 <= p.result["class"] < 7 and 0 < p.result["score"] <= 1
        assert p.decode_ms > 0 and p.predict_ms > 0
    assert 0 < report.predict_p50_ms <= report.predict_p95_ms and report.images_per_s > 0


def test_infer_with_a_detector_returns_a_box_or_none(tmp_path):
    checkpoint = _checkpoint(tmp_path, "fasterrcnn-mobilenet", image_size=64)
    report = infer_folder(
        "fasterrcnn-mobilenet", checkpoint, _pngs(tmp_path / "imgs", 2, 80), "cpu"
    )
    assert len(report.predictions) == 2
    for p in report.predictions:
        # An untrained detector may find nothing: then no class and a zero score, said so;
        # a box it found is the most confident one, inside the model's input frame.
        if p.result["box"] is None:
            assert p.result == {"class": None, "score": 0.0, "box": None}
        else:
            x1, y1, x2, y2 = p.result["box"]
            assert 0 <= x1 <= x2 <= 64 and 0 <= y1 <= y2 <= 64, p.result
            assert 0 < p.result["score"] <= 1 and p.result["class"] >= 0


def test_a_grey_model_reads_colour_files_as_grey(tmp_path):
    checkpoint = _checkpoint(tmp_path, "lenet-mnist")
    report = infer_folder("lenet-mnist", checkpoint, _pngs(tmp_path / "imgs", 2, 50), "cpu")
    assert len(report.predictions) == 2


def test_infer_errors_are_clear(tmp_path):
    checkpoint = _checkpoint(tmp_path, "lenet-mnist")
    images = _pngs(tmp_path / "imgs", 1, 28, mode="L")
    with pytest.raises(ConfigError, match="holds a lenet-mnist model, not mlp-mnist"):
        infer_folder("mlp-mnist", checkpoint, images, "cpu")
    with pytest.raises(DataError, match="no images in"):
        infer_folder("lenet-mnist", checkpoint, tmp_path / "empty", "cpu")
    with pytest.raises(DataError, match="does not exist"):
        infer_folder("lenet-mnist", tmp_path / "none.pt", images, "cpu")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read this checkpoint"):
        infer_folder("lenet-mnist", tmp_path / "bad.pt", images, "cpu")


def test_train_then_infer_from_the_command_line(tmp_path, db_path):
    checkpoint = tmp_path / "lenet.pt"
    env = cli_env(db_path)
    trained = run_dlbench(
        db_path,
        "run",
        "lenet-mnist",
        "--data",
        "digits",
        "--epochs",
        "1",
        "--warmup",
        "1",
        "--checkpoint",
        str(checkpoint),
        env=env,
        timeout=300,
    )
    assert trained.returncode == 0, trained.stderr
    done = run_dlbench(
        db_path,
        "infer",
        "lenet-mnist",
        "--checkpoint",
        str(checkpoint),
        "--images",
        str(_pngs(tmp_path / "imgs", 3, 28, mode="L")),
        "--device",
        "cpu",
        "--json",
        "-",
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report["predictions"]) == 3 and report["predict_p95_ms"] > 0
    assert "images/s" in done.stderr

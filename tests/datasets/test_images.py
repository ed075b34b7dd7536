"""Image folders, ImageNet32 npz batches and COCO folders, on tiny files written here."""

import json

import numpy as np
import pytest
import torch

from dlbench import datasets
from dlbench.config import build_spec
from dlbench.datasets.coco import load_coco, probe_coco, waldo_scenes
from dlbench.datasets.images import load_folder, load_imagenet32, probe_images
from dlbench.engines.pytorch.engine import TorchEngine
from dlbench.errors import DataError
from dlbench.workloads import get_workload

from conftest import write_coco, write_image_folder, write_imagenet32


def test_image_folder_with_train_and_val_is_decoded_resized_and_labelled(tmp_path):
    data = load_folder(write_image_folder(tmp_path), "imagefolder", 24)
    assert data.classes == ("class0", "class1", "class2") and data.num_classes == 3
    assert len(data.train) == 18 and len(data.test) == 6
    images, labels = data.train.take([0, 6, 17])
    assert images.shape == (3, 3, 24, 24) and images.dtype == np.uint8
    assert labels.tolist() == [0, 1, 2]
    # class0 is red, class1 green: the decoded channels say so
    assert images[0, 0].mean() > 150 > images[0, 1].mean()
    assert images[1, 1].mean() > 150 > images[1, 0].mean()
    mean, std = data.channel_stats()
    assert len(mean) == 3 and all(0 < s < 1 for s in std)


def test_image_folder_without_splits_holds_out_a_tenth(tmp_path):
    data = load_folder(write_image_folder(tmp_path, per_class=10, split=False), "imagefolder", 8)
    assert len(data.train) == 27 and len(data.test) == 3


def test_a_folder_without_classes_is_a_clear_error(tmp_path):
    (tmp_path / "only").mkdir()
    with pytest.raises(DataError, match="at least 2"):
        probe_images(tmp_path, "imagefolder")


def test_imagenet32_batches_are_read_with_zero_based_labels(tmp_path):
    data = load_imagenet32(write_imagenet32(tmp_path), "imagenet32")
    assert data.train_x.shape == (60, 3, 32, 32) and data.test_x.shape == (30, 3, 32, 32)
    raw = np.load(tmp_path / "train_data_batch_1.npz")
    assert data.train_y[:30].tolist() == (raw["labels"] - 1).tolist()
    assert np.array_equal(data.train_x[0].reshape(-1), raw["data"][0])


def test_imagenet32_refuses_a_corrupt_batch_and_a_missing_folder(tmp_path):
    write_imagenet32(tmp_path)
    (tmp_path / "val_data.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="val_data.npz: cannot read"):
        load_imagenet32(tmp_path, "imagenet32")
    with pytest.raises(DataError, match="no ImageNet32 batches"):
        probe_images(tmp_path / "elsewhere", "imagenet32")


def test_coco_folder_maps_categories_scales_boxes_and_skips_crowds(tmp_path):
    write_coco(tmp_path, size=96)
    probe_coco(tmp_path, "coco")
    data = load_coco(tmp_path, "coco", (3, 48, 48))
    assert data.classes == ("__background__", "square") and len(data.train) == 4
    images, targets = data.train.take([0])
    content = json.loads((tmp_path / "train" / "annotations.json").read_text())
    x, y, w, h = content["annotations"][0]["bbox"]
    scale = np.array([48 / 116, 48 / 96] * 2)
    assert images.shape == (1, 3, 48, 48)
    assert np.allclose(targets[0]["boxes"], np.array([[x, y, x + w, y + h]]) * scale, atol=1e-4)
    assert targets[0]["labels"].tolist() == [1]  # the crowd box is gone


def test_coco_errors_name_the_missing_split(tmp_path):
    write_coco(tmp_path)
    (tmp_path / "val" / "annotations.json").unlink()
    with pytest.raises(DataError, match="no COCO val split"):
        probe_coco(tmp_path, "coco")


def test_waldo_scenes_put_one_striped_target_in_its_box():
    images, targets = waldo_scenes(3, 128, seed=4)
    assert images.shape == (3, 3, 128, 128)
    for image, target in zip(images, targets, strict=True):
        x0, y0, x1, y1 = target["boxes"][0].astype(int)
        height = y1 - y0
        shirt = image[:, y0 + height // 4 : y0 + height // 4 + height // 2, x0:x1]
        # red and white rows: the red channel is high all over the shirt
        assert shirt[0].min() >= 220 and 8 <= height <= 20


@pytest.mark.parametrize(
    ("workload", "dataset", "writer"),
    [
        ("resnet18", "imagefolder", write_image_folder),
        ("resnet18", "imagenet32", write_imagenet32),
        ("fasterrcnn-mobilenet", "coco", write_coco),
    ],
)
def test_the_engine_trains_and_validates_on_each_format(tmp_path, workload, dataset, writer):
    writer(tmp_path)
    spec = build_spec(
        workload=workload,
        device="cpu",
        batch_size=2,
        image_size=64,
        data=str(tmp_path),
        dataset=dataset,
        workers=0,
    )
    data = datasets.load(spec.data, get_workload(workload).data_format, dataset, spec.input_shape)
    engine = TorchEngine()
    engine.setup(spec, get_workload(workload), data)
    images, _ = next(iter(engine.train_epoch()))
    engine.train_step((images, _))
    result = engine.validate(max_batches=2)
    assert result.images > 0
    if workload == "resnet18":
        assert engine.num_classes == data.num_classes
        assert engine.task.preprocess(images).shape == (2, 3, 64, 64)
        assert result.accuracy is not None
    else:
        assert engine.num_classes == 2 and result.map50 is not None
    assert torch.isfinite(torch.tensor(engine.final_train_loss()))

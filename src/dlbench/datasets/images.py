"""RGB image datasets for the classification zoo, in three on-disk layouts (``--dataset``):

- ``imagefolder``: ``ROOT/train/<class>/*.jpg`` and ``ROOT/val/<class>/*`` (torchvision's
  ImageFolder layout); without train/ and val/, ``ROOT/<class>/*`` split 90/10 by file order.
  Images are decoded in the input pipeline's workers, as a real training job does: that cost is
  part of the measurement.
- ``cifar10``: the CIFAR-10 python batches (32x32).
- ``imagenet32``: the downsampled ImageNet of Chrabaszcz et al. 2017 (``train_data_batch_1..10
  .npz`` and ``val_data.npz``, each with ``data`` N x 3*S*S uint8 channel-major rows and
  ``labels`` 1..1000); any side S (ImageNet16/32/64) is read.

Array datasets keep their native size; the engine resizes on the device to --image-size.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlbench.datasets import ArrayData, channel_stats
from dlbench.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm")
STATS_SAMPLE = 256  # training images decoded to estimate the channel mean and std
FOLDER_TEST_SHARE = 0.1  # held out for validation when the folder has no val/ split


# -- image folders ---------------------------------------------------------------------------
def decode_rgb(path: Path, size: int) -> np.ndarray:
    """One image as uint8 (3, size, size): shorter side resized to ``size``, centre-cropped."""
    return decode_image(path, size, channels=3, crop=True)


def decode_image(path: Path, size: int, channels: int, crop: bool) -> np.ndarray:
    """One image as uint8 (channels, size, size), 1 (grey) or 3 (RGB) channels. With ``crop``
    the shorter side is resized to ``size`` and the centre kept (aspect ratio preserved);
    without it the image is stretched to the square (boxes scale with it)."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB" if channels == 3 else "L")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot decode this image ({exc})") from exc
    if crop:
        scale = size / min(image.size)
        width, height = (max(size, round(side * scale)) for side in image.size)
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        left, top = (width - size) // 2, (height - size) // 2
        image = image.crop((left, top, left + size, top + size))
    else:
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def image_files(folder: Path) -> list[Path]:
    """Every image under ``folder``, in path order."""
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


@dataclass(frozen=True)
class FileSplit:
    paths: tuple[Path, ...]
    labels: np.ndarray
    size: int

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        images = np.stack([decode_rgb(self.paths[i], self.size) for i in indices])
        return images, self.labels[indices]


@dataclass(frozen=True)
class FolderData:
    name: str
    source: str
    train: FileSplit
    test: FileSplit
    classes: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        count = min(len(self.train), STATS_SAMPLE)
        step = max(1, len(self.train) // count)
        images, _ = self.train.take(list(range(0, len(self.train), step))[:count])
        return channel_stats(images)


def _images_by_class(root: Path) -> dict[str, list[Path]]:
    classes: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = image_files(folder)
        if files:
            classes[folder.name] = files
    return classes


def _split(by_class: dict[str, list[Path]], classes: list[str], size: int) -> FileSplit:
    paths = [path for name in classes for path in by_class.get(name, [])]
    labels = [index for index, name in enumerate(classes) for _ in by_class.get(name, [])]
    return FileSplit(tuple(paths), np.asarray(labels, dtype=np.int64), size)


def _folder_layout(root: Path) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    if (root / "train").is_dir():
        val = next((root / n for n in ("val", "test", "valid") if (root / n).is_dir()), None)
        train = _images_by_class(root / "train")
        if val is None:
            raise DataError(
                f"{root} has train/ but no val/ (or test/) folder",
                "add ROOT/val/<class>/ images, or put the class folders directly in ROOT",
            )
        return train, _images_by_class(val)
    every = _images_by_class(root)
    train, test = {}, {}
    for name, files in every.items():
        held = max(1, math.floor(len(files) * FOLDER_TEST_SHARE)) if len(files) > 1 else 0
        train[name], test[name] = files[held:], files[:held]
    return train, test


def load_folder(root: Path, dataset: str, size: int) -> FolderData:
    train, test = _folder_layout(root)
    classes = sorted(train)
    if len(classes) < 2:
        raise DataError(
            f"{root}: found {len(classes)} class folder(s) with images; an image folder needs "
            "at least 2 (ROOT/train/<class>/*.jpg or ROOT/<class>/*.jpg)",
            f"image files end in {', '.join(IMAGE_SUFFIXES)}",
        )
    unknown = sorted(set(test) - set(classes))
    if unknown:
        raise DataError(f"{root}: validation classes {unknown} have no training images")
    return FolderData(
        dataset,
        str(root),
        _split(train, classes, size),
        _split(test, classes, size),
        tuple(classes),
    )


# -- ImageNet32 --------------------------------------------------------------------------------
def _npz_files(root: Path) -> tuple[list[Path], Path]:
    train = sorted(root.glob("train_data_batch_*.npz"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    val = root / "val_data.npz"
    if not train or not val.is_file():
        raise DataError(
            f"no ImageNet32 batches in {root}: expected train_data_batch_1.npz ... and "
            "val_data.npz (the downsampled ImageNet npz format)",
            "give the folder of the Imagenet32_train_npz and Imagenet32_val_npz files",
        )
    return train, val


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch: images (N, 3, S, S) uint8 and labels 0..999 (stored 1-based)."""
    try:
        with np.load(path, allow_pickle=False) as batch:
            data, labels = batch["data"], batch["labels"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path}: cannot read ({exc}); expected an npz with 'data' and 'labels'"
        ) from exc
    side = math.isqrt(data.shape[1] // 3) if data.ndim == 2 else 0
    if data.dtype != np.uint8 or data.ndim != 2 or 3 * side * side != data.shape[1]:
        raise DataError(f"{path}: data is {data.dtype} {data.shape}; expected N x 3*S*S uint8")
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(data) or labels.min(initial=1) < 1:
        raise DataError(f"{path}: {len(labels)} labels (1-based) for {len(data)} images")
    return data.reshape(-1, 3, side, side), labels - 1


def load_imagenet32(root: Path, dataset: str) -> ArrayData:
    train_files, val_file = _npz_files(root)
    train = [read_npz(path) for path in train_files]
    test = read_npz(val_file)
    if {x.shape[1:] for x, _ in train} != {test[0].shape[1:]}:
        raise DataError(f"{root}: the batches hold images of different sizes")
    return ArrayData.from_batches(dataset, str(root), train, test)


# -- the format's entry points -------------------------------------------------------------------
def probe_images(root: Path, dataset: str) -> None:
    if dataset == "cifar10":
        from dlbench.datasets.cifar import probe_cifar10

        probe_cifar10(root, dataset)
    elif dataset == "imagenet32":
        _npz_files(root)
    else:
        load_folder(root, dataset, 1)


def load_images(
    root: Path, dataset: str, input_shape: tuple[int, int, int]
) -> FolderData | ArrayData:
    if dataset == "cifar10":
        from dlbench.datasets.cifar import load_cifar10

        return load_cifar10(root, dataset)
    if dataset == "imagenet32":
        return load_imagenet32(root, dataset)
    return load_folder(root, dataset, input_shape[1])

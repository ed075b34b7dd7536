"""Datasets in their native on-disk formats, decoded to framework-free numpy arrays.

``--data synthetic`` makes no arrays here: the engine generates batches on the device so that
they add no input-pipeline cost. ``--data digits`` is scikit-learn's bundled digits, a real
dataset that exists on every machine; ``--data stdlib`` is its text counterpart, the Python
standard library's own source (``text.py``). Any other value is a path read by the workload's
format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dlbench.errors import DataError, DlbenchError
from dlbench.registry import resolve

SYNTHETIC = "synthetic"
DIGITS = "digits"
STDLIB = "stdlib"
BUILT_IN = (SYNTHETIC, DIGITS, STDLIB)  # --data values that name no path

# format -> (loader, probe). A probe checks presence and headers cheaply, before a run starts.
FORMATS: dict[str, tuple[str, str]] = {
    "mnist-idx": ("dlbench.datasets.idx:load_mnist", "dlbench.datasets.idx:probe_mnist"),
    "cifar10-python": (
        "dlbench.datasets.cifar:load_cifar10",
        "dlbench.datasets.cifar:probe_cifar10",
    ),
    # Any-size RGB images for the zoo; --dataset picks the layout (folder, CIFAR, ImageNet32).
    "images": ("dlbench.datasets.images:load_images", "dlbench.datasets.images:probe_images"),
    "coco": ("dlbench.datasets.coco:load_coco", "dlbench.datasets.coco:probe_coco"),
    # token ids for the language models: a text file, a nanoGPT .bin, or its folder
    "text": ("dlbench.datasets.text:load_text", "dlbench.datasets.text:probe_text"),
}
RESIZED_FORMATS = ("images", "coco")  # the engine resizes these to the run's --image-size
CHECKED_SAMPLE = 32  # items per split decoded before a run

# Sizes of the real train/test sets, so that a synthetic "epoch" means the same work.
SYNTHETIC_SIZES: dict[str, tuple[int, int]] = {
    "mnist-idx": (60_000, 10_000),
    "cifar10-python": (50_000, 10_000),
    "images": (1_281_167, 50_000),  # ImageNet-1k
    "coco": (118_287, 5_000),  # COCO 2017
    # OpenWebText as nanoGPT prepares it (9.0 G and 4.4 M GPT-2 tokens), in sequences of
    # SYNTHETIC_SEQ_LEN tokens (synthetic_sizes scales them to the run's --seq-len)
    "text": (8_823_811, 4_331),
}
SYNTHETIC_SEQ_LEN = 1024


def synthetic_sizes(data_format: str, input_shape: tuple[int, int, int]) -> tuple[int, int]:
    """Items in the train and test split of a synthetic epoch: the real dataset's images, or
    its tokens in sequences of the run's length."""
    train, test = SYNTHETIC_SIZES[data_format]
    if data_format == "text":
        return train * SYNTHETIC_SEQ_LEN // input_shape[1], test * SYNTHETIC_SEQ_LEN // input_shape[
            1
        ]
    return train, test


class Split(Protocol):
    """One split of a dataset, read a batch at a time (in the input pipeline's workers)."""

    def __len__(self) -> int: ...

    def take(self, indices: list[int]) -> tuple[np.ndarray, Any]:
        """uint8 images (N, C, H, W) and their labels (int64 array, or detection targets)."""
        ...


@dataclass(frozen=True)
class ArraySplit:
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        return self.images[indices], self.labels[indices]


@dataclass(frozen=True)
class ArrayData:
    """A dataset decoded to uint8 images (N, C, H, W) and int64 labels (N,)."""

    name: str
    source: str  # where it came from, for the stored config
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    @classmethod
    def from_batches(
        cls,
        name: str,
        source: str,
        train: list[tuple[np.ndarray, np.ndarray]],
        test: tuple[np.ndarray, np.ndarray],
    ) -> ArrayData:
        """Training batches joined; the test split as it is."""
        return cls(
            name=name,
            source=source,
            train_x=np.concatenate([x for x, _ in train]),
            train_y=np.concatenate([y for _, y in train]),
            test_x=test[0],
            test_y=test[1],
        )

    @property
    def train(self) -> ArraySplit:
        return ArraySplit(self.train_x, self.train_y)

    @property
    def test(self) -> ArraySplit:
        return ArraySplit(self.test_x, self.test_y)

    @property
    def num_classes(self) -> int:
        return int(max(self.train_y.max(initial=0), self.test_y.max(initial=0))) + 1

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the training images on the 0-1 scale."""
        return channel_stats(self.train_x)


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, C, H, W) on the 0-1 scale."""
    pixels = images.reshape(images.shape[0], images.shape[1], -1)
    mean = pixels.mean(axis=(0, 2), dtype=np.float64) / 255.0
    std = pixels.std(axis=(0, 2), dtype=np.float64) / 255.0
    return tuple(float(m) for m in mean), tuple(max(float(s), 1e-6) for s in std)


class Dataset(Protocol):
    """What the engines read: train and test splits, class count, normalisation."""

    @property
    def name(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def train(self) -> Split: ...

    @property
    def test(self) -> Split: ...

    @property
    def num_classes(self) -> int: ...

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]: ...


def check_shape(data: ArrayData, input_shape: tuple[int, int, int]) -> ArrayData:
    if data.train_x.shape[1:] != input_shape or data.test_x.shape[1:] != input_shape:
        raise DataError(
            f"{data.source}: images are {data.train_x.shape[1:]} (C, H, W), "
            f"the workload expects {input_shape}",
            "give a dataset of the workload's input size",
        )
    return data


def probe(data: str, data_format: str, dataset: str) -> None:
    """Fail fast, with the file and format named, if ``data`` cannot be read."""
    if data in BUILT_IN:
        return
    path = Path(data).expanduser()
    if not path.exists():
        raise DataError(
            f"data path {data} does not exist",
            "give a folder with the dataset files, or --data synthetic / --data digits",
        )
    resolve(_format(data_format)[1])(path, dataset)


def check(
    data: str,
    data_format: str,
    dataset: str,
    input_shape: tuple[int, int, int],
    num_classes: int | None,
    workload_classes: int,
) -> None:
    """Read the whole dataset once, before its run is stored, and refuse what would fail or
    mislead later: headers, counts and sizes (through the loader), empty splits, and labels
    beyond ``num_classes`` (the workload's own count when not given, for formats whose labels
    are numbers in the files)."""
    if data == SYNTHETIC:
        return
    probe(data, data_format, dataset)  # presence and headers: the clearest message first
    try:
        loaded = load(data, data_format, dataset, input_shape)
    except DlbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader's failure is the data's fault here
        raise DataError(
            f"{data}: cannot be read as {dataset} ({type(exc).__name__}: {exc})",
            "check that the files are complete and of the expected format",
        ) from exc
    from dlbench.datasets.text import TokenData, check_tokens

    if isinstance(loaded, TokenData):  # whole sequences and token ids within the vocabulary
        vocab = num_classes or loaded.vocab or workload_classes
        check_tokens(loaded, vocab, given=num_classes is not None)
    for name, split in (("training", loaded.train), ("test", loaded.test)):
        if len(split) == 0:
            raise DataError(f"{data}: the {name} split of {dataset} holds no items")
        _decode_sample(split, data, dataset)
    if isinstance(loaded, ArrayData):
        _check_labels(loaded, num_classes or workload_classes, given=num_classes is not None)


def _decode_sample(split: Split, data: str, dataset: str) -> None:
    """Decode ``CHECKED_SAMPLE`` items spread over the split through its own reader: files
    decoded only in training (an image folder's, COCO's) fail here instead."""
    last = len(split) - 1
    picks = sorted({round(k * last / max(1, CHECKED_SAMPLE - 1)) for k in range(CHECKED_SAMPLE)})
    for index in picks:
        try:
            split.take([index])
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - a reader's failure is the data's fault here
            raise DataError(
                f"{data}: item {index} of {dataset} cannot be read ({type(exc).__name__}: {exc})"
            ) from exc


def _check_labels(data: ArrayData, classes: int, given: bool) -> None:
    low = int(min(data.train_y.min(), data.test_y.min()))
    high = int(max(data.train_y.max(), data.test_y.max()))
    if low < 0 or high >= classes:
        where = f"--num-classes {classes}" if given else f"the workload's {classes} classes"
        raise DataError(
            f"{data.source}: labels run from {low} to {high}, beyond {where}",
            "give --num-classes to match the labels, or check the label files"
            if low >= 0
            else "labels must be 0 or more",
        )


def load(data: str, data_format: str, dataset: str, input_shape: tuple[int, int, int]) -> Dataset:
    """Decode the real dataset that ``data`` names (not for ``synthetic``)."""
    if data == DIGITS:
        from dlbench.datasets.digits import load_digits

        return load_digits(input_shape)
    if data == STDLIB:
        from dlbench.datasets.text import load_stdlib

        return load_stdlib(input_shape[1])
    loaded: Dataset = resolve(_format(data_format)[0])(
        Path(data).expanduser(), dataset, input_shape
    )
    if data_format in RESIZED_FORMATS or not isinstance(loaded, ArrayData):
        return loaded
    return check_shape(loaded, input_shape)


def _format(data_format: str) -> tuple[str, str]:
    try:
        return FORMATS[data_format]
    except KeyError:
        raise DataError(f"no reader for data format {data_format!r}") from None

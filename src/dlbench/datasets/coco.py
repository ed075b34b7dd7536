"""Object detection data: COCO-format folders, and the synthetic "find Waldo" scenes.

COCO layouts read (``--data ROOT --dataset coco``):
- ``ROOT/annotations/instances_train*.json`` with images in ``ROOT/train*/`` and the same for
  ``val`` (the COCO 2017 distribution);
- ``ROOT/train/annotations.json`` (or ``_annotations.coco.json``) with the images beside it,
  and the same for ``val`` (the layout annotation tools export).
Images are resized to the run's square ``--image-size`` and their boxes scaled with them; crowd
annotations are skipped. Category ids are mapped to 1..K in id order (0 is background).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlbench.errors import DataError

SPLIT_NAMES = {"train": ("train",), "val": ("val", "valid", "test")}
LOCAL_ANNOTATIONS = ("annotations.json", "_annotations.coco.json")
MIN_BOX_PIXELS = 1.0  # a box thinner than this after resizing cannot be learned; dropped

Target = dict[str, np.ndarray]  # boxes (K, 4) float32 x1 y1 x2 y2, labels (K,) int64


@dataclass(frozen=True)
class DetectionSplit:
    paths: tuple[Path, ...]
    boxes: tuple[np.ndarray, ...]  # per image, in its own pixels
    labels: tuple[np.ndarray, ...]
    size: int

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, indices: list[int]) -> tuple[np.ndarray, list[Target]]:
        images, targets = [], []
        for i in indices:
            image, (width, height) = _decode_resized(self.paths[i], self.size)
            scale = np.array([self.size / width, self.size / height] * 2, dtype=np.float32)
            boxes = self.boxes[i] * scale
            keep = (boxes[:, 2] - boxes[:, 0] >= MIN_BOX_PIXELS) & (
                boxes[:, 3] - boxes[:, 1] >= MIN_BOX_PIXELS
            )
            images.append(image)
            targets.append({"boxes": boxes[keep], "labels": self.labels[i][keep]})
        return np.stack(images), targets


@dataclass(frozen=True)
class DetectionData:
    name: str
    source: str
    train: DetectionSplit
    test: DetectionSplit
    classes: tuple[str, ...]  # category names, index 0 is background

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Unused by the detector, whose own transform normalises; kept for the interface."""
        return (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _decode_resized(path: Path, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    from PIL import Image

    from dlbench.datasets.images import decode_image

    try:
        with Image.open(path) as opened:
            original = opened.size
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot decode this image ({exc})") from exc
    return decode_image(path, size, channels=3, crop=False), original


def _find_split(root: Path, split: str) -> tuple[Path, Path]:
    """(annotation file, image folder) of one split."""
    for name in SPLIT_NAMES[split]:
        for found in sorted((root / "annotations").glob(f"instances_{name}*.json")):
            suffix = found.stem.removeprefix("instances_")
            if (root / suffix).is_dir():
                return found, root / suffix
        for local in LOCAL_ANNOTATIONS:
            if (root / name / local).is_file():
                return root / name / local, root / name
    raise DataError(
        f"no COCO {split} split in {root}: expected annotations/instances_{split}*.json with "
        f"images in {split}*/, or {split}/annotations.json beside the images",
        "export the data set in COCO format (instances JSON)",
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read COCO annotations ({exc})") from exc
    if not isinstance(content, dict) or not {"images", "annotations", "categories"} <= set(content):
        raise DataError(f"{path}: not COCO instances JSON (needs images, annotations, categories)")
    return content


def _read_split(
    annotations: Path, folder: Path, category_index: dict[int, int], size: int
) -> DetectionSplit:
    content = _read_json(annotations)
    per_image: dict[int, list[tuple[list[float], int]]] = {}
    for ann in content["annotations"]:
        if ann.get("iscrowd", 0) or ann["category_id"] not in category_index:
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        per_image.setdefault(ann["image_id"], []).append(
            ([x, y, x + w, y + h], category_index[ann["category_id"]])
        )
    paths, boxes, labels = [], [], []
    for image in sorted(content["images"], key=lambda i: i["id"]):
        path = folder / image["file_name"]
        if not path.is_file():
            raise DataError(f"{annotations}: image {image['file_name']} is not in {folder}")
        found = per_image.get(image["id"], [])
        paths.append(path)
        boxes.append(np.asarray([b for b, _ in found], dtype=np.float32).reshape(-1, 4))
        labels.append(np.asarray([c for _, c in found], dtype=np.int64))
    return DetectionSplit(tuple(paths), tuple(boxes), tuple(labels), size)


def probe_coco(root: Path, dataset: str) -> None:
    for split in SPLIT_NAMES:
        _read_json(_find_split(root, split)[0])


def load_coco(root: Path, dataset: str, input_shape: tuple[int, int, int]) -> DetectionData:
    train_ann, train_dir = _find_split(root, "train")
    val_ann, val_dir = _find_split(root, "val")
    categories = sorted(_read_json(train_ann)["categories"], key=lambda c: c["id"])
    if not categories:
        raise DataError(f"{train_ann}: no categories")
    index = {c["id"]: i + 1 for i, c in enumerate(categories)}
    size = input_shape[1]
    return DetectionData(
        name=dataset,
        source=str(root),
        train=_read_split(train_ann, train_dir, index, size),
        test=_read_split(val_ann, val_dir, index, size),
        classes=("__background__", *(str(c["name"]) for c in categories)),
    )


# -- synthetic "find Waldo" scenes ---------------------------------------------------------------
WALDO_HEIGHT = 0.09  # of the image side: a small target, as in the seed's Waldo detector
CLUTTER_SHAPES = 40


def waldo_scenes(count: int, size: int, seed: int) -> tuple[np.ndarray, list[Target]]:
    """``count`` cluttered scenes with one Waldo each (red and white striped shirt, blue
    trousers, skin-coloured head) and striped decoys in other colours; label 1 is Waldo."""
    rng = np.random.default_rng(seed)
    images = np.empty((count, 3, size, size), dtype=np.uint8)
    targets: list[Target] = []
    for n in range(count):
        scene = rng.integers(60, 200, size=(size, size, 3), dtype=np.uint8)
        for _ in range(CLUTTER_SHAPES):
            x0, y0 = rng.integers(0, size, 2)
            w, h = rng.integers(size // 40 + 1, size // 6 + 2, 2)
            scene[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 256, 3)
        for _ in range(3):  # decoys: the stripes without Waldo's colours
            _paint_figure(scene, rng, size, shirt=(rng.integers(0, 256, 3), (20, 120, 20)))
        box = _paint_figure(scene, rng, size, shirt=((220, 20, 20), (250, 250, 250)))
        images[n] = scene.transpose(2, 0, 1)
        targets.append(
            {"boxes": np.asarray([box], dtype=np.float32), "labels": np.ones(1, dtype=np.int64)}
        )
    return images, targets


def _paint_figure(
    scene: np.ndarray, rng: np.random.Generator, size: int, shirt: tuple[Any, Any]
) -> tuple[float, float, float, float]:
    height = max(8, round(size * WALDO_HEIGHT * rng.uniform(0.8, 1.2)))
    width = max(4, height // 2)
    x0 = int(rng.integers(0, size - width))
    y0 = int(rng.integers(0, size - height))
    head, body = height // 4, height // 2
    scene[y0 : y0 + head, x0 + width // 4 : x0 + width - width // 4] = (235, 190, 150)
    stripe = max(1, body // 6)
    for row in range(body):
        scene[y0 + head + row, x0 : x0 + width] = shirt[(row // stripe) % 2]
    scene[y0 + head + body : y0 + height, x0 : x0 + width] = (30, 50, 160)
    return float(x0), float(y0), float(x0 + width), float(y0 + height)

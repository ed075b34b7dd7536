"""``dlbench infer``: predict each image file of a folder with a trained checkpoint, and time
it. Decoding (reading, resizing) and prediction (device transfer, model, result) are timed
apart, the device synchronised around each prediction."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlbench.datasets.images import IMAGE_SUFFIXES, decode_image, image_files
from dlbench.engines import get_engine
from dlbench.errors import DataError
from dlbench.measure.stats import percentiles_ms
from dlbench.workloads import get_workload

WARMUP_PREDICTIONS = 3  # untimed, on the first image: kernel selection, allocator growth


@dataclass(frozen=True)
class Prediction:
    file: str
    result: dict[str, Any]  # class, score, label (with a folder's class names), box (detection)
    decode_ms: float
    predict_ms: float


@dataclass
class InferenceReport:
    workload: str
    checkpoint: str
    device: str
    precision: str
    predictions: list[Prediction] = field(default_factory=list)
    decode_p50_ms: float | None = None
    predict_p50_ms: float | None = None
    predict_p95_ms: float | None = None
    images_per_s: float | None = None  # decode + predict, one image at a time


def infer_folder(
    workload_name: str,
    checkpoint: Path,
    images: Path,
    device: str = "auto",
    precision: str = "fp32",
    framework: str = "pytorch",
    on_prediction: Callable[[Prediction], None] | None = None,
) -> InferenceReport:
    if get_workload(workload_name).task == "language":
        raise DataError(
            f"dlbench infer predicts images; {workload_name} is a language model",
            "its inference figures (latency of one sequence) are in its run: dlbench show RUN_ID",
        )
    if not checkpoint.is_file():
        raise DataError(
            f"checkpoint {checkpoint} does not exist", "save one with dlbench run --checkpoint FILE"
        )
    files = image_files(images) if images.is_dir() else []
    if not files:
        raise DataError(
            f"no images in {images}",
            f"give a folder of {', '.join(IMAGE_SUFFIXES)} files",
        )
    workload = get_workload(workload_name)
    predictor = get_engine(framework).load_predictor(workload, checkpoint, device, precision)
    report = InferenceReport(workload.name, str(checkpoint), predictor.device_name, precision)
    crop = workload.task == "classify"  # a detector sees the whole scene
    first = decode_image(files[0], predictor.image_size, predictor.channels, crop)
    for _ in range(WARMUP_PREDICTIONS):
        predictor.predict(first)
    predictor.sync()
    clock = time.perf_counter_ns
    started = clock()
    for path in files:
        start = clock()
        image = decode_image(path, predictor.image_size, predictor.channels, crop)
        decoded = clock()
        result = predictor.predict(image)
        predictor.sync()
        done = clock()
        prediction = Prediction(
            str(path.relative_to(images)), result, (decoded - start) / 1e6, (done - decoded) / 1e6
        )
        report.predictions.append(prediction)
        if on_prediction:
            on_prediction(prediction)
    elapsed_s = (clock() - started) / 1e9
    (report.decode_p50_ms,) = percentiles_ms([p.decode_ms / 1e3 for p in report.predictions], 50)
    report.predict_p50_ms, report.predict_p95_ms = percentiles_ms(
        [p.predict_ms / 1e3 for p in report.predictions], 50, 95
    )
    report.images_per_s = len(files) / elapsed_s if elapsed_s > 0 else None
    return report

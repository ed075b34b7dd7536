"""Engines adapt one framework each to the runner's phases. Imported on use.

Adding a framework is a new module here and one entry in ``ENGINES``; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dlbench.errors import EngineUnavailable
from dlbench.records import ModelStats
from dlbench.registry import resolve, unknown_name

if TYPE_CHECKING:
    from dlbench.config import RunSpec
    from dlbench.datasets import Dataset
    from dlbench.workloads import WorkloadSpec

ENGINES: dict[str, str] = {
    "pytorch": "dlbench.engines.pytorch.engine:TorchEngine",
    "tensorflow": "dlbench.engines.keras.engine:TensorFlowEngine",
    "jax": "dlbench.engines.keras.engine:JaxEngine",
}


@dataclass(frozen=True)
class DeviceInfo:
    device: str  # resolved: cpu, cuda:0, mps
    kind: str  # cpu | cuda | mps
    device_name: str  # e.g. "NVIDIA H100 80GB HBM3" or the CPU model
    num_gpus: int


@dataclass(frozen=True)
class EvalResult:
    images: int
    accuracy: float | None  # top-1, classification
    mean_loss: float | None  # None where the model reports no validation loss (detection)
    map50: float | None = None  # mean average precision at IoU 0.5, detection


class Predictor(Protocol):
    """A trained model for ``dlbench infer``: one decoded image at a time."""

    device_name: str
    image_size: int
    channels: int

    def sync(self) -> None: ...

    def predict(self, image: Any) -> dict[str, Any]: ...


class Engine(Protocol):
    """What the runner asks of a framework. Timing is the runner's; the engine only works."""

    name: str
    steps_per_epoch: int
    rank: int  # 0 in a single process; under torchrun, this process's rank
    world_size: int

    def resolve_device(self, requested: str) -> DeviceInfo: ...

    def check_precision(self, device: DeviceInfo, precision: str) -> None: ...

    def setup(self, spec: RunSpec, workload: WorkloadSpec, data: Dataset | None) -> None: ...

    def sync(self) -> None: ...

    def train_epoch(self) -> Iterator[object]: ...

    def train_step(self, batch: object) -> None: ...

    def final_train_loss(self) -> float | None: ...

    def model_stats(self) -> ModelStats: ...

    def test_batch_count(self, max_batches: int | None) -> int: ...

    def validate(
        self, max_batches: int | None, on_batch: Callable[[], None] | None = None
    ) -> EvalResult: ...

    def save_checkpoint(self, path: Path) -> None: ...

    def load_checkpoint(self, path: Path) -> object: ...

    def predict_all(self, model: object, max_batches: int | None) -> int: ...

    def predict_call(self, model: object, batch_size: int) -> tuple[Callable[[], object], int]: ...

    def load_predictor(
        self, workload: WorkloadSpec, checkpoint: Path, device: str, precision: str
    ) -> Predictor: ...

    def peak_memory(self) -> tuple[int | None, str]: ...

    def gather(self, value: Any) -> list[Any]: ...

    def shutdown(self) -> None: ...

    def is_out_of_memory(self, exc: BaseException) -> bool: ...


def get_engine(framework: str) -> Engine:
    if framework not in ENGINES:
        raise unknown_name("framework", framework, ENGINES)
    try:
        engine_class = resolve(ENGINES[framework])
    except ImportError as exc:
        raise EngineUnavailable(
            f"framework {framework} cannot be imported ({exc})",
            f"install it, e.g. pip install 'dlbench[{framework}]'",
        ) from exc
    return engine_class()

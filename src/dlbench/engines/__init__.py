"""Engines adapt one framework each to the runner's phases. Imported on use.

Adding a framework is a new module here and one entry in ``dlbench.frameworks.FRAMEWORKS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dlbench.errors import EngineUnavailable
from dlbench.frameworks import FRAMEWORKS
from dlbench.records import ModelStats
from dlbench.registry import resolve, unknown_name

if TYPE_CHECKING:
    from dlbench.config import RunSpec
    from dlbench.datasets import Dataset
    from dlbench.measure.generation import Generated
    from dlbench.workloads import WorkloadSpec


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

    def generate(self, prompt_len: int, gen_len: int) -> Generated: ...

    def is_out_of_memory(self, exc: BaseException) -> bool: ...


def get_engine(framework: str) -> Engine:
    if framework not in FRAMEWORKS:
        raise unknown_name("framework", framework, FRAMEWORKS)
    entry = FRAMEWORKS[framework]
    try:
        engine_class = resolve(entry.engine)
    except ImportError as exc:
        raise EngineUnavailable(
            f"framework {framework} cannot be imported ({exc})",
            f"install it: pip install 'dlbench[{entry.extra}]'"
            if entry.extra
            else "reinstall dlbench",
        ) from exc
    return engine_class()

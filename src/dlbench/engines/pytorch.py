"""The PyTorch engine: model, optimiser, input pipeline and device for one run."""

from __future__ import annotations

import math
import resource
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler

from dlbench.config import RunSpec
from dlbench.datasets import SYNTHETIC_SIZES, ArrayData
from dlbench.engines import DeviceInfo, EvalResult
from dlbench.errors import EngineUnavailable
from dlbench.registry import resolve
from dlbench.sysinfo import cpu_model, usable_cpus
from dlbench.workloads import OptimizerSpec, WorkloadSpec

Batch = tuple[torch.Tensor, torch.Tensor]
ChannelStats = tuple[tuple[float, ...], tuple[float, ...]]
SYNTHETIC_POOL = 4  # distinct synthetic batches kept on the device and cycled through
OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")


class TorchEngine:
    name = "pytorch"

    def __init__(self) -> None:
        self.steps_per_epoch = 0
        self.sync: Callable[[], None] = _no_sync
        self._last_loss: torch.Tensor | None = None

    # -- device -----------------------------------------------------------------------------
    def resolve_device(self, requested: str) -> DeviceInfo:
        if requested == "auto":
            if torch.cuda.is_available():
                requested = "cuda:0"
            elif torch.backends.mps.is_available():
                requested = "mps"
            else:
                requested = "cpu"
        if requested == "cpu":
            return DeviceInfo("cpu", "cpu", cpu_model(), 0)
        if requested == "mps":
            if not torch.backends.mps.is_available():
                raise EngineUnavailable(
                    "--device mps: this torch build sees no Apple GPU", "use --device cpu or auto"
                )
            return DeviceInfo("mps", "mps", "Apple GPU (MPS)", 1)
        return _cuda_device(requested)

    # -- setup ------------------------------------------------------------------------------
    def setup(self, spec: RunSpec, workload: WorkloadSpec, data: ArrayData | None) -> None:
        self.info = self.resolve_device(spec.device)
        self.device = torch.device(self.info.device)
        self.sync = _sync_for(self.device)
        torch.manual_seed(spec.seed)
        if spec.threads:
            torch.set_num_threads(spec.threads)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.spec, self.workload = spec, workload
        self._builder = resolve(workload.builders[self.name])
        self.model = self._build_model()
        self.optimizer = make_optimizer(workload.optimizer, self.model.parameters())
        self.loss_fn = nn.CrossEntropyLoss()
        batch = int(spec.batch_size or workload.default_batch_size)
        self._input: SyntheticInput | LoaderInput
        if data is None:
            self._input = SyntheticInput(workload, batch, self.device, spec.seed)
        else:
            self._input = LoaderInput(data, batch, self.device, spec)
        self.steps_per_epoch = self._input.steps_per_epoch
        mean, std = self._input.channel_stats
        shape = (1, len(mean), 1, 1)
        self._mean = torch.tensor(mean, device=self.device).view(shape)
        self._std = torch.tensor(std, device=self.device).view(shape)

    def _build_model(self) -> nn.Module:
        model: nn.Module = self._builder(self.workload.input_shape, self.workload.num_classes)
        return model.to(self.device)

    def _preprocess(self, images: torch.Tensor) -> torch.Tensor:
        # uint8 -> normalised float on the device: part of the step, as in a real pipeline.
        return (images.float().div_(255.0) - self._mean) / self._std

    # -- training ---------------------------------------------------------------------------
    def train_epoch(self) -> Iterator[Batch]:
        return self._input.train_batches()

    def train_step(self, batch: Batch) -> None:
        images, labels = batch
        logits = self.model(self._preprocess(images))
        loss = self.loss_fn(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self._last_loss = loss.detach()  # read once at the end: .item() would sync each step

    def final_train_loss(self) -> float | None:
        return float(self._last_loss.item()) if self._last_loss is not None else None

    # -- evaluation and inference -------------------------------------------------------------
    def test_batch_count(self, max_batches: int | None) -> int:
        total = self._input.test_steps
        return min(total, max_batches) if max_batches else total

    def validate(
        self, max_batches: int | None, on_batch: Callable[[], None] | None = None
    ) -> EvalResult:
        self.model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        total = 0
        with torch.no_grad():
            for images, labels in self._input.test_batches(max_batches):
                logits = self.model(self._preprocess(images))
                loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum")
                correct += (logits.argmax(dim=1) == labels).sum()
                total += int(labels.shape[0])
                if on_batch:
                    on_batch()
        self.model.train()
        return EvalResult(int(correct.item()), total, float(loss_sum.item()) / max(total, 1))

    def save_checkpoint(self, path: Path) -> None:
        torch.save(self.model.state_dict(), path)

    def load_checkpoint(self, path: Path) -> nn.Module:
        return load_checkpoint(self._build_model(), path, self.device).eval()

    def predict_all(self, model: object, max_batches: int | None) -> int:
        assert isinstance(model, nn.Module)
        images_seen = 0
        with torch.inference_mode():
            for images, _ in self._input.test_batches(max_batches):
                model(self._preprocess(images)).argmax(dim=1)
                images_seen += int(images.shape[0])
        return images_seen

    def predict_call(self, model: object, batch_size: int) -> tuple[Callable[[], object], int]:
        assert isinstance(model, nn.Module)
        images = self._input.sample_images(batch_size)

        def predict() -> torch.Tensor:
            with torch.inference_mode():
                return model(self._preprocess(images)).argmax(dim=1)

        return predict, int(images.shape[0])

    # -- resources --------------------------------------------------------------------------
    def peak_memory(self) -> tuple[int | None, str]:
        if not hasattr(self, "device"):  # setup failed before a device was chosen
            return process_peak_rss(), "process_max_rss"
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device)), "cuda_max_allocated"
        if self.device.type == "mps":
            return int(torch.mps.driver_allocated_memory()), "mps_driver_allocated_at_end"
        return process_peak_rss(), "process_max_rss"

    def is_out_of_memory(self, exc: BaseException) -> bool:
        oom_types = tuple(
            t for t in (getattr(torch, "OutOfMemoryError", None), torch.cuda.OutOfMemoryError) if t
        )
        if isinstance(exc, (MemoryError, *oom_types)):
            return True
        return isinstance(exc, RuntimeError) and any(m in str(exc) for m in OOM_MESSAGES)


# -- helpers ------------------------------------------------------------------------------------
def _no_sync() -> None:
    """CPU work is finished when the call returns."""


def _sync_for(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "mps":
        return torch.mps.synchronize
    return _no_sync


def _cuda_device(requested: str) -> DeviceInfo:
    if not torch.cuda.is_available():
        raise EngineUnavailable(
            f"--device {requested}: torch sees no CUDA GPU here (torch.cuda.is_available() "
            "is False)",
            "use --device cpu, or --device auto to take the best device there is",
        )
    index = int(requested.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise EngineUnavailable(
            f"--device {requested}: only {count} CUDA device(s) visible",
            f"use cuda:0 to cuda:{count - 1}",
        )
    return DeviceInfo(f"cuda:{index}", "cuda", torch.cuda.get_device_name(index), 1)


def make_optimizer(spec: OptimizerSpec, params: Any) -> torch.optim.Optimizer:
    if spec.name == "sgd":
        return torch.optim.SGD(
            params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay
        )
    if spec.name == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=spec.lr, weight_decay=spec.weight_decay)
    raise ValueError(f"unknown optimizer {spec.name}")


def load_checkpoint(model: nn.Module, path: Path, device: torch.device) -> nn.Module:
    """Load a state dict with weights_only=True: a checkpoint cannot run code."""
    state = torch.load(path, map_location=device, weights_only=True)  # noqa: TID251
    model.load_state_dict(state)
    return model


def process_peak_rss() -> int:
    """This process's peak resident set size in bytes (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def default_workers() -> int:
    """Input workers: one per spare core, at most 4, leaving a core to the training loop."""
    return max(0, min(4, usable_cpus() - 1))


class SyntheticInput:
    """Random uint8 images and labels made once on the device and cycled: no input cost."""

    def __init__(self, workload: WorkloadSpec, batch: int, device: torch.device, seed: int) -> None:
        train_size, test_size = SYNTHETIC_SIZES[workload.data_format]
        channels = workload.input_shape[0]
        # Uniform 0-255 noise on the 0-1 scale: mean 0.5, std 0.29.
        self.channel_stats: ChannelStats = ((0.5,) * channels, (0.29,) * channels)
        self.batch = batch
        self.steps_per_epoch = max(1, train_size // batch)
        self.test_steps = math.ceil(test_size / batch)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        # Validation batches are distinct from training ones: a model that memorises the
        # training pool must not show it as accuracy.
        self.pool, self.test_pool = (
            [_random_batch(workload, batch, generator, device) for _ in range(size)]
            for size in (SYNTHETIC_POOL, 2)
        )

    def train_batches(self) -> Iterator[Batch]:
        for i in range(self.steps_per_epoch):
            yield self.pool[i % len(self.pool)]

    def test_batches(self, max_batches: int | None) -> Iterator[Batch]:
        for i in range(min(self.test_steps, max_batches or self.test_steps)):
            yield self.test_pool[i % len(self.test_pool)]

    def sample_images(self, count: int) -> torch.Tensor:
        return self.test_pool[0][0][:count]


def _random_batch(
    workload: WorkloadSpec, batch: int, generator: torch.Generator, device: torch.device
) -> Batch:
    images = torch.randint(
        0, 256, (batch, *workload.input_shape), dtype=torch.uint8, generator=generator
    )
    labels = torch.randint(0, workload.num_classes, (batch,), generator=generator)
    return images.to(device), labels.to(device)


class _Arrays(Dataset):
    """Whole batches by index list (``__getitems__``): one numpy gather per batch."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Batch:
        return torch.from_numpy(self.images[index]), torch.tensor(self.labels[index])

    def __getitems__(self, indices: list[int]) -> Batch:
        return torch.from_numpy(self.images[indices]), torch.from_numpy(self.labels[indices])


def _whole_batch(batch: Batch) -> Batch:
    return batch


class LoaderInput:
    """Real data through a DataLoader with workers and pinned memory."""

    def __init__(self, data: ArrayData, batch: int, device: torch.device, spec: RunSpec) -> None:
        self.device = device
        self.channel_stats: ChannelStats = data.channel_stats()
        workers = default_workers() if spec.workers is None else spec.workers
        generator = torch.Generator().manual_seed(spec.seed)
        common: dict[str, Any] = {
            "batch_size": batch,
            "num_workers": workers,
            "pin_memory": device.type == "cuda",
            "persistent_workers": workers > 0,
            "collate_fn": _whole_batch,
        }
        train = _Arrays(data.train_x, data.train_y)
        if len(train) < batch:
            raise ValueError(f"batch size {batch} is larger than the {len(train)} training images")
        self.train_loader = DataLoader(
            train, sampler=RandomSampler(train, generator=generator), drop_last=True, **common
        )
        test = _Arrays(data.test_x, data.test_y)
        self.test_loader = DataLoader(test, sampler=SequentialSampler(test), **common)
        self.steps_per_epoch = len(self.train_loader)
        self.test_steps = len(self.test_loader)
        self._sample = torch.from_numpy(np.ascontiguousarray(data.test_x[:batch])).to(device)

    def _to_device(self, loader: DataLoader, limit: int | None) -> Iterator[Batch]:
        for i, (images, labels) in enumerate(loader):
            if limit is not None and i >= limit:
                break
            yield (
                images.to(self.device, non_blocking=True),
                labels.to(self.device, non_blocking=True),
            )

    def train_batches(self) -> Iterator[Batch]:
        return self._to_device(self.train_loader, None)

    def test_batches(self, max_batches: int | None) -> Iterator[Batch]:
        return self._to_device(self.test_loader, max_batches)

    def sample_images(self, count: int) -> torch.Tensor:
        return self._sample[:count]

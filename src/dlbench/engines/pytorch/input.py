"""Input pipelines of the PyTorch engine: synthetic batches on the device, or real data through
a DataLoader with workers and pinned memory.

A batch is ``(images, labels)``: uint8 images (N, C, H, W) on the device and either int64
class labels or, for detection, a list of per-image target dicts (boxes, labels); for a
language model, int64 token ids (N, seq_len) and their next tokens (N, seq_len).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler
from torch.utils.data import Dataset as TorchDataset

from dlbench.config import RunSpec
from dlbench.datasets import Dataset, Split, synthetic_sizes
from dlbench.datasets.coco import waldo_scenes
from dlbench.sysinfo import usable_cpus
from dlbench.workloads import WorkloadSpec

Labels = Any  # torch.Tensor of class indices, or list[dict[str, torch.Tensor]] for detection
Batch = tuple[torch.Tensor, Labels]
ChannelStats = tuple[tuple[float, ...], tuple[float, ...]]
SYNTHETIC_POOL = 4  # distinct synthetic batches kept on the device and cycled through
SYNTHETIC_TEST_POOL = 2


def default_workers() -> int:
    """Input workers: one per spare core, at most 4, leaving a core to the training loop."""
    return max(0, min(4, usable_cpus() - 1))


def to_device(labels: Labels, device: torch.device) -> Labels:
    if isinstance(labels, torch.Tensor):
        return labels.to(device, non_blocking=True)
    return [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in labels]


class SyntheticInput:
    """Batches made once on the device and cycled: no input cost. Random images and labels
    for classification; cluttered "find Waldo" scenes for detection."""

    def __init__(
        self,
        workload: WorkloadSpec,
        input_shape: tuple[int, int, int],
        num_classes: int,
        batch: int,
        device: torch.device,
        seed: int,
        world_size: int = 1,
    ) -> None:
        train_size, test_size = synthetic_sizes(workload.data_format, input_shape)
        # Under DDP each rank takes its share of the epoch, as a DistributedSampler would.
        train_size, test_size = train_size // world_size, test_size // world_size
        channels = input_shape[0]
        # Uniform 0-255 noise on the 0-1 scale: mean 0.5, std 0.29.
        self.channel_stats: ChannelStats = ((0.5,) * channels, (0.29,) * channels)
        self.batch = batch
        self.steps_per_epoch = max(1, train_size // batch)
        self.test_steps = math.ceil(test_size / batch)
        # Validation batches are distinct from training ones: a model that memorises the
        # training pool must not show it as accuracy.
        make = {"detect": _waldo_batch, "language": _token_batch}.get(workload.task, _random_batch)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        self.pool = [
            make(input_shape, num_classes, batch, generator, device, seed * 1000 + i)
            for i in range(SYNTHETIC_POOL)
        ]
        self.test_pool = [
            make(input_shape, num_classes, batch, generator, device, seed * 1000 + 500 + i)
            for i in range(SYNTHETIC_TEST_POOL)
        ]

    def train_batches(self) -> Iterator[Batch]:
        for i in range(self.steps_per_epoch):
            yield self.pool[i % len(self.pool)]

    def test_batches(self, max_batches: int | None) -> Iterator[Batch]:
        for i in range(min(self.test_steps, max_batches or self.test_steps)):
            yield self.test_pool[i % len(self.test_pool)]

    def sample_images(self, count: int) -> torch.Tensor:
        return self.test_pool[0][0][:count]


def _random_batch(
    input_shape: tuple[int, int, int],
    num_classes: int,
    batch: int,
    generator: torch.Generator,
    device: torch.device,
    seed: int,
) -> Batch:
    images = torch.randint(0, 256, (batch, *input_shape), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, num_classes, (batch,), generator=generator)
    return images.to(device), labels.to(device)


def _token_batch(
    input_shape: tuple[int, int, int],
    num_classes: int,
    batch: int,
    generator: torch.Generator,
    device: torch.device,
    seed: int,
) -> Batch:
    """Random token ids (batch, seq_len) and the same sequence shifted by one as targets."""
    tokens = torch.randint(0, num_classes, (batch, input_shape[1] + 1), generator=generator)
    return tokens[:, :-1].contiguous().to(device), tokens[:, 1:].contiguous().to(device)


def _waldo_batch(
    input_shape: tuple[int, int, int],
    num_classes: int,
    batch: int,
    generator: torch.Generator,
    device: torch.device,
    seed: int,
) -> Batch:
    images, targets = waldo_scenes(batch, input_shape[1], seed)
    return torch.from_numpy(images).to(device), to_device(_tensors(targets), device)


def _tensors(targets: list[dict[str, np.ndarray]]) -> list[dict[str, torch.Tensor]]:
    return [{k: torch.from_numpy(v) for k, v in t.items()} for t in targets]


class _SplitDataset(TorchDataset):
    """Whole batches by index list (``__getitems__``): one gather or decode call per batch,
    in the loader's worker processes."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> Batch:
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]) -> Batch:
        images, labels = self.split.take(indices)
        if isinstance(labels, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)
        return torch.from_numpy(images), _tensors(labels)


def _whole_batch(batch: Batch) -> Batch:
    return batch


class LoaderInput:
    """Real data through a DataLoader with workers and pinned memory."""

    def __init__(
        self,
        data: Dataset,
        batch: int,
        device: torch.device,
        spec: RunSpec,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
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
        train = _SplitDataset(data.train)
        if len(train) < batch:
            raise ValueError(f"batch size {batch} is larger than the {len(train)} training images")
        test = _SplitDataset(data.test)
        self._train_sampler: DistributedSampler | None = None
        if world_size > 1:
            # Each rank a disjoint share, reshuffled every epoch (set_epoch below).
            self._train_sampler = DistributedSampler(
                train, num_replicas=world_size, rank=rank, shuffle=True, seed=spec.seed
            )
            train_sampler: Any = self._train_sampler
            test_sampler: Any = DistributedSampler(
                test, num_replicas=world_size, rank=rank, shuffle=False
            )
        else:
            train_sampler = RandomSampler(train, generator=generator)
            test_sampler = SequentialSampler(test)
        self._epoch = 0
        self.train_loader = DataLoader(train, sampler=train_sampler, drop_last=True, **common)
        self.test_loader = DataLoader(test, sampler=test_sampler, **common)
        self.steps_per_epoch = len(self.train_loader)
        self.test_steps = len(self.test_loader)
        sample, _ = test.__getitems__(list(range(min(batch, len(test)))))
        self._sample = sample.to(device)

    def _to_device(self, loader: DataLoader, limit: int | None) -> Iterator[Batch]:
        for i, (images, labels) in enumerate(loader):
            if limit is not None and i >= limit:
                break
            yield images.to(self.device, non_blocking=True), to_device(labels, self.device)

    def train_batches(self) -> Iterator[Batch]:
        if self._train_sampler is not None:
            self._train_sampler.set_epoch(self._epoch)
        self._epoch += 1
        return self._to_device(self.train_loader, None)

    def test_batches(self, max_batches: int | None) -> Iterator[Batch]:
        return self._to_device(self.test_loader, max_batches)

    def sample_images(self, count: int) -> torch.Tensor:
        return self._sample[:count]

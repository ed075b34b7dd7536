"""Input of the Keras engine: normalised channels-last float32 batches from an array dataset,
or synthetic batches made once and cycled (no input cost), as the PyTorch engine's are.

A batch is ``(images, labels)``: float32 (N, H, W, C) normalised by the training set's
per-channel mean and std, and int64 class labels (N,).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from dlbench.datasets import ArrayData, Dataset, synthetic_sizes
from dlbench.datasets.text import TokenData
from dlbench.workloads import WorkloadSpec

Batch = tuple[np.ndarray, np.ndarray]
SYNTHETIC_POOL = 4  # distinct synthetic training batches, cycled
SYNTHETIC_TEST_POOL = 2  # and validation ones, distinct from the training ones


class KerasInput:
    def __init__(
        self,
        workload: WorkloadSpec,
        input_shape: tuple[int, int, int],
        num_classes: int,
        batch: int,
        data: Dataset | None,
        seed: int,
    ) -> None:
        self.input_shape, self.num_classes, self.batch = input_shape, num_classes, batch
        self.synthetic = data is None
        self._rng = np.random.default_rng(seed)
        channels = input_shape[0]
        if data is None:
            train_size, test_size = synthetic_sizes(workload.data_format, input_shape)
            self.steps_per_epoch = max(1, train_size // batch)
            self.test_steps = math.ceil(test_size / batch)
            # Uniform 0-255 noise on the 0-1 scale: mean 0.5, std 0.29.
            self.mean, self.std = (0.5,) * channels, (0.29,) * channels
            self._pool = [self._random_batch() for _ in range(SYNTHETIC_POOL)]
            self._test_pool = [self._random_batch() for _ in range(SYNTHETIC_TEST_POOL)]
            return
        assert isinstance(data, ArrayData), "the engine refuses image folders before this"
        self.mean, self.std = data.channel_stats()
        self._train = (self.normalise(data.train_x), data.train_y.astype(np.int64))
        self._test = (self.normalise(data.test_x), data.test_y.astype(np.int64))
        self.steps_per_epoch = max(1, len(data.train_y) // batch)
        self.test_steps = math.ceil(len(data.test_y) / batch)

    def normalise(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, C, H, W) to normalised float32 (N, H, W, C), resized to the input."""
        _, h, w = self.input_shape
        x = images.astype(np.float32) / 255.0
        if x.shape[2:] != (h, w):  # nearest neighbour, as exact as the data allows
            rows = (np.arange(h) * x.shape[2] // h).astype(int)
            cols = (np.arange(w) * x.shape[3] // w).astype(int)
            x = x[:, :, rows][:, :, :, cols]
        mean = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        return np.ascontiguousarray(((x - mean) / std).transpose(0, 2, 3, 1))

    def _random_batch(self) -> Batch:
        c, h, w = self.input_shape
        images = self._rng.integers(0, 256, (self.batch, c, h, w), dtype=np.uint8)
        labels = self._rng.integers(0, self.num_classes, self.batch)
        return self.normalise(images), labels.astype(np.int64)

    def train_batches(self) -> Iterator[Batch]:
        """One epoch: the synthetic pool cycled, or the training set in a fresh order."""
        if self.synthetic:
            for i in range(self.steps_per_epoch):
                yield self._pool[i % SYNTHETIC_POOL]
            return
        x, y = self._train
        order = self._rng.permutation(len(y))
        for i in range(self.steps_per_epoch):
            take = order[i * self.batch : (i + 1) * self.batch]
            yield x[take], y[take]

    def test_batch_count(self, max_batches: int | None) -> int:
        return min(self.test_steps, max_batches) if max_batches else self.test_steps

    def test_batches(self, max_batches: int | None) -> Iterator[Batch]:
        count = self.test_batch_count(max_batches)
        if self.synthetic:
            for i in range(count):
                yield self._test_pool[i % SYNTHETIC_TEST_POOL]
            return
        x, y = self._test
        for i in range(count):
            yield x[i * self.batch : (i + 1) * self.batch], y[i * self.batch : (i + 1) * self.batch]

    def sample(self, size: int) -> Batch:
        """``size`` images (the first training batch or data, repeated to fill)."""
        x, y = self._pool[0] if self.synthetic else self._train
        reps = math.ceil(size / len(y))
        return np.concatenate([x] * reps)[:size], np.concatenate([y] * reps)[:size]


class KerasTokens:
    """A language model's batches: int32 token ids (N, seq_len) and their next tokens, from
    a text dataset's sequences in a fresh order each epoch, or synthetic ones cycled."""

    def __init__(
        self,
        workload: WorkloadSpec,
        input_shape: tuple[int, int, int],
        vocab: int,
        batch: int,
        data: Dataset | None,
        seed: int,
    ) -> None:
        self.seq_len, self.vocab, self.batch = input_shape[1], vocab, batch
        self._rng = np.random.default_rng(seed)
        self.data = data if isinstance(data, TokenData) else None
        if self.data is None:
            train_size, test_size = synthetic_sizes(workload.data_format, input_shape)
            self._pool = [self._random() for _ in range(SYNTHETIC_POOL)]
            self._test_pool = [self._random() for _ in range(SYNTHETIC_TEST_POOL)]
        else:
            train_size, test_size = len(self.data.train), len(self.data.test)
        self.steps_per_epoch = max(1, train_size // batch)
        self.test_steps = math.ceil(test_size / batch)

    def _random(self) -> Batch:
        tokens = self._rng.integers(0, self.vocab, (self.batch, self.seq_len + 1))
        return tokens[:, :-1].astype(np.int32), tokens[:, 1:].astype(np.int64)

    @staticmethod
    def _ids(batch: tuple[np.ndarray, np.ndarray]) -> Batch:
        return batch[0].astype(np.int32), batch[1]

    def train_batches(self) -> Iterator[Batch]:
        if self.data is None:
            for i in range(self.steps_per_epoch):
                yield self._pool[i % SYNTHETIC_POOL]
            return
        order = self._rng.permutation(len(self.data.train))
        for i in range(self.steps_per_epoch):
            yield self._ids(
                self.data.train.take(list(order[i * self.batch : (i + 1) * self.batch]))
            )

    def test_batch_count(self, max_batches: int | None) -> int:
        return min(self.test_steps, max_batches) if max_batches else self.test_steps

    def test_batches(self, max_batches: int | None) -> Iterator[Batch]:
        count = self.test_batch_count(max_batches)
        for i in range(count):
            if self.data is None:
                yield self._test_pool[i % SYNTHETIC_TEST_POOL]
                continue
            end = min((i + 1) * self.batch, len(self.data.test))
            yield self._ids(self.data.test.take(list(range(i * self.batch, end))))

    def sample(self, size: int) -> Batch:
        x, y = self._pool[0] if self.data is None else self._ids(self.data.train.take([0]))
        reps = math.ceil(size / len(y))
        return np.concatenate([x] * reps)[:size], np.concatenate([y] * reps)[:size]

"""The PyTorch engine: model, optimiser, precision, input pipeline and device for one run."""

from __future__ import annotations

import contextlib
import itertools
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlbench.config import RunSpec
from dlbench.datasets import Dataset
from dlbench.datasets.text import TokenData, check_tokens
from dlbench.engines import DeviceInfo, EvalResult, ModelStats
from dlbench.engines.pytorch import distributed as torch_dist
from dlbench.engines.pytorch import generation
from dlbench.engines.pytorch.checkpoint import CHECKPOINT_FORMAT, load_checkpoint
from dlbench.engines.pytorch.describe import ActivationBytes, layer_counts, model_width
from dlbench.engines.pytorch.devices import cpu_device, no_tf32
from dlbench.engines.pytorch.flops import count_step
from dlbench.engines.pytorch.input import Batch, LoaderInput, SyntheticInput, default_workers
from dlbench.engines.pytorch.tasks import ClassifyTask, DetectTask, LanguageTask
from dlbench.errors import DataError, EngineUnavailable
from dlbench.measure.generation import Generated
from dlbench.registry import resolve
from dlbench.workloads import OptimizerSpec, WorkloadSpec

__all__ = ["TorchEngine", "default_workers", "make_optimizer"]

Task = ClassifyTask | DetectTask | LanguageTask
OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")
AMP_DTYPES = {"amp-fp16": torch.float16, "amp-bf16": torch.bfloat16}


class TorchEngine:
    name = "pytorch"

    def __init__(self) -> None:
        self.steps_per_epoch = 0
        self.sync: Callable[[], None] = _no_sync
        self._last_loss: torch.Tensor | None = None
        self._stats: ModelStats | None = None

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
            return cpu_device()
        if requested == "mps":
            if not torch.backends.mps.is_available():
                raise EngineUnavailable(
                    "--device mps: this torch build sees no Apple GPU", "use --device cpu or auto"
                )
            return DeviceInfo("mps", "mps", "Apple GPU (MPS)", 1)
        return _cuda_device(requested)

    def check_precision(self, device: DeviceInfo, precision: str) -> None:
        """Refuse a precision the device cannot run, before the run starts."""
        if precision == "tf32":
            if device.kind != "cuda" or torch.cuda.get_device_capability(device.device)[0] < 8:
                raise no_tf32(device)
        if precision == "amp-bf16" and device.kind == "cuda":
            if not torch.cuda.is_bf16_supported():
                raise EngineUnavailable(
                    f"--precision amp-bf16: {device.device_name} has no bfloat16 support",
                    "use --precision amp-fp16",
                )

    # -- setup ------------------------------------------------------------------------------
    def setup(self, spec: RunSpec, workload: WorkloadSpec, data: Dataset | None) -> None:
        self.topology = torch_dist.topology()
        self.info = self.resolve_device(spec.device)
        if self.topology.distributed and self.info.kind == "cuda":
            self.info = self.resolve_device(f"cuda:{self.topology.local_rank}")
        self.device = torch.device(self.info.device)
        self.sync = device_sync(self.device)
        torch.manual_seed(spec.seed)  # the same initial weights on every rank
        if self.topology.distributed:
            torch_dist.init(self.device)
        if spec.threads:
            torch.set_num_threads(spec.threads)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.check_precision(self.info, spec.precision)
        _set_tf32(self.device, spec.precision == "tf32")
        self.spec, self.workload = spec, workload
        self.input_shape = spec.input_shape
        self.num_classes = _num_classes(spec, workload, data)
        self._builder = resolve(workload.builders[self.name])
        self.model = self._build_model()
        # DDP and torch.compile wrap the module; the plain one is kept for checkpoints, FLOPs
        # and evaluation.
        self.step_model: Any = self.model
        if self.topology.distributed:
            self.step_model = torch_dist.wrap(self.model, self.device)
        if spec.compile:
            self.step_model = torch.compile(self.step_model)
        optimizer = OptimizerSpec(
            str(spec.optimizer),
            float(spec.lr or workload.optimizer.lr),
            momentum=workload.optimizer.momentum or (0.9 if spec.optimizer == "sgd" else 0.0),
            weight_decay=workload.optimizer.weight_decay,
            betas=workload.optimizer.betas,
        )
        self.optimizer = make_optimizer(optimizer, self.model.parameters())
        self.amp_dtype = AMP_DTYPES.get(spec.precision)
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none.
        self.scaler = (
            torch.amp.GradScaler(self.device.type) if spec.precision == "amp-fp16" else None
        )
        self._set_input_and_task(spec, workload, data)
        self.classes = getattr(data, "classes", None)
        self._stats = self._measure_model()

    def _set_input_and_task(
        self, spec: RunSpec, workload: WorkloadSpec, data: Dataset | None
    ) -> None:
        """The batches (synthetic on the device, or a loader over ``data``) and the task that
        turns a batch into a loss."""
        batch = int(spec.batch_size or workload.default_batch_size)
        self._input: SyntheticInput | LoaderInput
        if data is None:
            self._input = SyntheticInput(
                workload,
                self.input_shape,
                self.num_classes,
                batch,
                self.device,
                spec.seed + self.topology.rank,
                self.topology.world_size,
            )
        else:
            self._input = LoaderInput(
                data, batch, self.device, spec, self.topology.rank, self.topology.world_size
            )
        self.steps_per_epoch = self._input.steps_per_epoch
        self.task: Task
        if workload.task == "detect":
            self.task = DetectTask(self.device)
        elif workload.task == "language":
            self.task = LanguageTask(self.device)
        else:
            self.task = ClassifyTask(
                self._input.channel_stats, self.input_shape[1], self.device, spec.channels_last
            )

    def _build_model(self) -> nn.Module:
        model: nn.Module = self._builder(
            self.input_shape, self.num_classes, **self.spec.architecture
        ).to(self.device)
        if self.spec.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _measure_model(self) -> ModelStats:
        params = sum(p.numel() for p in self.model.parameters())
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        layers = layer_counts(self.model)
        activations = ActivationBytes(self.model)
        try:
            flops, note, attention = self._count_flops()
        finally:
            activations.remove()
        return ModelStats(
            params=params,
            trainable_params=trainable,
            flops_per_step=flops,
            flops_note=note,
            layers=layers,
            input_shape=self.input_shape,
            num_classes=self.num_classes,
            activation_bytes=activations.total or None,
            width=model_width(self.model),
            attention_backend=", ".join(attention) or None,
        )

    def _count_flops(self) -> tuple[int | None, str, tuple[str, ...]]:
        """FLOPs of one training step (forward + backward) on the real model and batch, in
        eager mode under the run's autocast (the work is the same at any precision; the
        attention kernel is not), and the SDPA backends the step called."""
        images, labels = next(iter(self._input.train_batches()))

        def loss() -> torch.Tensor:
            with self._autocast():
                return self.task.loss(self.model, images, labels)

        try:
            flops, attention = count_step(self.model, loss)
        except Exception as exc:
            if self.is_out_of_memory(exc):
                raise
            return None, f"FlopCounterMode failed: {type(exc).__name__}: {exc}"[:200], ()
        note = "torch.utils.flop_counter.FlopCounterMode, forward + backward, one batch"
        if self.workload.task == "detect":
            note += "; RoI align and NMS are not counted"
        return flops, note, attention

    @property
    def rank(self) -> int:
        return self.topology.rank if hasattr(self, "topology") else torch_dist.topology().rank

    @property
    def world_size(self) -> int:
        return self.topology.world_size if hasattr(self, "topology") else 1

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` in rank order (just ``[value]`` in a single process)."""
        return torch_dist.gather(value)

    def generate(self, prompt_len: int, gen_len: int) -> Generated:
        return generation.request(self, prompt_len, gen_len)

    def shutdown(self) -> None:
        torch_dist.shutdown()

    def model_stats(self) -> ModelStats:
        assert self._stats is not None, "setup() first"
        return self._stats

    # -- training ---------------------------------------------------------------------------
    def profile(self, batches: Iterator[Batch], steps: int) -> dict[str, Any]:
        """``steps`` training steps under torch.profiler: categories and layers
        (``engines/pytorch/profile.py``)."""
        from dlbench.engines.pytorch.profile import profile_steps

        return profile_steps(self.model, self.train_step, batches, steps, self.device, self.sync)

    def train_epoch(self) -> Iterator[Batch]:
        return self._input.train_batches()

    def train_step(self, batch: Batch) -> None:
        images, labels = batch
        with self._autocast():
            loss = self.task.loss(self.step_model, images, labels)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self._last_loss = loss.detach()  # read once at the end: .item() would sync each step

    def sync_free_steps(self, batches: Iterator[Batch], count: int) -> list[float]:
        """Seconds of each of ``count`` steps trained without DDP's gradient all-reduce
        (``no_sync``): this rank's own pace, which synchronised steps hide."""
        no_sync = getattr(self.step_model, "no_sync", contextlib.nullcontext)
        times = []
        with no_sync():
            for batch in itertools.islice(batches, count):
                self.sync()
                start = time.perf_counter()
                self.train_step(batch)
                self.sync()
                times.append(time.perf_counter() - start)
        return times

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
        try:
            return self.task.evaluate(
                self.model, self._input.test_batches(max_batches), self._autocast, on_batch
            )
        finally:
            self.model.train()

    def save_checkpoint(self, path: Path) -> None:
        mean, std = self._input.channel_stats
        meta = {
            "workload": self.workload.name,
            "image_size": self.input_shape[1],
            "num_classes": self.num_classes,
            "mean": list(mean),
            "std": list(std),
            "classes": list(self.classes) if self.classes else None,
            "precision": self.spec.precision,
            "architecture": self.spec.architecture,
        }
        torch.save(
            {"format": CHECKPOINT_FORMAT, "meta": meta, "model": self.model.state_dict()}, path
        )

    def load_checkpoint(self, path: Path) -> nn.Module:
        return load_checkpoint(self._build_model(), path, self.device).eval()

    def predict_all(self, model: object, max_batches: int | None) -> int:
        assert isinstance(model, nn.Module)
        images_seen = 0
        with torch.inference_mode(), self._autocast():
            for images, _ in self._input.test_batches(max_batches):
                self.task.predict(model, images)
                images_seen += int(images.shape[0])
        return images_seen

    def predict_call(self, model: object, batch_size: int) -> tuple[Callable[[], object], int]:
        assert isinstance(model, nn.Module)
        images = self._input.sample_images(batch_size)

        def predict() -> object:
            with torch.inference_mode(), self._autocast():
                return self.task.predict(model, images)

        return predict, int(images.shape[0])

    def load_predictor(
        self, workload: WorkloadSpec, checkpoint: Path, device: str, precision: str
    ) -> Any:
        """The trained model of ``checkpoint``, ready for one image at a time (the predictor
        module builds on this one, so it is found by name)."""
        predictor = resolve("dlbench.engines.pytorch.inference:TorchPredictor")
        return predictor(workload, checkpoint, device, precision)

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


def train_step_flops(model: nn.Module, task: Task, images: torch.Tensor, labels: Any) -> int:
    """FLOPs of the forward and backward pass of one batch, gradients cleared after."""
    return count_step(model, lambda: task.loss(model, images, labels))[0]


def _num_classes(spec: RunSpec, workload: WorkloadSpec, data: Dataset | None) -> int:
    """--num-classes (a language model's --vocab), else the data's own count (a token file's
    vocabulary is --vocab's or the model's), else the workload's."""
    if data is None:
        return spec.num_classes or workload.num_classes
    if isinstance(data, TokenData):  # the data's vocabulary, or the model's for token ids
        vocab = spec.num_classes or data.vocab or workload.num_classes
        check_tokens(data, vocab, given=spec.num_classes is not None)
        return vocab
    if spec.num_classes is not None and spec.num_classes < data.num_classes:
        raise DataError(
            f"--num-classes {spec.num_classes}: {data.source} has {data.num_classes} classes",
            f"give --num-classes {data.num_classes} or more, or leave it out",
        )
    return spec.num_classes or data.num_classes


def _set_tf32(device: torch.device, enabled: bool) -> None:
    """fp32 means fp32: cuDNN's TF32 convolutions (on by default in PyTorch) are switched off
    unless --precision tf32 asks for them."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


# -- helpers ------------------------------------------------------------------------------------
def _no_sync() -> None:
    """CPU work is finished when the call returns."""


def device_sync(device: torch.device) -> Callable[[], None]:
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
        return torch.optim.Adam(
            params, lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay
        )
    if spec.name == "adamw":
        return torch.optim.AdamW(
            params, lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay or 0.01
        )
    if spec.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=spec.lr, weight_decay=spec.weight_decay)
    raise ValueError(f"unknown optimizer {spec.name}")


def process_peak_rss() -> int:
    """This process's peak resident set size in bytes (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)

"""The Keras 3 engine: ``--framework tensorflow`` and ``--framework jax`` run the workloads'
Keras models (``workloads/keras_models.py``) on that backend, under the same runner, timing,
telemetry and store as the PyTorch engine.

Keras' backend is fixed when keras is first imported, so it is chosen here, in the run's own
process, before that import (``KERAS_BACKEND``); the parent process never imports a backend
(device discovery runs in a short child). TensorFlow followed by anything that loads triton
(torch.optim, the Keras torch backend) crashes the process, so a TensorFlow run imports no
torch at all.

Synchronisation: ``train_on_batch`` returns the loss as a Python float, which waits for the
step on every backend, so each timed step ends with the device idle.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np

from dlbench.config import RunSpec
from dlbench.datasets import ArrayData, Dataset
from dlbench.datasets.text import TokenData, check_tokens
from dlbench.engines import DeviceInfo, EvalResult, ModelStats
from dlbench.engines.keras.input import Batch, KerasInput, KerasTokens
from dlbench.errors import EngineUnavailable
from dlbench.frameworks import FRAMEWORKS
from dlbench.registry import resolve
from dlbench.sysinfo import cpu_model
from dlbench.workloads import WorkloadSpec

POLICIES = {"fp32": "float32", "amp-fp16": "mixed_float16", "amp-bf16": "mixed_bfloat16"}
PACKAGES = {"tensorflow": ("keras", "tensorflow"), "jax": ("keras", "jax")}


def _require(backend: str) -> None:
    missing = [p for p in PACKAGES[backend] if importlib.util.find_spec(p) is None]
    if missing:
        raise EngineUnavailable(
            f"--framework {backend} needs {' and '.join(missing)}, not installed here",
            f"pip install 'dlbench[{backend}]'",
        )


def _configure(backend: str, device: str) -> None:
    """Environment the backend reads at import: set before keras is first imported."""
    if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != backend:
        raise EngineUnavailable(
            f"keras is already imported with the {os.environ.get('KERAS_BACKEND')} backend "
            f"in this process; {backend} needs a process of its own",
        )
    os.environ["KERAS_BACKEND"] = backend
    home = Path(tempfile.gettempdir()) / f"dlbench-keras-{os.getuid()}"
    os.environ.setdefault("KERAS_HOME", str(home))  # keras writes keras.json on first import
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # TensorFlow: no GPU at all
        os.environ["JAX_PLATFORMS"] = "cpu"


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """TensorFlow's C++ start-up lines go to file descriptor 2 before any log level applies:
    catch them, and show them only if what they came with fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace")[-4000:])


GPU_PROBE = {
    "tensorflow": "import tensorflow as tf, json; print(json.dumps("
    "[tf.config.experimental.get_device_details(d).get('device_name', d.name) "
    "for d in tf.config.list_physical_devices('GPU')]))",
    "jax": "import jax, json; print(json.dumps([d.device_kind for d in jax.devices() "
    "if d.platform == 'gpu']))",
}


def gpu_names(backend: str) -> list[str]:
    """The GPUs the backend sees, asked in a child process (the caller stays backend-free)."""
    done = subprocess.run(
        [sys.executable, "-c", GPU_PROBE[backend]],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if done.returncode != 0:
        raise EngineUnavailable(
            f"{backend} failed to start: "
            + (done.stderr.strip().splitlines() or ["no message"])[-1],
            "check the installation, or use --device cpu",
        )
    lines = done.stdout.strip().splitlines()
    return list(json.loads(lines[-1])) if lines else []


class KerasEngine:
    backend = ""  # set by the subclasses

    def __init__(self) -> None:
        _require(self.backend)
        self.name = self.backend
        self.steps_per_epoch = 0
        self.rank, self.world_size = 0, 1
        self._last_loss: float | None = None
        self._stats: ModelStats | None = None

    # -- device -----------------------------------------------------------------------------
    def resolve_device(self, requested: str) -> DeviceInfo:
        if requested == "cpu":
            return DeviceInfo("cpu", "cpu", cpu_model(), 0)
        if requested == "mps":
            raise EngineUnavailable(
                f"--framework {self.backend} has no Apple GPU support here", "use --device cpu"
            )
        names = gpu_names(self.backend)
        if requested == "auto":
            if not names:
                return DeviceInfo("cpu", "cpu", cpu_model(), 0)
            requested = "cuda:0"
        index = int(requested.partition(":")[2] or 0)
        if index >= len(names):
            raise EngineUnavailable(
                f"--device {requested}: {self.backend} sees {len(names)} GPU(s)",
                "use --device cpu, or install the backend's CUDA build",
            )
        return DeviceInfo(f"cuda:{index}", "cuda", names[index], len(names))

    def check_precision(self, device: DeviceInfo, precision: str) -> None:
        runs = FRAMEWORKS[self.backend].precisions
        if precision not in runs:
            raise EngineUnavailable(
                f"--framework {self.backend} runs {', '.join(runs)}, not {precision} "
                "(TF32 is a PyTorch/cuDNN setting)",
                f"use --precision {runs[0]}",
            )
        if precision == "amp-fp16" and device.kind == "cpu":
            raise EngineUnavailable(
                "--precision amp-fp16 on the CPU: Keras' float16 kernels are GPU ones",
                "use --precision amp-bf16 or fp32",
            )

    # -- setup ------------------------------------------------------------------------------
    def setup(self, spec: RunSpec, workload: WorkloadSpec, data: Dataset | None) -> None:
        # --gpus, --compile, --channels-last and workloads without a Keras model are refused
        # with the run's options (config.RunSpec), before anything starts.
        if data is not None and not isinstance(data, (ArrayData, TokenData)):
            raise EngineUnavailable(
                f"--framework {self.backend} reads array datasets (MNIST, CIFAR-10, "
                f"ImageNet32, digits); {data.source} is a folder of image files",
                "use --framework pytorch for image folders",
            )
        self.info = self.resolve_device(spec.device)
        self.check_precision(self.info, spec.precision)
        _configure(self.backend, self.info.kind)
        with quiet_stderr():  # importing keras (and seeding it) may start TensorFlow
            import keras

            keras.utils.set_random_seed(spec.seed)
            keras.mixed_precision.set_global_policy(POLICIES[spec.precision])
        if spec.threads and self.backend == "tensorflow":
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(spec.threads)
        self.spec, self.workload = spec, workload
        self.input_shape = spec.input_shape
        self.num_classes = spec.num_classes or (data.num_classes if data else 0)
        if isinstance(data, TokenData):  # a token file's vocabulary is --vocab's or the model's
            self.num_classes = spec.num_classes or data.vocab or workload.num_classes
            check_tokens(data, self.num_classes, given=spec.num_classes is not None)
        self.num_classes = self.num_classes or workload.num_classes
        self.batch = int(spec.batch_size or workload.default_batch_size)
        self._input: KerasInput | KerasTokens
        if workload.task == "language":
            self._input = KerasTokens(
                workload, self.input_shape, self.num_classes, self.batch, data, spec.seed
            )
        else:
            self._input = KerasInput(
                workload, self.input_shape, self.num_classes, self.batch, data, spec.seed
            )
        self.steps_per_epoch = self._input.steps_per_epoch
        self.model = self._build()
        self._stats = self._measure_model()

    def _build(self) -> Any:
        import keras

        model = self._model()
        optimizer = self.workload.optimizer
        name = str(self.spec.optimizer or optimizer.name)
        lr = float(self.spec.lr or optimizer.lr)
        momentum = optimizer.momentum or (0.9 if name == "sgd" else 0.0)
        # Keras applies weight decay decoupled (w -= lr x decay x w), PyTorch's SGD/Adam add
        # it to the gradient: the same for plain SGD, close with momentum.
        decay = optimizer.weight_decay or None
        betas = {"beta_1": optimizer.betas[0], "beta_2": optimizer.betas[1]}
        made = {
            "sgd": lambda: keras.optimizers.SGD(lr, momentum=momentum, weight_decay=decay),
            "adam": lambda: keras.optimizers.Adam(lr, weight_decay=decay, **betas),
            # weight decay 0.01 when the workload has none, as torch's AdamW
            "adamw": lambda: keras.optimizers.AdamW(lr, weight_decay=decay or 0.01, **betas),
            "rmsprop": lambda: keras.optimizers.RMSprop(lr, weight_decay=decay),
        }[name]()
        model.compile(
            optimizer=made,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model

    def _model(self) -> Any:
        builder = resolve(self.workload.builders["keras"])
        return builder(self.input_shape, self.num_classes, **self.spec.architecture)

    def _measure_model(self) -> ModelStats:
        leaves = list(_leaf_layers(self.model))
        layers = Counter(type(layer).__name__ for layer in leaves if layer.weights)
        flops, note = self._count_flops()
        trainable = sum(int(np.prod(v.shape)) for v in self.model.trainable_weights)
        return ModelStats(
            params=int(self.model.count_params()),
            trainable_params=trainable,
            flops_per_step=flops,
            flops_note=note,
            layers=dict(sorted(layers.items())),
            input_shape=self.input_shape,
            num_classes=self.num_classes,
            activation_bytes=None,
            width=getattr(self.model, "width", None) or _width(leaves),
        )

    def _count_flops(self) -> tuple[int | None, str]:
        from dlbench.engines.keras import flops as keras_flops

        images, labels = self._input.sample(self.batch)
        try:
            if self.backend == "jax":
                return keras_flops.jax_train_step(self.model, images, labels), (
                    "XLA cost analysis of the jitted forward + backward, one batch"
                )
            with quiet_stderr():  # the v1 profiler's deprecation notices
                profiled = keras_flops.tf_train_step(self.model, images, labels)
            # The profiler counts about 1.7x what XLA and PyTorch count for the same layers
            # (LeNet: 2.22 vs 1.34 and 1.32 GFLOP a step): stored, it would inflate MFU.
            return None, (
                f"not counted: TensorFlow's profiler gives {profiled / 1e9:.3g} GFLOP for this "
                "step, about 1.7x what XLA (jax) and PyTorch count for the same model"
            )
        except Exception as exc:  # noqa: BLE001 - counting is best effort; the run goes on
            return None, f"the {self.backend} FLOP count failed: {type(exc).__name__}: {exc}"[:200]

    def model_stats(self) -> ModelStats:
        assert self._stats is not None, "setup() first"
        return self._stats

    def gather(self, value: Any) -> list[Any]:
        return [value]

    def shutdown(self) -> None:
        return None

    def sync(self) -> None:
        return None  # every call below returns host values: the device is idle after it

    # -- training ---------------------------------------------------------------------------
    def train_epoch(self) -> Iterator[Batch]:
        return self._input.train_batches()

    def train_step(self, batch: object) -> None:
        images, labels = cast(tuple[np.ndarray, np.ndarray], batch)
        self._last_loss = float(self.model.train_on_batch(images, labels))

    def final_train_loss(self) -> float | None:
        return self._last_loss

    # -- evaluation and inference -------------------------------------------------------------
    def test_batch_count(self, max_batches: int | None) -> int:
        return self._input.test_batch_count(max_batches)

    def validate(
        self, max_batches: int | None, on_batch: Callable[[], None] | None = None
    ) -> EvalResult:
        seen = correct = 0
        loss_sum = 0.0
        items = 0
        for images, labels in self._input.test_batches(max_batches):
            logits = np.asarray(self.model.predict_on_batch(images), dtype=np.float64)
            items += len(labels)
            # a language model's logits (N, T, V): every position is a prediction
            logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            loss_sum += float(-log_probs[np.arange(len(labels)), labels].sum())
            correct += int((logits.argmax(axis=1) == labels).sum())
            seen += len(labels)
            if on_batch:
                on_batch()
        if not seen:
            return EvalResult(0, None, None)
        return EvalResult(items, correct / seen, loss_sum / seen)

    def save_checkpoint(self, path: Path) -> None:
        self.model.save_weights(str(_weights_path(path)))

    def load_checkpoint(self, path: Path) -> object:
        model = self._model()
        model.load_weights(str(_weights_path(path)))
        return model

    def predict_all(self, model: object, max_batches: int | None) -> int:
        seen = 0
        for images, _ in self._input.test_batches(max_batches):
            model.predict_on_batch(images)  # type: ignore[attr-defined]
            seen += len(images)
        return seen

    def predict_call(self, model: object, batch_size: int) -> tuple[Callable[[], object], int]:
        images, _ = self._input.sample(batch_size)

        def predict() -> object:
            return model.predict_on_batch(images)  # type: ignore[attr-defined]

        return predict, len(images)

    def load_predictor(
        self, workload: WorkloadSpec, checkpoint: Path, device: str, precision: str
    ) -> Any:
        raise EngineUnavailable(
            f"dlbench infer reads PyTorch checkpoints; --framework {self.backend} runs store "
            "Keras weights",
            "train with --framework pytorch for dlbench infer",
        )

    # -- resources --------------------------------------------------------------------------
    def peak_memory(self) -> tuple[int | None, str]:
        if getattr(self, "info", None) is not None and self.info.kind == "cuda":
            try:
                if self.backend == "tensorflow":
                    import tensorflow as tf

                    peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
                    return int(peak), "tensorflow_gpu_peak"
                import jax

                stats = jax.devices()[0].memory_stats() or {}
                return int(stats["peak_bytes_in_use"]), "jax_peak_bytes_in_use"
            except Exception:  # noqa: BLE001 - fall back to the process's own peak
                pass
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024), "process_max_rss"

    def is_out_of_memory(self, exc: BaseException) -> bool:
        text = f"{type(exc).__name__}: {exc}"
        return isinstance(exc, MemoryError) or any(
            marker in text
            for marker in ("ResourceExhaustedError", "RESOURCE_EXHAUSTED", "out of memory")
        )


class TensorFlowEngine(KerasEngine):
    backend = "tensorflow"


class JaxEngine(KerasEngine):
    backend = "jax"


def _leaf_layers(layer: Any) -> Iterator[Any]:
    children = getattr(layer, "layers", None)
    if not children:
        yield layer
        return
    for child in children:
        yield from _leaf_layers(child)


def _width(leaves: list[Any]) -> int | None:
    """Filters of the first convolution, else units of the first dense layer."""
    for kind, attribute in (("Conv2D", "filters"), ("Dense", "units")):
        first = next((lay for lay in leaves if type(lay).__name__ == kind), None)
        if first is not None:
            return int(getattr(first, attribute))
    return None


def _weights_path(path: Path) -> Path:
    """Keras insists on the ``.weights.h5`` ending."""
    return path if path.name.endswith(".weights.h5") else path.with_name(path.name + ".weights.h5")

"""What a PyTorch model is, counted without training it: parameters, layers by type, FLOPs of
one training step and activation bytes, on PyTorch's meta device (shapes, no data, no compute).

The calculator (``dlbench predict``) describes its question with these, whether the model is a
zoo workload, a parametric family or the user's own module (``--model-file FILE.py:NAME``).
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlbench.config import RunSpec, build_spec
from dlbench.engines.pytorch.operators import example_input, walk
from dlbench.errors import ConfigError, EngineUnavailable
from dlbench.measure.operators import OpUse
from dlbench.predict.question import (
    DEFAULT_BATCH,
    FAMILIES,
    LANGUAGE_FAMILIES,
    Question,
    family_workload,
)
from dlbench.registry import resolve
from dlbench.workloads import get_workload


class ActivationBytes:
    """Bytes of every leaf module's output in one forward pass: the activations a training
    step keeps for its backward pass (fp32), a descriptor of memory traffic."""

    def __init__(self, model: nn.Module) -> None:
        self.total = 0
        self._handles = [
            m.register_forward_hook(self._add) for m in model.modules() if not list(m.children())
        ]

    def _add(self, _module: nn.Module, _inputs: Any, output: Any) -> None:
        for tensor in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(tensor, torch.Tensor):
                self.total += tensor.numel() * tensor.element_size()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def model_width(model: nn.Module) -> int | None:
    """The model's base width: a transformer's own (``width``), else output channels of its
    first convolution, else units of its first linear layer."""
    width = getattr(model, "width", None)
    if isinstance(width, int):
        return width
    for kind, attribute in ((nn.Conv2d, "out_channels"), (nn.Linear, "out_features")):
        first = next((m for m in model.modules() if isinstance(m, kind)), None)
        if first is not None:
            return int(getattr(first, attribute))
    return None


def layer_counts(model: nn.Module) -> dict[str, int]:
    """Weight-bearing leaf layers by type (Conv2d: 53, Linear: 1)."""
    layers = Counter(
        type(m).__name__
        for m in model.modules()
        if not list(m.children()) and any(True for _ in m.parameters(recurse=False))
    )
    return dict(sorted(layers.items()))


def describe_module(
    model: nn.Module, input_shape: tuple[int, int, int], batch: int
) -> dict[str, Any]:
    """Params, FLOPs of one training step (forward + cross-entropy + backward), activation
    bytes and layers of ``model`` fed a batch of ``input_shape`` images, on the model's own
    device (meta: nothing computed)."""
    from torch.utils.flop_counter import FlopCounterMode

    images = example_input(model, input_shape, batch)
    device = images.device
    activations = ActivationBytes(model)
    try:
        with FlopCounterMode(display=False) as counter:
            out = model(images)
            logits = out.logits if hasattr(out, "logits") else out
            if getattr(model, "takes_tokens", False):  # next-token logits at every position
                logits = logits.flatten(0, 1)
            if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
                raise ConfigError(
                    "the model must return class scores of shape (batch, classes), got "
                    f"{type(logits).__name__} {tuple(getattr(logits, 'shape', ()))}"
                )
            labels = torch.zeros(logits.shape[0], dtype=torch.long, device=device)
            nn.functional.cross_entropy(logits, labels).backward()
    finally:
        activations.remove()
    return {
        "width": model_width(model),
        "params": sum(p.numel() for p in model.parameters()),
        "flops_per_step": int(counter.get_total_flops()),
        "activation_bytes": activations.total,
        "layers": layer_counts(model),
        "input_size": input_shape[1],
        "batch_size": batch,
    }


def _meta_model(spec: RunSpec) -> tuple[nn.Module, int]:
    """``spec``'s model built on the meta device, and its batch size."""
    workload = get_workload(spec.workload)
    if workload.task == "detect":
        raise EngineUnavailable(
            f"{workload.name}: only classification and language models can be described"
        )
    classes = spec.num_classes or workload.num_classes
    with torch.device("meta"):
        model: nn.Module = resolve(workload.builders["pytorch"])(
            spec.input_shape, classes, **spec.architecture
        )
    return model, int(spec.batch_size or workload.default_batch_size)


def describe_model(spec: RunSpec) -> dict[str, Any]:
    """The descriptors of ``spec``'s model without running it, its operators included."""
    model, batch = _meta_model(spec)
    workload = get_workload(spec.workload)
    return {
        "family": workload.family,
        "depth": spec.depth or workload.depth,
        **describe_module(model, spec.input_shape, batch),
        "operators": operator_list(walk(model, spec.input_shape, batch, str(spec.optimizer))),
        "precision": spec.precision,
    }


def operator_list(uses: tuple[OpUse, ...]) -> list[dict[str, Any]]:
    """The operators as JSON: [{kind, count, shape}]."""
    return [{"kind": u.kind, "count": u.count, "shape": u.dims} for u in uses]


@functools.lru_cache(maxsize=4096)
def _walk_config(config_json: str) -> tuple[OpUse, ...]:
    spec = RunSpec(**json.loads(config_json))
    model, batch = _meta_model(spec)
    return walk(model, spec.input_shape, batch, str(spec.optimizer))


def run_operators(config: Mapping[str, Any]) -> tuple[OpUse, ...]:
    """The operators of the training step a stored run configuration describes (the
    calculator's ``OperatorsOf``); the same configuration is walked once."""
    return _walk_config(json.dumps(dict(config), sort_keys=True, default=str))


def load_model_file(
    target: str, input_shape: tuple[int, int, int], num_classes: int
) -> tuple[nn.Module, str]:
    """``FILE.py:NAME``: NAME() called with whichever of ``input_shape`` and ``num_classes``
    it accepts, built on the meta device (on the CPU if it cannot be); the module and the
    device it was built on."""
    path_text, _, name = target.rpartition(":")
    if not path_text or not name:
        raise ConfigError(
            f"--model-file {target!r}: give FILE.py:FUNCTION", "e.g. --model-file net.py:build"
        )
    path = Path(path_text)
    if not path.is_file():
        raise ConfigError(f"--model-file: no file {path}", "check the path")
    module_spec = importlib.util.spec_from_file_location(f"dlbench_user_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise ConfigError(f"--model-file: {path} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigError(
            f"--model-file: importing {path} failed: {type(exc).__name__}: {exc}"
        ) from exc
    build = getattr(module, name, None)
    if not callable(build):
        raise ConfigError(f"--model-file: {path} has no function {name!r}")
    offered = {"input_shape": input_shape, "num_classes": num_classes}
    try:
        accepted = inspect.signature(build).parameters
    except (TypeError, ValueError):
        accepted = {}  # type: ignore[assignment]
    kwargs = {k: v for k, v in offered.items() if k in accepted}
    failure: Exception | None = None
    for device in ("meta", "cpu"):
        try:
            with torch.device(device):
                model = build(**kwargs)
        except Exception as exc:  # noqa: BLE001 - user code; the CPU is tried next
            failure = exc
            continue
        if not isinstance(model, nn.Module):
            raise ConfigError(
                f"--model-file: {name}() returned {type(model).__name__}, not a torch.nn.Module"
            )
        return model, device
    raise ConfigError(
        f"--model-file: {name}() failed: {type(failure).__name__}: {failure}",
        "it may take input_shape=(C, H, W) and num_classes=K keyword arguments",
    )


def describe_model_file(
    target: str, input_shape: tuple[int, int, int], num_classes: int, batch: int, precision: str
) -> dict[str, Any]:
    model, _device = load_model_file(target, input_shape, num_classes)
    try:
        described = describe_module(model, input_shape, batch)
        described["operators"] = operator_list(walk(model, input_shape, batch))
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"--model-file: one training step of {target} on a batch of {batch} x "
            f"{input_shape} failed: {type(exc).__name__}: {exc}",
            "check --input and --channels against the model's first layer",
        ) from exc
    return {"family": "custom", "depth": None, **described, "precision": precision}


def _shape_options(language: bool, question: Question) -> dict[str, int | None]:
    """The question's input size and classes as run options: a language model's are its
    sequence length and vocabulary."""
    if language:
        return {"seq_len": question.input_size, "vocab": question.num_classes}
    return {"image_size": question.input_size, "num_classes": question.num_classes}


def describe_question(question: Question) -> dict[str, Any]:
    """The question's descriptors (family, depth, width, params, FLOPs per step, activation
    bytes, layers, input size, batch size, precision), counted on the real module built on
    PyTorch's meta device."""
    ways = [question.workload is not None, question.family is not None, bool(question.model_file)]
    if sum(ways) != 1:
        raise ConfigError(
            "say which model: a WORKLOAD, or --family with --depth/--width, or --model-file",
            "exactly one of the three",
        )
    if question.model_file:
        size = question.input_size or 224
        described = describe_model_file(
            question.model_file,
            (question.channels, size, size),
            question.num_classes or 1000,
            question.batch_size or DEFAULT_BATCH,
            question.precision,
        )
        described["depth"] = sum(described["layers"].values())  # weight layers
        return described
    if question.family is not None:
        if question.family not in FAMILIES:
            raise ConfigError(
                f"--family {question.family!r} is not one dlbench can build", f"one of {FAMILIES}"
            )
        spec = build_spec(
            workload=family_workload(question.family),
            depth=question.depth,
            width=question.width,
            batch_size=question.batch_size,
            precision=question.precision,
            **_shape_options(question.family in LANGUAGE_FAMILIES, question),
        )
    else:
        if question.depth is not None or question.width is not None:
            raise ConfigError(
                "--depth and --width describe a --family model, not a workload",
                "drop them, or give --family instead of the workload",
            )
        spec = build_spec(
            workload=str(question.workload),
            batch_size=question.batch_size,
            precision=question.precision,
            **_shape_options(get_workload(str(question.workload)).task == "language", question),
        )
    return describe_model(spec)

"""Where a training step's time goes: a few extra steps under torch.profiler, after the timed
ones (never inside them), split into operator categories and into the model's layers.

Each operator's self time (device time on a GPU, CPU time on the CPU) goes to one category by
its name; an operator run inside the optimizer's step or zero_grad goes to ``optimizer``. The
profiled step's wall time minus the categorised time is ``other`` (Python, the framework's
dispatch, what the profiler itself adds): so the categories add up to the profiled step. The
profiler slows a step down; the shares are its, and ``seconds_per_step`` applies them to the
step time measured without it. Layers: every leaf module's forward is a profiler range; its
backward operators are found through the autograd sequence numbers they share with its
forward operators.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import torch
from torch import nn

CATEGORIES = (
    "convolution",
    "matmul",
    "normalisation",
    "pooling",
    "attention",
    "activation/element-wise",
    "optimizer",
    "data/copy",
    "other",
)
ELEMENT_WISE = tuple(
    "relu gelu silu sigmoid tanh threshold elu dropout hardswish add mul div sub neg exp log "
    "sqrt pow clamp where sum mean softmax nll_loss cross_entropy fill_ zero_ cat view flatten "
    "reshape t transpose permute expand select slice empty ones zeros".split()
)
# (category, name fragments), tried in this order on the operator's name after "aten::".
RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("attention", ("scaled_dot_product", "flash_attention", "efficient_attention")),
    ("convolution", ("conv",)),
    ("normalisation", ("batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm")),
    ("pooling", ("pool",)),
    ("matmul", ("addmm", "baddbmm", "bmm", "matmul", "linear", "mm")),
    ("data/copy", ("copy_", "_to_copy", "memcpy", "to", "contiguous")),
    ("activation/element-wise", ELEMENT_WISE),
)
LAYER_PREFIX = "dlbench.layer::"
# A layer's own operators take its kind, whatever they are made of (LocalResponseNorm is
# pooling, powers and divisions; it is still normalisation).
MODULE_KINDS = (
    ("normalisation", ("Norm",)),
    ("pooling", ("Pool",)),
    ("attention", ("Attention",)),
    ("convolution", ("Conv",)),
    ("matmul", ("Linear", "Bilinear")),
)
TOP_LAYERS = 15


def module_kind(class_name: str) -> str | None:
    for kind, fragments in MODULE_KINDS:
        if any(f in class_name for f in fragments):
            return kind
    return None


def category(name: str) -> str | None:
    """The category of an operator by its name (None: not an operator dlbench knows)."""
    op = name.split("::", 1)[-1].lower()
    for kind, fragments in RULES:
        if any(op == f or op.startswith(f + "_") or f in op and len(f) > 3 for f in fragments):
            return kind
    return None


def profile_steps(
    model: nn.Module,
    step: Any,
    batches: Iterator[Any],
    steps: int,
    device: torch.device,
    sync: Any,
) -> dict[str, Any]:
    """Run ``step(batch)`` ``steps`` times under the profiler: the categories (seconds per
    profiled step, share) and the layers; the runner applies the shares to the timed step."""
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's own chatter on stderr
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    on_gpu = device.type == "cuda"
    if on_gpu:
        activities.append(ProfilerActivity.CUDA)
    layer_shapes: dict[str, list[int]] = {}
    with ExitStack() as hooks:
        _hook_layers(model, hooks, layer_shapes)
        step(next(batches))  # the hooks' first call, outside the profile
        sync()
        with profile(activities=activities, record_shapes=False, with_flops=True) as prof:
            started = time.perf_counter()
            for _ in range(steps):
                step(next(batches))
            sync()
            wall = (time.perf_counter() - started) / steps
    events = list(prof.events())
    per_step = _categories(events, on_gpu, steps, wall)
    return {
        "steps": steps,
        "profiled_step_s": wall,
        "time_base": "GPU kernel time" if on_gpu else "CPU time",
        "categories": per_step,
        "layers": _layers(events, on_gpu, steps, layer_shapes),
    }


def _self_s(event: Any, on_gpu: bool) -> float:
    micro = event.self_device_time_total if on_gpu else event.self_cpu_time_total
    return float(micro) * 1e-6


def _in_optimizer(event: Any) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("Optimizer."):
            return True
        parent = parent.cpu_parent
    return False


def _layer_kinds(events: list[Any]) -> tuple[dict[int, str], dict[int, str]]:
    """By event id, the kind of the layer an operator runs in (forward); by autograd
    sequence number, the kind of the layer whose backward it is."""
    forward: dict[int, str] = {}
    by_sequence: dict[int, str] = {}
    for event in events:
        if not event.name.startswith(LAYER_PREFIX):
            continue
        kind = module_kind(event.name.rsplit(":", 1)[-1])
        if kind is None:
            continue
        for op in _descendants(event):
            forward[id(op)] = kind
            if op.sequence_nr >= 0:
                by_sequence[op.sequence_nr] = kind
    return forward, by_sequence


def _kind(event: Any, forward: dict[int, str], by_sequence: dict[int, str]) -> str | None:
    if _in_optimizer(event):
        return "optimizer"
    if id(event) in forward:
        return forward[id(event)]
    parent = event
    while parent is not None:  # a backward operator: its evaluate_function's sequence number
        if parent.fwd_thread is not None and parent.sequence_nr in by_sequence:
            return by_sequence[parent.sequence_nr]
        parent = parent.cpu_parent
    return category(event.name)


def _categories(events: list[Any], on_gpu: bool, steps: int, wall: float) -> dict[str, Any]:
    seconds: dict[str, float] = defaultdict(float)
    flops: dict[str, float] = defaultdict(float)
    forward, by_sequence = _layer_kinds(events)
    for event in events:
        if event.name.startswith((LAYER_PREFIX, "ProfilerStep")):
            continue
        kind = _kind(event, forward, by_sequence)
        if kind is None:
            continue  # a range or an unknown operator: its time is in "other"
        seconds[kind] += _self_s(event, on_gpu) / steps
        flops[kind] += float(event.flops or 0) / steps
    named = sum(seconds.values())
    seconds["other"] = max(0.0, wall - named)
    total = max(wall, named)
    return {
        kind: {
            "seconds_per_step": seconds[kind],
            "share": seconds[kind] / total if total else 0.0,
            "tflops": flops[kind] / seconds[kind] / 1e12 if flops[kind] and seconds[kind] else None,
        }
        for kind in CATEGORIES
        if kind in seconds
    }


def _hook_layers(model: nn.Module, hooks: ExitStack, shapes: dict[str, list[int]]) -> None:
    """A profiler range around every leaf module's forward, named after the module."""
    ranges: dict[str, list[Any]] = defaultdict(list)

    def enter(name: str) -> Any:
        def pre(module: nn.Module, args: tuple[Any, ...]) -> None:
            if name not in shapes and args and isinstance(args[0], torch.Tensor):
                shapes[name] = list(args[0].shape)
            scope = torch.autograd.profiler.record_function(
                f"{LAYER_PREFIX}{name}:{type(module).__name__}"
            )
            scope.__enter__()
            ranges[name].append(scope)

        return pre

    def leave(name: str) -> Any:
        def post(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            if ranges[name]:
                ranges[name].pop().__exit__(None, None, None)

        return post

    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):
            hooks.callback(module.register_forward_pre_hook(enter(name)).remove)
            hooks.callback(module.register_forward_hook(leave(name)).remove)


def _descendants(event: Any) -> Iterator[Any]:
    for child in event.cpu_children:
        yield child
        yield from _descendants(child)


def _layers(
    events: list[Any], on_gpu: bool, steps: int, shapes: dict[str, list[int]]
) -> list[dict[str, Any]]:
    forward: dict[str, float] = defaultdict(float)
    flops: dict[str, float] = defaultdict(float)
    owner: dict[int, str] = {}
    classes: dict[str, str] = {}
    for event in events:
        if not event.name.startswith(LAYER_PREFIX):
            continue
        name, _, module = event.name[len(LAYER_PREFIX) :].rpartition(":")
        classes[name] = module
        for op in _descendants(event):
            forward[name] += _self_s(op, on_gpu)
            flops[name] += float(op.flops or 0)
            if op.sequence_nr >= 0:
                owner[op.sequence_nr] = name
    backward: dict[str, float] = defaultdict(float)
    for event in events:
        if (
            event.fwd_thread is not None
            and event.sequence_nr in owner
            and event.name.startswith("autograd::engine::evaluate_function")
        ):
            backward[owner[event.sequence_nr]] += sum(
                _self_s(op, on_gpu) for op in [event, *_descendants(event)]
            )
    rows: list[dict[str, Any]] = [
        {
            "layer": name,
            "module": classes.get(name),
            "input_shape": shapes.get(name),
            "forward_s": forward[name] / steps,
            "backward_s": backward[name] / steps,
            "forward_gflop": flops[name] / steps / 1e9,
        }
        for name in forward
    ]
    rows.sort(key=lambda r: -(r["forward_s"] + r["backward_s"]))
    return rows[:TOP_LAYERS]

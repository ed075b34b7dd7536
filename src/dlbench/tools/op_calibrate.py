"""``dlbench calibrate --ops``: time the building blocks of networks on this device, forward
and backward, so that ``dlbench predict`` can add a model up from its operators.

Each operator kind has a shape grid from a scrambled Sobol sequence over its dimensions (log
scales where sizes multiply; any prefix of it covers the space evenly), limited to shapes whose
work fits the device (a CPU is not asked for a GPU's largest convolution), taken in turn with
the exact shapes of the whole-model calibration design's models. Rounds take a few shapes of
every kind at every precision the device runs, so a short budget still covers every kind.
Each shape is timed with the run timer (device synchronised, two warm-up calls, the
median of up to ``REPEATS`` calls); each round is one block under the interference accounting
of every run, judged clean, noisy or contended like a run, and stored in one transaction. A
second call resumes: stored shapes (not contended) are not measured again.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import qmc

from dlbench.predict.by_operators import completed
from dlbench.predict.operators import ELEMENT_BYTES, KINDS, work
from dlbench.store import operators as stored_ops
from dlbench.store.database import Store

REPEATS = 10
SHAPE_BUDGET_S = 0.4  # timing one shape stops after this, whatever REPEATS says
BLOCK_S = 3.0  # a block's shortest window: the CPU counters judge it within a few percent
GRID_POINTS = 128  # per kind, before the work limit
PER_ROUND = {"conv2d": 3, "linear": 2}  # shapes per round; the other kinds 1
# Forward + backward FLOPs and bytes of the largest shape timed: about a second's work.
LIMITS = {"cpu": (2e11, 4e9), "cuda": (2e14, 4e11), "mps": (2e13, 4e10)}


def _log(u: float, low: float, high: float) -> int:
    return int(round(math.exp(math.log(low) + u * (math.log(high) - math.log(low)))))


def _pick(u: float, choices: tuple[int, ...]) -> int:
    return choices[min(int(u * len(choices)), len(choices) - 1)]


def _conv(u: np.ndarray) -> dict[str, int]:
    channels = _log(u[1], 3, 512)
    depthwise = u[6] < 0.15 and channels >= 8  # Xception's and MobileNet's convolutions
    kernel = _pick(u[3], (1, 3, 3, 5, 7))
    return {
        "batch": _log(u[0], 1, 128),
        "in_channels": channels,
        "out_channels": channels if depthwise else _log(u[2], 8, 512),
        "kernel": kernel,
        "kernel_w": kernel,
        "stride": _pick(u[4], (1, 1, 2)),
        "padding": kernel // 2,
        "padding_w": kernel // 2,
        "groups": channels if depthwise else 1,
        "size": _log(u[5], 4, 112),
    }


SHAPE_GRIDS: dict[str, tuple[int, Callable[[np.ndarray], dict[str, int]]]] = {
    "conv2d": (7, _conv),
    "linear": (3, lambda u: {
        "rows": _log(u[0], 1, 1024), "in_features": _log(u[1], 16, 8192),
        "out_features": _log(u[2], 10, 4096)}),
    "batchnorm": (3, lambda u: {
        "batch": _log(u[0], 1, 128), "channels": _log(u[1], 8, 1024), "size": _log(u[2], 2, 112)}),
    "pool": (5, lambda u: {
        "batch": _log(u[0], 1, 128), "channels": _log(u[1], 8, 512), "size": _log(u[2], 4, 112),
        "kernel": _pick(u[3], (2, 3)), "stride": _pick(u[4], (1, 2, 2))}),
    "activation": (1, lambda u: {"elements": _log(u[0], 1e3, 1e8)}),
    "elementwise": (1, lambda u: {"elements": _log(u[0], 1e3, 1e8)}),
    "attention": (4, lambda u: {
        "batch": _log(u[0], 1, 32), "heads": _log(u[1], 1, 16), "length": _log(u[2], 16, 2048),
        "head_dim": _pick(u[3], (32, 64, 64, 128))}),
    "optimizer": (2, lambda u: {"params": _log(u[0], 1e3, 2e8), "tensors": _log(u[1], 2, 320)}),
    "layernorm": (2, lambda u: {"rows": _log(u[0], 16, 65536), "features": _log(u[1], 32, 4096)}),
    "embedding": (3, lambda u: {
        "tokens": _log(u[0], 16, 65536), "vocab": _log(u[1], 256, 65536),
        "width": _log(u[2], 32, 2048)}),
    "adam": (2, lambda u: {"params": _log(u[0], 1e3, 2e8), "tensors": _log(u[1], 2, 320)}),
}  # fmt: skip


def shapes(kind: str, device_kind: str, precision: str, seed: int = 0) -> list[dict[str, int]]:
    """The kind's grid, in Sobol order, without shapes beyond the device's work limit."""
    dimensions, make = SHAPE_GRIDS[kind]
    points = qmc.Sobol(d=dimensions, scramble=True, seed=seed + KINDS.index(kind)).random(
        GRID_POINTS
    )
    max_flops, max_bytes = LIMITS.get(device_kind, LIMITS["cpu"])
    found = []
    for point in points:
        dims = make(point)
        flops, moved = work(kind, dims, ELEMENT_BYTES.get(precision, 4))
        if flops <= max_flops and moved <= max_bytes and dims not in found:
            found.append(dims)
    return found


def design_shapes(families: tuple[str, ...], device: str) -> dict[str, list[dict[str, int]]]:
    """The operator shapes of the whole-model calibration design (``calibrate``), per kind,
    in design order: where models put their operators, which a grid over all shapes covers
    only sparsely (a CPU's convolution time jumps between neighbouring shapes)."""
    from dlbench.engines.pytorch.describe import run_operators
    from dlbench.tools.calibrate import design, specs

    found: dict[str, list[dict[str, int]]] = {}
    for config in design(families):
        spec = specs(config, device, "ops", 1)[0]
        for use in run_operators(spec.model_dump(mode="json")):
            if use.dims not in found.setdefault(use.kind, []):
                found[use.kind].append(use.dims)
    return found


def _alternate(first: list[dict[str, int]], second: list[dict[str, int]]) -> list[dict[str, int]]:
    merged: list[dict[str, int]] = []
    for index in range(max(len(first), len(second))):
        for source in (first, second):
            if index < len(source) and source[index] not in merged:
                merged.append(source[index])
    return merged


def rounds(
    kinds: tuple[str, ...],
    precisions: tuple[str, ...],
    device_kind: str,
    model_shapes: dict[str, list[dict[str, int]]] | None = None,
) -> Iterator[list[tuple[str, str, dict[str, int]]]]:
    """Blocks of (kind, precision, shape): each has a few shapes of every kind, the grid's
    and ``model_shapes``' in turn."""
    extra = model_shapes or {}
    grids = {
        (k, p): _alternate(shapes(k, device_kind, p), extra.get(k, []))
        for k in kinds
        for p in precisions
    }
    position = dict.fromkeys(grids, 0)
    while any(position[g] < len(grids[g]) for g in grids):
        block = []
        for kind, precision in grids:
            take = PER_ROUND.get(kind, 1)
            start = position[(kind, precision)]
            block += [(kind, precision, s) for s in grids[(kind, precision)][start : start + take]]
            position[(kind, precision)] = start + take
        yield block


@dataclass(frozen=True)
class OpOutcome:
    measured: int  # shapes timed by this call
    stored: int  # usable measurements of the device (all calls)
    verdicts: dict[str, int]  # blocks of this call by verdict
    kinds: dict[str, int]  # usable measurements per kind


TimeOne = Callable[[str, dict[str, int], str], tuple[list[float], list[float]]]


def calibrate_ops(
    store: Store,
    device_name: str,
    device_kind: str,
    precisions: tuple[str, ...],
    budget_s: float,
    time_one: TimeOne,
    peaks: dict[str, tuple[float | None, float | None]],
    framework: str,
    kinds: tuple[str, ...] = KINDS,
    clock: Callable[[], float] = time.monotonic,
    on_block: Callable[[int, str], None] | None = None,
    meter: Callable[[], Any] | None = None,
    model_shapes: dict[str, list[dict[str, int]]] | None = None,
    block_s: float = BLOCK_S,
) -> OpOutcome:
    """Time rounds of shapes until ``budget_s`` is spent. ``time_one(kind, shape, precision)``
    gives (forward seconds, forward + backward seconds) per call; ``peaks[precision]`` the
    datasheet (TFLOP/s, GB/s); ``meter()`` a started interference meter (``stop()`` gives
    what other work took) or None. Rounds are gathered into blocks of at least ``block_s``
    (shorter windows are too short for the CPU counters to judge)."""
    done = completed(stored_ops.usable(stored_ops.table(store, device_name)))
    seen = {
        (k, p, stored_ops.shape_key(s))
        for k, p, s in zip(done["kind"], done["precision"], done["shape"], strict=True)
    }
    block = Block(store, {"device_name": device_name, "hostname": os.uname().nodename,
                          "framework": framework}, peaks, on_block)  # fmt: skip
    started, began = clock(), 0.0
    for shapes_now in rounds(kinds, precisions, device_kind, model_shapes):
        todo = [(k, p, s) for k, p, s in shapes_now if (k, p, stored_ops.shape_key(s)) not in seen]
        if not todo:
            continue
        if clock() - started >= budget_s:
            break
        if not block.rows:
            block.meter = meter() if meter else None
            began = clock()
        timed = [_measure(kind, shape, precision, time_one) for kind, precision, shape in todo]
        block.rows += [row for row in timed if row is not None]
        if clock() - began >= block_s:
            block.store()
    block.store()
    usable = stored_ops.usable(stored_ops.table(store, device_name))
    kinds_found = {str(k): int(v) for k, v in usable["kind"].value_counts().items()}
    return OpOutcome(block.measured, len(usable), block.verdicts, kinds_found)


@dataclass
class Block:
    """Measurements under one interference meter, stored together with its verdict."""

    store_to: Store
    columns: dict[str, Any]
    peaks: dict[str, tuple[float | None, float | None]]
    on_block: Callable[[int, str], None] | None
    meter: Any = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    measured: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)

    def store(self) -> None:
        from dlbench.measure.quality import judge

        if not self.rows:
            return
        quality = judge(self.meter.stop()) if self.meter else None
        verdict = quality.verdict if quality else None
        for row in self.rows:
            peak, bandwidth = self.peaks.get(row["precision"], (None, None))
            row.update(
                self.columns,
                quality_verdict=verdict,
                quality={"reasons": list(quality.reasons)} if quality else None,
                peak_tflops=peak,
                bandwidth_gb_s=bandwidth,
            )
        stored_ops.add(self.store_to, self.rows)
        self.measured += len(self.rows)
        self.verdicts[str(verdict)] = self.verdicts.get(str(verdict), 0) + 1
        if self.on_block:
            self.on_block(len(self.rows), str(verdict))
        self.rows, self.meter = [], None


def _measure(
    kind: str, shape: dict[str, int], precision: str, time_one: TimeOne
) -> dict[str, Any] | None:
    """One shape's row; None where it could not run (no memory for it)."""
    forward, train = time_one(kind, shape, precision)
    if not train:
        return None
    median = float(np.median(train))
    spread = float(np.median(np.abs(np.array(train) - median)) / median) if median else None
    return {
        "kind": kind,
        "precision": precision,
        "shape": shape,
        "forward_s": float(np.median(forward)) if forward else None,
        "train_s": median,
        "calls": len(train),
        "spread": spread,
    }


__all__ = ["OpOutcome", "calibrate_ops", "design_shapes", "rounds", "shapes"]

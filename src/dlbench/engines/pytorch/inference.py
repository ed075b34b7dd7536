"""``dlbench infer`` on PyTorch: a trained checkpoint, one image file at a time."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlbench.engines.pytorch.checkpoint import read_checkpoint
from dlbench.engines.pytorch.engine import AMP_DTYPES, TorchEngine, device_sync
from dlbench.engines.pytorch.tasks import ClassifyTask, DetectTask
from dlbench.errors import ConfigError
from dlbench.registry import resolve
from dlbench.workloads import WorkloadSpec


class TorchPredictor:
    """The checkpoint's model in eval mode, with the normalisation it was trained with."""

    def __init__(
        self, workload: WorkloadSpec, checkpoint: Path, device: str, precision: str
    ) -> None:
        engine = TorchEngine()
        info = engine.resolve_device(device)
        engine.check_precision(info, precision)
        self.device = torch.device(info.device)
        self.device_name = f"{info.device} ({info.device_name})"
        self.sync = device_sync(self.device)
        state = read_checkpoint(checkpoint, self.device)
        meta: dict[str, Any] = state["meta"]
        if meta["workload"] != workload.name:
            raise ConfigError(
                f"{checkpoint} holds a {meta['workload']} model, not {workload.name}",
                f"run dlbench infer {meta['workload']} --checkpoint {checkpoint}",
            )
        self.image_size = int(meta["image_size"])
        self.channels = workload.input_shape[0]
        self.classes: list[str] | None = meta.get("classes")
        shape = (self.channels, self.image_size, self.image_size)
        model = resolve(workload.builders["pytorch"])(
            shape, int(meta["num_classes"]), **(meta.get("architecture") or {})
        )
        model.load_state_dict(state["model"])
        self.model = model.to(self.device).eval()
        self.task: ClassifyTask | DetectTask
        if workload.task == "detect":
            self.task = DetectTask(self.device)
        else:
            stats = (tuple(meta["mean"]), tuple(meta["std"]))
            self.task = ClassifyTask(stats, self.image_size, self.device, False)
        self.amp_dtype = AMP_DTYPES.get(precision)

    def predict(self, image: np.ndarray) -> dict[str, Any]:
        """One uint8 (C, H, W) image -> its top class (or box) and score."""
        batch = torch.from_numpy(np.array(image)).unsqueeze(0).to(self.device)  # a writable copy
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            (found,) = self.task.scores(self.model, batch)
        if self.classes and found["class"] is not None:
            found["label"] = self.classes[found["class"]]
        return found

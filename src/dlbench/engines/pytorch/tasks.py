"""What differs between classification, detection and language modelling in the PyTorch
engine: how inputs are prepared, what the loss is, how the validation set is scored, what a
prediction is."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from dlbench.engines import EvalResult
from dlbench.engines.pytorch import distributed as torch_dist
from dlbench.engines.pytorch.input import Batch, ChannelStats

AUX_LOSS_WEIGHT = 0.4  # Inception v3's auxiliary classifier (Szegedy et al. 2016)


def score(
    scored: Iterator[tuple[torch.Tensor, torch.Tensor, int]],
    device: torch.device,
    on_batch: Callable[[], None] | None,
) -> EvalResult:
    """Top-1 accuracy and mean cross-entropy over ``(logits (N, C), labels (N,), items)``
    batches, added up over the ranks under DDP (each scored its share of the validation set).
    ``items`` counts what a batch holds (images, or sequences of N / items predictions)."""
    correct = torch.zeros((), dtype=torch.int64, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    predictions = items = 0
    for logits, labels, held in scored:
        loss_sum += nn.functional.cross_entropy(logits.float(), labels, reduction="sum")
        correct += (logits.argmax(dim=1) == labels).sum()
        predictions += int(labels.numel())
        items += held
        if on_batch:
            on_batch()
    counts = torch.tensor(
        [float(correct.item()), float(loss_sum.item()), float(predictions), float(items)]
    )
    torch_dist.all_reduce_sum(counts)
    correct_all, loss_all, predicted = int(counts[0]), float(counts[1]), int(counts[2])
    return EvalResult(
        images=int(counts[3]),
        accuracy=correct_all / predicted if predicted else None,
        mean_loss=loss_all / predicted if predicted else None,
    )


class ClassifyTask:
    """Images normalised with the training set's channel statistics, resized on the device
    when the data's size differs from the model's input."""

    def __init__(
        self, stats: ChannelStats, size: int, device: torch.device, channels_last: bool
    ) -> None:
        mean, std = stats
        shape = (1, len(mean), 1, 1)
        self.mean = torch.tensor(mean, device=device).view(shape)
        self.std = torch.tensor(std, device=device).view(shape)
        self.size = size
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        # uint8 -> normalised float on the device: part of the step, as in a real pipeline.
        x = (images.float().div_(255.0) - self.mean) / self.std
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = nn.functional.interpolate(
                x, size=(self.size, self.size), mode="bilinear", align_corners=False
            )
        return x.contiguous(memory_format=self.memory_format)

    def loss(self, model: nn.Module, images: torch.Tensor, labels: Any) -> torch.Tensor:
        out = model(self.preprocess(images))
        if hasattr(out, "aux_logits"):  # Inception v3 in training mode
            main = nn.functional.cross_entropy(out.logits, labels)
            if out.aux_logits is None:
                return main
            aux = nn.functional.cross_entropy(out.aux_logits, labels)
            return main + AUX_LOSS_WEIGHT * aux
        return nn.functional.cross_entropy(out, labels)

    def evaluate(
        self,
        model: nn.Module,
        batches: Iterator[Batch],
        autocast: Callable[[], Any],
        on_batch: Callable[[], None] | None,
    ) -> EvalResult:
        with torch.no_grad(), autocast():
            scored = (
                (model(self.preprocess(images)), labels, int(labels.shape[0]))
                for images, labels in batches
            )
            return score(scored, self.mean.device, on_batch)

    def predict(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        return model(self.preprocess(images)).argmax(dim=1)

    def scores(self, model: nn.Module, images: torch.Tensor) -> list[dict[str, Any]]:
        """Top class and its probability for each image (``dlbench infer``)."""
        probabilities = model(self.preprocess(images)).float().softmax(dim=1)
        best, index = probabilities.max(dim=1)
        return [{"class": int(i), "score": float(p)} for p, i in zip(best, index, strict=True)]


class DetectTask:
    """torchvision detectors take a list of 0-1 images and normalise them themselves; in
    training they return their losses, in evaluation their boxes."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def preprocess(self, images: torch.Tensor) -> list[torch.Tensor]:
        return list(images.float().div_(255.0))

    def loss(self, model: nn.Module, images: torch.Tensor, labels: Any) -> torch.Tensor:
        losses = model(self.preprocess(images), labels)
        return torch.stack([value for value in losses.values()]).sum()

    def evaluate(
        self,
        model: nn.Module,
        batches: Iterator[Batch],
        autocast: Callable[[], Any],
        on_batch: Callable[[], None] | None,
    ) -> EvalResult:
        from torchmetrics.detection import MeanAveragePrecision

        metric = MeanAveragePrecision(iou_thresholds=[0.5], box_format="xyxy")
        total = 0
        with torch.no_grad(), autocast():
            for images, targets in batches:
                found = model(self.preprocess(images))
                metric.update(
                    [{k: v.float() if k != "labels" else v for k, v in f.items()} for f in found],
                    targets,
                )
                total += len(targets)
                if on_batch:
                    on_batch()
        map50 = float(metric.compute()["map_50"]) if total else None
        return EvalResult(images=total, accuracy=None, mean_loss=None, map50=map50)

    def predict(self, model: nn.Module, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        found: list[dict[str, torch.Tensor]] = model(self.preprocess(images))
        return found

    def scores(self, model: nn.Module, images: torch.Tensor) -> list[dict[str, Any]]:
        """The most confident box of each image (``dlbench infer``)."""
        out: list[dict[str, Any]] = []
        for found in self.predict(model, images):
            if len(found["scores"]) == 0:
                out.append({"class": None, "score": 0.0, "box": None})
                continue
            best = int(found["scores"].argmax())
            out.append(
                {
                    "class": int(found["labels"][best]),
                    "score": float(found["scores"][best]),
                    "box": [round(float(v), 1) for v in found["boxes"][best]],
                }
            )
        return out


class LanguageTask:
    """Next-token prediction: token ids in, logits (batch, length, vocabulary) out, the loss
    the mean cross-entropy over every position; validation reports it per token, with
    next-token accuracy (the perplexity is its exponential)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def preprocess(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens

    def loss(self, model: nn.Module, tokens: torch.Tensor, targets: Any) -> torch.Tensor:
        logits = model(tokens)
        return nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())

    def evaluate(
        self,
        model: nn.Module,
        batches: Iterator[Batch],
        autocast: Callable[[], Any],
        on_batch: Callable[[], None] | None,
    ) -> EvalResult:
        with torch.no_grad(), autocast():
            # every position is a prediction; an item is a sequence
            scored = (
                (model(inputs).flatten(0, 1), targets.flatten(), int(inputs.shape[0]))
                for inputs, targets in batches
            )
            return score(scored, self.device, on_batch)

    def predict(self, model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
        """The most likely next token at every position."""
        return model(tokens).argmax(dim=-1)

    def scores(self, model: nn.Module, tokens: torch.Tensor) -> list[dict[str, Any]]:
        probabilities = model(tokens)[:, -1].float().softmax(dim=-1)
        best, index = probabilities.max(dim=-1)
        return [{"class": int(i), "score": float(p)} for p, i in zip(best, index, strict=True)]

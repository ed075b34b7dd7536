"""The calculator's question: a zoo workload, a family description (``--family resnet
--depth 50 --width 64 --input 224 --batch 64``, built by the parametric families
``param-<family>`` and ``llama``; a language model's --input is its sequence length), or the
user's own
module (``--model-file my_model.py:build``).

Its descriptors (FLOPs, activations, layers) are counted on the real module by the engine
(``dlbench.engines.pytorch.describe.describe_question``), which the CLI calls: this package
stays framework-free."""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("mlp", "vgg", "resnet", "inception", "transformer", "llama")
LANGUAGE_FAMILIES = ("transformer", "llama")  # --input is their sequence length in tokens
DEFAULT_BATCH = 64


def family_workload(family: str) -> str:
    """The workload that builds a family: ``param-<family>``, or ``llama``, which takes
    --depth/--width/--heads/--kv-heads itself."""
    return "llama" if family == "llama" else f"param-{family}"


def input_option(family: str, size: int | None) -> dict[str, int | None]:
    """A family's input size as the run option it is: --seq-len or --image-size."""
    return {"seq_len" if family in LANGUAGE_FAMILIES else "image_size": size}


@dataclass(frozen=True)
class Question:
    workload: str | None = None
    family: str | None = None
    depth: int | None = None
    width: int | None = None
    input_size: int | None = None
    batch_size: int | None = None
    model_file: str | None = None
    channels: int = 3
    num_classes: int | None = None
    precision: str = "fp32"

    def label(self) -> str:
        if self.model_file:
            return self.model_file
        if self.family:
            return f"{self.family} depth {self.depth} width {self.width}"
        return str(self.workload)

"""The frameworks dlbench runs on: one entry each, read by the options, the workloads' builders
and the engines alike.

Adding a framework is an engine module (``engines/NAME/``), one entry in ``FRAMEWORKS`` and an
extra in pyproject.toml; ``--framework``, ``--precision`` and ``dlbench list`` follow from here.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_FRAMEWORK = "pytorch"
DEFAULT_PRECISION = "fp32"
# Every precision some framework runs, in the order they are offered: plain fp32, TF32
# matmuls (PyTorch on Ampere and later), and autocast mixed precision in fp16 or bf16.
PRECISIONS = ("fp32", "tf32", "amp-fp16", "amp-bf16")


@dataclass(frozen=True)
class Framework:
    name: str
    engine: str  # "module:Class" of its Engine, imported on use
    builder: str  # the key of a workload's builders that gives this framework's model
    precisions: tuple[str, ...]  # what --precision takes under it (the device may refuse more)
    extra: str | None  # the pip extra that installs it; None: the core install has it


FRAMEWORKS: dict[str, Framework] = {
    "pytorch": Framework(
        "pytorch", "dlbench.engines.pytorch.engine:TorchEngine", "pytorch", PRECISIONS, None
    ),
    # Keras 3 on two backends: one model definition, two frameworks. TF32 is a PyTorch/cuDNN
    # switch Keras does not expose.
    "tensorflow": Framework(
        "tensorflow",
        "dlbench.engines.keras.engine:TensorFlowEngine",
        "keras",
        ("fp32", "amp-fp16", "amp-bf16"),
        "tensorflow",
    ),
    "jax": Framework(
        "jax",
        "dlbench.engines.keras.engine:JaxEngine",
        "keras",
        ("fp32", "amp-fp16", "amp-bf16"),
        "jax",
    ),
}

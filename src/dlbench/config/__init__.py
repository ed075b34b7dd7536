"""Validated run configuration. Validators only validate; side effects belong to the runner.

Past this boundary code trusts its inputs. A pydantic error becomes one ``ConfigError`` line
naming the command-line option at fault.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dlbench.config.checks import (
    check_framework,
    check_options,
    check_run_length,
    check_tag,
    config_error,
)
from dlbench.config.limits import (
    DEFAULT_STABLE_MAX_TIME_S,
    DEFAULT_TIMED_STEPS,
    DEFAULT_TTA_EPOCHS,
    DEFAULT_WARMUP,
    MAX_BATCH,
    MAX_CLASSES,
    MAX_DATASET,
    MAX_EPOCHS,
    MAX_LAYERS,
    MAX_NODES,
    MAX_PROCESSES,
    MAX_SECONDS,
    MAX_SEED,
    MAX_SIDE,
    MAX_STEPS,
    MAX_TEXT,
    MAX_WIDTH,
    OPTIMIZERS,
)
from dlbench.config.option import (
    AFTER,
    DATA,
    GENERATION,
    HOW_LONG,
    MEASUREMENT,
    NODES,
    OUTPUT,
    PROMETHEUS,
    WHAT,
    option,
)
from dlbench.frameworks import DEFAULT_FRAMEWORK, DEFAULT_PRECISION, FRAMEWORKS, PRECISIONS
from dlbench.workloads import check_dataset, get_workload

LATER_FIELDS = (
    "until_stable",
    "max_time",
    "seq_len",
    "vocab",
    "cpus",
    "nodes",
    "heads",
    "kv_heads",
    "prompt_len",
    "gen_len",
)
# Fields that change only what happens after the timed steps (validation, inference, a
# profile): the same training configuration, so the same run key in a sweep or calibration.
AFTER_TIMING_FIELDS = ("no_validate", "no_infer", "profile")
# Fields that change where a run is watched from, not what it measures.
SERVING_FIELDS = ("metrics_port", "metrics_host")


class RunSpec(BaseModel):
    """One benchmark run, as asked for. ``resolved()`` fills the workload's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workload: str = Field(description="A workload from `dlbench list`.")
    framework: str = option(
        DEFAULT_FRAMEWORK,
        WHAT,
        f"{', '.join(FRAMEWORKS)} (tensorflow and jax through Keras 3: dlbench[tensorflow], "
        "dlbench[jax]).",
    )
    device: str = option("auto", WHAT, "auto, cpu, cuda, cuda:N or mps.")
    batch_size: int | None = option(
        None,
        WHAT,
        "Images per step [default: the workload's].",
        "--batch-size",
        "-b",
        gt=0,
        le=MAX_BATCH,
    )
    warmup: int = option(DEFAULT_WARMUP, HOW_LONG, "Untimed warm-up steps.", ge=0, le=MAX_STEPS)
    steps: int | None = option(
        None,
        HOW_LONG,
        f"Training steps, warm-up included [default: warm-up + {DEFAULT_TIMED_STEPS}].",
        gt=0,
        le=MAX_STEPS,
    )
    epochs: int | None = option(
        None,
        HOW_LONG,
        "Timed epochs (after the warm-up steps), instead of --steps.",
        gt=0,
        le=MAX_EPOCHS,
    )
    data: str = option(
        "synthetic",
        DATA,
        "synthetic, digits (images), stdlib (text), or a folder or file in the workload's format.",
        min_length=1,
        max_length=MAX_TEXT,
    )
    dataset: str | None = option(
        None,
        DATA,
        "Which dataset of the workload's format: mnist or fashion-mnist (MNIST workloads); "
        "cifar10; imagefolder or imagenet32 (zoo); coco (detectors); dlbench list shows each "
        "workload's [default: its first].",
    )
    workers: int | None = option(
        None, DATA, "Input-pipeline worker processes.", ge=0, le=MAX_PROCESSES
    )
    val_batches: int | None = option(
        None,
        AFTER,
        "Test batches to validate and predict [default: all on real data, at most 20 on "
        "synthetic data].",
        gt=0,
        le=MAX_STEPS,
    )
    no_validate: bool | None = option(None, AFTER, "Skip the validation pass.")
    no_infer: bool | None = option(None, AFTER, "Skip the inference phase (reload, latency).")
    profile: bool | None = option(
        None,
        AFTER,
        "After the timed steps, profile 5 more: where a step's time goes, by operator category "
        "and by layer (the timed figures are unchanged).",
    )
    threads: int | None = option(
        None, MEASUREMENT, "CPU threads for the framework.", gt=0, le=MAX_PROCESSES
    )
    cpus: str | None = option(
        None,
        MEASUREMENT,
        "Measure on these CPUs: auto (the idle ones, chosen before each run) or a list like "
        "0,2-3; other work on the others is then not the run's contention.",
        max_length=256,
    )
    seed: int = option(0, MEASUREMENT, "Random seed.", ge=0, le=MAX_SEED)
    telemetry: bool = option(
        True, MEASUREMENT, "Do not sample the system during the run.", "--no-telemetry"
    )
    interval: float = option(
        1.0,
        MEASUREMENT,
        "Telemetry sampling period, seconds.",
        ge=0.01,
        le=3600,
        allow_inf_nan=False,
    )
    metrics_port: int | None = option(
        None,
        PROMETHEUS,
        "Serve telemetry (and a run's progress) on http://HOST:PORT/metrics for Prometheus.",
        ge=1,
        le=65535,
    )
    metrics_host: str = option(
        "127.0.0.1",
        PROMETHEUS,
        "Address for --metrics-port (0.0.0.0: every network).",
        max_length=255,
    )
    tags: dict[str, str] = option({}, OUTPUT, "key=value, repeatable.", "--tag", max_length=100)
    image_size: int | None = option(
        None,
        WHAT,
        "Square input side for zoo models [default: the model's].",
        gt=0,
        le=MAX_SIDE,
    )
    num_classes: int | None = option(
        None,
        WHAT,
        "Output classes [default: the data's, or the workload's].",
        gt=1,
        le=MAX_CLASSES,
    )
    seq_len: int | None = option(
        None, WHAT, "Language models: tokens per sequence [default: 1024].", gt=0, le=MAX_SIDE
    )
    vocab: int | None = option(
        None,
        WHAT,
        "Language models: vocabulary, token ids 0 to N-1 [default: the data's, or 50257].",
        gt=1,
        le=MAX_CLASSES,
    )
    precision: str = option(
        DEFAULT_PRECISION, WHAT, f"{', '.join(PRECISIONS)} (amp: autocast mixed precision)."
    )
    channels_last: bool = option(
        False, WHAT, "Model and images in channels-last layout.", "--channels-last"
    )
    compile: bool = option(
        False, WHAT, "torch.compile the model (compiled in warm-up).", "--compile"
    )
    optimizer: str | None = option(
        None, WHAT, f"{', '.join(OPTIMIZERS)} [default: the workload's]."
    )
    lr: float | None = option(
        None,
        WHAT,
        "Learning rate [default: the workload's].",
        gt=0,
        le=100,
        allow_inf_nan=False,
    )
    dataset_size: int | None = option(
        None,
        HOW_LONG,
        "Project the time of --epochs (default 1) epochs of N images.",
        gt=0,
        le=MAX_DATASET,
    )
    target_accuracy: float | None = option(
        None,
        HOW_LONG,
        "Train whole epochs until validation accuracy (mAP@0.5) reaches A.",
        gt=0,
        le=1,
    )
    until_stable: float | None = option(
        None,
        HOW_LONG,
        "Add timed steps until the step time's 95% CI is within P% of it.",
        gt=0,
        le=50,
        allow_inf_nan=False,
    )
    max_time: float | None = option(
        None,
        HOW_LONG,
        f"With --until-stable: seconds of timed steps at most [default: "
        f"{DEFAULT_STABLE_MAX_TIME_S:g}].",
        gt=0,
        le=MAX_SECONDS,
        allow_inf_nan=False,
    )
    checkpoint: str | None = option(
        None,
        AFTER,
        "Save the trained weights to FILE (for dlbench infer).",
        min_length=1,
        max_length=MAX_TEXT,
    )
    depth: int | None = option(
        None,
        WHAT,
        "param-* workloads and gpt: weight layers (gpt: blocks).",
        gt=0,
        le=MAX_LAYERS,
    )
    width: int | None = option(
        None,
        WHAT,
        "param-* workloads and gpt: base width (gpt: model width).",
        gt=0,
        le=MAX_WIDTH,
    )
    heads: int | None = option(
        None, WHAT, "llama workloads: query heads [default: the model's].", gt=0, le=MAX_LAYERS
    )
    kv_heads: int | None = option(
        None,
        WHAT,
        "llama workloads: key/value heads, each shared by heads / kv-heads query heads "
        "(grouped-query attention) [default: the model's].",
        gt=0,
        le=MAX_LAYERS,
    )
    prompt_len: int | None = option(
        None,
        GENERATION,
        "Prompt tokens per sequence [default: 128].",
        gt=0,
        le=MAX_SIDE,
    )
    gen_len: int | None = option(
        None,
        GENERATION,
        "Tokens generated per sequence after its prompt [default: 128].",
        gt=0,
        le=MAX_SIDE,
    )
    gpus: int = option(
        1,
        WHAT,
        "Processes on this node under torchrun with DDP: GPUs, or gloo CPU workers.",
        ge=1,
        le=MAX_PROCESSES,
    )
    nodes: int | None = option(
        None,
        NODES,
        "Nodes of the run, one dlbench each (srun, or --node-rank on each) [default: 1].",
        ge=1,
        le=MAX_NODES,
    )
    stage_from: str | None = option(
        None,
        DATA,
        "Copy this data folder before the run (timed) ...",
        min_length=1,
        max_length=MAX_TEXT,
    )
    stage_to: str | None = option(
        None, DATA, "... into this one, and train from it.", min_length=1, max_length=MAX_TEXT
    )
    sweep: str | None = Field(
        default=None,
        max_length=128,
        description="The sweep this run belongs to (set by dlbench sweep, not an option).",
    )
    repeat: int = Field(
        default=0, ge=0, le=MAX_STEPS, description="Its repeat index within the sweep."
    )

    @model_validator(mode="after")
    def _check(self) -> RunSpec:
        workload = get_workload(self.workload)
        check_framework(self, workload)
        check_options(self, workload)
        check_run_length(self)
        for key, value in self.tags.items():
            check_tag(key, value)
        check_dataset(workload, self.dataset)
        return self

    def resolved(self) -> RunSpec:
        """This spec with every default filled in, as it is stored with the run."""
        workload = get_workload(self.workload)
        language = workload.task == "language"
        epochs = self.epochs
        if self.target_accuracy is not None and epochs is None:
            epochs = DEFAULT_TTA_EPOCHS
        steps = self.steps
        if (steps is None and epochs is None) or self.dataset_size is not None:
            steps = steps or self.warmup + DEFAULT_TIMED_STEPS
        return self.model_copy(
            update={
                "batch_size": self.batch_size or workload.default_batch_size,
                "dataset": check_dataset(workload, self.dataset),
                "steps": steps,
                "epochs": epochs,
                # Time to accuracy counts every training step from the first.
                "warmup": 0 if self.target_accuracy is not None else self.warmup,
                "image_size": None if language else self.image_size or workload.input_shape[1],
                "seq_len": self.seq_len or workload.input_shape[1] if language else None,
                # a language model's classes are its vocabulary
                "num_classes": self.vocab or self.num_classes if language else self.num_classes,
                "optimizer": self.optimizer or workload.optimizer.name,
                "lr": self.lr or workload.optimizer.lr,
                "nodes": self.nodes if self.nodes and self.nodes > 1 else None,  # keys as before
                "max_time": self.max_time
                or (DEFAULT_STABLE_MAX_TIME_S if self.until_stable is not None else None),
            }
        )

    def columns(self) -> dict[str, Any]:
        """The runs-table columns a run of this spec is filed under."""
        return {
            "workload": self.workload,
            "framework": self.framework,
            "device": self.device,
            "batch_size": self.batch_size,
            "precision": self.precision,
            "data": self.data,
            "dataset": self.dataset,
            "sweep": self.sweep,
            "run_key": self.run_key,
            "staged_from": self.stage_from,
            "num_gpus": self.processes,
        }

    @property
    def run_key(self) -> str:
        """Stable identity of this run in a sweep: the resolved spec, hashed, without its tags
        and the fields that only change what happens after the timed steps."""
        fields = self.model_dump(
            mode="json", exclude={"tags", *AFTER_TIMING_FIELDS, *SERVING_FIELDS}
        )
        for name in LATER_FIELDS:  # unset, they leave the keys of earlier sweeps unchanged
            if fields.get(name) is None:
                fields.pop(name, None)
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
        return digest[:16]

    @property
    def generates(self) -> bool:
        """A ``dlbench generate`` run: request batches generating tokens, no training."""
        return self.gen_len is not None

    @property
    def processes(self) -> int:
        """Processes of the run, all nodes together: the world size under torchrun."""
        return self.gpus * (self.nodes or 1)

    @property
    def timed_epochs(self) -> int | None:
        """Epochs the run itself trains. With --dataset-size, --epochs is a projection only."""
        return None if self.dataset_size is not None else self.epochs

    @property
    def architecture(self) -> dict[str, int]:
        """--depth, --width (--heads, --kv-heads), as a parametric workload's builder takes
        them."""
        given = {"depth": self.depth, "width": self.width}
        given |= {"heads": self.heads, "kv_heads": self.kv_heads}
        return {k: v for k, v in given.items() if v}

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the model's input, at --image-size when given; a
        language model's (1, seq_len, 1)."""
        channels, height, width = get_workload(self.workload).input_shape
        if self.seq_len is not None:
            return 1, self.seq_len, 1
        if self.image_size is None:
            return channels, height, width
        return channels, self.image_size, self.image_size


def build_spec(**options: Any) -> RunSpec:
    """Validate options into a resolved RunSpec, or raise one ConfigError line."""
    try:
        return RunSpec(**options).resolved()
    except ValidationError as exc:
        raise config_error(exc) from None

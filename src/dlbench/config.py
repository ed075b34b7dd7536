"""Validated run configuration. Validators only validate; side effects belong to the runner.

Past this boundary code trusts its inputs. A pydantic error becomes one ``ConfigError`` line
naming the command-line option at fault.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dlbench.errors import ConfigError
from dlbench.workloads import WorkloadSpec, check_dataset, frameworks_of, get_workload

DEFAULT_WARMUP = 10
DEFAULT_TIMED_STEPS = 100
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
TAG_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
MAX_TAG_VALUE = 1000
FRAMEWORKS = ("pytorch", "tensorflow", "jax")  # the last two through Keras 3
PRECISIONS = ("fp32", "tf32", "amp-fp16", "amp-bf16")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
DEFAULT_TTA_EPOCHS = 50  # epoch cap of a --target-accuracy run without --epochs
DEFAULT_STABLE_MAX_TIME_S = 300.0  # --until-stable without --max-time
LATER_FIELDS = ("until_stable", "max_time", "seq_len", "vocab", "cpus", "nodes")
# --cpus: auto (the idle ones, chosen before each run) or a list such as 0,2-3
CPUS_PATTERN = r"^(auto|\d+(-\d+)?(,\d+(-\d+)?)*)$"
# Fields that change only what happens after the timed steps (validation, inference, a
# profile): the same training configuration, so the same run key in a sweep or calibration.
AFTER_TIMING_FIELDS = ("no_validate", "no_infer", "profile")
# Fields that change where a run is watched from, not what it measures.
SERVING_FIELDS = ("metrics_port", "metrics_host")
# Bounds that no real run reaches: beyond them a number is a typo (--steps 1e26), not a plan.
MAX_STEPS = 10**9
MAX_EPOCHS = 10**6
MAX_DATASET = 10**15  # images
MAX_BATCH = 2**31 - 1  # beyond any memory; below it, too large is an oom result
MAX_SEED = 2**32 - 1  # what every framework's generator takes (NumPy's is 32-bit)
MAX_SIDE = 2**16  # pixels of an image side, tokens of a sequence: 65,536
MAX_CLASSES = 2**24  # output classes or vocabulary: 16.7 million
MAX_LAYERS = 10_000
MAX_WIDTH = 2**20
MAX_PROCESSES = 1024  # GPUs of one node, threads, input workers
MAX_NODES = 4096
MAX_SECONDS = 10**7  # 116 days of timed steps
MAX_TEXT = 4096  # characters of a path, a tag value or another free-form option
Precision = Literal["fp32", "tf32", "amp-fp16", "amp-bf16"]


class RunSpec(BaseModel):
    """One benchmark run, as asked for. ``resolved()`` fills the workload's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workload: str
    framework: str = "pytorch"
    device: str = "auto"
    batch_size: int | None = Field(default=None, gt=0, le=MAX_BATCH)  # too large: an oom result
    warmup: int = Field(default=DEFAULT_WARMUP, ge=0, le=MAX_STEPS)
    steps: int | None = Field(default=None, gt=0, le=MAX_STEPS)  # total, warm-up included
    epochs: int | None = Field(default=None, gt=0, le=MAX_EPOCHS)  # timed, after the warm-up
    data: str = Field(default="synthetic", min_length=1, max_length=MAX_TEXT)
    dataset: str | None = None
    workers: int | None = Field(default=None, ge=0, le=MAX_PROCESSES)
    val_batches: int | None = Field(default=None, gt=0, le=MAX_STEPS)  # cap on validation
    no_validate: bool | None = None  # True: no validation pass (unset: one, capped on synthetic)
    no_infer: bool | None = None  # True: no inference phase
    profile: bool | None = None  # True: PROFILE_STEPS more steps under the profiler, untimed
    threads: int | None = Field(default=None, gt=0, le=MAX_PROCESSES)
    cpus: str | None = Field(default=None, max_length=256)  # see CPUS_PATTERN
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    telemetry: bool = True
    interval: float = Field(
        default=1.0, ge=0.01, le=3600, allow_inf_nan=False
    )  # telemetry sampling period, s
    metrics_port: int | None = Field(default=None, ge=1, le=65535)  # Prometheus /metrics
    metrics_host: str = Field(default="127.0.0.1", max_length=255)
    tags: dict[str, str] = Field(default_factory=dict, max_length=100)
    # model and execution
    image_size: int | None = Field(default=None, gt=0, le=MAX_SIDE)  # square input side
    num_classes: int | None = Field(default=None, gt=1, le=MAX_CLASSES)  # default: the data's
    seq_len: int | None = Field(default=None, gt=0, le=MAX_SIDE)  # language models: tokens
    vocab: int | None = Field(default=None, gt=1, le=MAX_CLASSES)  # token ids 0 .. vocab-1
    precision: Precision = "fp32"
    channels_last: bool = False
    compile: bool = False
    optimizer: str | None = None  # default: the workload's
    lr: float | None = Field(default=None, gt=0, le=100, allow_inf_nan=False)
    # questions a run answers
    # project --epochs of this many images
    dataset_size: int | None = Field(default=None, gt=0, le=MAX_DATASET)
    target_accuracy: float | None = Field(default=None, gt=0, le=1)
    # keep timing steps until the mean step time's 95% interval is within this % of it
    until_stable: float | None = Field(default=None, gt=0, le=50, allow_inf_nan=False)
    max_time: float | None = Field(
        default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False
    )  # seconds of timed steps, until_stable
    # save the trained weights here (for `dlbench infer`)
    checkpoint: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    depth: int | None = Field(default=None, gt=0, le=MAX_LAYERS)  # parametric: weight layers
    width: int | None = Field(default=None, gt=0, le=MAX_WIDTH)  # parametric: channels/units
    # deployment
    gpus: int = Field(default=1, ge=1, le=MAX_PROCESSES)  # torchrun processes per node
    nodes: int | None = Field(default=None, ge=1, le=MAX_NODES)  # None: this node alone
    # copy this folder to stage_to before the run, timed
    stage_from: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    stage_to: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    sweep: str | None = Field(default=None, max_length=128)  # the sweep this run belongs to
    repeat: int = Field(default=0, ge=0, le=MAX_STEPS)  # repeat index within its sweep

    @model_validator(mode="after")
    def _check(self) -> RunSpec:
        workload = get_workload(self.workload)
        self._check_framework(workload)
        self._check_options(workload)
        self._check_run_length()
        for key, value in self.tags.items():
            check_tag(key, value)
        check_dataset(workload, self.dataset)
        return self

    def _check_framework(self, workload: WorkloadSpec) -> None:
        if self.framework not in FRAMEWORKS:
            raise _invalid("framework", f"{self.framework!r} is not one of {', '.join(FRAMEWORKS)}")
        if self.framework not in frameworks_of(workload):
            raise _invalid(
                "framework",
                f"workload {workload.name} has no {self.framework} model (it runs on "
                f"{', '.join(frameworks_of(workload))})",
            )
        if self.framework != "pytorch" and (
            self.processes > 1 or self.compile or self.channels_last
        ):
            raise _invalid(
                "framework",
                f"--gpus N and --nodes N (DDP), --compile and --channels-last are PyTorch's; "
                f"--framework {self.framework} runs one process, compiled by XLA where the "
                "backend does, channels-last already",
            )

    def _check_options(self, workload: WorkloadSpec) -> None:
        if not DEVICE_PATTERN.match(self.device):
            raise _invalid("device", f"{self.device!r} is not auto, cpu, mps, cuda or cuda:N")
        if self.cpus is not None and not re.match(CPUS_PATTERN, self.cpus):
            raise _invalid("cpus", f"{self.cpus!r} is not auto or a list of CPUs like 0,2-3")
        if self.steps is not None and self.epochs is not None and self.dataset_size is None:
            raise _invalid("steps", "give --steps or --epochs, not both")
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise _invalid("optimizer", f"{self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        _check_language(workload, self)
        if self.image_size is not None:
            _check_image_size(workload, self.image_size)
        if (self.depth is not None or self.width is not None) and not workload.parametric:
            raise _invalid(
                "depth",
                f"{workload.name} has a fixed shape; --depth and --width are for the "
                "param-* workloads (dlbench list)",
            )
        multiple = workload.width_multiple
        if self.width is not None and self.width % multiple:
            raise _invalid(
                "width",
                f"{workload.name}'s width is whole {multiple}-wide attention heads: give a "
                f"multiple of {multiple} (e.g. {max(multiple, self.width // multiple * multiple)})",
            )
        if (self.stage_from is None) != (self.stage_to is None):
            raise _invalid("stage_from", "staging needs both --stage-from and --stage-to")
        if self.stage_from is not None and self.data in ("synthetic", "digits", "stdlib"):
            raise _invalid(
                "stage_from",
                f"--data {self.data} has no files to stage; give --data a folder "
                "inside --stage-from",
            )

    def _check_run_length(self) -> None:
        """--target-accuracy, --until-stable and --max-time against --steps / --epochs."""
        if self.target_accuracy is not None:
            if self.data == "synthetic":
                raise _invalid(
                    "target_accuracy",
                    "synthetic labels are random, no accuracy can be reached; "
                    "give --data digits or a real dataset",
                )
            if self.steps is not None or self.dataset_size is not None:
                raise _invalid(
                    "target_accuracy",
                    "trains whole epochs until the target; cap it with "
                    "--epochs, not --steps or --dataset-size",
                )
        if self.until_stable is not None and (
            self.timed_epochs is not None or self.target_accuracy is not None
        ):
            raise _invalid(
                "until_stable",
                "adds timed steps until the interval is narrow enough; it cannot "
                "be combined with --epochs or --target-accuracy (give --steps as the minimum)",
            )
        if self.max_time is not None and self.until_stable is None:
            raise _invalid("max_time", "caps --until-stable; give --until-stable P too")
        if self.steps is not None and self.steps <= self.warmup:
            raise _invalid(
                "steps",
                f"{self.steps} steps leave none to time after {self.warmup} warm-up "
                f"steps (--steps counts the warm-up too: give more than --warmup)",
            )

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
    def processes(self) -> int:
        """Processes of the run, all nodes together: the world size under torchrun."""
        return self.gpus * (self.nodes or 1)

    @property
    def timed_epochs(self) -> int | None:
        """Epochs the run itself trains. With --dataset-size, --epochs is a projection only."""
        return None if self.dataset_size is not None else self.epochs

    @property
    def architecture(self) -> dict[str, int]:
        """--depth and --width, as the builder of a parametric workload takes them."""
        return {k: v for k, v in (("depth", self.depth), ("width", self.width)) if v}

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


def _check_image_size(workload: WorkloadSpec, size: int) -> None:
    native = workload.input_shape[1]
    if not workload.resizable and size != native:
        raise _invalid(
            "image_size",
            f"{workload.name} is defined for {native}x{native} inputs only; "
            "the zoo models (dlbench list) take any --image-size",
        )
    multiple = workload.image_size_multiple
    if size % multiple:
        raise _invalid(
            "image_size",
            f"{workload.name} cuts images into {multiple}x{multiple} patches: the side must be "
            f"a multiple of {multiple} (e.g. {max(multiple, size // multiple * multiple)} or "
            f"{(size // multiple + 1) * multiple})",
        )
    if size < workload.min_image_size:
        raise _invalid(
            "image_size",
            f"{workload.name} needs inputs of at least "
            f"{workload.min_image_size}x{workload.min_image_size} (its feature maps vanish "
            "below that)",
        )


def _check_language(workload: WorkloadSpec, spec: RunSpec) -> None:
    """--seq-len and --vocab are a language model's; --image-size and --num-classes are not."""
    if workload.task != "language":
        if spec.seq_len is not None or spec.vocab is not None:
            raise _invalid(
                "seq_len" if spec.seq_len is not None else "vocab",
                f"{workload.name} is not a language model; --seq-len and --vocab are for "
                "gpt and param-transformer",
            )
        if spec.data == "stdlib":
            raise _invalid(
                "data",
                f"--data stdlib is text, for gpt and param-transformer; {workload.name} "
                "trains on images (--data synthetic, digits or a folder)",
            )
        return
    if spec.image_size is not None:
        raise _invalid(
            "image_size", f"{workload.name} reads token sequences: give --seq-len, not --image-size"
        )
    if spec.num_classes is not None and spec.num_classes != (spec.vocab or spec.num_classes):
        raise _invalid("num_classes", f"{workload.name} has a vocabulary: give --vocab only")
    if spec.num_classes is not None and spec.vocab is None:
        raise _invalid(
            "num_classes", f"{workload.name} predicts tokens: give --vocab, not --num-classes"
        )
    if spec.data == "digits":
        raise _invalid(
            "data", f"{workload.name} trains on text: --data stdlib is the text always there"
        )


def check_tag(key: str, value: str) -> None:
    """A tag's key is a short name (it is typed again in --tag and --by tags.KEY); its value is
    text of bounded length."""
    if not TAG_KEY_PATTERN.match(key) or len(key) > 64:
        raise _invalid(
            "tags", f"tag key {key[:80]!r} must be 1 to 64 letters, digits, '_', '.', '-'"
        )
    if len(value) > MAX_TAG_VALUE:
        raise _invalid("tags", f"tag {key}: its value is longer than {MAX_TAG_VALUE} characters")


def parse_tags(pairs: list[str] | None) -> dict[str, str]:
    """``["key=value", ...]`` from --tag options."""
    tags: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--tag {pair!r} is not key=value", "e.g. --tag cluster=bridges")
        check_tag(key.strip(), value.strip())
        tags[key.strip()] = value.strip()
    return tags


def build_spec(**options: Any) -> RunSpec:
    """Validate options into a resolved RunSpec, or raise one ConfigError line."""
    try:
        return RunSpec(**options).resolved()
    except ValidationError as exc:
        raise _config_error(exc) from None


_OPTION_NAMES = {"tags": "--tag"}


def _option(field: str) -> str:
    return _OPTION_NAMES.get(field, "--" + field.replace("_", "-"))


def _invalid(field: str, message: str) -> ConfigError:
    """A value that fails a check across fields: the error names the field and its option.
    Raised inside validators, a ConfigError passes through pydantic unwrapped."""
    option = _option(field)
    return ConfigError(f"{option}: {message}", field=field, option=option)


def _config_error(exc: ValidationError) -> ConfigError:
    """Pydantic's first error (a single field's type or bound) as one ConfigError."""
    first = exc.errors()[0]
    # A nested ConfigError (unknown workload, bad dataset) keeps its own words and hint.
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):
        return cause
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    location = [str(part) for part in first.get("loc", ())]
    if not location:
        return ConfigError(message)
    return _invalid(location[0], message)

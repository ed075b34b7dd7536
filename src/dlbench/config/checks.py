"""The checks of a run's options that span fields, and the one-line errors they raise."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from dlbench.config.limits import (
    CPUS_PATTERN,
    DEVICE_PATTERN,
    MAX_TAG_VALUE,
    OPTIMIZERS,
    TAG_KEY_PATTERN,
)
from dlbench.config.option import cli_option
from dlbench.errors import ConfigError
from dlbench.frameworks import FRAMEWORKS, PRECISIONS
from dlbench.workloads import WorkloadSpec, frameworks_of
from dlbench.workloads.llama_configs import LLAMA_CONFIGS


def check_framework(spec: Any, workload: WorkloadSpec) -> None:
    if spec.framework not in FRAMEWORKS:
        raise invalid("framework", f"{spec.framework!r} is not one of {', '.join(FRAMEWORKS)}")
    if spec.precision not in PRECISIONS:
        raise invalid("precision", f"{spec.precision!r} is not one of {', '.join(PRECISIONS)}")
    runs = FRAMEWORKS[spec.framework].precisions
    if spec.precision not in runs:
        raise invalid(
            "precision",
            f"--framework {spec.framework} runs {', '.join(runs)}, not {spec.precision} "
            "(TF32 is a PyTorch/cuDNN setting)",
        )
    if spec.framework not in frameworks_of(workload):
        raise invalid(
            "framework",
            f"workload {workload.name} has no {spec.framework} model (it runs on "
            f"{', '.join(frameworks_of(workload))})",
        )
    if spec.framework != "pytorch" and (spec.processes > 1 or spec.compile or spec.channels_last):
        raise invalid(
            "framework",
            f"--gpus N and --nodes N (DDP), --compile and --channels-last are PyTorch's; "
            f"--framework {spec.framework} runs one process, compiled by XLA where the "
            "backend does, channels-last already",
        )


def check_options(spec: Any, workload: WorkloadSpec) -> None:
    if not DEVICE_PATTERN.match(spec.device):
        raise invalid("device", f"{spec.device!r} is not auto, cpu, mps, cuda or cuda:N")
    if spec.cpus is not None and not re.match(CPUS_PATTERN, spec.cpus):
        raise invalid("cpus", f"{spec.cpus!r} is not auto or a list of CPUs like 0,2-3")
    if spec.steps is not None and spec.epochs is not None and spec.dataset_size is None:
        raise invalid("steps", "give --steps or --epochs, not both")
    if spec.optimizer is not None and spec.optimizer not in OPTIMIZERS:
        raise invalid("optimizer", f"{spec.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    check_language(workload, spec)
    if spec.image_size is not None:
        check_image_size(workload, spec.image_size)
    if (spec.depth is not None or spec.width is not None) and not workload.parametric:
        raise invalid(
            "depth",
            f"{workload.name} has a fixed shape; --depth and --width are for the "
            "param-* workloads (dlbench list)",
        )
    check_heads(spec, workload)
    check_generation(spec, workload)
    multiple = workload.width_multiple
    if spec.width is not None and spec.width % multiple:
        raise invalid(
            "width",
            f"{workload.name}'s width is whole {multiple}-wide attention heads: give a "
            f"multiple of {multiple} (e.g. {max(multiple, spec.width // multiple * multiple)})",
        )
    if (spec.stage_from is None) != (spec.stage_to is None):
        raise invalid("stage_from", "staging needs both --stage-from and --stage-to")
    if spec.stage_from is not None and spec.data in ("synthetic", "digits", "stdlib"):
        raise invalid(
            "stage_from",
            f"--data {spec.data} has no files to stage; give --data a folder inside --stage-from",
        )


def check_heads(spec: Any, workload: WorkloadSpec) -> None:
    """--heads and --kv-heads are a llama workload's; with --width they must split evenly."""
    if not workload.grouped_attention:
        if spec.heads is not None or spec.kv_heads is not None:
            raise invalid(
                "heads" if spec.heads is not None else "kv_heads",
                f"{workload.name} does not take --heads or --kv-heads: they are for the llama "
                "workloads (gpt's heads are --width / 64)",
            )
        return
    config = LLAMA_CONFIGS[workload.name].with_overrides(
        spec.depth, spec.width, spec.heads, spec.kv_heads
    )
    problem = config.problem()
    if problem:
        raise invalid("kv_heads" if "kv-heads" in problem else "heads", problem)


def check_generation(spec: Any, workload: WorkloadSpec) -> None:
    """--prompt-len and --gen-len: a model with a KV cache, one process, inside its context."""
    if spec.gen_len is None and spec.prompt_len is None:
        return
    if spec.gen_len is None or spec.prompt_len is None:
        raise invalid("gen_len", "give both --prompt-len and --gen-len (dlbench generate does)")
    if not workload.generates:
        raise invalid(
            "gen_len",
            f"{workload.name} keeps no KV cache to generate with; dlbench generate runs gpt, "
            "param-transformer and the llama workloads (dlbench list)",
        )
    if spec.framework != "pytorch":
        raise invalid("framework", "dlbench generate runs on pytorch: its models keep a KV cache")
    if spec.processes > 1:
        raise invalid("gen_len", "generation runs in one process: leave out --gpus and --nodes")
    context = spec.seq_len or workload.input_shape[1]
    if spec.prompt_len + spec.gen_len > context:
        raise invalid(
            "prompt_len",
            f"--prompt-len {spec.prompt_len} + --gen-len {spec.gen_len} is past the model's "
            f"context of {context} tokens (--seq-len): give a shorter prompt or a longer "
            "--seq-len",
        )


def check_run_length(spec: Any) -> None:
    """--target-accuracy, --until-stable and --max-time against --steps / --epochs."""
    if spec.target_accuracy is not None:
        if spec.data == "synthetic":
            raise invalid(
                "target_accuracy",
                "synthetic labels are random, no accuracy can be reached; "
                "give --data digits or a real dataset",
            )
        if spec.steps is not None or spec.dataset_size is not None:
            raise invalid(
                "target_accuracy",
                "trains whole epochs until the target; cap it with "
                "--epochs, not --steps or --dataset-size",
            )
    if spec.until_stable is not None and (
        spec.timed_epochs is not None or spec.target_accuracy is not None
    ):
        raise invalid(
            "until_stable",
            "adds timed steps until the interval is narrow enough; it cannot "
            "be combined with --epochs or --target-accuracy (give --steps as the minimum)",
        )
    if spec.max_time is not None and spec.until_stable is None:
        raise invalid("max_time", "caps --until-stable; give --until-stable P too")
    if spec.steps is not None and spec.steps <= spec.warmup:
        raise invalid(
            "steps",
            f"{spec.steps} steps leave none to time after {spec.warmup} warm-up "
            f"steps (--steps counts the warm-up too: give more than --warmup)",
        )


def check_image_size(workload: WorkloadSpec, size: int) -> None:
    native = workload.input_shape[1]
    if not workload.resizable and size != native:
        raise invalid(
            "image_size",
            f"{workload.name} is defined for {native}x{native} inputs only; "
            "the zoo models (dlbench list) take any --image-size",
        )
    multiple = workload.image_size_multiple
    if size % multiple:
        raise invalid(
            "image_size",
            f"{workload.name} cuts images into {multiple}x{multiple} patches: the side must be "
            f"a multiple of {multiple} (e.g. {max(multiple, size // multiple * multiple)} or "
            f"{(size // multiple + 1) * multiple})",
        )
    if size < workload.min_image_size:
        raise invalid(
            "image_size",
            f"{workload.name} needs inputs of at least "
            f"{workload.min_image_size}x{workload.min_image_size} (its feature maps vanish "
            "below that)",
        )


def check_language(workload: WorkloadSpec, spec: Any) -> None:
    """--seq-len and --vocab are a language model's; --image-size and --num-classes are not."""
    if workload.task != "language":
        if spec.seq_len is not None or spec.vocab is not None:
            raise invalid(
                "seq_len" if spec.seq_len is not None else "vocab",
                f"{workload.name} is not a language model; --seq-len and --vocab are for "
                "the language models (gpt, llama, ...: dlbench list)",
            )
        if spec.data == "stdlib":
            raise invalid(
                "data",
                f"--data stdlib is text, for the language models; {workload.name} "
                "trains on images (--data synthetic, digits or a folder)",
            )
        return
    if spec.image_size is not None:
        raise invalid(
            "image_size", f"{workload.name} reads token sequences: give --seq-len, not --image-size"
        )
    if spec.num_classes is not None and spec.num_classes != (spec.vocab or spec.num_classes):
        raise invalid("num_classes", f"{workload.name} has a vocabulary: give --vocab only")
    if spec.num_classes is not None and spec.vocab is None:
        raise invalid(
            "num_classes", f"{workload.name} predicts tokens: give --vocab, not --num-classes"
        )
    if spec.data == "digits":
        raise invalid(
            "data", f"{workload.name} trains on text: --data stdlib is the text always there"
        )


def check_tag(key: str, value: str) -> None:
    """A tag's key is a short name (it is typed again in --tag and --by tags.KEY); its value is
    text of bounded length."""
    if not TAG_KEY_PATTERN.match(key) or len(key) > 64:
        raise invalid(
            "tags", f"tag key {key[:80]!r} must be 1 to 64 letters, digits, '_', '.', '-'"
        )
    if len(value) > MAX_TAG_VALUE:
        raise invalid("tags", f"tag {key}: its value is longer than {MAX_TAG_VALUE} characters")


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


def _option(field: str) -> str:
    """The command-line option that sets ``field``, as RunSpec declares it."""
    from dlbench.config import RunSpec  # the package that holds these checks' model

    info = RunSpec.model_fields.get(field)
    declared = cli_option(field, info) if info is not None else None
    return declared.flags[0] if declared else "--" + field.replace("_", "-")


def invalid(field: str, message: str) -> ConfigError:
    """A value that fails a check across fields: the error names the field and its option.
    Raised inside validators, a ConfigError passes through pydantic unwrapped."""
    option = _option(field)
    return ConfigError(f"{option}: {message}", field=field, option=option)


def config_error(exc: ValidationError) -> ConfigError:
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
    return invalid(location[0], message)

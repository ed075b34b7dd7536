"""Plain result records: frozen dataclasses with units in their names.

Everything may import this module; it imports nothing of dlbench and no framework. Records
neither print nor save themselves: rendering lives in the CLI, persistence in ``store/``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

RunStatus = Literal["running", "ok", "oom", "failed", "interrupted", "timeout", "lost"]
FINAL_STATUSES: tuple[str, ...] = ("ok", "oom", "failed", "interrupted", "timeout")
# A run's id as dlbench makes it: its start in UTC to the second, then 6 random hex digits.
RUN_ID_PATTERN = r"^\d{8}-\d{6}-[0-9a-f]{6}$"
# A run's process (and `dlbench run`) exits with the code of its status.
EXIT_CODES = {"ok": 0, "failed": 1, "oom": 3, "timeout": 4, "interrupted": 130}
# The run's result is not in the database asked for (a full disk, the file deleted or replaced
# during the run): it is in a saved-run file instead, and whoever called must know.
NOT_STORED = 5


@dataclass(frozen=True)
class StepRecord:
    """One timed training step. ``step_time_s`` includes ``data_wait_s``."""

    step: int
    epoch: int
    step_time_s: float
    data_wait_s: float


@dataclass(frozen=True)
class SpeedStats:
    """Statistics over the timed steps, speeds s_i = batch_size / t_i (images/s).

    mean_speed is batch_size / mean(t_i) (the harmonic mean of the s_i, i.e. what the
    hardware delivers over the phase), not mean(s_i).
    """

    timed_steps: int
    mean_step_time_s: float
    median_step_time_s: float
    p95_step_time_s: float
    mean_speed: float
    median_speed: float
    p5_speed: float
    p95_speed: float
    speed_stderr: float | None  # sample std(s_i) / sqrt(n); None with fewer than 2 steps
    speed_jitter: float  # 1.4826 x median(|s_i - median(s)|), a robust std of the speed
    mean_data_wait_s: float
    data_wait_fraction: float  # sum(data wait) / sum(step time)
    # 95% interval of mean_speed, 0 <= low <= mean_speed <= high; None with fewer than 2 steps
    speed_ci95: tuple[float, float] | None = None


@dataclass(frozen=True)
class InferenceStats:
    """The inference phase: checkpoint reload, prediction over the test set, latency."""

    load_time_s: float  # fresh model built, checkpoint read and placed on the device
    predict_time_s: float  # whole test set, batches from the same input pipeline
    predict_images: int
    predict_speed: float  # images/s over predict_time_s
    latency_p50_ms: float  # one image at a time
    latency_p95_ms: float
    latency_samples: int
    batch_latency_p50_ms: float  # one batch of batch_latency_size images at a time
    batch_latency_p95_ms: float
    batch_latency_size: int


@dataclass(frozen=True, slots=True)
class TelemetrySample:
    """One reading of one metric. ``t_s`` is monotonic seconds since sampling began."""

    t_s: float
    wall: float  # Unix time, seconds
    phase: str
    metric: str  # units in the name: cpu.util_percent, gpu0.power_w, disk.sda.read_bytes_per_s
    value: float


@dataclass(frozen=True)
class ModelStats:
    """What the model is, measured on the real module once per run."""

    params: int
    trainable_params: int
    flops_per_step: int | None  # forward + backward of one training batch
    flops_note: str | None  # how it was counted, or why it was not
    layers: dict[str, int]  # weight-bearing layer types -> count (Conv2d: 53, Linear: 1)
    input_shape: tuple[int, int, int]
    num_classes: int
    activation_bytes: int | None = None  # outputs of every layer in one forward pass
    width: int | None = None  # first convolution's channels, or first linear layer's units
    # the scaled_dot_product_attention kernel(s) the step called: "flash", "memory-efficient",
    # "cudnn", "math", "flash (CPU)"; None without attention
    attention_backend: str | None = None


@dataclass(frozen=True)
class TimeToAccuracy:
    """DAWNBench/MLPerf's metric: training until validation accuracy reaches the target."""

    target: float
    reached: bool
    epochs: int  # epochs trained (the one that reached the target included)
    train_time_s: float  # training steps only, from the first step (no warm-up excluded)
    wall_time_s: float  # training and the evaluations between epochs
    accuracy_by_epoch: tuple[float, ...]


@dataclass(frozen=True)
class Feasibility:
    """The seeds' question: does it fit, and how long would the whole training take?"""

    fits: bool
    batch_size: int
    dataset_size: int
    epochs: int
    steps_per_epoch: int  # ceil(dataset_size / batch_size)
    projected_train_s: float | None  # epochs x steps x mean step time (training steps only)


@dataclass(frozen=True)
class StagingStats:
    """The dataset copy made before a run (``--stage-from``/``--stage-to``)."""

    source: str
    destination: str
    bytes: int
    files: int
    seconds: float  # copy and sync to the device
    bytes_per_s: float


@dataclass(frozen=True)
class GpuProcess:
    """A compute process on a GPU that is not the run's own."""

    gpu: int  # NVML index
    pid: int
    name: str | None  # None where the pid is not visible from here (another container)
    memory_bytes: int | None


@dataclass(frozen=True)
class Interference:
    """What other work took of the machine during a window (a run's timed phase)."""

    window_s: float
    usable_cores: float  # CPUs the run may use (affinity, cgroup quota)
    busy_cores: float  # busy time of those CPUs, in cores (steal not included)
    own_cpu_cores: float  # the run's process tree, children that ended included
    foreign_cpu_cores: float  # busy_cores - own_cpu_cores, at least 0
    resolution_cores: float  # the counters' 10 ms ticks make the CPU figures this uncertain
    steal_percent: float | None  # of the usable CPUs' time; None where not reported
    load_per_core: float | None  # 1-minute load average at the end / usable cores
    gpus: tuple[int, ...] = ()  # the run's GPUs (NVML indices); () on the CPU
    other_gpu_processes: tuple[GpuProcess, ...] | None = None  # None: not known (see note)
    gpu_note: str | None = None  # why other GPU processes are not known


@dataclass(frozen=True)
class Quality:
    """How clean a run's measurement was, and why (see measure/quality.py)."""

    verdict: Literal["clean", "noisy", "contended"]
    reasons: tuple[str, ...]  # one sentence each, with the numbers
    foreign_cpu_cores: float | None
    steal_percent: float | None
    other_gpu_processes: tuple[GpuProcess, ...] | None
    usable_cores: float | None = None
    own_cpu_cores: float | None = None
    load_per_core: float | None = None
    window_s: float | None = None


@dataclass(frozen=True)
class Stability:
    """``--until-stable P``: timed steps were added until the 95% interval of the mean step
    time was within P% of it, or the time ran out."""

    target_percent: float
    reached_percent: float | None  # the interval's half-width / mean step time, in percent
    stable: bool
    max_time_s: float


@dataclass(frozen=True)
class RunResult:
    """What one benchmark run measured. Stored whole; ``steps`` goes to its own table."""

    run_id: str
    status: RunStatus
    error: str | None = None
    phase_reached: str = "setup"
    speed: SpeedStats | None = None
    throughput_e2e: float | None = None  # images / wall time of the timed phase, one sync at end
    images_trained: int = 0
    train_time_s: float | None = None
    val_time_s: float | None = None
    total_time_s: float | None = None  # train + validation
    accuracy: float | None = None  # a language model's: next-token accuracy
    val_loss: float | None = None  # a language model's: per token (nats)
    map50: float | None = None  # detection: mean average precision at IoU 0.5
    # language models: sequences x seq_len / step time, from mean_speed and its interval
    tokens_per_s: float | None = None
    tokens_per_s_ci95: tuple[float, float] | None = None
    perplexity: float | None = None  # exp(val_loss)
    final_train_loss: float | None = None
    warmup_time_s: float | None = None  # warm-up steps, torch.compile's compilation included
    setup_time_s: float | None = None  # process start to model ready: imports, data, model
    model: ModelStats | None = None
    achieved_tflops: float | None = None  # flops_per_step / mean step time
    peak_tflops: float | None = None  # the device's dense peak at the run's precision
    peak_source: str | None = None  # the datasheet, the estimate, or why there is none
    mfu: float | None = None  # achieved / peak
    time_to_accuracy: TimeToAccuracy | None = None
    feasibility: Feasibility | None = None
    staging: StagingStats | None = None
    ranks: tuple[dict[str, Any], ...] = ()  # per-rank step statistics of a multi-process run
    collectives: tuple[dict[str, Any], ...] = ()  # a collectives run's sizes, measured
    descriptors: dict[str, Any] | None = None  # what the calculator learns from
    inference: InferenceStats | None = None
    peak_memory_bytes: int | None = None
    peak_memory_source: str | None = None
    wall_time_s: float | None = None  # the whole run or monitored command, start to end
    exit_code: int | None = None  # of a monitored command
    telemetry: dict[str, Any] | None = None  # per-phase summary, see telemetry/summary.py
    quality: Quality | None = None  # interference during the timed phase
    stability: Stability | None = None
    profile: dict[str, Any] | None = None  # where a step's time goes, see engines/pytorch/profile
    # dlbench generate: per-token figures over the timed requests, see measure/generation.py
    generation: dict[str, Any] | None = None
    # dlbench serve-bench: a server's figures from its client, see measure/serving.py
    serving: dict[str, Any] | None = None
    unsaved_path: str | None = None  # the JSON file the result went to when the store failed
    steps: tuple[StepRecord, ...] = field(default=(), repr=False)

    def to_dict(self, with_steps: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not with_steps:
            out.pop("steps")
        return out

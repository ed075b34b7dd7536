"""Tables and panels for stored runs, the hardware and the workloads (Rich renderables)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from dlbench.measure.stats import MIN_RELIABLE_STEPS
from dlbench.measure.units import fmt, fmt_bytes
from dlbench.records import InferenceStats, StepRecord
from dlbench.render.console import hms, plain, status_text, table, text
from dlbench.render.generation import generation_rows
from dlbench.render.serving import serving_rows
from dlbench.store.stored import StoredRun

QUALITY_STYLE = {"clean": "green", "noisy": "yellow", "contended": "red"}


def speed_text(summary: StoredRun) -> Text | None:
    """Mean speed and its 95% interval; marked where too few steps make it unreliable. A
    server's: its requests/s over the benchmark (one figure, no interval)."""
    if summary.serving is not None:
        return Text(f"{summary.serving.stats.requests_per_s:,.2f} served")
    mean, interval = summary.mean_speed, summary.speed_ci95
    if mean is None:
        return None
    if not interval:
        return Text(f"{mean:,.1f}")
    text = Text(f"{mean:,.1f} ({_bound(interval[0])}–{_bound(interval[1])})")
    steps = summary.timed_steps or 0
    if steps < MIN_RELIABLE_STEPS:
        text.append(f" unreliable: {steps} steps", style="yellow")
    return text


def _bound(value: float) -> str:
    """An interval's end, to the precision it has: whole images/s from 100 up."""
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def quality_word(summary: StoredRun) -> Text | None:
    verdict = summary.quality_verdict
    if verdict is None:
        return None
    return Text(verdict, style=QUALITY_STYLE.get(verdict, "white"))


def quality_lines(summary: StoredRun) -> str:
    """The run's quality verdict and its reasons, one per line."""
    quality = summary.quality
    if not quality:
        if summary.kind == "monitor" or summary.timed_steps:
            return "quality: not measured (a run stored by an older dlbench)"
        return "quality: not measured (the run ended before its timed phase)"
    word = quality_word(summary)
    lines = [f"quality: {word.markup if word else plain(quality.verdict)}"]
    lines += [f"  - {plain(reason)}" for reason in quality.reasons or []]
    return "\n".join(lines)


def input_text(summary: StoredRun) -> str | None:
    """What one item of the run is: "64 px" (a square image's side), "1024 tok" (a
    sequence), None for a monitor run."""
    if summary.is_monitor:
        return None
    if summary.serving is not None:
        return f"{summary.serving.gen_len} tok out"
    if summary.seq_len:
        return f"{summary.seq_len} tok"
    side = summary.config.get("image_size")
    return f"{side} px" if isinstance(side, int) and side > 0 else None


def _input_long(summary: StoredRun) -> str | None:
    """ "sequences of 1024 tokens" or "3x64x64 images" (channels x side x side)."""
    if summary.seq_len and summary.kind == "generate":
        return f"a context of {summary.seq_len:,} tokens (--seq-len)"
    if summary.seq_len:
        return f"sequences of {summary.seq_len:,} tokens"
    side = summary.config.get("image_size")
    shape = summary.model.input_shape if summary.model else ()
    if len(shape) == 3:
        return f"{'x'.join(map(str, shape))} images"
    return f"{side}x{side} images" if isinstance(side, int) and side > 0 else None


def _stability(summary: StoredRun) -> Text | None:
    found = summary.stability
    if not found:
        return None
    reached = found.reached_percent
    shown = "n/a" if reached is None else f"{reached:.2f}%"
    if found.stable:
        return Text(
            f"95% interval ±{shown} of the mean step time (asked ±{found.target_percent:g}%)"
        )
    return Text(
        f"not reached in {found.max_time_s:g} s: ±{shown} of the mean step time "
        f"(asked ±{found.target_percent:g}%)",
        style="yellow",
    )


def ms_text(seconds: float | None) -> str | None:
    return None if seconds is None else f"{seconds * 1e3:,.2f}"


def _tokens(summary: StoredRun) -> str | None:
    """A language model's tokens/s and its 95% interval."""
    mean, interval = summary.tokens_per_s, summary.tokens_per_s_ci95
    if mean is None:
        return None
    if not interval:
        return f"{mean:,.0f}"
    return f"{mean:,.0f} ({interval[0]:,.0f}–{interval[1]:,.0f})"


def _language_eval(summary: StoredRun) -> Text | None:
    if summary.seq_len is None or summary.val_loss is None:
        return None
    perplexity = f"{summary.perplexity:,.2f}" if summary.perplexity is not None else "n/a"
    text = f"{summary.val_loss:.4f} / {perplexity}"
    return Text(f"{text} (synthetic)", style="dim") if summary.data == "synthetic" else Text(text)


def accuracy_text(summary: StoredRun) -> Text | None:
    if summary.accuracy_words is None:
        return None
    words, learned = summary.accuracy_words
    return Text(words) if learned else Text(words, style="dim")


def _execution(summary: StoredRun) -> str:
    """Precision, memory layout and optimiser: always all three, in that order."""
    config = summary.config
    precision = str(summary.precision)
    layout = "channels-last" if config.get("channels_last") else "channels-first"
    if summary.seq_len:
        layout = f"{summary.seq_len} tokens per sequence"
        backend = summary.model.attention_backend if summary.model else None
        layout += f", {backend} attention" if backend else ""
    if config.get("compile"):
        layout += ", compiled"
    optimizer = config.get("optimizer")
    optimiser = f"{optimizer} lr {config.get('lr')}" if optimizer else "the workload's optimiser"
    return f"{precision}, {layout}, {optimiser}"


def _flops(summary: StoredRun) -> str | None:
    params, flops = summary.params, summary.flops_per_step
    if params is None:
        return None
    flops_text = f"{flops / 1e9:,.2f} GFLOP" if flops else "not counted"
    return f"{params / 1e6:,.2f} M / {flops_text}"


def _mfu(summary: StoredRun) -> str | None:
    achieved = summary.achieved_tflops
    if achieved is None:
        return None
    if summary.mfu is None:
        return f"{achieved:,.3f} (MFU n/a: {summary.peak_source})"
    return f"{achieved:,.3f} ({summary.mfu:.1%} of {summary.peak_tflops:,.3f} peak)"


def _tta(summary: StoredRun) -> str | Text | None:
    tta = summary.time_to_accuracy
    if not tta:
        return None
    if tta.reached:
        return (
            f"{tta.target:.3f} reached in {tta.epochs} epoch(s): "
            f"{tta.train_time_s:,.1f} s training, {tta.wall_time_s:,.1f} s with evaluation"
        )
    best = max(tta.accuracy_by_epoch, default=0.0)
    return Text(
        f"{tta.target:.3f} not reached in {tta.epochs} epoch(s), best {best:.4f}", style="yellow"
    )


def feasibility_line(summary: StoredRun) -> str | None:
    """The seeds' question in one sentence, for a run given --dataset-size."""
    plan = summary.feasibility
    if not plan:
        return None
    batch, epochs, size = plan.batch_size, plan.epochs, plan.dataset_size
    if not plan.fits:
        return (
            f"this model does not fit at batch {batch} on {summary.device}: "
            f"find the largest batch that does with `dlbench maxbatch {summary.workload}`"
        )
    return (
        f"this model fits at batch {batch}; {epochs} epoch(s) of {size:,} images would take "
        f"{hms(plan.projected_train_s)} at the measured speed "
        f"({plan.steps_per_epoch:,} steps of {(summary.mean_step_time_s or 0) * 1e3:,.1f} ms)"
    )


_OPTIONAL_ROWS = (
    "parameters / FLOPs per step",
    "achieved TFLOP/s (MFU)",
    "time to accuracy",
    "until stable",
    "measurement quality",
    "tokens/s (95% CI)",
    "validation loss / perplexity",
)


def _speed_rows(summary: StoredRun) -> list[tuple[str, Any]]:
    unit = summary.speed_unit
    return [
        (f"mean speed ({unit}, 95% CI)", speed_text(summary)),
        ("tokens/s (95% CI)", _tokens(summary)),
        ("measurement quality", quality_word(summary)),
        (
            f"median / p5 / p95 speed ({unit})",
            _triple(summary, "median_speed", "p5_speed", "p95_speed"),
        ),
        (f"speed jitter ({unit})", fmt(summary.speed_jitter)),
        ("mean step time (ms)", ms_text(summary.mean_step_time_s)),
        ("data wait (% of step time)", fmt(_pct(summary.data_wait_fraction))),
        (f"end-to-end throughput ({unit})", fmt(summary.throughput_e2e)),
    ]


def run_panel(summary: StoredRun, detail: bool = False) -> Group:
    """The figures of one run as a Metric | Value table."""
    if summary.is_monitor:
        return monitor_panel(summary, detail)
    rows: list[tuple[str, Any]] = [
        ("run", summary.run_id),
        ("status", status_text(summary.status)),
        *(_serving_rows(summary) if summary.kind == "serving" else _model_rows(summary)),
    ]
    if summary.error:
        rows.append(("error", text(summary.error, "red")))
    if detail:
        rows += [
            ("created", summary.created_at),
            ("finished", summary.finished_at),
            ("tags", ", ".join(f"{k}={v}" for k, v in (summary.tags or {}).items())),
        ]
    parts: list[Any] = [
        table(
            None,
            ("Metric", "Value"),
            [r for r in rows if r[1] is not None or r[0] not in _OPTIONAL_ROWS],
        )
    ]
    plan = feasibility_line(summary)
    if plan:
        parts.append(text(plan, "yellow" if "does not fit" in plan else ""))
    return Group(*parts)


def _model_rows(summary: StoredRun) -> list[tuple[str, Any]]:
    """A run of a model on this machine: training or generation."""
    return [
        ("workload", f"{summary.workload} ({summary.dataset}, {summary.data} data)"),
        ("input", _input_long(summary)),
        ("framework", summary.framework),
        ("device", f"{summary.device} — {summary.device_name}"),
        ("batch size", summary.batch_size),
        *(_generating_rows(summary) if summary.kind == "generate" else _training_rows(summary)),
        (
            f"peak memory ({summary.peak_memory_source or 'n/a'})",
            fmt_bytes(summary.peak_memory_bytes),
        ),
    ]


def _serving_rows(summary: StoredRun) -> list[tuple[str, Any]]:
    """A server measured from this machine, its client: no model here, no device of ours."""
    rows = serving_rows(summary)
    if not rows:  # it ended before any request did: what it was asked
        asked = f"{summary.config.get('url')} ({summary.config.get('api')} API)"
        rows = [("server", text(f"{asked}, model {summary.workload}"))]
    if summary.hardware:
        cpu = (summary.hardware.get("cpu") or {}).get("model")
        rows.append(("client machine", text(f"{summary.hardware.get('hostname')}, {cpu}")))
    return rows


def _training_rows(summary: StoredRun) -> list[tuple[str, Any]]:
    return [
        ("precision, layout, optimiser", _execution(summary)),
        ("parameters / FLOPs per step", _flops(summary)),
        ("timed steps", summary.timed_steps),
        ("until stable", _stability(summary)),
        *_speed_rows(summary),
        ("achieved TFLOP/s (MFU)", _mfu(summary)),
        ("warm-up (s)", fmt(summary.warmup_time_s, 2)),
        (
            "train / validation / total (s)",
            _triple(summary, "train_time_s", "val_time_s", "total_time_s", digits=2),
        ),
        ("next-token accuracy" if summary.seq_len else "accuracy", accuracy_text(summary)),
        ("validation loss / perplexity", _language_eval(summary)),
        ("time to accuracy", _tta(summary)),
        *_inference_rows(summary.inference),
    ]


def _generating_rows(summary: StoredRun) -> list[tuple[str, Any]]:
    """A ``dlbench generate`` run: no training, no optimiser; its requests are its steps."""
    params = summary.params
    return [
        ("precision", summary.precision),
        ("parameters", f"{params / 1e6:,.2f} M" if params else None),
        ("timed requests", summary.timed_steps),
        *_speed_rows(summary),
        *generation_rows(summary),
        ("warm-up (s)", fmt(summary.warmup_time_s, 2)),
    ]


def monitor_panel(run: StoredRun, detail: bool = False) -> Group:
    """A ``dlbench monitor`` run: the command, how long it ran and how it ended (no training
    figures: it trained nothing dlbench timed)."""
    wall = run.wall_time_s
    rows: list[tuple[str, Any]] = [
        ("run", run.run_id),
        ("status", status_text(run.status)),
        ("command", run.command),
        ("working directory", run.config.get("cwd")),
        ("wall time", None if wall is None else f"{hms(wall)} ({wall:,.1f} s)"),
        ("exit code", run.exit_code),
        ("measurement quality", quality_word(run)),
        ("sampled every (s)", run.config.get("interval")),
    ]
    if run.error:
        rows.append(("error", text(run.error, "red")))
    if detail:
        rows += [
            ("created", run.created_at),
            ("finished", run.finished_at),
            ("tags", ", ".join(f"{k}={v}" for k, v in run.tags.items())),
        ]
    return Group(table(None, ("Metric", "Value"), rows))


def _inference_rows(inference: InferenceStats | None) -> list[tuple[str, Any]]:
    """The inference phase's rows: reload, test-set prediction, latencies."""
    i = inference
    if i is None:
        return [("inference", "not run")]
    return [
        ("model load (s)", fmt(i.load_time_s, 3)),
        ("predict test set (s)", fmt(i.predict_time_s, 3)),
        ("latency batch 1, p50 / p95 (ms)", _pair(i.latency_p50_ms, i.latency_p95_ms)),
        (
            f"latency batch {i.batch_latency_size}, p50 / p95 (ms)",
            _pair(i.batch_latency_p50_ms, i.batch_latency_p95_ms),
        ),
    ]


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100


def _pair(a: float | None, b: float | None, digits: int = 2) -> str | None:
    return None if a is None or b is None else f"{a:,.{digits}f} / {b:,.{digits}f}"


def _triple(summary: StoredRun, *names: str, digits: int = 1) -> str | None:
    values = [getattr(summary, n) for n in names]
    if all(v is None for v in values):
        return None
    return " / ".join("—" if v is None else f"{v:,.{digits}f}" for v in values)


def steps_table(steps: list[StepRecord], batch_size: int, unit: str = "img/s") -> Table:
    return table(
        "Timed steps",
        ("Step", "Epoch", "Step time (ms)", "Data wait (ms)", f"Speed ({unit})"),
        [
            (
                s.step,
                s.epoch,
                ms_text(s.step_time_s),
                ms_text(s.data_wait_s),
                fmt(batch_size / s.step_time_s if s.step_time_s else None),
            )
            for s in steps
        ],
    )

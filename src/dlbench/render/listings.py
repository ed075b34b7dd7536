"""What the CLI prints about this machine, dlbench's workloads, a run's telemetry, and the
tools (probe, maxbatch, folder inference)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Group
from rich.table import Table

from dlbench.measure.units import fmt, fmt_bytes
from dlbench.render.console import plain, table, text
from dlbench.store.measurements import TelemetrySummary
from dlbench.workloads import WorkloadSpec, frameworks_of

PER_CORE = ".core"
INFERENCE_ROWS_SHOWN = 50  # a long folder is summarised; --json has every image


def sysinfo_table(info: dict[str, Any]) -> Table:
    cpu, storage = info["cpu"], info["storage"]
    rows: list[tuple[str, Any]] = [
        ("Host", info["hostname"]),
        ("OS", info["os"]),
        ("CPU", f"{cpu['model']} ({cpu['architecture']})"),
        (
            "Cores / threads / usable",
            f"{cpu['physical_cores']} / {cpu['logical_cpus']} / {cpu['usable_cpus']}",
        ),
        ("Memory", fmt_bytes(info["memory_bytes"])),
        ("Swap", fmt_bytes(info["swap_bytes"])),
    ]
    for gpu in info.get("gpus") or []:
        rows.append(
            (
                f"GPU {gpu['index']}",
                f"{gpu['name']}, {fmt_bytes(gpu['memory_bytes'])}, compute capability "
                f"{gpu['compute_capability']}, driver {gpu['driver'] or 'unknown'}",
            )
        )
    if not info.get("gpus"):
        rows.append(("GPU", "none visible to torch"))
    rows += [
        ("CUDA / cuDNN", _cuda(info)),
        ("Python / torch", f"{info['python']} / {info.get('torch') or 'not installed'}"),
        ("Data storage", _storage(storage)),
    ]
    return table("Hardware", ("Component", "Description"), rows)


def _cuda(info: dict[str, Any]) -> str:
    """The CUDA torch was built for is not the machine's: without a GPU, say so."""
    cuda, cudnn = info.get("cuda"), info.get("cudnn")
    if not cuda:
        return "none (a CPU build of torch)"
    if not info.get("gpus"):
        return f"no GPU here (torch is built for CUDA {cuda})"
    return f"{cuda} / {cudnn or 'n/a'}"


def _storage(storage: dict[str, Any]) -> str:
    kind = {True: "rotational", False: "non-rotational (SSD/NVMe)", None: "type unknown"}
    device = storage.get("device") or "no block device"
    model = f" {storage['model']}" if storage.get("model") else ""
    return (
        f"{storage['path']} on {device}{model}, {kind[storage.get('rotational')]}, "
        f"{storage.get('filesystem') or '?'} at {storage.get('mountpoint') or '?'}"
    )


def workload_dict(w: WorkloadSpec) -> dict[str, Any]:
    return {
        "name": w.name,
        "description": w.description,
        "family": w.family,
        "input_shape": list(w.input_shape),
        "num_classes": w.num_classes,
        "default_batch_size": w.default_batch_size,
        "optimizer": w.optimizer.name,
        "lr": w.optimizer.lr,
        "datasets": list(w.datasets),
        "frameworks": frameworks_of(w),
        "task": w.task,
        "image_size": {"default": w.input_shape[1], "min": w.min_image_size}
        if w.resizable
        else None,
        "seq_len": w.input_shape[1] if w.task == "language" else None,
    }


def _input_text(w: WorkloadSpec) -> str:
    if w.task == "language":
        return f"{w.input_shape[1]} tokens (any), vocabulary {w.num_classes:,}"
    return "x".join(map(str, w.input_shape)) + (
        f" (any ≥{w.min_image_size})" if w.resizable else ""
    )


def workloads_table(workloads: Iterable[WorkloadSpec]) -> Table:
    return table(
        "Workloads",
        ("Workload", "Model", "Input", "Batch", "Optimizer", "Datasets", "Frameworks"),
        [
            (
                w.name,
                w.description,
                _input_text(w),
                w.default_batch_size,
                f"{w.optimizer.name} lr {w.optimizer.lr:g}",
                ", ".join(w.datasets),
                ", ".join(frameworks_of(w)),
            )
            for w in workloads
        ],
        optional=("Optimizer", "Frameworks", "Datasets", "Batch", "Input"),
    )


def telemetry_table(telemetry: TelemetrySummary | None, all_metrics: bool = False) -> Any:
    """Per phase, each metric's time-weighted mean and its maximum, then energy."""
    if not telemetry:
        return "no telemetry stored for this run"
    if not telemetry.enabled:
        return f"no telemetry: {plain(telemetry.reason)}"
    phases = telemetry.phases
    if not phases:
        return "telemetry was on, but no sample was stored"
    names = sorted({m for p in phases.values() for m in p.metrics})
    if not all_metrics:
        names = [m for m in names if PER_CORE not in m]
    rows: list[list[Any]] = []
    for metric in names:
        row: list[Any] = [metric]
        for phase in phases.values():
            stats = phase.metrics.get(metric)
            if stats is None:
                row.append(None)
            elif stats.mask is not None:  # a throttle metric: its reasons
                row.append(", ".join(stats.reasons) or "none")
            else:
                row.append(f"{_short(stats.mean or 0.0)} (max {_short(stats.max or 0.0)})")
        rows.append(row)
    rows.append(["energy (J)", *(fmt(p.total_energy_j, 1) for p in phases.values())])
    rows.append(["duration (s)", *(fmt(p.duration_s, 1) for p in phases.values())])
    # The sources below the table, not in its title: a title wraps to the table's width.
    sources = ", ".join(f"{k} {v}" for k, v in telemetry.sources.items())
    title = f"Telemetry every {telemetry.interval_s} s, mean (max) per phase"
    return Group(table(title, ("Metric", *phases), rows), text(f"sources: {sources}", "dim"))


def _short(value: float) -> str:
    magnitude = abs(value)
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if magnitude >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.1f}"


def probe_line(probe: Any) -> str:
    """One maxbatch probe as it finishes."""
    if probe.status == "ok":
        return (
            f"  batch {probe.batch_size:>6,}: [green]fits[/], peak "
            f"{fmt_bytes(probe.peak_memory_bytes)}, step {probe.step_time_s * 1e3:,.0f} ms"
        )
    if probe.status == "oom":
        return f"  batch {probe.batch_size:>6,}: [yellow]out of memory[/]"
    return (
        f"  batch {probe.batch_size:>6,}: [red]{plain(probe.status)}[/] {plain(probe.error or '')}"
    )


def maxbatch_panel(found: Any) -> str:
    limit = (
        f" under a {fmt_bytes(found.memory_limit_bytes)} limit" if found.memory_limit_bytes else ""
    )
    if found.max_batch_size is None:
        return (
            f"[red]{plain(found.workload)} does not fit at batch 1 on "
            f"{plain(found.device)}{limit}[/] "
            f"({len(found.probes)} probes)"
        )
    best = found.best
    capped = " (the --limit; larger may fit)" if found.capped else ""
    tokens = (
        f" sequences of {found.seq_len:,} tokens ({found.max_batch_size * found.seq_len:,} "
        "tokens a step)"
        if getattr(found, "seq_len", None)
        else ""
    )
    doing = "trains"
    if getattr(found, "gen_len", None):
        doing = f"generates {found.prompt_len:,} + {found.gen_len:,} tokens"
        kv = best.kv_cache_bytes if best else None
        tokens = f" sequences (KV cache {fmt_bytes(kv)})" if kv else " sequences"
    text = (
        f"largest batch that {doing}: [bold]{found.max_batch_size:,}[/]{tokens}{capped}, "
        f"peak memory {fmt_bytes(best.peak_memory_bytes if best else None)} "
        f"({best.peak_memory_source if best else 'n/a'}){limit}; {len(found.probes)} probes"
    )
    fitted = found.memory_per_sample()
    if fitted is not None and fitted[0] > 0:
        per_sample, footprint = fitted
        text += (
            f"\neach sample adds {fmt_bytes(int(per_sample))}; the batch itself takes "
            f"{fmt_bytes(int(per_sample * found.max_batch_size))} over a footprint of "
            f"{fmt_bytes(int(max(footprint, 0)))} (model, "
            + ("framework)" if getattr(found, "gen_len", None) else "optimiser, framework)")
        )
    return text


def inference_table(report: Any) -> Group:
    rows = []
    for p in report.predictions[:INFERENCE_ROWS_SHOWN]:
        result = p.result
        label = result.get("label", result.get("class"))
        box = f" box {result['box']}" if result.get("box") else ""
        rows.append(
            (
                p.file,
                f"{label}{box}",
                f"{result['score']:.3f}",
                fmt(p.decode_ms, 2),
                fmt(p.predict_ms, 2),
            )
        )
    shown = table(
        f"{report.workload} on {report.device}, {report.precision}",
        ("Image", "Prediction", "Score", "Decode (ms)", "Predict (ms)"),
        rows,
    )
    more = len(report.predictions) - len(rows)
    summary = (
        f"{len(report.predictions)} images{f' ({more} more in --json)' if more > 0 else ''}: "
        f"predict p50 {report.predict_p50_ms:,.2f} ms, p95 {report.predict_p95_ms:,.2f} ms; "
        f"decode p50 {report.decode_p50_ms:,.2f} ms; {report.images_per_s:,.1f} images/s"
    )
    return Group(shown, summary)

"""Stored runs as a table (one row per run) and the files it is written to."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from dlbench.errors import ConfigError, StoreError, require
from dlbench.records import TelemetrySample
from dlbench.store.summary import run_summary

FORMATS = ("csv", "json", "parquet")
COLUMNS = (
    "run_id",
    "date",
    "created_at",
    "kind",
    "workload",
    "framework",
    "device",
    "device_name",
    "gpu_type",
    "num_gpus",
    "nodes",
    "batch_size",
    "precision",
    "data",
    "dataset",
    "staged_from",
    "hostname",
    "mean_speed",
    "mean_step_time_s",
    "speed_stderr",
    "speed_ci95_low",
    "speed_ci95_high",
    "speed_jitter",
    "median_speed",
    "p5_speed",
    "p95_speed",
    "timed_steps",
    "throughput_e2e",
    "train_time_s",
    "val_time_s",
    "total_time_s",
    "wall_time_s",
    "exit_code",
    "accuracy",
    "accuracy_synthetic",
    "tokens_per_s",
    "val_loss",
    "perplexity",
    "peak_memory_bytes",
    "latency_p50_ms",
    "latency_p95_ms",
    # generation (dlbench generate) and serving (dlbench serve-bench): per-token figures
    "prompt_len",
    "gen_len",
    "concurrency",
    "ttft_mean_ms",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "tpot_mean_ms",
    "tpot_p50_ms",
    "tpot_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "prefill_tokens_per_s",
    "decode_tokens_per_s",
    "requests_per_s",
    "output_tokens_per_s",
    "goodput_per_s",
    "failed_requests",
    "achieved_tflops",
    "mfu",
    "quality_verdict",
    "foreign_cpu_cores",
    "steal_percent",
    "sweep",
    "status",
    "error",
    "command",
    "tags",
)


def runs_frame(runs: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for run in runs:
        summary = run_summary(run)
        inference = summary.get("inference") or {}
        interval = summary.get("speed_ci95") or (None, None)
        rows.append(
            {
                **{k: summary.get(k) for k in COLUMNS if k in summary},
                "date": str(run["created_at"])[:10],
                "hostname": run.get("hostname"),
                "sweep": run.get("sweep"),
                "nodes": (run.get("config") or {}).get("nodes") or 1,
                "gpu_type": run.get("device_name") if (run.get("num_gpus") or 0) > 0 else None,
                "latency_p50_ms": inference.get("latency_p50_ms"),
                "latency_p95_ms": inference.get("latency_p95_ms"),
                "speed_ci95_low": interval[0],
                "speed_ci95_high": interval[1],
                "steal_percent": (summary.get("quality") or {}).get("steal_percent"),
                # A classifier on synthetic data learns random labels: no accuracy to report,
                # and a column that says so (``runs`` shows it as "(synthetic)").
                "accuracy": None if summary.get("data") == "synthetic" else summary["accuracy"],
                "accuracy_synthetic": summary.get("data") == "synthetic"
                and summary.get("accuracy") is not None,
                "command": " ".join(map(str, (run.get("config") or {}).get("command") or []))
                or None,
                "tags": ";".join(f"{k}={v}" for k, v in sorted((run.get("tags") or {}).items())),
                **answering_columns(summary),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def answering_columns(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A generation or serving run's per-token figures as flat columns (none for others)."""
    generation, serving = summary.get("generation") or {}, summary.get("serving") or {}
    stats = serving.get("stats") or generation
    if not stats:
        return {}
    found: dict[str, Any] = {
        "prompt_len": (serving or generation).get("prompt_len"),
        "gen_len": (serving or generation).get("gen_len"),
        "concurrency": serving.get("concurrency"),
        "prefill_tokens_per_s": (generation.get("prefill_tokens_per_s") or {}).get("mean"),
        "decode_tokens_per_s": (generation.get("decode_tokens_per_s") or {}).get("mean"),
        "requests_per_s": stats.get("requests_per_s"),
        "output_tokens_per_s": stats.get("output_tokens_per_s"),
        "goodput_per_s": stats.get("goodput_per_s"),
        "failed_requests": stats.get("failed"),
    }
    for name, quantities in (
        ("ttft", ("mean", "p50", "p99")), ("tpot", ("mean", "p50", "p99")),
        ("itl", ("p50", "p99")), ("e2e", ("p50", "p99")),
    ):  # fmt: skip
        figure = stats.get(f"{name}_s") or {}
        for quantity in quantities:
            value = figure.get(quantity)
            found[f"{name}_{quantity}_ms"] = None if value is None else value * 1e3
    return found


SAMPLE_COLUMNS = ("run_id", "metric", "t_s", "wall", "phase", "value")


def samples_frame(samples: dict[str, list[TelemetrySample]]) -> pd.DataFrame:
    """Telemetry in long format: one row per reading of one metric."""
    rows = [
        (run_id, s.metric, s.t_s, s.wall, s.phase, s.value)
        for run_id, run_samples in samples.items()
        for s in run_samples
    ]
    return pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS))


def default_path(fmt: str, telemetry: bool = False) -> Path:
    kind = "telemetry" if telemetry else "results"
    return Path(f"{date.today():%Y-%m-%d}-dlbench-{kind}.{fmt}")


def write(frame: pd.DataFrame, fmt: str, out: Path | None, telemetry: bool = False) -> Path | None:
    """Write ``frame`` to ``out`` (None: the default file name; '-': stdout, returns None)."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        require("pyarrow", "parquet", "--format parquet")
    if str(out) == "-":
        if fmt == "parquet":
            raise ConfigError("parquet cannot be written to stdout", "give --out FILE")
        print(frame.to_csv(index=False) if fmt == "csv" else _json(frame))
        return None
    path = out or default_path(fmt, telemetry)
    try:  # its folder exists (checked before): a missing one is a typo, never made here
        if fmt == "csv":
            frame.to_csv(path, index=False)
        elif fmt == "json":
            path.write_text(_json(frame))
        else:
            frame.to_parquet(path, index=False)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def _json(frame: pd.DataFrame) -> str:
    return frame.to_json(orient="records", indent=1)

"""The JSON summary of a stored run (``--json``), in the names that
docs/reference/result-json.md lists."""

from __future__ import annotations

from typing import Any

SPEED_FIELDS = (
    "mean_step_time_s",
    "median_step_time_s",
    "p95_step_time_s",
    "mean_speed",
    "median_speed",
    "p5_speed",
    "p95_speed",
    "speed_stderr",
    "speed_ci95",
    "speed_jitter",
    "mean_data_wait_s",
    "data_wait_fraction",
)
RESULT_FIELDS = (
    "throughput_e2e",
    "images_trained",
    "train_time_s",
    "val_time_s",
    "total_time_s",
    "accuracy",
    "val_loss",
    "map50",
    "tokens_per_s",
    "tokens_per_s_ci95",
    "perplexity",
    "final_train_loss",
    "warmup_time_s",
    "setup_time_s",
    "peak_memory_bytes",
    "peak_memory_source",
    "phase_reached",
    "achieved_tflops",
    "peak_tflops",
    "peak_source",
    "mfu",
)
RUN_FIELDS = (
    "run_id",
    "kind",
    "workload",
    "framework",
    "device",
    "device_name",
    "num_gpus",
    "status",
    "error",
    "batch_size",
    "precision",
    "data",
    "dataset",
    "staged_from",
    "sweep",
    "run_key",
    "created_at",
    "finished_at",
    "tags",
)


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """A stored run as one flat JSON-ready dict (nested: inference, hardware, config)."""
    result = run.get("result") or {}
    speed = result.get("speed") or {}
    summary: dict[str, Any] = {name: run.get(name) for name in RUN_FIELDS}
    summary["timed_steps"] = speed.get("timed_steps", run.get("timed_steps") or 0)
    summary.update({name: speed.get(name) for name in SPEED_FIELDS})
    summary.update({name: result.get(name) for name in RESULT_FIELDS})
    model = result.get("model") or {}
    summary["params"] = model.get("params")
    summary["flops_per_step"] = model.get("flops_per_step")
    summary["model"] = result.get("model")
    summary["time_to_accuracy"] = result.get("time_to_accuracy")
    summary["feasibility"] = result.get("feasibility")
    summary["staging"] = result.get("staging")
    summary["ranks"] = result.get("ranks") or []
    summary["collectives"] = result.get("collectives") or []
    summary["descriptors"] = result.get("descriptors")
    summary["inference"] = result.get("inference")
    summary["wall_time_s"] = result.get("wall_time_s")
    summary["exit_code"] = result.get("exit_code")
    quality = result.get("quality") or {}
    summary["quality_verdict"] = run.get("quality_verdict") or quality.get("verdict")
    summary["foreign_cpu_cores"] = quality.get("foreign_cpu_cores")
    summary["quality"] = result.get("quality")
    summary["stability"] = result.get("stability")
    summary["profile"] = result.get("profile")
    summary["generation"] = result.get("generation")
    summary["serving"] = result.get("serving")
    summary["telemetry"] = result.get("telemetry")
    summary["hardware"] = run.get("hardware")
    summary["config"] = run.get("config")
    return summary

"""``dlbench export --format mlflow --out TRACKING_URI``: stored runs as MLflow runs.

Each dlbench run becomes one MLflow run in the experiment (``--experiment``, default
``dlbench``): its configuration as params, its summary figures as metrics, its per-step times
(``step_time_s`` at step i) and its telemetry (each metric at its sample's wall time) as metric
histories, its status as the MLflow status (ok: FINISHED, interrupted: KILLED, the other ends:
FAILED), and the dlbench run id as the tag ``dlbench_run_id``, by which a second export finds
it and does not add it again. The hardware fingerprint is the artifact ``hardware.json``.
The mlflow package is optional (``pip install 'dlbench[mlflow]'``).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from dlbench.errors import ConfigError, DlbenchError
from dlbench.store.database import Store
from dlbench.store.export import answering_columns
from dlbench.store.stored import StoredRun

RUN_TAG = "dlbench_run_id"
STATUS = {"ok": "FINISHED", "interrupted": "KILLED", "running": "RUNNING"}
SUMMARY_METRICS = (
    "mean_speed", "median_speed", "p5_speed", "p95_speed", "speed_stderr", "speed_jitter",
    "mean_step_time_s", "median_step_time_s", "throughput_e2e", "train_time_s", "val_time_s",
    "total_time_s", "wall_time_s", "setup_time_s", "accuracy", "achieved_tflops", "mfu",
    "tokens_per_s", "val_loss", "perplexity",
    "peak_memory_bytes", "timed_steps", "foreign_cpu_cores",
)  # fmt: skip
DEFAULT_TIMEOUT_S = 30.0  # a tracking server that has not answered by then will not
BATCH = 1000  # MLflow's limit of metrics in one log_batch
PARAMS_BATCH = 100  # and of params
PARAM_CHARS = 6000  # MLflow's limit on a param's value


def _client_class() -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError(
            "--format mlflow needs the mlflow package, which is not installed",
            "pip install 'dlbench[mlflow]'",
        ) from None
    return MlflowClient


def _ms(iso: str | None) -> int | None:
    return int(datetime.fromisoformat(iso).timestamp() * 1000) if iso else None


def _params(run: StoredRun) -> dict[str, str]:
    config = dict(run.config or {})
    config.pop("tags", None)
    return {
        k: str(v)[:PARAM_CHARS]
        for k, v in sorted(config.items())
        if v is not None and not isinstance(v, (dict, list))
    }


def _summary_metrics(run: StoredRun) -> dict[str, float]:
    found: dict[str, float] = {}
    summary = run.to_dict()
    for name in SUMMARY_METRICS:
        value = summary.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            found[name] = float(value)
    for name, value in answering_columns(summary).items():  # generation and serving figures
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            found[name] = float(value)
    interval = summary.get("speed_ci95")
    if interval and None not in interval:
        found["speed_ci95_lo"], found["speed_ci95_hi"] = float(interval[0]), float(interval[1])
    return found


def export_runs(
    store: Store,
    runs: list[StoredRun],
    tracking_uri: str,
    experiment: str = "dlbench",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    artifacts: str | None = None,
) -> tuple[int, int, str]:
    """Log ``runs`` to the MLflow tracking store at ``tracking_uri``: (logged, already there,
    where the experiment keeps its artifacts). A run is logged whole or, if MLflow refuses it
    midway, left FAILED with what it got. A server that does not answer within ``timeout_s``
    is one error line, not minutes of MLflow's retries. A new experiment keeps its artifacts
    in ``artifacts``; without it, a SQLite store's beside the database (MLflow's own default
    is ./mlruns of whatever folder the command ran in), a server's where the server says."""
    client_class = _client_class()  # first: without mlflow, one line saying what to install
    from mlflow.exceptions import MlflowException

    _bound_requests(tracking_uri, timeout_s)
    location = artifacts or _beside_database(tracking_uri)
    try:
        client = client_class(tracking_uri=tracking_uri)
        return _export(client, store, runs, experiment, location)
    except (MlflowException, OSError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        first = (str(message).strip().splitlines() or ["no reason given"])[0][:300]
        raise DlbenchError(
            f"MLflow at {tracking_uri} refused the export: {first}",
            "give --out sqlite:///PATH/mlflow.db (a file MLflow 3 keeps) or the http:// "
            "address of a tracking server",
        ) from exc


def _bound_requests(tracking_uri: str, timeout_s: float) -> None:
    """A tracking server is reachable within ``timeout_s``, and each request MLflow makes
    gives up after it, without retries (MLflow's default: 7 retries over minutes)."""
    import os
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https"):
        return
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, int(timeout_s))))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise DlbenchError(
            f"cannot reach MLflow at {tracking_uri} within {timeout_s:g} s: {exc.strerror or exc}",
            "start the tracking server, or check the address and port of --out",
        ) from None


def _beside_database(tracking_uri: str) -> str | None:
    if not tracking_uri.startswith("sqlite:///"):
        return None
    from pathlib import Path

    return (Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()


def _export(
    client: Any, store: Store, runs: list[StoredRun], experiment: str, location: str | None
) -> tuple[int, int, str]:
    from mlflow.entities import Metric, Param

    found = client.get_experiment_by_name(experiment)
    experiment_id = (
        found.experiment_id
        if found
        else client.create_experiment(experiment, artifact_location=location)
    )
    where = str(client.get_experiment(experiment_id).artifact_location)
    logged = present = 0
    for run in runs:
        if client.search_runs([experiment_id], f"tags.{RUN_TAG} = '{run.run_id}'"):
            present += 1
            continue
        started = _ms(run.created_at) or 0
        tags = {RUN_TAG: run.run_id, "mlflow.runName": f"{run.workload} {run.run_id}"}
        tags.update({f"dlbench.tag.{k}": str(v) for k, v in (run.tags or {}).items()})
        made = client.create_run(experiment_id, start_time=started, tags=tags)
        mlflow_id = made.info.run_id
        metrics = [Metric(k, v, started, 0) for k, v in _summary_metrics(run).items()]
        metrics += _histories(store, run, started)
        params = [Param(k, v) for k, v in _params(run).items()]
        for start in range(0, len(params), PARAMS_BATCH):
            client.log_batch(mlflow_id, params=params[start : start + PARAMS_BATCH])
        for start in range(0, len(metrics), BATCH):
            client.log_batch(mlflow_id, metrics=metrics[start : start + BATCH])
        if run.hardware:
            client.log_dict(mlflow_id, dict(run.hardware), "hardware.json")
        client.set_terminated(
            mlflow_id, STATUS.get(run.status, "FAILED"), end_time=_ms(run.finished_at)
        )
        logged += 1
    return logged, present, where


def _histories(store: Store, run: StoredRun, started_ms: int) -> list[Any]:
    """Per-step times (timestamps: the run's start plus the steps before) and telemetry."""
    from mlflow.entities import Metric

    history = []
    elapsed = 0.0
    for step in store.get_steps(run.run_id):
        elapsed += step.step_time_s
        when = started_ms + int(elapsed * 1e3)
        history.append(Metric("step_time_s", step.step_time_s, when, step.step))
    readings: dict[str, int] = {}
    for sample in store.get_samples(run.run_id):
        index = readings[sample.metric] = readings.get(sample.metric, -1) + 1
        key = "telemetry." + sample.metric
        history.append(Metric(key, sample.value, int(sample.wall * 1000), index))
    return history


__all__ = ["RUN_TAG", "export_runs"]

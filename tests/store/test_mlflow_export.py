"""dlbench export --format mlflow: every stored run an MLflow run, read back with MLflow's own
search_runs from a local store; a second export adds nothing."""

import os
import sys

import pytest

from dlbench.store.database import Store
from synthetic_runs import stored_device_run

from conftest import call_main, one_line_error

# MLflow's own SQL store uses loader options SQLAlchemy 2.1 deprecates: its warning, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

try:
    import mlflow
except ImportError:  # scripts/setup installs it: in CI its absence fails
    if os.environ.get("CI"):
        raise
    pytest.skip("mlflow is not installed (pip install 'dlbench[mlflow]')", allow_module_level=True)


def test_runs_become_mlflow_runs_once_with_params_metrics_histories_and_hardware(
    db_path, tmp_path, capsys, monkeypatch
):
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # MLflow's own default for artifacts: ./mlruns of this folder
    store = Store(str(db_path))
    stored_device_run(store, "run-a", "cuda", 0.10, 50, name="A100")
    stored_device_run(store, "run-b", "cpu", 0.25, 80, name="EPYC")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, _, err = call_main(
        capsys, "export", "--format", "mlflow", "--out", uri, "--experiment", "bench",
        "--db", str(db_path),
    )  # fmt: skip
    assert code == 0, err
    assert "logged 2 run(s)" in err
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(experiment_names=["bench"])
    assert sorted(found["tags.dlbench_run_id"]) == ["run-a", "run-b"]
    a = found[found["tags.dlbench_run_id"] == "run-a"].iloc[0]
    stored = store.run("run-a")
    assert a["metrics.mean_speed"] == pytest.approx(stored.mean_speed)
    assert a["status"] == "FINISHED" and a["params.workload"] == "resnet18"
    client = mlflow.tracking.MlflowClient(uri)
    steps = client.get_metric_history(a["run_id"], "step_time_s")
    assert len(steps) == 200 and steps[5].step == 5
    assert steps[5].value == pytest.approx(store.get_steps("run-a")[5].step_time_s)
    util = client.get_metric_history(a["run_id"], "telemetry.cpu.util_percent")
    samples = [s for s in store.get_samples("run-a") if s.metric == "cpu.util_percent"]
    assert len(util) == len(samples) and util[0].timestamp == int(samples[0].wall * 1000)
    artifacts = [f.path for f in client.list_artifacts(a["run_id"])]
    assert artifacts == ["hardware.json"]
    # beside the tracking database, and said: never ./mlruns of the command's folder
    assert f"artifacts in {(tmp_path / 'mlartifacts').as_uri()}" in " ".join(err.split())
    assert list((tmp_path / "mlartifacts").rglob("hardware.json")) and not list(workdir.iterdir())
    again, _, err = call_main(
        capsys, "export", "--format", "mlflow", "--out", uri, "--experiment", "bench",
        "--db", str(db_path),
    )  # fmt: skip
    assert again == 0 and "logged 0 run(s)" in err and "2 already there" in err
    assert len(mlflow.search_runs(experiment_names=["bench"])) == 2


def test_mlflow_export_without_a_uri_or_without_mlflow_is_one_line(db_path, capsys, monkeypatch):
    Store(str(db_path)).close()
    code, _, err = call_main(capsys, "export", "--format", "mlflow", "--db", str(db_path))
    assert code == 2 and "--format mlflow needs --out TRACKING_URI" in err
    stored_device_run(Store(str(db_path)), "r", "cpu", 0.1, 50)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    code, _, err = call_main(
        capsys, "export", "--format", "mlflow", "--out", "x", "--db", str(db_path)
    )
    assert code == 2 and "pip install 'dlbench[mlflow]'" in err and "Traceback" not in err


def test_a_store_mlflow_refuses_is_one_line(db_path, tmp_path, capsys, monkeypatch):
    stored_device_run(Store(str(db_path)), "r", "cpu", 0.1, 50)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    folder = tmp_path / "mlruns"  # MLflow 3 keeps a folder store only when told to
    code, _, err = call_main(
        capsys, "export", "--format", "mlflow", "--out", str(folder), "--db", str(db_path)
    )
    line = one_line_error(code, err)  # MLflow 3 keeps a folder store only when told to
    assert f"MLflow at {folder} refused the export" in line and "sqlite:///" in line


def test_an_mlflow_server_that_does_not_answer_is_one_line_within_the_timeout(db_path, capsys):
    import socket

    stored_device_run(Store(str(db_path)), "r", "cpu", 0.1, 50)
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    code, _, err = call_main(capsys, "export", "--format", "mlflow", "--out",
                             f"http://127.0.0.1:{port}", "--timeout", "5")  # fmt: skip
    line = one_line_error(code, err)  # at once, not after MLflow's minutes of retries
    assert f"cannot reach MLflow at http://127.0.0.1:{port} within 5 s" in line


def test_a_serving_run_s_per_token_figures_are_mlflow_metrics(db_path, tmp_path, capsys):
    from dlbench.measure.serving import (
        RequestOutcome,
        ServingSummary,
        serving_document,
        serving_stats,
    )
    from dlbench.records import RunResult

    store = Store(str(db_path))
    outcomes = [RequestOutcome(i, i + 0.5, (i + 0.1, i + 0.3), 4) for i in range(3)]
    summary = ServingSummary("http://h:1/v1", "m", "completions", 2, None, 8, 4, "usage", None,
                             serving_stats(outcomes))  # fmt: skip
    store.create_run("s", "serving", {"concurrency": 2}, workload="m", device="server")
    store.finish_run(RunResult("s", "ok", serving=serving_document(summary)))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, _, err = call_main(capsys, "export", "--format", "mlflow", "--out", uri,
                             "--experiment", "serve", "--db", str(db_path))  # fmt: skip
    assert code == 0, err
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(experiment_names=["serve"])
    assert len(found) == 1
    metrics = found.iloc[0]
    assert metrics["metrics.ttft_p50_ms"] == pytest.approx(100.0)
    assert metrics["metrics.concurrency"] == 2 and metrics["metrics.failed_requests"] == 0
    assert metrics["metrics.output_tokens_per_s"] == pytest.approx(12 / 2.5)

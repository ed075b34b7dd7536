import math
import sqlite3

import pandas as pd
import pytest

from dlbench.errors import RunNotFound, StoreError
from dlbench.records import RunResult, SpeedStats, StepRecord, TelemetrySample
from dlbench.store.database import Store, schema, to_url
from dlbench.store.export import COLUMNS, runs_frame, write
from dlbench.store.summary import run_summary


@pytest.fixture
def store(backend_store):
    """Each store test runs on SQLite and on PostgreSQL."""
    return backend_store


def _speed(**over):
    values = dict(
        timed_steps=2,
        mean_step_time_s=0.5,
        median_step_time_s=0.5,
        p95_step_time_s=0.6,
        mean_speed=20.0,
        median_speed=20.0,
        p5_speed=18.0,
        p95_speed=22.0,
        speed_stderr=1.0,
        speed_jitter=0.5,
        mean_data_wait_s=0.01,
        data_wait_fraction=0.02,
    )
    return SpeedStats(**{**values, **over})


def _finish(store, run_id, status="ok", **over):
    steps = (StepRecord(0, 0, 0.4, 0.01), StepRecord(1, 0, 0.6, 0.01))
    result = RunResult(
        run_id=run_id,
        status=status,
        speed=_speed(),
        steps=steps,
        train_time_s=1.0,
        val_time_s=0.5,
        total_time_s=1.5,
        accuracy=0.9,
        **over,
    )
    store.finish_run(result)
    return result


def _create(store, run_id, **columns):
    config = {"workload": "lenet-mnist", "tags": columns.pop("tags", {})}
    store.create_run(
        run_id, "train", config, workload="lenet-mnist", device="cpu", batch_size=10, **columns
    )


def test_run_lifecycle_keeps_row_and_steps(store):
    _create(store, "20260101-000000-aaaaaa", tags={"site": "lab"})
    assert store.get_run("20260101")["status"] == "running"
    _finish(store, "20260101-000000-aaaaaa")
    run = store.get_run("20260101-000000-aaaaaa")
    assert run["status"] == "ok" and run["mean_speed"] == 20.0 and run["tags"] == {"site": "lab"}
    assert [s.step_time_s for s in store.get_steps(run["run_id"])] == [0.4, 0.6]
    summary = run_summary(run)
    assert summary["speed_stderr"] == 1.0 and summary["timed_steps"] == 2
    assert summary["accuracy"] == 0.9 and summary["workload"] == "lenet-mnist"


def test_non_finite_figures_are_stored_as_null(store):
    _create(store, "r1")
    _finish(store, "r1", val_loss=math.nan, final_train_loss=math.inf, error="loss is NaN")
    result = store.get_run("r1")["result"]
    assert result["val_loss"] is None and result["final_train_loss"] is None
    assert result["error"] == "loss is NaN"


def test_unfinished_run_is_closed_once(store):
    _create(store, "r2")
    assert store.end_unfinished("r2", "failed", "died of SIGKILL")
    assert not store.end_unfinished("r2", "failed", "again")
    assert store.get_run("r2")["error"] == "died of SIGKILL"


def test_prefix_lookup_and_filters(store):
    for run_id, status in (("20260101-a", "ok"), ("20260101-b", "failed"), ("20260202-c", "ok")):
        _create(store, run_id, tags={"n": run_id[-1]})
        _finish(store, run_id, status=status)
    with pytest.raises(RunNotFound, match="ambiguous"):
        store.get_run("20260101")
    with pytest.raises(RunNotFound, match="no run 'zzz'"):
        store.get_run("zzz")
    assert store.get_run("20260202")["run_id"] == "20260202-c"
    assert [r["run_id"] for r in store.list_runs(status="ok")] == ["20260202-c", "20260101-a"]
    assert [r["run_id"] for r in store.list_runs(tags={"n": "b"})] == ["20260101-b"]
    assert len(store.list_runs(limit=1)) == 1
    assert store.count_runs() == 3


def test_results_survive_reopening(db_path):
    first = Store(str(db_path))
    _create(first, "kept")
    _finish(first, "kept")
    first.close()
    assert Store(str(db_path)).get_run("kept")["status"] == "ok"


def test_a_newer_schema_is_refused_not_misread(db_path):
    Store(str(db_path)).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99, newer than"):
        Store(str(db_path))


def test_an_older_schema_is_migrated_in_place(db_path, monkeypatch):
    store = Store(str(db_path))
    _create(store, "old")
    store.close()
    applied = []
    current = schema.SCHEMA_VERSION
    monkeypatch.setattr(schema, "SCHEMA_VERSION", current + 1)
    monkeypatch.setitem(schema.MIGRATIONS, current, lambda conn: applied.append(current))
    upgraded = Store(str(db_path))
    assert applied == [current] and upgraded.schema_version() == current + 1
    assert upgraded.get_run("old")["run_id"] == "old"


def test_a_version_1_database_gains_the_telemetry_table(db_path):
    store = Store(str(db_path))
    _create(store, "from-v1")
    _finish(store, "from-v1")
    store.close()
    with sqlite3.connect(db_path) as conn:  # what a dlbench of schema 1 left behind
        conn.execute("DROP TABLE telemetry")
        conn.execute("DROP INDEX ix_runs_run_key")
        conn.execute("ALTER TABLE runs DROP COLUMN run_key")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    upgraded = Store(str(db_path))
    assert upgraded.schema_version() == schema.SCHEMA_VERSION == 6
    assert upgraded.get_run("from-v1")["mean_speed"] == 20.0
    assert upgraded.get_run("from-v1")["run_key"] is None  # v2 -> v3 added the sweep key
    _create(upgraded, "from-v3", run_key="abc")
    assert [r["run_id"] for r in upgraded.list_runs(run_key="abc")] == ["from-v3"]
    upgraded.add_samples("from-v1", [TelemetrySample(0.0, 1.0, "train", "cpu.util_percent", 5)])
    assert upgraded.get_samples("from-v1")[0].value == 5


def test_a_version_3_database_gains_quality_baselines_and_the_right_io_names(db_path):
    store = Store(str(db_path))
    _create(store, "from-v3")
    telemetry = {
        "phases": {"train": {"metrics": {"proc.read_bytes_per_s": {"mean": 5.0}}}},
        "run": {"metrics": {"proc.write_bytes_per_s": {"mean": 7.0}}},
    }
    _finish(store, "from-v3", telemetry=telemetry)
    store.add_samples("from-v3", [TelemetrySample(0.0, 1.0, "train", "proc.read_bytes_per_s", 5.0)])
    store.close()
    with sqlite3.connect(db_path) as conn:  # what a dlbench of schema 3 left behind
        conn.execute("DROP TABLE baselines")
        conn.execute("ALTER TABLE runs DROP COLUMN quality_verdict")
        conn.execute("ALTER TABLE runs DROP COLUMN foreign_cpu_cores")
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    upgraded = Store(str(db_path))
    assert upgraded.schema_version() == schema.SCHEMA_VERSION
    row = upgraded.get_run("from-v3")
    assert row["quality_verdict"] is None and row["foreign_cpu_cores"] is None
    assert [s.metric for s in upgraded.get_samples("from-v3")] == ["proc.read_chars_per_s"]
    renamed = row["result"]["telemetry"]
    assert renamed["phases"]["train"]["metrics"] == {"proc.read_chars_per_s": {"mean": 5.0}}
    assert renamed["run"]["metrics"] == {"proc.write_chars_per_s": {"mean": 7.0}}
    from dlbench.store import baselines

    assert baselines.every(upgraded) == []


def test_quality_is_stored_in_columns_to_filter_by(store):
    from dlbench.records import Quality

    _create(store, "q1")
    _finish(store, "q1", quality=Quality("contended", ("busy",), 1.25, 3.0, None))
    _create(store, "q2")
    _finish(store, "q2")
    assert [r["run_id"] for r in store.list_runs(quality_verdict="contended")] == ["q1"]
    summary = run_summary(store.get_run("q1"))
    assert summary["quality_verdict"] == "contended" and summary["foreign_cpu_cores"] == 1.25
    assert summary["quality"]["reasons"] == ["busy"]
    assert run_summary(store.get_run("q2"))["quality_verdict"] is None


def test_telemetry_round_trip_and_one_metric_reads_by_primary_key(store, db_path):
    _create(store, "t1")
    samples = [
        TelemetrySample(i * 0.1, 1e9 + i * 0.1, "train" if i > 2 else "warmup", m, i)
        for i in range(10)
        for m in ("cpu.util_percent", "mem.used_bytes")
    ]
    store.add_samples("t1", samples[:7])
    store.add_samples("t1", samples[7:])
    assert store.sample_metrics("t1") == ["cpu.util_percent", "mem.used_bytes"]
    cpu = store.get_samples("t1", ["cpu.util_percent"])
    assert [s.value for s in cpu] == list(range(10)) and cpu[3].phase == "train"
    if store.engine.dialect.name != "sqlite":
        return  # the query plan below is SQLite's
    with sqlite3.connect(db_path) as conn:
        plan = " ".join(
            str(row)
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT t_s, value FROM telemetry "
                "WHERE run_id = 't1' AND metric = 'cpu.util_percent' ORDER BY t_s"
            )
        )
    assert "USING PRIMARY KEY (run_id=? AND metric=?)" in plan and "TEMP B-TREE" not in plan


def test_unwritable_location_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open the results database"):
        Store(str(blocker / "db.sqlite"))
    with pytest.raises(StoreError):
        Store("nosuchdialect://x/y")


def test_paths_and_urls():
    assert to_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert to_url("/tmp/x.sqlite") == "sqlite:////tmp/x.sqlite"


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_has_one_row_per_run_with_the_named_columns(store, tmp_path, fmt):
    _create(store, "e1")
    _finish(store, "e1")
    _create(store, "e2")
    store.end_unfinished("e2", "oom", "CUDA out of memory")
    path = write(runs_frame(store.list_runs()), fmt, tmp_path / f"out.{fmt}")
    frame = {"csv": pd.read_csv, "json": pd.read_json, "parquet": pd.read_parquet}[fmt](path)
    assert list(frame.columns) == list(COLUMNS)
    assert sorted(frame["status"]) == ["ok", "oom"]
    assert frame.set_index("run_id").loc["e1", "mean_speed"] == 20.0
    assert {"quality_verdict", "foreign_cpu_cores", "speed_ci95_low", "speed_stderr"} <= set(
        frame.columns
    )


def test_notes_are_kept_replaced_and_read_back(store):
    assert store.get_note("predictor:x") is None
    store.put_note("predictor:x", {"model": "roofline", "errors": [1.5, float("nan")]})
    store.put_note("predictor:x", {"model": "boosted", "errors": [2.0]})
    assert store.get_note("predictor:x") == {"model": "boosted", "errors": [2.0]}
    assert store.schema_version() == schema.SCHEMA_VERSION  # notes live beside the version

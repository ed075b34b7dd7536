"""Tables of the results store (SQLAlchemy Core) and their version.

``SCHEMA_VERSION`` counts schema changes. A database at an older version is migrated forward
by ``MIGRATIONS`` (each step one transaction that keeps every row); one written by a newer
dlbench is refused rather than misread.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
    text,
    update,
)

from dlbench.errors import StoreError

SCHEMA_VERSION = 6

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# One row per run. Figures that runs are filtered and sorted by are columns; the whole
# configuration, hardware fingerprint and result are JSON beside them.
runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # train | monitor
    Column("created_at", String(32), nullable=False),  # ISO 8601, UTC
    Column("finished_at", String(32)),
    Column("status", String(16), nullable=False, index=True),
    Column("error", Text),
    Column("phase_reached", String(16)),
    Column("workload", String(64), index=True),
    Column("framework", String(32)),
    Column("device", String(32)),
    Column("device_name", String(128)),
    Column("num_gpus", Integer),
    Column("batch_size", Integer),
    Column("precision", String(16)),
    Column("data", Text),
    Column("dataset", String(64)),
    Column("staged_from", Text),
    Column("hostname", String(128)),
    Column("sweep", String(128), index=True),
    Column("run_key", String(64), index=True),  # hash of the resolved spec: resume a sweep
    Column("mean_speed", Float),
    Column("mean_step_time_s", Float),
    Column("speed_stderr", Float),
    Column("speed_jitter", Float),
    Column("throughput_e2e", Float),
    Column("train_time_s", Float),
    Column("val_time_s", Float),
    Column("total_time_s", Float),
    Column("accuracy", Float),
    Column("timed_steps", Integer),
    Column("peak_memory_bytes", BigInteger),
    Column("quality_verdict", String(16)),  # clean | noisy | contended; null: not measured
    Column("foreign_cpu_cores", Float),
    # Liveness of a run in progress: its processes beat every few seconds; a row whose beat
    # stopped is closed as ``lost`` by the next reader (store/liveness.py).
    Column("heartbeat_at", String(32)),  # ISO 8601, UTC
    Column("heartbeat_s", Float),
    Column("pids", JSON),  # [[pid, create_time], ...] on ``hostname``
    Column("tags", JSON, nullable=False),
    Column("config", JSON, nullable=False),
    Column("hardware", JSON),
    Column("result", JSON),
)

# Per-step times of the timed training phase.
steps = Table(
    "steps",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("epoch", Integer, nullable=False),
    Column("step_time_s", Float, nullable=False),
    Column("data_wait_s", Float, nullable=False),
)

# Telemetry samples, one row per metric reading (long format). The primary key clusters rows
# by run and metric (SQLite: WITHOUT ROWID), so one metric of one run is a range scan however
# many samples the table holds.
telemetry = Table(
    "telemetry",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("metric", String(96), primary_key=True),
    Column("t_s", Float, primary_key=True),
    Column("wall", Float, nullable=False),
    Column("phase", String(16), nullable=False),
    Column("value", Float, nullable=False),
    sqlite_with_rowid=False,
)

# Named references for ``dlbench check``: a configuration and what it measured, kept whole so
# that a check still works if the runs themselves are gone (another machine's database).
baselines = Table(
    "baselines",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("created_at", String(32), nullable=False),
    Column("workload", String(64)),
    Column("device_name", String(128)),
    Column("hostname", String(128)),
    Column("spec", JSON, nullable=False),  # the resolved run configuration, repeat/tags aside
    Column("runs", JSON, nullable=False),  # [{run_id, mean_speed, timed_steps, ...}]
    Column("hardware", JSON),
)

# Operators timed on a device by ``dlbench calibrate --ops``: one row per operator shape and
# precision, forward and forward + backward, with the quality verdict of the block it was
# measured in (the interference accounting of every run).
op_measurements = Table(
    "op_measurements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", String(32), nullable=False),
    Column("hostname", String(128)),
    Column("device_name", String(128), nullable=False, index=True),
    Column("framework", String(64)),  # "pytorch 2.14.1"
    Column("kind", String(32), nullable=False),  # conv2d, linear, batchnorm, ...
    Column("precision", String(16), nullable=False),
    Column("shape", JSON, nullable=False),  # {"batch": 8, "in_channels": 3, ...}
    Column("forward_s", Float),  # median seconds of one forward call (None: not separable)
    Column("train_s", Float, nullable=False),  # median seconds of forward + backward
    Column("calls", Integer, nullable=False),  # timed forward + backward calls
    Column("spread", Float),  # median absolute deviation / median of those calls
    Column("quality_verdict", String(16)),
    Column("quality", JSON),  # reasons and figures of the verdict
    Column("peak_tflops", Float),  # the device's datasheet peak at this precision
    Column("bandwidth_gb_s", Float),
)

Index("ix_runs_created_at", runs.c.created_at)

Migration = Callable[[Connection], None]


def _add_telemetry(conn: Connection) -> None:
    telemetry.create(conn, checkfirst=True)


def _add_run_key(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE runs ADD COLUMN run_key VARCHAR(64)"))
    conn.execute(text("CREATE INDEX ix_runs_run_key ON runs (run_key)"))


# Per-process I/O was named as bytes; it is psutil's read_chars/write_chars (every byte passed
# to read and write calls, pipes and page cache included).
RENAMED_METRICS = {
    "proc.read_bytes_per_s": "proc.read_chars_per_s",
    "proc.write_bytes_per_s": "proc.write_chars_per_s",
}


def _add_quality_and_baselines(conn: Connection) -> None:
    present = {column["name"] for column in inspect(conn).get_columns("runs")}
    if "quality_verdict" not in present:
        conn.execute(text("ALTER TABLE runs ADD COLUMN quality_verdict VARCHAR(16)"))
    if "foreign_cpu_cores" not in present:
        conn.execute(text("ALTER TABLE runs ADD COLUMN foreign_cpu_cores FLOAT"))
    baselines.create(conn, checkfirst=True)
    for old, new in RENAMED_METRICS.items():
        conn.execute(
            text("UPDATE telemetry SET metric = :new WHERE metric = :old"), {"new": new, "old": old}
        )
    # The same names inside each run's stored telemetry summary.
    rows = conn.execute(text("SELECT run_id, result FROM runs WHERE result IS NOT NULL")).all()
    for run_id, result in rows:
        document = json.loads(result) if isinstance(result, str) else result
        renamed = _rename_metrics(document)
        if renamed is not None:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(result=renamed))


def _rename_metrics(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """``result`` with the renamed metrics in its telemetry summary (None: nothing to do)."""
    telemetry = (result or {}).get("telemetry") or {}
    blocks = [p for p in (telemetry.get("phases") or {}).values() if isinstance(p, dict)]
    if isinstance(telemetry.get("run"), dict):
        blocks.append(telemetry["run"])
    changed = False
    for block in blocks:
        metrics = block.get("metrics") or {}
        for old, new in RENAMED_METRICS.items():
            if old in metrics:
                metrics[new] = metrics.pop(old)
                changed = True
    return result if changed else None


def _add_heartbeat(conn: Connection) -> None:
    present = {column["name"] for column in inspect(conn).get_columns("runs")}
    for name, kind in (("heartbeat_at", "VARCHAR(32)"), ("heartbeat_s", "FLOAT"), ("pids", "JSON")):
        if name not in present:
            conn.execute(text(f"ALTER TABLE runs ADD COLUMN {name} {kind}"))


def _add_op_measurements(conn: Connection) -> None:
    op_measurements.create(conn, checkfirst=True)


# MIGRATIONS[v] upgrades a database from version v to v + 1.
MIGRATIONS: dict[int, Migration] = {
    1: _add_telemetry,
    2: _add_run_key,
    3: _add_quality_and_baselines,
    4: _add_heartbeat,
    5: _add_op_measurements,
}


def create_or_migrate(conn: Connection, where: str) -> None:
    """A new database gets the tables and the stamp; an older one is migrated in this
    transaction; a newer one, or another program's tables, is refused untouched."""
    if conn.dialect.name == "postgresql":
        # Several processes opening a new database at once: one creates, the others wait for
        # it (SQLite's BEGIN IMMEDIATE does the same there).
        conn.execute(text("SELECT pg_advisory_xact_lock(73796)"))
    tables = set(inspect(conn).get_table_names())
    version = stamped_version(conn, tables, where)
    if version is None:
        refuse_foreign(tables, where)  # tables, but not ours: another program's
        metadata.create_all(conn)
        conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        return
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where} has schema version {version}, newer than this dlbench understands "
            f"({SCHEMA_VERSION})",
            "upgrade dlbench to read it",
        )
    for step in range(version, SCHEMA_VERSION):
        MIGRATIONS[step](conn)
    if version != SCHEMA_VERSION:
        conn.execute(
            update(meta).where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
        )


def refuse_foreign(tables: set[str], where: str) -> None:
    if tables:
        raise StoreError(
            f"{where} is not a dlbench database: it holds other tables "
            f"({', '.join(sorted(tables))}); dlbench leaves it untouched",
            "give --db a new file or a database dlbench created",
        )


def stamped_version(conn: Connection, tables: set[str], where: str) -> int | None:
    """The schema version dlbench stamped in this database; None when it never did."""
    if "meta" not in tables:
        return None
    columns = {c["name"] for c in inspect(conn).get_columns("meta")}
    if columns != {"key", "value"}:
        return None
    value = conn.execute(
        select(meta.c.value).where(meta.c.key == "schema_version")
    ).scalar_one_or_none()
    if value is None:
        return None
    return version_number(value, where)


def version_number(value: str, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StoreError(
            f"{where} has a damaged schema version ({str(value)[:40]!r} is not a number)",
            "restore the database from a backup, or import its runs into a new one",
        ) from None

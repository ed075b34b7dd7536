"""The results store: every run, its configuration, hardware and per-step times.

SQLite by default, any SQLAlchemy URL when asked. Knows no framework: it stores and returns
plain records and dicts. Writes are short transactions, so results already stored survive
whatever happens to a later run.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from dlbench.errors import RunNotFound, StoreError
from dlbench.records import RunResult, StepRecord, TelemetrySample
from dlbench.store import schema
from dlbench.store.schema import runs, steps, telemetry

DEFAULT_DB = Path("results") / "dlbench.sqlite"
SQLITE_BUSY_TIMEOUT_S = 30


def default_url() -> str:
    return os.environ.get("DLBENCH_DB") or str(DEFAULT_DB)


def to_url(db: str) -> str:
    """A path becomes a SQLite URL; anything with '://' is taken as a SQLAlchemy URL."""
    if db.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + db.split("://", 1)[1]  # psycopg 3, not psycopg2
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Store:
    """One database. Open it, and the schema is created or migrated to this version."""

    def __init__(self, db: str | None = None, create: bool = True, read_only: bool = False) -> None:
        """``read_only``: open an existing database for reading only (the dashboard): it is
        neither created nor migrated, and no statement can change it."""
        self.url = to_url(db or default_url())
        self.read_only = read_only
        if (not create or read_only) and self.url.startswith("sqlite:///"):
            path = Path(self.url.removeprefix("sqlite:///"))
            if not path.is_file():
                raise StoreError(
                    f"no results database at {path}", "give the path of a .sqlite file"
                )
        self.engine = _open_engine(self.url, read_only)
        try:
            if read_only:
                self._check_readable()
            else:
                self._ensure_schema()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open the results database {self.describe()}: {_reason(exc)}",
                "check the path or URL given to --db / DLBENCH_DB",
            ) from exc

    def import_from(self, source: Store) -> tuple[int, int]:
        """Merge ``source``'s runs into this store: (added, already here)."""
        from dlbench.store.merge import import_runs

        return import_runs(self, source)

    def describe(self) -> str:
        """The database for messages: a file path, or the URL without its password."""
        if self.url.startswith("sqlite:///"):
            return self.url.removeprefix("sqlite:///")
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self, what: str) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot {what} in {self.describe()}: {_reason(exc)}") from exc

    @contextmanager
    def _read(self, what: str) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot {what} from {self.describe()}: {_reason(exc)}") from exc

    # -- schema -----------------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Several processes opening a new database at once: one creates, the others
                # wait for it (SQLite's BEGIN IMMEDIATE does the same there).
                conn.execute(text("SELECT pg_advisory_xact_lock(73796)"))
            schema.metadata.create_all(conn, tables=[schema.meta])
            row = conn.execute(
                select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
            ).first()
            if row is None:
                schema.metadata.create_all(conn)
                conn.execute(
                    schema.meta.insert().values(
                        key="schema_version", value=str(schema.SCHEMA_VERSION)
                    )
                )
                return
            version = int(row[0])
            if version > schema.SCHEMA_VERSION:
                raise StoreError(
                    f"{self.describe()} has schema version {version}, newer than this "
                    f"dlbench understands ({schema.SCHEMA_VERSION})",
                    "upgrade dlbench to read it",
                )
            for step in range(version, schema.SCHEMA_VERSION):
                schema.MIGRATIONS[step](conn)
            if version != schema.SCHEMA_VERSION:
                conn.execute(
                    update(schema.meta)
                    .where(schema.meta.c.key == "schema_version")
                    .values(value=str(schema.SCHEMA_VERSION))
                )

    def _check_readable(self) -> None:
        version = self.schema_version()
        if version != schema.SCHEMA_VERSION:
            raise StoreError(
                f"{self.describe()} has schema version {version}; this dlbench reads "
                f"{schema.SCHEMA_VERSION}",
                "open it once with a dlbench command that writes (e.g. dlbench runs) to migrate it"
                if version < schema.SCHEMA_VERSION
                else "upgrade dlbench to read it",
            )

    def schema_version(self) -> int:
        with self._read("read the schema version") as conn:
            row = conn.execute(
                select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
            ).one()
        return int(row[0])

    def check_writable(self) -> None:
        """Fail now, not after an hour of training, if results could not be written."""
        with self._write("write") as conn:
            conn.execute(
                update(schema.meta)
                .where(schema.meta.c.key == "schema_version")
                .values(value=str(schema.SCHEMA_VERSION))
            )

    # -- writing runs -----------------------------------------------------------------------
    def create_run(self, run_id: str, kind: str, config: dict[str, Any], **columns: Any) -> None:
        """Record a run as ``running`` before it starts, so that it is never lost."""
        row = {
            "run_id": run_id,
            "kind": kind,
            "created_at": utc_now(),
            "status": "running",
            "phase_reached": "setup",
            "tags": config.get("tags", {}),
            "config": config,
            **columns,
        }
        with self._write(f"record run {run_id}") as conn:
            conn.execute(runs.insert().values(**row))

    def set_hardware(self, run_id: str, hardware: dict[str, Any], **columns: Any) -> None:
        with self._write(f"record the hardware of run {run_id}") as conn:
            conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id)
                .values(hardware=hardware, hostname=hardware.get("hostname"), **columns)
            )

    def set_phase(self, run_id: str, phase: str) -> None:
        with self._write(f"record the phase of run {run_id}") as conn:
            conn.execute(update(runs).where(runs.c.run_id == run_id).values(phase_reached=phase))

    def finish_run(self, result: RunResult) -> None:
        """Store a run's result and its step times in one transaction."""
        speed = result.speed
        values = {
            "status": result.status,
            "error": result.error,
            "phase_reached": result.phase_reached,
            "finished_at": utc_now(),
            "mean_speed": speed.mean_speed if speed else None,
            "mean_step_time_s": speed.mean_step_time_s if speed else None,
            "speed_stderr": speed.speed_stderr if speed else None,
            "speed_jitter": speed.speed_jitter if speed else None,
            "timed_steps": speed.timed_steps if speed else 0,
            "throughput_e2e": result.throughput_e2e,
            "train_time_s": result.train_time_s,
            "val_time_s": result.val_time_s,
            "accuracy": result.accuracy,
            "peak_memory_bytes": result.peak_memory_bytes,
            "quality_verdict": result.quality.verdict if result.quality else None,
            "foreign_cpu_cores": result.quality.foreign_cpu_cores if result.quality else None,
            "total_time_s": result.total_time_s if result.total_time_s else result.wall_time_s,
            "result": _json_safe(result.to_dict()),
        }
        with self._write(f"store the result of run {result.run_id}") as conn:
            conn.execute(update(runs).where(runs.c.run_id == result.run_id).values(**values))
            conn.execute(steps.delete().where(steps.c.run_id == result.run_id))
            if result.steps:
                conn.execute(
                    steps.insert(), [{"run_id": result.run_id, **asdict(s)} for s in result.steps]
                )

    def end_unfinished(self, run_id: str, status: str, error: str) -> bool:
        """Close a run still marked ``running`` (its process died). True if one was closed."""
        with self._write(f"close run {run_id}") as conn:
            done = conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id, runs.c.status == "running")
                .values(status=status, error=error, finished_at=utc_now())
            )
        return bool(done.rowcount)

    def add_samples(self, run_id: str, samples: list[TelemetrySample]) -> None:
        """Append one batch of telemetry samples (the sampler flushes in batches)."""
        if not samples:
            return
        rows = [
            {
                "run_id": run_id,
                "metric": s.metric,
                "t_s": s.t_s,
                "wall": s.wall,
                "phase": s.phase,
                "value": s.value,
            }
            for s in samples
        ]
        with self._write(f"store telemetry of run {run_id}") as conn:
            conn.execute(telemetry.insert(), rows)

    def relabel(self, run_id: str, status: str, error: str) -> None:
        with self._write(f"update run {run_id}") as conn:
            conn.execute(
                update(runs).where(runs.c.run_id == run_id).values(status=status, error=error)
            )

    def put_note(self, key: str, value: dict[str, Any]) -> None:
        """Keep a JSON document under ``key`` (at most 64 characters) in the meta table,
        replacing any before: what dlbench derives from runs and keeps beside them (the
        calculator's chosen predictor)."""
        document = json.dumps(_json_safe(value))
        with self._write("keep a note") as conn:
            conn.execute(delete(schema.meta).where(schema.meta.c.key == key))
            conn.execute(schema.meta.insert().values(key=key, value=document))

    def get_note(self, key: str) -> dict[str, Any] | None:
        with self._read("read a note") as conn:
            document = conn.execute(
                select(schema.meta.c.value).where(schema.meta.c.key == key)
            ).scalar_one_or_none()
        return json.loads(document) if document else None

    # -- reading ----------------------------------------------------------------------------
    def get_run(self, run_id: str) -> dict[str, Any]:
        """One run by id, or by a unique prefix of it."""
        with self._read("read runs") as conn:
            rows = (
                conn.execute(
                    select(runs).where(runs.c.run_id.startswith(run_id, autoescape=True)).limit(2)
                )
                .mappings()
                .all()
            )
        if not rows:
            raise RunNotFound(f"no run {run_id!r} in {self.describe()}", "see dlbench runs")
        if len(rows) > 1 and rows[0]["run_id"] != run_id:
            raise RunNotFound(f"run id {run_id!r} is ambiguous", "give more of the id")
        return dict(rows[0])

    def list_runs(self, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Runs, newest first. ``filters`` match columns exactly; ``tags`` matches a subset."""
        tags = filters.pop("tags", None) or {}
        query = select(runs).order_by(runs.c.created_at.desc(), runs.c.run_id.desc())
        for column, value in filters.items():
            if value is not None:
                query = query.where(runs.c[column] == value)
        with self._read("read runs") as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        if tags:
            rows = [r for r in rows if all(r["tags"].get(k) == v for k, v in tags.items())]
        return rows[:limit] if limit else rows

    def run_table(self) -> list[dict[str, Any]]:
        """Every run's columns without the JSON blobs (config, hardware, result), newest
        first: what a list of thousands of runs needs, fast."""
        skip = {"config", "hardware", "result"}
        columns = [c for c in runs.c if c.name not in skip]
        query = select(*columns).order_by(runs.c.created_at.desc(), runs.c.run_id.desc())
        with self._read("read runs") as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def get_steps(self, run_id: str) -> list[StepRecord]:
        with self._read("read step times") as conn:
            rows = conn.execute(
                select(steps.c.step, steps.c.epoch, steps.c.step_time_s, steps.c.data_wait_s)
                .where(steps.c.run_id == run_id)
                .order_by(steps.c.step)
            ).all()
        return [StepRecord(*row) for row in rows]

    def get_samples(self, run_id: str, metrics: list[str] | None = None) -> list[TelemetrySample]:
        """A run's samples, all or those of ``metrics``, ordered by metric then time."""
        query = select(
            telemetry.c.t_s,
            telemetry.c.wall,
            telemetry.c.phase,
            telemetry.c.metric,
            telemetry.c.value,
        ).where(telemetry.c.run_id == run_id)
        if metrics:
            query = query.where(telemetry.c.metric.in_(metrics))
        with self._read("read telemetry") as conn:
            rows = conn.execute(query.order_by(telemetry.c.metric, telemetry.c.t_s)).all()
        return [TelemetrySample(*row) for row in rows]

    def sample_metrics(self, run_id: str) -> list[str]:
        with self._read("read telemetry") as conn:
            rows = conn.execute(
                select(telemetry.c.metric)
                .where(telemetry.c.run_id == run_id)
                .distinct()
                .order_by(telemetry.c.metric)
            ).all()
        return [row[0] for row in rows]

    def count_runs(self) -> int:
        with self._read("count runs") as conn:
            return int(conn.execute(select(func.count()).select_from(runs)).scalar_one())


def _open_engine(url: str, read_only: bool = False) -> Engine:
    try:
        if url.startswith("sqlite:///") and read_only:
            # SQLite itself refuses every write on a mode=ro connection.
            path = url.removeprefix("sqlite:///")
            engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", future=True)
            _configure_sqlite(engine, read_only=True)
            return engine
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        connect_args = {}
        if read_only and url.startswith("postgresql"):
            connect_args = {"options": "-c default_transaction_read_only=on"}
        engine = create_engine(url, future=True, connect_args=connect_args)
    except (OSError, SQLAlchemyError, ValueError, ImportError) as exc:
        where = url.removeprefix("sqlite:///")
        raise StoreError(
            f"cannot open the results database {where}: {exc}",
            "give a writable path or a valid SQLAlchemy URL to --db / DLBENCH_DB",
        ) from exc
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine, read_only: bool = False) -> None:
    """WAL with a busy timeout, and BEGIN IMMEDIATE so that concurrent writers queue
    instead of failing with 'database is locked' (see ENVIRONMENT.md). A reader takes no
    write lock: plain BEGIN."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event emit BEGIN
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        if not read_only:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).splitlines()[0]


def _json_safe(value: Any) -> Any:
    """Plain JSON values: tuples become lists, NaN and infinities become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value

"""The results store: every run, its configuration, hardware and per-step times.

SQLite by default, any SQLAlchemy URL when asked. Knows no framework: it stores and returns
plain records and dicts. Writes are short transactions, so results already stored survive
whatever happens to a later run.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import SQLAlchemyError

from dlbench.errors import StoreError
from dlbench.measure.quality import VERDICTS as VERDICT_ORDER
from dlbench.records import Quality, RunResult, StepRecord, TelemetrySample
from dlbench.store import liveness, schema
from dlbench.store.columns import json_safe, result_columns, utc_now
from dlbench.store.engine import (
    foreign_sqlite_tables,
    network_filesystem,
    open_engine,
    reason,
    to_url,
)
from dlbench.store.reading import RunReading
from dlbench.store.schema import runs, steps, telemetry

log = logging.getLogger("dlbench.store")
__all__ = ["DEFAULT_DB", "Store", "default_url", "to_url", "utc_now"]

DEFAULT_DB = Path("results") / "dlbench.sqlite"


def default_url() -> str:
    return os.environ.get("DLBENCH_DB") or str(DEFAULT_DB)


class Store(RunReading):
    """One database. Open it, and the schema is created or migrated to this version."""

    def __init__(self, db: str | None = None, create: bool = True, read_only: bool = False) -> None:
        """``read_only``: open an existing database for reading only (the dashboard): it is
        neither created nor migrated, and no statement can change it."""
        self.url = to_url(db or default_url())
        self.read_only = read_only
        self.write_failed = False
        self._warned: set[str] = set()  # malformed runs already said
        if (not create or read_only) and self.url.startswith("sqlite:///"):
            path = Path(self.url.removeprefix("sqlite:///"))
            if not path.is_file():
                raise StoreError(
                    f"no results database at {path}",
                    "give --db (or DLBENCH_DB) the .sqlite file your runs went to",
                )
        if self.url.startswith("sqlite:///"):
            # Before WAL mode is set on it: that alone rewrites another program's file header.
            self._refuse_foreign(foreign_sqlite_tables(self.url.removeprefix("sqlite:///")))
        self.engine = open_engine(self.url, read_only)
        self._warn_network_filesystem()
        try:
            if read_only:
                self._check_readable()
            else:
                self._ensure_schema()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open the results database {self.describe()}: {reason(exc)}",
                "check the path or URL given to --db / DLBENCH_DB",
            ) from exc
        self._file_id = self._identity()
        if not read_only:
            try:
                self.close_lost_runs()
            except StoreError:
                pass  # a full disk or a lock: readers still show them as lost

    def _warn_network_filesystem(self) -> None:
        """One line when a SQLite file lives on a file system several machines share."""
        if self.read_only or not self.url.startswith("sqlite:///"):
            return
        kind = network_filesystem(self.url.removeprefix("sqlite:///"))
        if kind:
            print(
                f"warning: the results database {self.describe()} is on {kind}, a network "
                "file system: SQLite's WAL mode does not work there, so it uses its rollback "
                "journal, safe for one machine at a time; several nodes writing at once need "
                "PostgreSQL (--db postgresql://user@host/dlbench)",
                file=sys.stderr,
            )

    def import_from(self, source: Store) -> tuple[int, int]:
        """Merge ``source``'s runs into this store: (added, already here)."""
        from dlbench.store.merge import import_runs

        return import_runs(self, source)

    def warn_write_failure(self, exc: Exception) -> None:
        """One warning per process for every write that fails during a run (a full disk):
        the run goes on, keeping in memory what it could not store."""
        if self.write_failed:
            return
        self.write_failed = True
        what = exc.one_line() if isinstance(exc, StoreError) else str(exc)
        log.warning(
            "%s (the run goes on; what cannot be stored is kept and saved at its end)", what
        )

    def describe(self) -> str:
        """The database for messages: a file path, or the URL without its password."""
        if self.url.startswith("sqlite:///"):
            return self.url.removeprefix("sqlite:///")
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def _identity(self) -> tuple[int, int] | None:
        """The SQLite file's (device, inode) as opened; None for a server database."""
        if not self.url.startswith("sqlite:///"):
            return None
        try:
            found = os.stat(self.url.removeprefix("sqlite:///"))
        except OSError:
            return None
        return found.st_dev, found.st_ino

    def _check_same_file(self, what: str) -> None:
        """The path still names the file this store opened. SQLite writes on into a deleted
        file's open inode, and a file moved in its place is another database: either way a
        write would be lost, so it fails (a run then saves its result to a file)."""
        if self._file_id is None:
            return
        now = self._identity()
        if now != self._file_id:
            happened = "deleted" if now is None else "replaced by another file"
            raise StoreError(
                f"cannot {what}: the database {self.describe()} was {happened} while this "
                "process used it",
                "the result goes to a saved-run file; dlbench import FILE puts it back",
            )

    @contextmanager
    def _write(self, what: str) -> Iterator[Connection]:
        self._check_same_file(what)
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot {what} in {self.describe()}: {reason(exc)}") from exc

    @contextmanager
    def _read(self, what: str) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot {what} from {self.describe()}: {reason(exc)}") from exc

    # -- schema -----------------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        with self.engine.begin() as conn:
            schema.create_or_migrate(conn, self.describe())

    def _refuse_foreign(self, tables: set[str]) -> None:
        schema.refuse_foreign(tables, self.describe())

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
            value = conn.execute(
                select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
            ).scalar_one_or_none()
        if value is None:
            raise StoreError(
                f"{self.describe()} is not a dlbench database (no schema version)",
                "give --db a database dlbench created",
            )
        return schema.version_number(value, self.describe())

    def check_writable(self) -> None:
        """Fail now, not after an hour of training, if results could not be written."""
        with self._write("write") as conn:
            conn.execute(
                update(schema.meta)
                .where(schema.meta.c.key == "schema_version")
                .values(value=str(schema.SCHEMA_VERSION))
            )

    # -- writing runs -----------------------------------------------------------------------
    def create_run(
        self,
        run_id: str,
        kind: str,
        config: dict[str, Any],
        pids: list[int] | None = None,
        **columns: Any,
    ) -> None:
        """Record a run as ``running`` before it starts, so that it is never lost. ``pids``:
        the processes whose heartbeat keeps it running (default: this one)."""
        now = utc_now()
        row = {
            "run_id": run_id,
            "kind": kind,
            "created_at": now,
            "status": "running",
            "phase_reached": "setup",
            "tags": config.get("tags", {}),
            "config": config,
            "hostname": liveness.this_host(),
            "heartbeat_at": now,
            "heartbeat_s": liveness.HEARTBEAT_S,
            "pids": liveness.process_ids(pids or [os.getpid()]),
            **columns,
        }
        with self._write(f"record run {run_id}") as conn:
            conn.execute(runs.insert().values(**row))

    def record_unstarted(
        self,
        run_id: str,
        kind: str,
        config: dict[str, Any],
        status: str,
        error: str,
        **columns: Any,
    ) -> None:
        """A run that ended before any process of its own started (nothing fits, its job
        ended first): stored closed, in one transaction."""
        row = {
            "run_id": run_id,
            "kind": kind,
            "created_at": utc_now(),
            "finished_at": utc_now(),
            "status": status,
            "error": error,
            "phase_reached": "setup",
            "tags": config.get("tags", {}),
            "config": config,
            **columns,
        }
        with self._write(f"record run {run_id}") as conn:
            conn.execute(runs.insert().values(**row))

    def heartbeat(self, run_id: str, pids: list[int] | None = None) -> None:
        """This run is alive (and, with ``pids``, these are its processes now)."""
        values: dict[str, Any] = {"heartbeat_at": utc_now()}
        if pids is not None:
            values["pids"] = liveness.process_ids(pids)
        with self._write(f"record that run {run_id} is alive") as conn:
            conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id, runs.c.status == "running")
                .values(**values)
            )

    def add_steps(self, run_id: str, completed: list[StepRecord]) -> None:
        """Store step times while the run goes on (its result replaces them at the end)."""
        if not completed:
            return
        with self._write(f"store step times of run {run_id}") as conn:
            conn.execute(
                steps.delete().where(steps.c.run_id == run_id, steps.c.step >= completed[0].step)
            )
            conn.execute(steps.insert(), [{"run_id": run_id, **asdict(s)} for s in completed])

    def close_lost_runs(self) -> list[str]:
        """Close every ``running`` row whose processes died without a word as ``lost``."""
        columns = [c for c in runs.c if c.name not in ("config", "hardware", "result")]
        with self._read("read runs") as conn:
            alive = [
                dict(r)
                for r in conn.execute(select(*columns).where(runs.c.status == "running")).mappings()
            ]
        lost = [row for row in alive if liveness.is_lost(row)]
        for row in lost:
            with self._write(f"close lost run {row['run_id']}") as conn:
                conn.execute(
                    update(runs)
                    .where(runs.c.run_id == row["run_id"], runs.c.status == "running")
                    .values(status="lost", error=liveness.lost_error(row), finished_at=utc_now())
                )
        return [row["run_id"] for row in lost]

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
        values = result_columns(result)
        with self._write(f"store the result of run {result.run_id}") as conn:
            done = conn.execute(update(runs).where(runs.c.run_id == result.run_id).values(**values))
            if done.rowcount != 1:  # its row is gone (the file was swapped before this opened)
                raise StoreError(
                    f"cannot store the result of run {result.run_id}: its row is not in "
                    f"{self.describe()}"
                )
            conn.execute(steps.delete().where(steps.c.run_id == result.run_id))
            if result.steps:
                conn.execute(
                    steps.insert(), [{"run_id": result.run_id, **asdict(s)} for s in result.steps]
                )

    def end_unfinished(self, run_id: str, status: str, error: str) -> bool:
        """Close a run still open (its process died): ``running``, or ``lost`` to a reader
        that gave up on it before its launcher knew why. True if one was closed."""
        with self._write(f"close run {run_id}") as conn:
            done = conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id, runs.c.status.in_(("running", "lost")))
                .values(status=status, error=error, finished_at=utc_now())
            )
        return bool(done.rowcount)

    def add_error(self, run_id: str, text: str) -> None:
        """Add what another node saw to a run's error (a run over several nodes fails on
        one; node 0 stores why it saw, the others add why they did)."""
        with self._write(f"add to the error of run {run_id}") as conn:
            row = conn.execute(select(runs.c.error).where(runs.c.run_id == run_id)).first()
            if row is None:
                return
            error = f"{row.error}; {text}" if row.error else text
            conn.execute(update(runs).where(runs.c.run_id == run_id).values(error=error))

    def add_node_quality(self, run_id: str, node: str, quality: Quality) -> None:
        """Join another node's verdict to a run's: the run's is its worst node's, and the
        node's reasons are listed after node 0's, each naming the node."""
        with self._write(f"add a node's verdict to run {run_id}") as conn:
            row = conn.execute(
                select(runs.c.result, runs.c.quality_verdict).where(runs.c.run_id == run_id)
            ).first()
            if row is None:
                return
            result = dict(row.result or {})
            stored = dict(result.get("quality") or {"verdict": None, "reasons": []})
            reasons = list(stored.get("reasons") or [])
            reasons += [f"{node}: {quality.verdict}"] + [f"{node}: {r}" for r in quality.reasons]
            worst = max(
                (v for v in (stored.get("verdict"), quality.verdict) if v in VERDICT_ORDER),
                key=VERDICT_ORDER.index,
            )
            result["quality"] = {**stored, "verdict": worst, "reasons": reasons}
            conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id)
                .values(result=result, quality_verdict=worst)
            )

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

    def delete_runs(self, run_ids: list[str]) -> int:
        """Remove these runs with their steps and telemetry, in one transaction: all or none.
        The ids must be whole (``run(prefix).run_id``)."""
        with self._write("delete runs") as conn:
            for table in (steps, telemetry):
                conn.execute(delete(table).where(table.c.run_id.in_(run_ids)))
            gone = conn.execute(delete(runs).where(runs.c.run_id.in_(run_ids))).rowcount
        return int(gone)

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Replace a run's tags (its label; the measurement itself never changes)."""
        with self._write(f"tag run {run_id}") as conn:
            conn.execute(update(runs).where(runs.c.run_id == run_id).values(tags=tags))

    def put_note(self, key: str, value: dict[str, Any]) -> None:
        """Keep a JSON document under ``key`` (at most 64 characters) in the meta table,
        replacing any before: what dlbench derives from runs and keeps beside them (the
        calculator's chosen predictor)."""
        document = json.dumps(json_safe(value))
        with self._write("keep a note") as conn:
            conn.execute(delete(schema.meta).where(schema.meta.c.key == key))
            conn.execute(schema.meta.insert().values(key=key, value=document))

    def get_note(self, key: str) -> dict[str, Any] | None:
        with self._read("read a note") as conn:
            document = conn.execute(
                select(schema.meta.c.value).where(schema.meta.c.key == key)
            ).scalar_one_or_none()
        return json.loads(document) if document else None

"""Reading runs from the results store: one run, a filtered list, the light table of every
run, step times and telemetry. A row that another program or a damaged import left is never
handed to a reader: it is left out with one warning, or named in one error."""

from __future__ import annotations

import math
import sys
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, func, select

from dlbench.errors import MalformedRun, RunNotFound
from dlbench.records import StepRecord, TelemetrySample
from dlbench.store import liveness
from dlbench.store.schema import runs, steps, telemetry
from dlbench.store.stored import StoredRun


class RunReading:
    """The reading half of ``Store`` (a mixin: ``Store`` gives it a connection and a name)."""

    _warned: set[str]  # malformed runs already said, once per run and process

    def describe(self) -> str:
        raise NotImplementedError

    def _read(self, what: str) -> AbstractContextManager[Connection]:
        raise NotImplementedError

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
        return liveness.as_seen(dict(rows[0]))

    def list_runs(self, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Runs, newest first. ``filters`` match columns exactly; ``tags`` matches a subset.
        A row that does not hold what dlbench writes is left out, with one warning."""
        return [row for row, _ in self._readable_runs(limit, **filters)]

    def run(self, run_id: str) -> StoredRun:
        """One run (an id or a unique prefix), typed: what readers use."""
        return StoredRun.from_row(self.get_run(run_id))

    def runs(self, limit: int | None = None, **filters: Any) -> list[StoredRun]:
        """Runs, newest first, typed; ``filters`` as ``list_runs``'s."""
        return [typed for _, typed in self._readable_runs(limit, **filters)]

    def _readable_runs(
        self, limit: int | None = None, **filters: Any
    ) -> list[tuple[dict[str, Any], StoredRun]]:
        tags = filters.pop("tags", None) or {}
        query = select(runs).order_by(runs.c.created_at.desc(), runs.c.run_id.desc())
        for column, value in filters.items():
            if value is not None:
                query = query.where(runs.c[column] == value)
        with self._read("read runs") as conn:
            rows = [liveness.as_seen(dict(r)) for r in conn.execute(query).mappings()]
        if filters.get("status") == "running":
            rows = [r for r in rows if r["status"] == "running"]
        found = []
        for row in rows:
            typed = self._readable(row)
            if typed is not None and all(typed.tags.get(k) == v for k, v in tags.items()):
                found.append((row, typed))
        return found[:limit] if limit else found

    def _readable(self, row: dict[str, Any]) -> StoredRun | None:
        """The row typed, or None (said once per run) when it is malformed."""
        try:
            return StoredRun.from_row(row)
        except MalformedRun as exc:
            if exc.run_id not in self._warned:  # once per run and process, on stderr
                self._warned.add(exc.run_id)
                print(f"warning: left out: {exc.one_line()}", file=sys.stderr)
            return None

    def run_table(self) -> list[dict[str, Any]]:
        """Every run's columns without the JSON blobs (config, hardware, result), newest
        first: what a list of thousands of runs needs, fast. Malformed rows are left out."""
        skip = {"config", "hardware", "result"}
        columns = [c for c in runs.c if c.name not in skip]
        query = select(*columns).order_by(runs.c.created_at.desc(), runs.c.run_id.desc())
        with self._read("read runs") as conn:
            rows = [liveness.as_seen(dict(r)) for r in conn.execute(query).mappings()]
        return [row for row in rows if self._readable(row) is not None]

    def get_steps(self, run_id: str) -> list[StepRecord]:
        with self._read("read step times") as conn:
            rows = conn.execute(
                select(steps.c.step, steps.c.epoch, steps.c.step_time_s, steps.c.data_wait_s)
                .where(steps.c.run_id == run_id)
                .order_by(steps.c.step)
            ).all()
        return [StepRecord(*row) for row in rows if _numbers(row)]

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
        # another writer's row with text for a time or a value is not a sample
        return [
            TelemetrySample(*row)
            for row in rows
            if _numbers(row[:2]) and _numbers(row[4:]) and isinstance(row[2], str)
        ]

    def sample_metrics(self, run_id: str) -> list[str]:
        with self._read("read telemetry") as conn:
            rows = conn.execute(
                select(telemetry.c.metric)
                .where(telemetry.c.run_id == run_id)
                .distinct()
                .order_by(telemetry.c.metric)
            ).all()
        return [row[0] for row in rows]

    def has(self, column: str, value: str) -> bool:
        """Whether any run has ``value`` in the runs-table ``column`` (a filter's check)."""
        with self._read("read runs") as conn:
            found = conn.execute(select(runs.c.run_id).where(runs.c[column] == value).limit(1))
            return found.first() is not None

    def count_runs(self) -> int:
        with self._read("count runs") as conn:
            return int(conn.execute(select(func.count()).select_from(runs)).scalar_one())


def _numbers(values: Any) -> bool:
    """Every value a finite int or float (SQLite stores whatever a writer gives it)."""
    return all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
    )

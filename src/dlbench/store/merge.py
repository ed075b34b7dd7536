"""``dlbench import``: merge another database's runs into this one, deduplicated by run id,
and its operator measurements (``calibrate --ops``), deduplicated by device, shape and time.

Each run is copied whole (row, step times, telemetry) in one transaction, so an interrupted
import leaves every run either fully there or absent, and running it again completes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, cast, func, select

from dlbench.errors import ConfigError
from dlbench.store.schema import op_measurements, runs, steps, telemetry

if TYPE_CHECKING:
    from dlbench.store.database import Store

TELEMETRY_CHUNK = 50_000  # rows per insert statement
DOCUMENTS = ("config", "hardware", "result", "error")
MAX_DOCUMENT_CHARS = 64 * 2**20  # a run's result with its telemetry summary is a few hundred KiB


def import_runs(target: Store, source: Store) -> tuple[int, int]:
    """(runs added, runs already in ``target``). Every run to add is checked first (row, steps
    and telemetry, against what dlbench writes): one that is not is one error line naming it
    and its field, and nothing is written."""
    if source.url == target.url:
        from dlbench.errors import StoreError

        raise StoreError("dlbench import: the database to import is this database")
    with source._read("list the runs to import") as conn:
        wanted = [row[0] for row in conn.execute(select(runs.c.run_id).order_by(runs.c.run_id))]
    with target._read("list the runs already here") as conn:
        present = {row[0] for row in conn.execute(select(runs.c.run_id))}
    new = [run_id for run_id in wanted if run_id not in present]
    check_runs(source, new)  # the whole source checked before a single row is written
    for run_id in new:
        row, step_rows, samples = _read_checked(source, run_id)
        with target._write(f"import run {row['run_id']}") as conn:
            conn.execute(runs.insert().values(**row))
            if step_rows:
                conn.execute(steps.insert(), step_rows)
            for start in range(0, len(samples), TELEMETRY_CHUNK):
                conn.execute(telemetry.insert(), samples[start : start + TELEMETRY_CHUNK])
    return len(new), len(wanted) - len(new)


def check_runs(source: Store, run_ids: list[Any] | None = None) -> None:
    """Check ``run_ids`` of ``source`` (default: all) as an import would, writing nothing."""
    if run_ids is None:
        with source._read("list the runs to import") as conn:
            run_ids = [row[0] for row in conn.execute(select(runs.c.run_id))]
    for run_id in run_ids:
        _read_checked(source, run_id)


def _read_checked(
    source: Store, run_id: Any
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """One run of ``source``, checked: its row (as stored here), steps and telemetry rows."""
    from dlbench.store import incoming

    where = f"{source.describe()}: run {str(run_id)[:80]!r}"
    with source._read(f"read run {run_id}") as conn:
        sizes = conn.execute(
            select(*(func.length(cast(runs.c[c], Text)) for c in DOCUMENTS)).where(
                runs.c.run_id == run_id
            )
        ).one()
        for column, size in zip(DOCUMENTS, sizes, strict=True):
            if (size or 0) > MAX_DOCUMENT_CHARS:
                raise ConfigError(
                    f"{where}: {column}: larger than {MAX_DOCUMENT_CHARS:,} characters"
                )
        row = dict(conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().one())
        checked = incoming.run_row(row, where)
        step_rows = [
            {k: v for k, v in r.items() if k != "run_id"}
            for r in conn.execute(select(steps).where(steps.c.run_id == run_id)).mappings()
        ]
        samples = [
            {k: v for k, v in r.items() if k != "run_id"}
            for r in conn.execute(select(telemetry).where(telemetry.c.run_id == run_id)).mappings()
        ]
    step_rows = [{"run_id": run_id, **r} for r in incoming.step_rows(step_rows, where)]
    samples = [{"run_id": run_id, **r} for r in incoming.sample_rows(samples, where)]
    return checked, step_rows, samples


def import_operators(target: Store, source: Store) -> int:
    """Copy ``source``'s operator measurements (``calibrate --ops``) that ``target`` lacks, in
    one transaction; the number copied. A measurement is the same when its device, kind,
    precision, shape and time are."""
    from dlbench.store import operators as stored_ops

    theirs, ours = stored_ops.table(source), stored_ops.table(target)
    if theirs.empty:
        return 0

    def keys(frame: Any) -> list[str]:
        return [
            f"{d}|{k}|{p}|{stored_ops.shape_key(s)}|{t}"
            for d, k, p, s, t in zip(
                frame["device_name"], frame["kind"], frame["precision"], frame["shape"],
                frame["created_at"], strict=True,
            )
        ]  # fmt: skip

    present = set(keys(ours))
    new = [
        {k: v for k, v in row.items() if k != "id"}
        for row, key in zip(theirs.to_dict("records"), keys(theirs), strict=True)
        if key not in present
    ]
    if new:
        with target._write("import operator measurements") as conn:
            conn.execute(op_measurements.insert(), new)
    return len(new)

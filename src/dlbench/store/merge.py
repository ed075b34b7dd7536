"""``dlbench import``: merge another database's runs into this one, deduplicated by run id,
and its operator measurements (``calibrate --ops``), deduplicated by device, shape and time.

Each run is copied whole (row, step times, telemetry) in one transaction, so an interrupted
import leaves every run either fully there or absent, and running it again completes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from dlbench.store.schema import op_measurements, runs, steps, telemetry

if TYPE_CHECKING:
    from dlbench.store.database import Store

TELEMETRY_CHUNK = 50_000  # rows per insert statement


def import_runs(target: Store, source: Store) -> tuple[int, int]:
    """(runs added, runs already in ``target``)."""
    if source.url == target.url:
        from dlbench.errors import StoreError

        raise StoreError("dlbench import: the database to import is this database")
    with source._read("list the runs to import") as conn:
        wanted = [row[0] for row in conn.execute(select(runs.c.run_id).order_by(runs.c.run_id))]
    with target._read("list the runs already here") as conn:
        present = {row[0] for row in conn.execute(select(runs.c.run_id))}
    added = 0
    for run_id in wanted:
        if run_id in present:
            continue
        with source._read(f"read run {run_id}") as conn:
            row = dict(conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().one())
            step_rows = [
                dict(r)
                for r in conn.execute(select(steps).where(steps.c.run_id == run_id)).mappings()
            ]
            samples = [
                dict(r)
                for r in conn.execute(
                    select(telemetry).where(telemetry.c.run_id == run_id)
                ).mappings()
            ]
        with target._write(f"import run {run_id}") as conn:
            conn.execute(runs.insert().values(**row))
            if step_rows:
                conn.execute(steps.insert(), step_rows)
            for start in range(0, len(samples), TELEMETRY_CHUNK):
                conn.execute(telemetry.insert(), samples[start : start + TELEMETRY_CHUNK])
        added += 1
    return added, len(wanted) - added


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

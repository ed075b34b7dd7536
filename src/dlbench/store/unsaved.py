"""A run's result that its database could not take (a full disk, a lost server), kept in a JSON
file until ``dlbench import FILE.json`` puts it back.

The file holds what the store would have: the run's row (its ``--json`` summary is derived from
it), its step times and the telemetry that was still in memory. It goes beside the database
when that folder can take it, else under ``$XDG_STATE_HOME/dlbench/unsaved/``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from dlbench.errors import ConfigError, StoreError
from dlbench.records import RunResult, StepRecord, TelemetrySample
from dlbench.store.liveness import is_lost
from dlbench.store.schema import runs, steps, telemetry

if TYPE_CHECKING:
    from dlbench.store.database import Store
    from dlbench.store.stored import StoredRun

FORMAT = "dlbench-unsaved-run"
FORMAT_VERSION = 1
OPEN_STATUSES = ("running", "lost")  # a stored row the file may complete


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dlbench" / "unsaved"


def save(
    store: Store,
    row: dict[str, Any],
    completed: list[StepRecord] | tuple[StepRecord, ...],
    samples: list[TelemetrySample],
) -> Path:
    """Write the run to a JSON file; its path. Raises StoreError when no place can take it."""
    from dlbench.store.columns import json_safe

    document = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "database": store.describe(),
        "run": json_safe(row),
        "steps": [asdict(s) for s in completed],
        "telemetry": [asdict(s) for s in samples],
    }
    text = json.dumps(document)
    name = f"dlbench-unsaved-{row['run_id']}.json"
    places = [state_dir()]
    if store.url.startswith("sqlite:///"):
        places.insert(0, Path(store.url.removeprefix("sqlite:///")).parent)
    reasons = []
    for folder in places:
        path = folder / name
        partial = path.with_suffix(".part")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            partial.write_text(text)
            partial.replace(path)  # never a half-written file under the final name
            return path
        except OSError as exc:
            reasons.append(f"{folder}: {exc.strerror or exc}")
            try:
                partial.unlink(missing_ok=True)
            except OSError:
                pass
    raise StoreError(f"run {row['run_id']} could not be saved anywhere ({'; '.join(reasons)})")


def keep(
    store: Store,
    result: RunResult,
    samples: list[TelemetrySample],
    known: dict[str, Any],
    failure: StoreError,
) -> Path | None:
    """Save a result that ``store`` refused (``failure``) to a file, and say so in one line;
    its path, or None when nowhere could take it either. ``known``: the run's columns as its
    process knows them, for when the stored row cannot be read back."""
    from dlbench.store.columns import result_columns, utc_now

    try:
        row = store.get_run(result.run_id)
    except StoreError:
        row = {"run_id": result.run_id, **known}
    row.update({k: v for k, v in known.items() if v is not None and k != "created_at"})
    row.setdefault("created_at", utc_now())  # a row the store never took: now, roughly
    row.setdefault("tags", {})
    try:
        path = save(store, row | result_columns(result), result.steps, samples)
    except StoreError as nowhere:
        print(f"dlbench: {failure.one_line()}; {nowhere.one_line()}", file=sys.stderr)
        return None
    print(
        f"dlbench: run {result.run_id} was not stored ({failure.one_line()}); its result is "
        f"saved in {path}: restore it with dlbench import {path}",
        file=sys.stderr,
    )
    return path


def is_unsaved_file(path: str) -> bool:
    """What ``dlbench import`` takes for a saved run rather than a database."""
    return path.endswith(".json") and "://" not in path


MAX_FILE_BYTES = 256 * 2**20  # a day of telemetry at 1 s is a few tens of MiB


def load(path: Path) -> dict[str, Any]:
    """The saved run in ``path``, read in bounded size and depth; its envelope checked (the
    run itself is checked by ``checked``)."""
    from dlbench.input_files import load_json

    try:
        document = load_json(path, "saved run", MAX_FILE_BYTES)
    except ConfigError as exc:
        raise StoreError(exc.message, exc.hint) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise StoreError(
            f"{path} is not a run dlbench saved when its database could not take it",
            "dlbench import takes such a .json file or another results database",
        )
    if document.get("version") != FORMAT_VERSION or not isinstance(document.get("run"), dict):
        raise StoreError(f"{path}: unsaved-run format version {document.get('version')!r} unknown")
    return document


def checked(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(run row, step rows, telemetry rows) of the saved run, each checked against the schema
    of what dlbench writes: one error line naming the field, before anything is written."""
    from dlbench.store import incoming

    document = load(path)
    row = incoming.run_row(document["run"], f"{path}: run")
    where = f"{path}: run {row['run_id']}"
    steps_found = incoming.step_rows(document.get("steps", []), where)
    samples = incoming.sample_rows(document.get("telemetry", []), where)
    return row, steps_found, samples


def summary(path: Path) -> StoredRun:
    """The saved run, as a reader sees it."""
    from dlbench.store.stored import StoredRun

    return StoredRun.from_row(load(path)["run"])


def import_file(store: Store, path: Path) -> bool:
    """Put the saved run into ``store``: True if added or completed, False if already there.
    A row still open here is completed, never one whose processes are alive (a live run)."""
    return import_checked(store, checked(path))


def import_checked(
    store: Store, content: tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]
) -> bool:
    """``import_file`` of a saved run already read and checked (``checked``)."""
    row, step_rows, sample_rows = content
    run_id = row["run_id"]
    step_rows = [{"run_id": run_id, **s} for s in step_rows]
    sample_rows = [{"run_id": run_id, **s} for s in sample_rows]
    with store._write(f"import run {run_id}") as conn:
        found = conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().first()
        if found is not None and found["status"] not in OPEN_STATUSES:
            return False
        if found is not None and found["status"] == "running" and not is_lost(dict(found)):
            raise StoreError(
                f"run {run_id} is running here now: its row is not replaced while its "
                "processes live",
                "import the file once the run has ended (dlbench runs shows it)",
            )
        if found is None:
            conn.execute(runs.insert().values(**row))
        else:  # every column the file has, an empty error included: the run is what it says
            kept = {k: v for k, v in row.items() if v is not None or k in ("error",)}
            kept.pop("run_id")
            conn.execute(update(runs).where(runs.c.run_id == run_id).values(**kept))
        conn.execute(steps.delete().where(steps.c.run_id == run_id))
        if step_rows:
            conn.execute(steps.insert(), step_rows)
        present = {
            (m, t)
            for m, t in conn.execute(
                select(telemetry.c.metric, telemetry.c.t_s).where(telemetry.c.run_id == run_id)
            )
        }
        fresh = [r for r in sample_rows if (r["metric"], r["t_s"]) not in present]
        if fresh:
            conn.execute(telemetry.insert(), fresh)
    return True

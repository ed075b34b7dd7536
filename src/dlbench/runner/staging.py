"""Data staging: copy the dataset from one storage tier to another before a run, timed.

HPC centres keep data on a shared filesystem ($SCRATCH) and train from node-local disk
($LOCAL). ``--stage-from DIR --stage-to DIR`` copies DIR into the target (environment variables
expanded on the node that runs, where $LOCAL means something), times the copy, trains from the
copy, and removes it after the run. ``staged_from`` is stored so that the same workload can be
compared across tiers.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from dlbench.errors import DataError
from dlbench.records import StagingStats


def expand(path: str) -> str:
    """``$SCRATCH/data`` and ``~/data`` as this node sees them; an unset variable is an error."""
    expanded = os.path.expanduser(os.path.expandvars(path))
    if "$" in expanded:
        raise DataError(
            f"{path}: an environment variable in it is not set on this node ({expanded})",
            "export it in the job, or give the path itself",
        )
    return expanded


MARKER = ".dlbench-staged"  # in every copy dlbench makes: only such a folder is replaced


def check_plan(data: str, source: str, target_root: str) -> Path:
    """Before a run: staging ``source`` into ``target_root`` moves ``data`` and destroys
    nothing. The copy's destination, or one DataError line."""
    src = Path(expand(source))
    if not src.is_dir():
        raise DataError(f"--stage-from {source}: {src} is not a folder")
    path = Path(expand(data)).resolve()
    if path != src.resolve() and src.resolve() not in path.parents:
        raise DataError(
            f"--data {data} is not inside --stage-from {source}: staging would not move it"
        )
    destination = Path(expand(target_root)) / src.name
    if destination.resolve() == src.resolve():
        raise DataError(f"--stage-to {target_root}: it is where the data already is")
    if destination.exists() and not (destination / MARKER).exists():
        raise DataError(
            f"--stage-to {target_root}: {destination} exists and is not a copy dlbench staged; "
            "it is left as it is",
            "remove it yourself, or give another --stage-to",
        )
    return destination


def stage(source: str, target_root: str, data: str | None = None) -> StagingStats:
    """Copy ``source`` into ``target_root``/<its name>, replacing an older copy dlbench made
    (never another folder), and time it."""
    src = Path(expand(source))
    destination = check_plan(data or source, source, target_root)
    if destination.exists():
        shutil.rmtree(destination)  # an old copy would make the copy time a lie
    destination.parent.mkdir(parents=True, exist_ok=True)
    files = sum(1 for p in src.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    start = time.perf_counter()
    shutil.copytree(src, destination)
    os.sync()  # a copy still in the page cache is not staged yet
    seconds = time.perf_counter() - start
    (destination / MARKER).write_text("copied here by dlbench --stage-from; removed after\n")
    return StagingStats(
        source=str(src),
        destination=str(destination),
        bytes=size,
        files=files,
        seconds=seconds,
        bytes_per_s=size / seconds if seconds > 0 else 0.0,
    )


def staged_data(data: str, stats: StagingStats) -> str:
    """Where ``data`` (inside the staged folder, or the folder itself) is after staging."""
    path = Path(expand(data))
    try:
        relative = path.resolve().relative_to(Path(stats.source).resolve())
    except ValueError:
        raise DataError(
            f"--data {data} is not inside --stage-from {stats.source}: staging would not move it"
        ) from None
    return str(Path(stats.destination) / relative)


def remove(stats: StagingStats) -> None:
    shutil.rmtree(stats.destination, ignore_errors=True)

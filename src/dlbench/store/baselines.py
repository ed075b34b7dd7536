"""Named baselines (``dlbench baseline``): a reference configuration and what it measured.

Each baseline keeps the runs' configuration, their speeds and step statistics, and the
hardware fingerprint, whole, so ``dlbench check`` can compare against it even where the runs
themselves are not in this database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from dlbench.errors import ConfigError
from dlbench.store.schema import baselines

if TYPE_CHECKING:
    from dlbench.store.database import Store


def put(store: Store, name: str, record: dict[str, Any], replace: bool = False) -> None:
    """Keep ``record`` (spec, runs, hardware, workload, device_name, hostname) as ``name``."""
    from dlbench.store.columns import json_safe, utc_now

    with store._write(f"keep baseline {name}") as conn:
        exists = conn.execute(select(baselines.c.name).where(baselines.c.name == name)).first()
        if exists and not replace:
            raise ConfigError(
                f"a baseline named {name!r} already exists",
                "give another name, remove it (dlbench baseline rm), or --replace it",
            )
        if exists:
            conn.execute(delete(baselines).where(baselines.c.name == name))
        conn.execute(
            baselines.insert().values(name=name, created_at=utc_now(), **json_safe(record))
        )


def get(store: Store, name: str) -> dict[str, Any]:
    with store._read("read baselines") as conn:
        row = conn.execute(select(baselines).where(baselines.c.name == name)).mappings().first()
    if row is None:
        known = ", ".join(b["name"] for b in every(store)) or "none yet"
        raise ConfigError(
            f"no baseline named {name!r} in {store.describe()}",
            f"known: {known}; make one with dlbench baseline set NAME RUN...",
        )
    return dict(row)


def every(store: Store) -> list[dict[str, Any]]:
    with store._read("read baselines") as conn:
        rows = conn.execute(select(baselines).order_by(baselines.c.name)).mappings().all()
    return [dict(r) for r in rows]


def remove(store: Store, name: str) -> None:
    get(store, name)  # one clear error if there is none
    with store._write(f"remove baseline {name}") as conn:
        conn.execute(delete(baselines).where(baselines.c.name == name))

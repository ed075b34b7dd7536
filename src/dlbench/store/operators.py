"""Operator measurements (``dlbench calibrate --ops``): written a block at a time, each block
in one transaction (a killed calibration keeps every block it finished, never half of one),
read back as a table for the operator-level predictor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import select

from dlbench.store.schema import op_measurements

if TYPE_CHECKING:
    from dlbench.store.database import Store

COLUMNS = [c.name for c in op_measurements.columns]


def add(store: Store, rows: list[dict[str, Any]]) -> None:
    """Store one block of measurements (all or none)."""
    from dlbench.store.columns import json_safe, utc_now

    if not rows:
        return
    now = utc_now()
    with store._write("store operator measurements") as conn:
        conn.execute(op_measurements.insert(), [{"created_at": now, **json_safe(r)} for r in rows])


def table(store: Store, device_name: str | None = None) -> pd.DataFrame:
    """Every stored measurement (of one device), oldest first, as a frame with COLUMNS."""
    query = select(op_measurements).order_by(op_measurements.c.id)
    if device_name is not None:
        query = query.where(op_measurements.c.device_name == device_name)
    with store._read("read operator measurements") as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    return pd.DataFrame(rows, columns=COLUMNS)


def usable(measurements: pd.DataFrame) -> pd.DataFrame:
    """The measurements a predictor may learn from: not contended, the latest of each shape."""
    if measurements.empty:
        return measurements
    kept = measurements[measurements["quality_verdict"] != "contended"]
    key = kept["kind"] + "|" + kept["precision"] + "|" + kept["shape"].map(shape_key)
    return kept.assign(_key=key).drop_duplicates("_key", keep="last").drop(columns="_key")


def shape_key(shape: dict[str, int]) -> str:
    return ",".join(f"{k}={shape[k]}" for k in sorted(shape))


def devices(store: Store) -> dict[str, int]:
    """Devices with operator measurements, and how many each has."""
    found = table(store)
    if found.empty:
        return {}
    return {str(k): int(v) for k, v in found["device_name"].value_counts().items()}


__all__ = ["add", "devices", "shape_key", "table", "usable"]

"""The library calls behind the CLI: check a run fully before it starts, then launch it."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

from dlbench import datasets, staging
from dlbench.config import RunSpec
from dlbench.engines import DeviceInfo, get_engine
from dlbench.launch.local import LaunchOutcome, run_local
from dlbench.store import Store
from dlbench.workloads import get_workload


def new_run_id() -> str:
    """Sortable and unique: UTC time to the second plus 6 random hex digits."""
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def preflight_device(spec: RunSpec) -> DeviceInfo:
    """The framework, device and precision exist here, or one clear error."""
    engine = get_engine(spec.framework)
    device = engine.resolve_device(spec.device)
    engine.check_precision(device, spec.precision)
    return device


def preflight(spec: RunSpec, store: Store) -> DeviceInfo:
    """Everything that can be checked before a run starts, so that bad input stores nothing:
    the database is writable, the framework and device exist, the data can be read."""
    store.check_writable()
    device = preflight_device(spec)
    workload = get_workload(spec.workload)
    assert spec.dataset is not None
    data = spec.data
    if data not in (datasets.SYNTHETIC, datasets.DIGITS):
        data = staging.expand(data)
    datasets.probe(data, workload.data_format, spec.dataset)
    return device


def run_benchmark(
    spec: RunSpec, store: Store, *, show_progress: bool = False, timeout_s: float | None = None
) -> LaunchOutcome:
    """Preflight, then run ``spec`` in its own process; the result is in ``store``."""
    preflight(spec, store)
    return run_local(spec, new_run_id(), store, show_progress=show_progress, timeout_s=timeout_s)

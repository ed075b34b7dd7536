"""System telemetry: one small source class per resource, a sampler thread, summaries.

Sources are imported on use. ``build_sources`` makes the standard set for a run or a
monitored command; a source that cannot work here reports why and is skipped.
"""

from __future__ import annotations

from dlbench.registry import resolve
from dlbench.telemetry.base import Source

SOURCES: dict[str, str] = {
    "cpu": "dlbench.telemetry.cpu:CpuSource",
    "memory": "dlbench.telemetry.memory:MemorySource",
    "disk": "dlbench.telemetry.disk:DiskSource",
    "net": "dlbench.telemetry.net:NetSource",
    "process": "dlbench.telemetry.process:ProcessTreeSource",
    "gpu": "dlbench.telemetry.nvml:NvmlSource",
    "rapl": "dlbench.telemetry.rapl:RaplSource",
}
DEFAULT_INTERVAL_S = 1.0


def build_sources(
    pid: int | None = None, data_disk: str | None = None, process: bool = True
) -> list[Source]:
    """The standard sources; ``pid`` is the process tree to follow (default: this one). The
    GPU source learns the tree's pids from the process source, read just before it.
    ``process=False``: the machine only (an exporter has no run of its own to follow)."""
    tree = resolve(SOURCES["process"])(pid=pid)
    arguments: dict[str, dict[str, object]] = {
        "cpu": {"pid": pid},
        "disk": {"data_disk": data_disk},
        "gpu": {"own_pids": tree.pids},
    }
    return [
        tree if name == "process" else resolve(path)(**arguments.get(name, {}))
        for name, path in SOURCES.items()
        if process or name != "process"
    ]

"""Where a sweep's runs execute, chosen by name (``--executor``) through a registry.

``local``: here, one run after another, each in its own process (a run with ``gpus: N``
starts under torchrun: the launcher registry in ``dlbench.launch`` picks that per run).
``slurm``: one batch job per run, submitted through submitit, followed until every job has
left the queue. Either way every run ends stored, whatever happens to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dlbench.errors import ConfigError
from dlbench.registry import resolve

if TYPE_CHECKING:
    from dlbench.launch.quiet import QuietPolicy, QuietReport
    from dlbench.store.database import Store
    from dlbench.store.stored import StoredRun
    from dlbench.sweep.execute import Planned
    from dlbench.sweep.file import Sweep, SweepRun

EXECUTORS: dict[str, str] = {
    "local": "dlbench.sweep.execute:LocalExecutor",
    "slurm": "dlbench.sweep.slurm:SlurmExecutor",
}


@dataclass(frozen=True)
class SweepEvents:
    """What the caller hears while a sweep runs, and how quiet the machine must be first."""

    on_start: Callable[[SweepRun], None] | None = None
    on_end: Callable[[SweepRun, StoredRun], None] | None = None
    say: Callable[[str], None] = print
    quiet: QuietPolicy | None = None
    report: QuietReport | None = None
    wait: bool = True  # for the runs to end (Slurm: --no-wait returns once submitted)


class SweepExecutor(Protocol):
    local: bool  # the runs execute on this machine: the quiet gate and a progress bar apply

    def run(
        self, sweep: Sweep, store: Store, planned: list[Planned], events: SweepEvents
    ) -> None: ...


def get_executor(name: str) -> SweepExecutor:
    if name not in EXECUTORS:
        raise ConfigError(
            f"--executor {name!r} is not {' or '.join(EXECUTORS)}", option="--executor"
        )
    executor: SweepExecutor = resolve(EXECUTORS[name])()
    return executor

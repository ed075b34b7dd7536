"""Launchers start a run's process(es) and make sure the run ends stored, whatever happens.

A launcher is chosen per run through ``LAUNCHERS``: ``local`` starts one process, ``torchrun``
(for ``--gpus N``) starts N of them on this node under ``torch.distributed.run``, and on each
node of a run over several (``--nodes``, ``nodes.py``). Both are
supervised the same way (``local.py``): a crash, a kill or an out-of-memory error costs that
run only. The series loop (``series.py``) runs specs one after another behind ``dlbench run
--repeat``, sweeps, calibration, ``check`` and the quick start; a sweep's executor
(``dlbench.sweep.executors``) decides whether that happens here or in Slurm jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from dlbench.registry import resolve

if TYPE_CHECKING:
    from dlbench.config import RunSpec
    from dlbench.launch.nodes import Placement

LAUNCHERS: dict[str, str] = {
    "local": "dlbench.launch.local:single_process",
    "torchrun": "dlbench.launch.local:torchrun",
}


class Launcher(Protocol):
    def __call__(
        self, spec: RunSpec, payload: Path, placement: Placement | None = None
    ) -> list[str]:
        """The command that starts the run's process(es), given its payload file (and, for
        a run over several nodes, this node's place in it)."""
        ...


def launcher_name(spec: RunSpec) -> str:
    return "torchrun" if spec.processes > 1 else "local"


def get_launcher(spec: RunSpec) -> Launcher:
    launcher: Launcher = resolve(LAUNCHERS[launcher_name(spec)])
    return launcher

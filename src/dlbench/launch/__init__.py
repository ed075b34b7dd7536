"""Launchers start a run somewhere and make sure it ends stored, whatever happens there.

``local``: one subprocess per run, so a crash, a kill or an out-of-memory error costs that run
only. Later launchers (torchrun, Slurm) are entries here.
"""

from __future__ import annotations

LAUNCHERS: dict[str, str] = {
    "local": "dlbench.launch.local:run_local",
}

"""Entry point of a run's own process: ``python -m dlbench.launch.child PAYLOAD.json``."""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from dlbench.config import RunSpec
from dlbench.launch.local import EXIT_CODES
from dlbench.runner import NullProgress, Progress, RunInterrupted, execute
from dlbench.store import Store


def main(argv: list[str]) -> int:
    payload = json.loads(Path(argv[0]).read_text())
    crash_log = open(payload["crash_file"], "w")  # noqa: SIM115 - must outlive any crash
    faulthandler.enable(crash_log)
    _interrupt_once()
    spec = RunSpec.model_validate(payload["spec"])
    rank = int(os.environ.get("RANK", 0))  # under torchrun, rank 0 alone stores the run
    store = Store(payload["db"]) if rank == 0 else None
    progress: Progress = NullProgress()
    if payload.get("progress") and rank == 0:
        from dlbench.console import RichProgress

        progress = RichProgress(spec.workload)
    result = execute(spec, payload["run_id"], store, progress)
    return EXIT_CODES.get(result.status, 1)


def _interrupt_once() -> None:
    """The first SIGINT/SIGTERM stops the run; later ones are ignored so that it can store
    what it measured (the parent escalates to SIGKILL on a second Ctrl-C)."""
    fired: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        if fired:
            return
        fired.append(signum)
        raise KeyboardInterrupt if signum == signal.SIGINT else RunInterrupted()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

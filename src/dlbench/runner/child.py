"""Entry point of a run's own process: ``python -m dlbench.runner.child PAYLOAD.json``.

Signal handlers come first, before the heavy imports, so that a Ctrl-C or SIGTERM at any
moment ends the run as ``interrupted``. A run whose result its database cannot take is saved
to a JSON file; its path is written to the payload's ``unsaved_marker`` for the launcher.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from dlbench.errors import RunInterrupted

INTERRUPTED_EXIT = 130


def main(argv: list[str]) -> int:
    install_interrupt_handlers()
    # The profiler's library (kineto) logs to the terminal at each profile's start and stop
    # ("USDT: ... profiler_start", its level 5; errors are 4): above every level, silent.
    # Read once, as torch is imported.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    try:
        from dlbench.runner.payload import TrainPayload

        payload = TrainPayload.read(argv[0])
        crash_log = open(payload.crash_file, "w")  # noqa: SIM115 - must outlive any crash
        faulthandler.enable(crash_log)
        from dlbench.records import EXIT_CODES
        from dlbench.runner.benchmark import NullProgress, Progress, execute
        from dlbench.store.database import Store

        spec = payload.spec
        # Under torchrun, rank 0 alone stores the run (over several nodes, node 0's first).
        rank = int(os.environ.get("RANK", 0))
        store = Store(payload.db) if rank == 0 else None
        progress: Progress = NullProgress()
        if payload.progress and rank == 0:
            from dlbench.render.console import RichProgress

            progress = RichProgress(spec.workload, (spec.batch_size or 0) * spec.processes)
    except (KeyboardInterrupt, RunInterrupted):
        return INTERRUPTED_EXIT  # before the run began: the launcher stores it interrupted
    result = execute(spec, payload.run_id, store, progress)
    if result.unsaved_path and payload.unsaved_marker:
        try:
            Path(payload.unsaved_marker).write_text(result.unsaved_path)
        except OSError:
            pass  # the launcher finds the row still open and says it could not close it
    return EXIT_CODES.get(result.status, 1)


def install_interrupt_handlers() -> None:
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

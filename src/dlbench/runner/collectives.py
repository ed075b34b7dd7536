"""Entry point of a collectives run's processes: ``python -m dlbench.runner.collectives P.json``.

Every rank joins the process group and times the collectives (engines/pytorch/collectives.py);
rank 0 registers the hardware, accounts other work during the timing, prints each size as it
is measured and stores the run. Its launcher (tools/collectives.py) closes the run if this
process dies before it stores anything.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

from dlbench.errors import RunInterrupted
from dlbench.runner.child import INTERRUPTED_EXIT, install_interrupt_handlers

if TYPE_CHECKING:
    from dlbench.runner.payload import CollectivesPayload


def main(argv: list[str]) -> int:
    install_interrupt_handlers()
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    try:
        from dlbench.runner.payload import CollectivesPayload

        payload = CollectivesPayload.read(argv[0])
        from dlbench.records import EXIT_CODES
        from dlbench.store.database import Store

        rank = int(os.environ.get("RANK", 0))
        store = Store(payload.db) if rank == 0 else None
    except (KeyboardInterrupt, RunInterrupted):
        return INTERRUPTED_EXIT
    status = measure_and_store(payload, store)
    return EXIT_CODES.get(status, 1)


def measure_and_store(payload: CollectivesPayload, store: Any) -> str:
    """Join, time, store (rank 0); the run's status."""
    from dlbench.engines.pytorch import distributed
    from dlbench.measure.collectives import CollectiveResult
    from dlbench.measure.quality import judge
    from dlbench.records import RunResult
    from dlbench.render.cluster import print_row
    from dlbench.runner.result import describe
    from dlbench.store.liveness import Heartbeat
    from dlbench.telemetry.interference import InterferenceMeter

    run_id = payload.run_id
    results: list[CollectiveResult] = []
    peers: list[dict[str, Any]] = []
    status, error, phase, interference = "ok", None, "setup", None
    heartbeat = Heartbeat(store, run_id).start() if store is not None else None
    started = time.monotonic()
    try:
        device = distributed.device_for(payload.device)
        distributed.init(device)
        peers = distributed.peers()
        if store is not None:
            _register(store, run_id, device, len(peers))
        meter = InterferenceMeter(os.getppid(), ()).start() if store is not None else None
        phase = "measure"
        if store is not None:
            store.set_phase(run_id, phase)
        measured = _measure(payload, device, print_row if store is not None else None)
        results.extend(measured)
        interference = meter.stop() if meter is not None else None
    except (KeyboardInterrupt, RunInterrupted):
        status, error = "interrupted", f"interrupted during the {phase} phase"
    except Exception as exc:  # noqa: BLE001 - a failed run is a result, never a traceback
        status, error = "failed", describe(exc, phase)
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        distributed.shutdown()
    if store is None:
        return status
    wrong = [r for r in results if r.correct is False]
    if wrong and status == "ok":
        status = "failed"
        error = f"{wrong[0].operation} at {wrong[0].size_bytes} bytes gave a wrong result"
    result = RunResult(
        run_id=run_id,
        status=status,  # type: ignore[arg-type]
        error=error,
        phase_reached="done" if status == "ok" else phase,
        wall_time_s=time.monotonic() - started,
        ranks=tuple(peers),
        quality=judge(interference),
        collectives=tuple(r.as_dict() for r in results),
    )
    store.finish_run(result)
    return status


def _measure(payload: CollectivesPayload, device: Any, on_result: Any) -> list[Any]:
    from dlbench.engines.pytorch.collectives import measure

    return measure(
        tuple(payload.operations),
        tuple(payload.sizes),
        device,
        iters=payload.iters,
        warmup=payload.warmup,
        rounds=payload.rounds,
        on_result=on_result,
    )


def _register(store: Any, run_id: str, device: Any, ranks: int) -> None:
    from dlbench import sysinfo
    from dlbench.engines.pytorch.distributed import device_name

    store.set_hardware(
        run_id,
        sysinfo.collect(),
        device=str(device),
        device_name=device_name(device),
        num_gpus=ranks if device.type == "cuda" else 0,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``dlbench monitor -- COMMAND``: sample the system while any command runs, and store it.

The command runs in its own process group with the terminal's stdin; Ctrl-C is forwarded to it
(once; a second Ctrl-C kills it) and whatever was sampled is kept. The run is stored with kind
``monitor``, the command's wall time and exit code, and its telemetry.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from dlbench import sysinfo
from dlbench.api import new_run_id
from dlbench.errors import ConfigError, ResultNotStored, StoreError
from dlbench.launch.supervise import shielded, supervise
from dlbench.measure.quality import judge
from dlbench.records import RunResult
from dlbench.runner.storing import phase_metrics, telemetry_summary
from dlbench.store import unsaved
from dlbench.store.database import Store
from dlbench.store.liveness import Heartbeat
from dlbench.telemetry import build_sources
from dlbench.telemetry.interference import InterferenceMeter
from dlbench.telemetry.prometheus import MetricsServer
from dlbench.telemetry.sampler import Sampler

PHASE = "command"


def monitor(
    command: list[str],
    store: Store,
    interval_s: float = 1.0,
    name: str | None = None,
    tags: dict[str, str] | None = None,
    metrics: MetricsServer | None = None,
) -> tuple[str, int]:
    """Run and sample ``command``; return the run id and the command's exit code. With
    ``metrics`` (a started server of a ``TelemetryCollector``), each tick is served too."""
    check_options(command, interval_s)
    store.check_writable()
    run_id = new_run_id()
    collector = metrics.collector if metrics else None
    if collector is not None:
        collector.labels.update(run_id=run_id, workload=name or Path(command[0]).name)
    config: dict[str, Any] = {
        "command": command,
        "interval": interval_s,
        "name": name,
        "tags": tags or {},
        "cwd": os.getcwd(),
    }
    with terminate_as_interrupt():  # from here on, SIGTERM closes the row like Ctrl-C
        store.create_run(
            run_id, "monitor", config, workload=name or Path(command[0]).name, device="system"
        )
        try:
            return _monitor(
                command, store, run_id, config, interval_s, collector.update if collector else None
            )
        except KeyboardInterrupt:
            with shielded():
                store.end_unfinished(run_id, "interrupted", "interrupted before the command ended")
            raise


def _monitor(
    command: list[str],
    store: Store,
    run_id: str,
    config: dict[str, Any],
    interval_s: float,
    on_tick: Callable[[dict[str, float]], None] | None,
) -> tuple[str, int]:
    heartbeat = Heartbeat(store, run_id).start()
    try:
        hardware = sysinfo.collect()
        store.set_hardware(
            run_id,
            hardware,
            device_name=hardware["cpu"]["model"],
            num_gpus=len(hardware.get("gpus") or []),
        )
    except KeyboardInterrupt:
        heartbeat.stop()
        raise
    samplers: list[Sampler] = []
    # The accounting follows this process, the command's parent: a command that ends is reaped
    # here, so its CPU time lands in this tree's counters instead of vanishing with it.
    meter = InterferenceMeter(os.getpid(), gpus=None)

    def start_sampling(pid: int) -> None:
        heartbeat.pids = [os.getpid(), pid]
        meter.start()
        sources = build_sources(pid=pid, data_disk=hardware["storage"].get("device"))
        sampler = Sampler(
            sources,
            interval_s,
            functools.partial(store.add_samples, run_id),
            on_sink_error=store.warn_write_failure,
            on_tick=on_tick,
        )
        sampler.set_phase(PHASE)
        samplers.append(sampler.start())

    started = time.monotonic()
    try:
        ended = supervise(command, on_start=start_sampling, reap_group=False, stdin=None)
    finally:
        heartbeat.stop()
    wall = time.monotonic() - started
    interference = meter.stop()
    for sampler in samplers:
        sampler.stop()
    status, error = _status(ended.returncode, ended.signals_forwarded)
    telemetry = telemetry_summary(store, run_id, samplers[0], 0) if samplers else None
    result = RunResult(
        run_id=run_id,
        status=status,  # type: ignore[arg-type]
        error=error,
        phase_reached="done",
        wall_time_s=wall,
        exit_code=ended.returncode,
        telemetry=telemetry,
        quality=judge(interference, phase_metrics(telemetry, PHASE)),
    )
    _store(store, result, samplers[0].unsaved if samplers else [], config)
    return run_id, _shell_code(ended.returncode)


def _store(store: Store, result: RunResult, samples: list[Any], config: dict[str, Any]) -> None:
    """The monitor's result into the store, or into a saved-run file (``ResultNotStored``)."""
    try:
        store.finish_run(result)
    except StoreError as exc:
        path = unsaved.keep(store, result, samples, {"kind": "monitor", "config": config}, exc)
        if path is None:
            raise
        raise ResultNotStored(result.run_id, str(path)) from exc


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM during the setup ends it like Ctrl-C, so that the run is closed, not left."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_options(command: list[str], interval_s: float) -> None:
    _check_command(command)
    if not 0.01 <= interval_s <= 3600:  # NaN is refused too
        raise ConfigError("--interval must be between 0.01 and 3600 seconds")


def _check_command(command: list[str]) -> None:
    if not command:
        raise ConfigError("no command to monitor", "e.g. dlbench monitor -- python train.py")
    program = command[0]
    if os.sep in program and Path(program).is_dir():
        raise ConfigError(f"{program} is a folder, not a program", "give the program to run")
    runnable = os.sep in program and Path(program).is_file() and os.access(program, os.X_OK)
    if shutil.which(program) is None and not runnable:
        raise ConfigError(f"command not found: {program}", "give a program on PATH or a path")


def _status(returncode: int, signals_forwarded: int) -> tuple[str, str | None]:
    if returncode == 0:
        return "ok", None
    if signals_forwarded:
        return "interrupted", f"interrupted (exit code {returncode})"
    if returncode < 0:
        return "failed", f"killed by {signal.Signals(-returncode).name}"
    return "failed", f"exited with code {returncode}"


def _shell_code(returncode: int) -> int:
    """A shell's exit code for the command: 128 + N when a signal N ended it."""
    return 128 - returncode if returncode < 0 else returncode

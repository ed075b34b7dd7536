"""Supervising a run's process: its own process group, Ctrl-C and SIGTERM forwarded once (a
second one kills the group), a time limit, and the child made to die with its parent."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

PR_SET_PDEATHSIG = 1


@contextmanager
def shielded() -> Iterator[None]:
    """Ctrl-C and SIGTERM ignored while a run's row is being closed."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass(frozen=True)
class Ended:
    """How a supervised process ended."""

    returncode: int  # negative: killed by that signal
    timed_out: bool
    signals_forwarded: int  # Ctrl-C / SIGTERM passed on to it


def supervise(
    command: list[str],
    timeout_s: float | None = None,
    on_start: Callable[[int], None] | None = None,
    reap_group: bool = True,
    stdin: int | None = subprocess.DEVNULL,
) -> Ended:
    """Run ``command`` in its own process group, forwarding Ctrl-C and SIGTERM, and wait.

    ``on_start`` gets the pid as soon as the process exists. With ``reap_group``, whatever the
    process left running in its group (input workers of a run) is killed at the end.
    """
    forwarded: list[int] = []
    started: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        # First signal to the run's process alone (not its input workers), so that it stores
        # what it has. A second one means it is not listening: kill its whole group. One that
        # comes while the process starts is passed on as soon as it exists.
        if started and forwarded:
            _signal_group(started[0].pid, signal.SIGKILL)
        elif started:
            _signal_process(started[0].pid, signum)
        forwarded.append(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        child = subprocess.Popen(
            command,
            stdin=stdin,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()) if reap_group else None,
        )
    except BaseException:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        raise
    started.append(child)
    if forwarded:
        _signal_process(child.pid, forwarded[0])
    if on_start:
        on_start(child.pid)
    timed_out = False
    try:
        try:
            child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _signal_process(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _signal_group(child.pid, signal.SIGKILL)
                child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if reap_group:
            _signal_group(child.pid, signal.SIGKILL)  # stray workers of the run, if any
    return Ended(child.returncode, timed_out, len(forwarded))


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """For the child, between fork and exec: SIGTERM it when this process dies (Linux), so
    that an orphaned run stores itself interrupted instead of training on unseen."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def _signal_process(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass

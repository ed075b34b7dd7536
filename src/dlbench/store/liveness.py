"""Which ``running`` rows are still alive: heartbeats, and closing the dead ones as ``lost``.

A live run (its launcher and its own process) or monitor writes ``heartbeat_at`` every
``HEARTBEAT_S`` seconds with its host and PIDs. A row whose beat is older than
``stale_after_s`` belongs to processes that died without a word (both SIGKILLed, the machine
rebooted): the next reader closes it as ``lost``, on this host only once its PIDs are gone.
Read-only readers show it as lost without writing.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import psutil

from dlbench.errors import StoreError

if TYPE_CHECKING:
    from dlbench.store.database import Store


HEARTBEAT_S = 5.0
STALE_MIN_S = 30.0
PID_START_SLACK_S = 1.0  # create_time is rounded differently across reads


def stale_after_s(heartbeat_s: float | None) -> float:
    return max(STALE_MIN_S, 3 * (heartbeat_s or HEARTBEAT_S))


def this_host() -> str:
    return socket.gethostname()


def process_ids(pids: list[int]) -> list[list[float]]:
    """[pid, start time] pairs to store: a PID reused by a later process is not ours."""
    found = []
    for pid in pids:
        try:
            found.append([pid, psutil.Process(pid).create_time()])
        except psutil.Error:
            continue
    return found


def processes_alive(pid_pairs: Any) -> bool:
    """Whether any of these [pid, start time] pairs is a live process on this host."""
    for pair in pid_pairs or []:
        try:
            pid, started = int(pair[0]), float(pair[1])
            process = psutil.Process(pid)
            same = abs(process.create_time() - started) <= PID_START_SLACK_S
            if same and process.status() != psutil.STATUS_ZOMBIE:  # a zombie has ended
                return True
        except (psutil.Error, TypeError, ValueError, IndexError):
            continue
    return False


def _last_beat(row: dict[str, Any]) -> datetime | None:
    stamp = row.get("heartbeat_at") or row.get("created_at")
    try:
        when = datetime.fromisoformat(str(stamp))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def is_lost(row: dict[str, Any], now: datetime | None = None) -> bool:
    """A ``running`` row whose processes have stopped beating (and, here, are gone). On its
    own host a row is lost as soon as none of its processes lives, beat or no beat: a reader
    right after a SIGKILL shows it lost."""
    if row.get("status") != "running":
        return False
    if _gone_here(row):
        return True
    last = _last_beat(row)
    if last is None:
        return False
    now = now or datetime.now(timezone.utc)
    if (now - last).total_seconds() <= stale_after_s(row.get("heartbeat_s")):
        return False
    if row.get("hostname") in (None, this_host()) and processes_alive(row.get("pids")):
        return False  # its beat is late (a long database lock), its processes are not gone
    return True


def _gone_here(row: dict[str, Any]) -> bool:
    pids = row.get("pids")
    here = row.get("hostname") in (None, this_host())
    return bool(here and isinstance(pids, list) and pids and not processes_alive(pids))


def lost_error(row: dict[str, Any]) -> str:
    last = _last_beat(row)
    when = f"{last:%Y-%m-%d %H:%M:%S} UTC" if last else "its start"
    host = f" on {row['hostname']}" if row.get("hostname") else ""
    phase = row.get("phase_reached") or "setup"
    why = "are gone" if _gone_here(row) else f"stopped beating (no heartbeat since {when})"
    return f"lost: its processes{host} {why} without storing a result; last phase: {phase}"


def as_seen(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as a reader should show it: a dead ``running`` row is ``lost``."""
    if not is_lost(row):
        return row
    return {**row, "status": "lost", "error": lost_error(row)}


class Heartbeat:
    """A thread that marks ``run_id`` alive every ``HEARTBEAT_S`` seconds and then calls
    ``also`` (the run's process stores its completed steps there). A beat that cannot be
    written is one warning, never the run's end."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        pids: list[int] | None = None,
        also: Callable[[], None] | None = None,
        every_s: float = HEARTBEAT_S,
        warn: bool = True,
    ) -> None:
        """``warn``: False where another process of the run says that the store fails."""
        self.store, self.run_id, self.pids, self.also = store, run_id, pids, also
        self.every_s, self.warn = every_s, warn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dlbench-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def beat(self) -> None:
        try:
            self.store.heartbeat(self.run_id, self.pids)
            if self.also is not None:
                self.also()
        except StoreError as exc:
            if self.warn:
                self.store.warn_write_failure(exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.beat()

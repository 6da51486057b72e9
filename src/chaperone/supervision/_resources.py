"""Resource limits: memory and CPU of a job's own process tree, and free disk space.

A :class:`ResourceSampler` measures one process and its descendants (never the machine's
load) and reports each episode over a limit once: the first sample over the limit claims
the incident with one set-if-absent and queues a :class:`ResourceViolationDetected`; the
first sample back within bounds deletes the incident and queues a
:class:`ResourceRecovered`. ``chaperone run`` samples its child; ``supervise(...)``
samples its own process in a background thread when limits are given. Time limits are
the timeout detector's (``job_timeout``), not the sampler's.

Measures:

- memory: resident set size (RSS) in MB (2**20 bytes), summed over the process and its
  recursive children. Pages shared between processes (after a fork) count once per
  process, so a tree of forked workers can read higher than the memory it really uses.
- CPU: percent of one core (100 = one core busy), summed over the tree, from psutil's
  ``cpu_percent(interval=None)`` per process: the use since the previous sample. A
  process seen for the first time is primed and counts 0 until the next sample, and
  the CPU of a child that ended between two samples is not counted. A CPU violation
  needs **two consecutive samples** over the limit: a momentary spike is not one.
- disk: free space in MB on ``disk_path``; a violation when below ``disk_floor_mb``.

A process that ended (a zombie not yet reaped included) measures nothing: the sampler
keeps its last verdict rather than calling the job's end a recovery.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import attrs
import psutil
import structlog

from chaperone._durations import parse_duration
from chaperone._events import ResourceRecovered, ResourceViolationDetected, ViolationType
from chaperone.supervision import _keys
from chaperone.supervision._records import JobRecord

if TYPE_CHECKING:
    from chaperone.supervision._supervisor import Supervisor

__all__ = [
    "CPU_CONSECUTIVE_SAMPLES",
    "DEFAULT_INTERVAL",
    "RESOURCE_VIOLATION",
    "Measurement",
    "ProcessTreeMeter",
    "ResourceSampler",
]

RESOURCE_VIOLATION: Final = "resource_violation"
"""The alert type of a resource violation (and of its incident)."""
DEFAULT_INTERVAL: Final = 1.0
"""Seconds between two samples of the background sampler."""
CPU_CONSECUTIVE_SAMPLES: Final = 2
"""Consecutive samples over the CPU limit that make a violation."""
_MB: Final = 1024 * 1024
_JOIN_TIMEOUT: Final = 5.0
"""Longest wait in :meth:`ResourceSampler.close` for a sample under way to end."""
_WARN_EVERY: Final = 60.0

_log = structlog.get_logger("chaperone.supervision")


@attrs.frozen(kw_only=True)
class Measurement:
    """One sample of a job's resources; None where it could not be measured."""

    memory_mb: float | None = None
    cpu_percent: float | None = None
    disk_free_mb: float | None = None


class ProcessTreeMeter:
    """Measures a process and its descendants with psutil (the sampler's default)."""

    def __init__(self, pid: int, disk_path: str | os.PathLike[str] | None = None) -> None:
        self.pid = pid
        self.disk_path = None if disk_path is None else os.fspath(disk_path)
        self._root: psutil.Process | None = None
        self._known: dict[int, psutil.Process] = {}

    def __call__(self) -> Measurement:
        """Measure now; never raises for a process that is gone or not ours to read."""
        memory, cpu = self._tree()
        return Measurement(memory_mb=memory, cpu_percent=cpu, disk_free_mb=self._disk())

    def _tree(self) -> tuple[float | None, float | None]:
        try:
            if self._root is None:
                # Not primed here: the loop below primes it as a process seen for the
                # first time (priming and reading at once would read a noisy instant).
                self._root = psutil.Process(self.pid)
            root = self._root
            members = [root, *root.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None, None
        rss = 0
        cpu = 0.0
        measured = 0
        seen: dict[int, psutil.Process] = {}
        for process in members:
            known = self._known.get(process.pid)
            # psutil keeps the CPU times of the previous call on the Process object.
            fresh = known is None or known != process  # a new process, or a reused pid
            current = process if known is None or fresh else known
            try:
                with current.oneshot():
                    if current.status() == psutil.STATUS_ZOMBIE:
                        continue  # ended, not yet reaped: it reads 0 MB, which is no recovery
                    rss += current.memory_info().rss
                    usage = current.cpu_percent(None)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            measured += 1
            seen[current.pid] = current
            if not fresh:
                cpu += usage
        self._known = seen
        if measured == 0:
            return None, None
        return rss / _MB, cpu

    def _disk(self) -> float | None:
        if self.disk_path is None:
            return None
        try:
            return psutil.disk_usage(self.disk_path).free / _MB
        except OSError:
            return None


Measure = Callable[[], Measurement]
"""Takes one :class:`Measurement` (injectable; :class:`ProcessTreeMeter` by default)."""


class ResourceSampler:
    """Samples a job's process tree against the limits of its record and reports each
    episode over a limit once, and its end once.

    The limits are the record's ``memory_limit_mb`` and ``cpu_limit_percent``, and a
    ``disk_floor_mb`` of free space on ``disk_path`` (both or neither). Call
    :meth:`sample` yourself, or :meth:`start` a background thread and :meth:`close` it.
    Nothing here raises into the job: a process that is gone, a measure that fails and
    a store that is away are logged, and the sampler goes on with what it knows.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        record: JobRecord,
        pid: int,
        *,
        disk_path: str | os.PathLike[str] | None = None,
        disk_floor_mb: float | None = None,
        measure: Measure | None = None,
    ) -> None:
        if (disk_path is None) != (disk_floor_mb is None):
            raise ValueError("disk_path and disk_floor_mb go together")
        limits: dict[ViolationType, float] = {}
        if record.memory_limit_mb is not None:
            limits[ViolationType.MEMORY] = record.memory_limit_mb
        if record.cpu_limit_percent is not None:
            limits[ViolationType.CPU] = record.cpu_limit_percent
        if disk_floor_mb is not None:
            limits[ViolationType.DISK] = disk_floor_mb
        for violation, limit in limits.items():
            if not limit > 0:
                raise ValueError(f"the {violation.value} limit must be positive, got {limit!r}")
        self._supervisor = supervisor
        self._record = record
        self.pid = pid
        self._limits = limits
        self._measure: Measure = measure or ProcessTreeMeter(pid, disk_path)
        self._over: set[ViolationType] = set()
        self._open: set[ViolationType] = set()
        self._cpu_streak = 0
        self._warned_at = float("-inf")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: Measurement | None = None
        """The latest measurement taken (None before the first, or if it failed)."""

    @property
    def limits(self) -> Mapping[ViolationType, float]:
        """The limits sampled: the most for memory and CPU, the least free for disk."""
        return dict(self._limits)

    def sample(self) -> set[ViolationType]:
        """Measure once, report what crossed a limit or came back within it, and return
        the limits the job is over now (as last measured where this sample could not
        tell). Never raises.
        """
        measurement = self._take()
        if measurement is None:
            with self._lock:
                return set(self._over)
        return self.record(measurement)

    def record(self, measurement: Measurement) -> set[ViolationType]:
        """Judge a measurement taken elsewhere (``chaperone run`` measures on its main
        thread, to stop the job at once, and records here on another): report what
        crossed a limit or came back within it; return the limits the job is over now.
        """
        with self._lock:
            self.last = measurement
            for violation, limit in self._limits.items():
                actual = _value(measurement, violation)
                if actual is not None:
                    self._judge(violation, limit, actual)
            return set(self._over)

    def _take(self) -> Measurement | None:
        try:
            return self._measure()
        except Exception as exc:
            now = self._supervisor.clock.timestamp()
            if now - self._warned_at >= _WARN_EVERY:
                self._warned_at = now
                _log.warning(
                    "could not measure the job's resources; the job goes on",
                    pid=self.pid,
                    error=f"{type(exc).__name__}: {exc}",
                )
            return None

    def _judge(self, violation: ViolationType, limit: float, actual: float) -> None:
        over = actual < limit if violation is ViolationType.DISK else actual > limit
        if violation is ViolationType.CPU:
            self._cpu_streak = self._cpu_streak + 1 if over else 0
            over = self._cpu_streak >= CPU_CONSECUTIVE_SAMPLES
        if over:
            self._over.add(violation)
            if violation not in self._open:
                self._claim(violation, limit, actual)
        else:
            self._over.discard(violation)
            if violation in self._open:
                self._resolve(violation, actual)

    def _incident(self, violation: ViolationType) -> str:
        return _keys.incident_key(
            self._record.supervision_id, f"{RESOURCE_VIOLATION}:{violation.value}"
        )

    def _claim(self, violation: ViolationType, limit: float, actual: float) -> None:
        supervisor = self._supervisor
        record = self._record
        measured = round(actual, 1)
        value = json.dumps(
            {
                "type": RESOURCE_VIOLATION,
                "key": f"{record.supervision_id}:{violation.value}",
                "since": supervisor.clock.timestamp(),
                "limit": limit,
                "actual": measured,
            }
        )
        key = self._incident(violation)
        won = supervisor.safely(
            "claim a resource incident",
            lambda: supervisor.store.set_if_absent(key, value, _keys.INCIDENT_TTL),
        )
        if won is None:
            return  # the store is away: claim again on the next sample
        if won and not supervisor.emit(
            ResourceViolationDetected(
                supervision_id=record.supervision_id,
                job_class=record.name,
                violation_type=violation,
                limit=limit,
                actual=measured,
                occurred_at=supervisor.clock.now(),
            )
        ):
            # Not queued: give the claim back, so the next sample claims and queues again.
            supervisor.safely("release a resource incident", lambda: supervisor.store.delete(key))
            return
        self._open.add(violation)

    def _resolve(self, violation: ViolationType, actual: float) -> None:
        supervisor = self._supervisor
        record = self._record
        key = self._incident(violation)
        deleted = supervisor.safely(
            "close a resource incident", lambda: supervisor.store.delete(key)
        )
        if deleted is None:
            return  # the store is away: close on the next sample
        self._open.discard(violation)
        if deleted:
            supervisor.emit(
                ResourceRecovered(
                    supervision_id=record.supervision_id,
                    job_class=record.name,
                    violation_type=violation,
                    actual=round(actual, 1),
                    occurred_at=supervisor.clock.now(),
                )
            )

    def start(self, interval: float | str | timedelta = DEFAULT_INTERVAL) -> None:
        """Sample now and every ``interval`` in a daemon thread, until :meth:`close`."""
        seconds = parse_duration(interval).total_seconds()
        if seconds <= 0:
            raise ValueError(f"the sampling interval must be positive, got {interval!r}")
        if self._thread is not None:
            raise RuntimeError("the resource sampler is already running")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run,
            args=(seconds,),
            name=f"chaperone-resources-{self.pid}",
            daemon=True,
        )
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(interval)

    @property
    def running(self) -> bool:
        """Whether the background thread is sampling."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Stop the background thread (if any), waiting at most a few seconds for a
        sample under way. Open incidents stay open: the job's end resolves them.
        """
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT)


def _value(measurement: Measurement, violation: ViolationType) -> float | None:
    if violation is ViolationType.MEMORY:
        return measurement.memory_mb
    if violation is ViolationType.CPU:
        return measurement.cpu_percent
    if violation is ViolationType.DISK:
        return measurement.disk_free_mb
    return None

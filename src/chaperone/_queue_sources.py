"""Queue depth callables added in code (``Chaperone.add_queue_length_source``), reported
to the threshold detector through ``chaperone_queue_lengths`` like any plugin's.

One :class:`QueueLengthSources` belongs to one running Chaperone and answers only the
hook calls made with its runtime, so two Chaperones sharing a plugin host do not see
each other's queues.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import structlog

from chaperone._markers import hookimpl
from chaperone._runtime import Runtime
from chaperone._secrets import describe

__all__ = ["QueueLengthSources"]

_log = structlog.get_logger("chaperone.detectors")


class QueueLengthSources:
    """A plugin object: the queue depth callables of one runtime, by queue name."""

    def __init__(self, runtime: Runtime) -> None:
        """Report for hook calls made with ``runtime`` only."""
        self._runtime = runtime
        self._sources: dict[str, Callable[[], int]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, read: Callable[[], int]) -> None:
        """Watch queue ``name``, whose depth ``read()`` returns; replaces an earlier
        source of that name.
        """
        if not name:
            raise ValueError("a queue length source needs a name")
        with self._lock:
            self._sources[name] = read

    @property
    def sources(self) -> Mapping[str, Callable[[], int]]:
        """The callables added, by queue name."""
        with self._lock:
            return dict(self._sources)

    @hookimpl
    def chaperone_queue_lengths(self, runtime: Runtime) -> Mapping[str, object] | None:
        """Read every source; one that raises is logged and skipped."""
        if runtime is not self._runtime:
            return None
        depths: dict[str, object] = {}
        for name, read in self.sources.items():
            try:
                depths[name] = read()
            except Exception as exc:
                _log.error("queue length source raised", queue=name, error=describe(exc))
        return depths

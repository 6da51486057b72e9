"""Built-in detector: scheduled runs that did not start (``job_missed``), and their end.

Each standing monitor (``chaperone monitor``) keeps its view of the configuration's
schedules (read again when the file changes) and asks the schedules' deadline index what
is due: see ``chaperone.schedules._watch``. The monitor inside ``chaperone run`` leaves
schedules alone: a cron job's folder may hold another configuration, without the
schedules the standing monitors watch. A configuration that changed into one with bad schedules
keeps the schedules read before in force, and makes ``schedules`` a degraded part of
Chaperone (an alert, an unhealthy ``/health``) until it is fixed.
"""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import TYPE_CHECKING, Final

import structlog

from chaperone._degraded import SelfWatch
from chaperone._events import Event
from chaperone._markers import hookimpl
from chaperone._standing import is_standing
from chaperone.schedules._configured import ConfiguredSchedules
from chaperone.schedules._model import Schedule
from chaperone.schedules._stored import declared
from chaperone.schedules._watch import check_schedules

if TYPE_CHECKING:
    from chaperone._runtime import Runtime

__all__ = ["chaperone_detect"]

ORDER: Final = 15
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""
PART: Final = "schedules"
"""The degraded part a bad reload of the configuration's schedules is reported as."""

_log = structlog.get_logger("chaperone.detectors")
_CONFIGURED: weakref.WeakKeyDictionary[Runtime, ConfiguredSchedules] = weakref.WeakKeyDictionary()


def _configured(runtime: Runtime) -> ConfiguredSchedules:
    configured = _CONFIGURED.get(runtime)
    if configured is None:
        configured = _CONFIGURED[runtime] = ConfiguredSchedules(runtime.settings)
    return configured


def _reload(runtime: Runtime, configured: ConfiguredSchedules) -> None:
    read, problem = configured.reload()
    if not read:
        return
    watch = SelfWatch.of(runtime)
    if problem is None:
        _log.info("the configuration's schedules were read again")
        if watch is not None:
            watch.working(PART)
        return
    reason = f"the changed configuration's schedules are not valid; the ones before stay: {problem}"
    if watch is not None:
        watch.failing(PART, reason)
    else:
        _log.error("chaperone degraded", part=PART, reason=reason)


@hookimpl
def chaperone_detect(runtime: Runtime, now: datetime) -> list[Event]:
    """Report scheduled runs that did not start, and the end of those reports (in a
    standing monitor only).
    """
    if not is_standing(runtime):
        return []
    configured = _configured(runtime)
    _reload(runtime, configured)
    store = runtime.store
    configured.index(store, now)

    def lookup(job: str) -> Schedule | None:
        return configured.get(job) or declared(store, job)

    return list(check_schedules(store, lookup, now))

"""Built-in filter and detector: maintenance windows.

The filter runs first among the built-in filters. An alert that a window on now matches
(an ad-hoc window from ``chaperone maintenance start``, or an occurrence of an
``[[alerting.maintenance]]`` window) is suppressed and counted under that window, and
``chaperone test-alerts`` is no exception: maintenance is what the user asked for. A
resolve is suppressed only when its firing alert was; other resolves go out, since they
close incidents people saw.

The detector, on each monitor tick, finds the windows that ended (one read of the
deadline index when none did), claims each one's summary atomically and returns it as a
:class:`~chaperone.MaintenanceEnded` event, so however many monitors run, each summary
goes out once.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

from chaperone._alerts import Alert
from chaperone._events import Event
from chaperone._markers import hookimpl
from chaperone._verdicts import Verdict
from chaperone.maintenance import (
    due_summaries,
    forget_resolve,
    record_suppression,
    take_resolve,
    window_for,
)

if TYPE_CHECKING:
    from chaperone._runtime import Runtime

__all__ = ["chaperone_detect", "chaperone_filter_alert"]

ORDER: Final = 60
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""


@hookimpl
def chaperone_filter_alert(alert: Alert, runtime: Runtime, is_test: bool) -> Verdict | None:
    """Suppress an alert a maintenance window matches, counting it for the summary."""
    if alert.is_digest:
        return None
    store = runtime.store
    if alert.is_resolved:
        window_id = take_resolve(store, alert)
        if window_id is None:
            return None
        return Verdict.suppress(
            f"maintenance window {window_id} suppressed the alert this resolves"
        )
    now = runtime.clock.now()
    window = window_for(runtime.settings, store, alert, now)
    if window is None:
        forget_resolve(store, alert)
        return None
    record_suppression(store, window, alert, now)
    reason = f": {window.reason}" if window.reason else ""
    return Verdict.suppress(f"maintenance window {window.id}{reason}")


@hookimpl
def chaperone_detect(runtime: Runtime, now: datetime) -> list[Event]:
    """Claim and return the summary of each maintenance window that ended."""
    return list(due_summaries(runtime.settings, runtime.store, now))

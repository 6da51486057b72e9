"""Built-in plugin: the open incidents, and the filter that holds back acknowledged ones.

Its filter runs first of all (``tryfirst``, and ORDER 55 among the built-ins): it counts
every firing alert that is not a test in its incident (:mod:`chaperone.incidents`),
before any filter can suppress it, and lets a resolved alert close the incident (the
resolve then goes out as usual, and the acknowledgement is gone with the incident).
A firing alert of an acknowledged incident is suppressed, whatever its priority: the
escalating repeats and the fixed-window ones stop, and, since no later filter sees it,
it uses up no escalation slot, rate-limit window or group place, so an undo resumes the
escalation where it was.

Its ``chaperone_delivered`` hook remembers which destinations carried a firing alert of
an open incident: those an acknowledgement is passed on to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from chaperone._alerts import Alert
from chaperone._durations import format_time
from chaperone._markers import hookimpl
from chaperone._verdicts import Destination, Outcome, Verdict
from chaperone.incidents._records import (
    close_incident,
    record_alert,
    record_destination,
)

if TYPE_CHECKING:
    from chaperone._runtime import Runtime

__all__ = ["chaperone_delivered", "chaperone_filter_alert"]

ORDER: Final = 55
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""


@hookimpl(tryfirst=True)
def chaperone_filter_alert(alert: Alert, runtime: Runtime, is_test: bool) -> Verdict | None:
    """Count a firing alert in its incident and suppress it when the incident is
    acknowledged; close the incident on a resolved alert.
    """
    if is_test or alert.is_digest:
        return None
    store = runtime.store
    if alert.is_resolved:
        close_incident(store, alert.type, alert.key)
        return None
    if not alert.is_firing:
        return None
    ack = record_alert(store, alert, runtime.clock.now())
    if ack is None:
        return None
    return Verdict.suppress(f"acknowledged by {ack.by} at {format_time(ack.at)}")


@hookimpl
def chaperone_delivered(
    alert: Alert, destination: Destination, outcome: Outcome, runtime: Runtime
) -> None:
    """Remember the destination that carried a firing alert of an open incident."""
    del outcome  # every confirmed delivery counts
    if alert.is_firing and not alert.is_digest:
        record_destination(runtime.store, alert, destination)

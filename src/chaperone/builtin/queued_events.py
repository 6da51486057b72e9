"""Built-in detector: events that job processes queued in the store (a breaker that
opened, a resource limit crossed, a job that finished with incidents open, a plugin's own
event), decoded with the event classes the plugins registered.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

import structlog

from chaperone._event_codec import decode_event
from chaperone._events import Event
from chaperone._markers import hookimpl
from chaperone.supervision import _keys

if TYPE_CHECKING:
    from chaperone._runtime import Runtime

__all__ = ["chaperone_detect"]

ORDER: Final = 20
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""
REQUIRED: Final = (
    "job processes queue events in the store for it to take; disabled, they would "
    "pile up there unread"
)
"""Why this built-in cannot be disabled: naming it in ``plugins.disable`` is refused."""

BATCH: Final = 500
_log = structlog.get_logger("chaperone.detectors")


@hookimpl
def chaperone_detect(runtime: Runtime, now: datetime) -> list[Event]:
    """Take up to a batch of queued events off the store's queue."""
    events = []
    for text in runtime.store.pop(_keys.EVENTS_QUEUE, BATCH):
        try:
            events.append(decode_event(text, runtime.plugins.event_classes))
        except Exception as exc:  # one bad record must not cost the rest of the batch
            _log.error("dropped an unreadable queued event", error=str(exc), record=text[:200])
    return events

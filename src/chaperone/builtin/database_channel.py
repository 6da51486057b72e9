"""Built-in channel ``database``: alert and delivery history in the store.

Records each alert it is sent, and, while it is among the configured channels, the
outcome of every other channel's delivery too, so ``chaperone history`` shows what went
where and what failed. A fallback delivery is recorded with ``fallback_of``: the channel
that failed for good and that it stood in for.

A record is bounded by construction: the alert's texts were made safe and capped when it
was built (see :class:`~chaperone.Alert`), and the rest (the channel, the route, the
delivery's ``detail``, which may quote a service's answer: masked first, so a cut never
leaves part of a secret) is made one safe line here.
So a record holds a few tens of kilobytes at most, its JSON always encodes, and
``chaperone history`` prints nothing that spoofs or floods a terminal.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, Self

from chaperone import _sanitize
from chaperone._alerts import Alert
from chaperone._markers import hookimpl
from chaperone._secrets import MASKER
from chaperone._verdicts import Destination, Outcome
from chaperone.channels._base import Channel, ChannelSettings, SendContext
from chaperone.hookspecs import RegisterChannel

if TYPE_CHECKING:
    from chaperone._clock import Clock
    from chaperone._runtime import Runtime
    from chaperone.store import Store

__all__ = [
    "HISTORY_STREAM",
    "DatabaseChannel",
    "chaperone_delivered",
    "chaperone_delivery_failed",
    "chaperone_register_channels",
    "read_history",
    "record_delivery",
]

ORDER: Final = 140
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""

HISTORY_STREAM = "history"
NAME = "database"


def record_delivery(
    store: Store,
    clock: Clock,
    *,
    alert: Alert,
    channel: str,
    route: str,
    status: str,
    detail: str = "",
    attempts: int = 1,
    max_len: int,
    fallback_of: str | None = None,
) -> None:
    """Append one history record: which alert, which channel, delivered or failed (and,
    for a fallback delivery, which channel it stood in for).
    """
    record = {
        "type": alert.type,
        "key": alert.key,
        "channel": _sanitize.line(channel),
        "route": _sanitize.line(route),
        "status": status,
        "alert_status": alert.status.value,
        "severity": alert.severity.value,
        "priority": alert.priority.value,
        "title": alert.title,
        "summary": alert.summary,
        "fields": dict(alert.fields),
        "occurred_at": alert.occurred_at.isoformat(),
        "recorded_at": clock.now().isoformat(),
        "attempts": attempts,
        "detail": _sanitize.line(MASKER.mask(detail)),
    }
    if fallback_of:
        record["fallback_of"] = _sanitize.line(fallback_of)
    store.append(HISTORY_STREAM, _sanitize.dumps(record), max_len)


def read_history(store: Store, limit: int) -> list[dict[str, Any]]:
    """Return up to ``limit`` history records, newest first."""
    return [json.loads(record) for record in store.tail(HISTORY_STREAM, limit)]


class DatabaseChannel(Channel):
    """Keeps the alert history in the store (the newest ``history_limit`` records)."""

    name = NAME
    setting_keys = frozenset()

    def __init__(self, store: Store, clock: Clock, max_len: int) -> None:
        self._store = store
        self._clock = clock
        self._max_len = max_len

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        """Build the channel on the application's store."""
        return cls(settings.store, settings.clock, settings.app.history_limit)

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        """Record the alert as delivered to ``database``."""
        record_delivery(
            self._store,
            self._clock,
            alert=alert,
            channel=NAME,
            route=context.route,
            status="delivered",
            attempts=context.attempt,
            max_len=self._max_len,
            fallback_of=context.fallback_of,
        )
        return Outcome.delivered("recorded")


def _recording(runtime: Runtime, destination: Destination) -> bool:
    return destination.channel != NAME and NAME in runtime.settings.channels


@hookimpl
def chaperone_register_channels(register: RegisterChannel) -> None:
    """Register the ``database`` channel."""
    register(DatabaseChannel)


@hookimpl
def chaperone_delivered(
    alert: Alert, destination: Destination, outcome: Outcome, runtime: Runtime
) -> None:
    """Record another channel's delivery."""
    if _recording(runtime, destination):
        record_delivery(
            runtime.store,
            runtime.clock,
            alert=alert,
            channel=destination.channel,
            route=destination.route,
            status="delivered",
            detail=outcome.detail,
            max_len=runtime.settings.history_limit,
            fallback_of=destination.fallback_of,
        )


@hookimpl
def chaperone_delivery_failed(
    alert: Alert, destination: Destination, outcome: Outcome, attempts: int, runtime: Runtime
) -> None:
    """Record another channel's failure, with the (secret-free) reason."""
    if _recording(runtime, destination):
        record_delivery(
            runtime.store,
            runtime.clock,
            alert=alert,
            channel=destination.channel,
            route=destination.route,
            status="failed",
            detail=outcome.detail,
            attempts=attempts,
            max_len=runtime.settings.history_limit,
            fallback_of=destination.fallback_of,
        )

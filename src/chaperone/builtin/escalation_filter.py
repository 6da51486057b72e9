"""Built-in filter: escalating repeats (the seed's ``EscalatingRateLimiter``).

For the alert types listed in ``settings.escalation.per_type`` this filter replaces the
fixed rate-limit window. Per type and key it remembers how many alerts were delivered
and when the last one was. With delays ``(d0, d1, d2, …, dk)``:

* the first alert of an incident goes out at once (``d0`` is the delay before it and is
  not waited for: nothing came before);
* repeat ``n`` (the ``n + 1``-th delivery) goes out only once ``d[min(n, k)]`` has passed
  since the delivery before it, so the last delay repeats for ever.

The seed's ``0s, 5m, 15m, 30m, 1h`` with the same alert raised every minute thus delivers
at minutes 0, 5, 20, 50, 110, 170, 230, …

The count lives ``settings.escalation.memory`` (24 h) after the last delivery, and a
resolved alert of the same type and key clears it. Test alerts, resolved alerts and
critical-priority alerts pass without counting (critical ones get the fixed window of
:mod:`chaperone.builtin.ratelimit_filter` instead).

Across processes sharing a store no decision is check-then-set: delivery number ``n`` is
claimed with one atomic ``set_if_absent`` of its own slot key, so of any number of
processes deciding at once exactly one sends it; the others learn from the claimed slot
when it went out and hold back. The state record (count and time of the last delivery)
is only a fast path to the next free slot, and a claimer that died before writing it
costs at most one repeat that did not go out.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from chaperone._alerts import Alert, Priority
from chaperone._durations import format_duration, format_time
from chaperone._markers import hookimpl
from chaperone._verdicts import Verdict

if TYPE_CHECKING:
    from chaperone._runtime import Runtime
    from chaperone.store import Store

__all__ = [
    "PREFIX",
    "chaperone_filter_alert",
    "clear",
    "clear_all",
    "delay_before",
    "escalates",
    "incident_prefix",
]

ORDER: Final = 70
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""

PREFIX = "escalation:"

_STATE = "state"
_ATTEMPTS = 16
"""How many slots one decision may try before giving up (only ever reached when other
processes keep clearing the incident while it is being decided)."""


def incident_prefix(alert_type: str, key: str) -> str:
    """The prefix of every store key kept for the incident ``alert_type`` / ``key``.

    The key is percent-quoted, so no incident's prefix is a prefix of another's.
    """
    return f"{PREFIX}{alert_type}:{quote(key, safe='')}|"


def delay_before(repeat: int, delays: tuple[timedelta, ...]) -> timedelta:
    """The least time between delivery ``repeat`` (0 is the first alert) and the one before.

    The first alert never waits; repeat ``n`` waits ``delays[n]``, the last delay standing
    for every later repeat.
    """
    if repeat <= 0 or not delays:
        return timedelta(0)
    return delays[min(repeat, len(delays) - 1)]


def escalates(alert: Alert, runtime: Runtime) -> bool:
    """Whether escalation, not the fixed rate-limit window, decides on a firing ``alert``:
    its type has escalation delays and it is not critical.
    """
    return (
        alert.priority is not Priority.CRITICAL
        and runtime.settings.escalation.delays_for(alert.type) is not None
    )


@hookimpl
def chaperone_filter_alert(alert: Alert, runtime: Runtime, is_test: bool) -> Verdict | None:
    """Suppress a repeat of an escalated alert type that comes sooner than its delay; a
    resolved alert clears its incident's count.
    """
    if is_test:
        return None
    delays = runtime.settings.escalation.delays_for(alert.type)
    if delays is None:
        return None
    store = runtime.store
    prefix = incident_prefix(alert.type, alert.key)
    if alert.is_resolved:
        store.delete_prefix(prefix)
        return None
    if alert.priority is Priority.CRITICAL:
        return None
    memory = runtime.settings.escalation.memory.total_seconds()
    if memory <= 0:
        return None
    now = runtime.clock.now()
    count, last = _read_state(store, prefix)
    for _ in range(_ATTEMPTS):
        wait = delay_before(count, delays)
        if last is not None and now - last < wait:
            return Verdict.suppress(
                f"escalation: next {alert.type} alert for {alert.key} not before "
                f"{format_time(last + wait)} (repeat {count}, "
                f"{format_duration(wait)} after the last)"
            )
        if store.set_if_absent(f"{prefix}{count}", now.isoformat(), memory):
            state = json.dumps({"count": count + 1, "last": now.isoformat()})
            store.set(f"{prefix}{_STATE}", state, memory)
            return None
        claimed = store.get(f"{prefix}{count}")
        if claimed is None:
            count, last = _read_state(store, prefix)
        else:
            count, last = count + 1, datetime.fromisoformat(claimed)
    return Verdict.suppress(
        f"escalation: {alert.type} alert for {alert.key} held back: its count kept changing"
    )


def _read_state(store: Store, prefix: str) -> tuple[int, datetime | None]:
    """How many deliveries the incident has had, and when the last one was."""
    raw = store.get(f"{prefix}{_STATE}")
    if raw is None:
        return 0, None
    try:
        data = json.loads(raw)
        count, last = int(data["count"]), datetime.fromisoformat(data["last"])
    except (ValueError, KeyError, TypeError):
        return 0, None
    return (count, last) if count > 0 else (0, None)


def clear(store: Store, alert_type: str, key: str) -> bool:
    """Forget the escalation count of ``alert_type`` / ``key``; return whether there was one."""
    return store.delete_prefix(incident_prefix(alert_type, key)) > 0


def clear_all(store: Store) -> int:
    """Forget every escalation count; return how many incidents had one."""
    incidents = {name.rpartition("|")[0] for name in store.keys(PREFIX)}
    store.delete_prefix(PREFIX)
    return len(incidents)

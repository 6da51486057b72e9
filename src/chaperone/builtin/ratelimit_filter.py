"""Built-in filter: at most one alert per type and key per window.

One atomic set-if-absent decides, never check-then-set, so any number of processes
raising the same alert at once yield exactly one delivery per window. Resolved alerts
and ``test-alerts`` pass without counting.

Alert types with escalation delays (``[alerting.escalation]``) are left to
:mod:`chaperone.builtin.escalation_filter` instead, except critical alerts: those skip the
escalation delays and get this fixed window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from chaperone._alerts import Alert
from chaperone._durations import format_duration
from chaperone._markers import hookimpl
from chaperone._verdicts import Verdict
from chaperone.builtin.escalation_filter import escalates

if TYPE_CHECKING:
    from chaperone._runtime import Runtime
    from chaperone.store import Store

__all__ = ["PREFIX", "chaperone_filter_alert", "clear", "clear_all", "rate_limit_key"]

ORDER: Final = 80
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""

PREFIX = "ratelimit:"


def rate_limit_key(alert_type: str, key: str) -> str:
    """The store key that marks an alert of ``alert_type`` and ``key`` as recently sent."""
    return f"{PREFIX}{alert_type}:{key}"


@hookimpl
def chaperone_filter_alert(alert: Alert, runtime: Runtime, is_test: bool) -> Verdict | None:
    """Suppress a firing alert whose type and key already alerted inside the window
    (unless escalation decides on it).
    """
    if is_test or alert.is_resolved or escalates(alert, runtime):
        return None
    window = runtime.settings.rate_limit.window_for(alert.type)
    if window.total_seconds() <= 0:
        return None
    marker = rate_limit_key(alert.type, alert.key)
    if runtime.store.set_if_absent(marker, alert.occurred_at.isoformat(), window.total_seconds()):
        return None
    return Verdict.suppress(
        f"rate limited: one {alert.type} alert per {format_duration(window)} for {alert.key}"
    )


def clear(store: Store, alert_type: str, key: str) -> bool:
    """Forget that an alert of ``alert_type`` and ``key`` was sent; return whether it was."""
    return store.delete(rate_limit_key(alert_type, key))


def clear_all(store: Store) -> int:
    """Forget every rate-limit mark; return how many there were."""
    return store.delete_prefix(PREFIX)

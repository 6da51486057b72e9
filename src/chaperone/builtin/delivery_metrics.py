"""Built-in plugin: count every delivery's final outcome in the store's delivery metrics.

Implements ``chaperone_delivered`` and ``chaperone_delivery_failed``: each adds one to
the (channel, alert type) pair's all-time count and to the current minute's bucket of
the failure rate (see :mod:`chaperone.metrics`). A store that is away costs the count,
logged, never the delivery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import structlog

from chaperone._alerts import Alert
from chaperone._markers import hookimpl
from chaperone._secrets import describe
from chaperone._verdicts import Destination
from chaperone.metrics import record_delivery

if TYPE_CHECKING:
    from chaperone._runtime import Runtime

__all__ = ["chaperone_delivered", "chaperone_delivery_failed"]

ORDER: Final = 110
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""

_log = structlog.get_logger("chaperone.metrics")


@hookimpl
def chaperone_delivered(alert: Alert, destination: Destination, runtime: Runtime) -> None:
    """Count a confirmed delivery."""
    _count(runtime, alert, destination, delivered=True)


@hookimpl
def chaperone_delivery_failed(alert: Alert, destination: Destination, runtime: Runtime) -> None:
    """Count a delivery that failed for good."""
    _count(runtime, alert, destination, delivered=False)


def _count(runtime: Runtime, alert: Alert, destination: Destination, *, delivered: bool) -> None:
    try:
        record_delivery(
            runtime.store,
            channel=destination.channel,
            alert_type=alert.type,
            delivered=delivered,
            now=runtime.clock.timestamp(),
        )
    except Exception as exc:
        _log.warning(
            "delivery not counted in the metrics",
            channel=destination.channel,
            alert=alert.incident_key,
            delivered=delivered,
            error=describe(exc),
        )

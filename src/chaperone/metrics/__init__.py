"""Health and delivery metrics: sent and failed counts by channel and alert type, kept in
the store so every process and the CLI see the same numbers, and the health checks that
``chaperone health`` and ``chaperone serve`` judge by (the store, the monitors, detection,
the outbox, degraded parts and the recent delivery failure rate).

The built-in plugin ``chaperone.builtin.delivery_metrics`` counts each delivery's final outcome;
:func:`read_delivery_stats` reads a snapshot, :func:`check_health` judges every check. The
Prometheus exposition is in ``chaperone.metrics._prometheus``; ``chaperone.web`` serves
both over HTTP.
"""

from __future__ import annotations

from chaperone.metrics._counters import (
    BUCKET_SECONDS,
    RETENTION_SECONDS,
    Counts,
    DeliveryStats,
    read_delivery_stats,
    record_delivery,
)
from chaperone.metrics._health import CHECKS, CheckResult, HealthReport, check_health

__all__ = [
    "BUCKET_SECONDS",
    "CHECKS",
    "RETENTION_SECONDS",
    "CheckResult",
    "Counts",
    "DeliveryStats",
    "HealthReport",
    "check_health",
    "read_delivery_stats",
    "record_delivery",
]

"""Delivery metrics: sent and failed counts by channel and alert type, kept in the store so
every process and the CLI see the same numbers, and the recent failure rate that
``chaperone health`` and ``chaperone serve`` judge health by.

The built-in plugin ``chaperone.builtin.metrics`` counts each delivery's final outcome;
:func:`read_delivery_stats` reads a snapshot. The Prometheus exposition is in
``chaperone.metrics._prometheus`` and the HTTP endpoint in ``chaperone.metrics._server``,
imported only by ``chaperone serve``.
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

__all__ = [
    "BUCKET_SECONDS",
    "RETENTION_SECONDS",
    "Counts",
    "DeliveryStats",
    "read_delivery_stats",
    "record_delivery",
]

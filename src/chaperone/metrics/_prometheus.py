"""Health and the delivery counters in Prometheus's text format, read from the store on
each scrape.

A custom collector on a private registry (never prometheus_client's global one, which
would add this process's own Python metrics and keep state between calls):

``chaperone_alerts_sent_total{channel,type}`` / ``chaperone_alerts_failed_total{channel,type}``
    All-time deliveries confirmed / failed for good (counters: they never go down).
``chaperone_delivery_failure_rate_percent``
    Percent of the deliveries in the last ``health.window`` that failed.
``chaperone_delivery_window_deliveries{outcome}``
    How many deliveries that window holds, sent and failed.
``chaperone_delivery_failure_threshold_percent``, ``chaperone_delivery_healthy``
    The threshold, and 1 while the failure rate is below it.
``chaperone_health_check{check}``, ``chaperone_healthy``
    1 while a check passes (``store``, ``monitor``, ``detection``, ``outbox``,
    ``degraded``, ``delivery``), else 0; and 1 while every check passes (what ``/health``
    says).

When the store cannot be read, the delivery families are left out (``absent()`` in a
rule sees it) and the health gauges say 0 for every check that needed the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from chaperone.metrics._counters import DeliveryStats
from chaperone.metrics._health import HealthReport

__all__ = ["CONTENT_TYPE", "HealthCollector", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The content type of Prometheus's text format, as ``generate_latest`` writes it."""


class HealthCollector:
    """Collects a fresh report from ``read()`` on every scrape."""

    def __init__(self, read: Callable[[], HealthReport]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        """Yield the metrics of one report."""
        report = self._read()
        checks = GaugeMetricFamily(
            "chaperone_health_check",
            "1 while the health check passes, else 0.",
            labels=["check"],
        )
        for check in report.checks:
            checks.add_metric([check.name], 1.0 if check.ok else 0.0)
        yield checks
        yield GaugeMetricFamily(
            "chaperone_healthy",
            "1 while every health check passes (GET /health answers 200), else 0.",
            value=1.0 if report.healthy else 0.0,
        )
        if report.stats is not None:
            yield from _delivery_metrics(report.stats)


def _delivery_metrics(stats: DeliveryStats) -> Iterator[Metric]:
    """The delivery counters and the failure rate of one snapshot."""
    sent = CounterMetricFamily(
        "chaperone_alerts_sent",
        "Alert deliveries a channel confirmed, by channel and alert type.",
        labels=["channel", "type"],
    )
    failed = CounterMetricFamily(
        "chaperone_alerts_failed",
        "Alert deliveries that failed for good (after retries), by channel and alert type.",
        labels=["channel", "type"],
    )
    for (channel, alert_type), counts in stats.pairs.items():
        sent.add_metric([channel, alert_type], counts.sent)
        failed.add_metric([channel, alert_type], counts.failed)
    yield sent
    yield failed
    window = int(stats.window.total_seconds())
    yield GaugeMetricFamily(
        "chaperone_delivery_failure_rate_percent",
        f"Percent of the deliveries of the last {window} s that failed.",
        value=stats.failure_rate,
    )
    recent = GaugeMetricFamily(
        "chaperone_delivery_window_deliveries",
        f"Deliveries in the last {window} s, by outcome (sent or failed).",
        labels=["outcome"],
    )
    recent.add_metric(["sent"], stats.recent.sent)
    recent.add_metric(["failed"], stats.recent.failed)
    yield recent
    yield GaugeMetricFamily(
        "chaperone_delivery_failure_threshold_percent",
        "Failure rate at or above which alert delivery is unhealthy.",
        value=stats.threshold,
    )
    yield GaugeMetricFamily(
        "chaperone_delivery_healthy",
        "1 while the recent failure rate is below the threshold, else 0.",
        value=1.0 if stats.healthy else 0.0,
    )


def render_metrics(read: Callable[[], HealthReport]) -> bytes:
    """One scrape: the metrics of a fresh report in Prometheus's text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HealthCollector(read))
    return generate_latest(registry)

"""Realistic sample events for ``chaperone test-alerts``, one per alert type."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from chaperone._events import (
    CircuitBreakerOpened,
    Event,
    JobStuck,
    JobTimeout,
    ResourceViolationDetected,
    ViolationType,
)

__all__ = ["SAMPLE_TYPES", "sample_event"]


def _stuck(now: datetime) -> Event:
    return JobStuck(
        supervision_id=str(uuid.uuid4()),
        job_class="datasets.process_large",
        stuck_duration=timedelta(minutes=30),
        last_heartbeat=now - timedelta(minutes=30),
        occurred_at=now,
    )


def _timeout(now: datetime) -> Event:
    return JobTimeout(
        supervision_id=str(uuid.uuid4()),
        job_class="reports.build_monthly",
        timeout=timedelta(seconds=300),
        actual_duration=timedelta(seconds=350),
        occurred_at=now,
    )


def _circuit_breaker(now: datetime) -> Event:
    return CircuitBreakerOpened(
        service="payment-gateway",
        failure_count=10,
        opened_at=now,
        retry_at=now + timedelta(seconds=60),
        occurred_at=now,
    )


def _resource(now: datetime) -> Event:
    return ResourceViolationDetected(
        supervision_id=str(uuid.uuid4()),
        job_class="feeds.import_customers",
        violation_type=ViolationType.MEMORY,
        limit=512,
        actual=768,
        occurred_at=now,
    )


_SAMPLES: dict[str, Callable[[datetime], Event]] = {
    "stuck": _stuck,
    "timeout": _timeout,
    "circuit-breaker": _circuit_breaker,
    "resource": _resource,
}
SAMPLE_TYPES: tuple[str, ...] = tuple(_SAMPLES)
"""The names ``test-alerts`` accepts, in the order it sends them."""


def sample_event(name: str, now: datetime) -> Event:
    """Build the sample event called ``name`` (one of :data:`SAMPLE_TYPES`) at ``now``."""
    return _SAMPLES[name](now)

"""``/health`` and ``/metrics`` of the web app in-process, under a real uvicorn on
127.0.0.1: answers from a real store on a manual clock, each health check in the status
and the gauges, a store that is away, HEAD, and the token compared in full.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import attrs
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chaperone import ManualClock, SystemClock
from chaperone.config import Settings
from chaperone.metrics import CHECKS, HealthReport, record_delivery
from chaperone.metrics._health import close_when_idle
from chaperone.metrics._liveness import MonitorBeat
from chaperone.store import MemoryStore, Store, open_store
from chaperone.web import WebContext
from helpers.web import ReadingJudge, context_on, running

TOKEN = "srv-0b7d41c9e2a85f36"  # noqa: S105 - a test token


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(clock: ManualClock) -> Iterator[MemoryStore]:
    opened = MemoryStore(clock)
    yield opened
    opened.close()


def reader(store: Store, clock: ManualClock | SystemClock, **health: Any) -> WebContext:
    """A context judging health at the clock's time (an hour's window, 5 %), with
    ``health`` settings; a monitor is not required unless they say so.
    """
    options = {"require_monitor": False, **health}
    settings = attrs.evolve(Settings(), health=attrs.evolve(Settings().health, **options))
    return context_on(store, clock, settings)


def metric_values(text: str) -> dict[tuple[str, str], float]:
    """Each sample's value by (sample name, its labels' values joined by commas)."""
    return {
        (sample.name, ",".join(sample.labels.values())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class TestAnswers:
    """Each request reads the store afresh."""

    def test_health_follows_the_store_and_the_clock(
        self, store: MemoryStore, clock: ManualClock
    ) -> None:
        """Healthy (200), then a failure makes it 503, then an hour later 200 again,
        without restarting the server.
        """
        with running(reader(store, clock)) as server, httpx.Client(timeout=10) as client:
            assert server.url.startswith("http://127.0.0.1:")
            assert client.get(f"{server.url}/health").status_code == 200
            record_delivery(
                store,
                channel="slack",
                alert_type="job_stuck",
                delivered=False,
                now=clock.timestamp(),
            )
            unhealthy = client.get(f"{server.url}/health")
            clock.advance(timedelta(minutes=61))
            healthy = client.get(f"{server.url}/health")
        assert unhealthy.status_code == 503
        assert unhealthy.json()["failure_rate"] == 100.0
        assert healthy.status_code == 200
        assert healthy.json()["stats"]["total_failed"] == 1

    def test_metrics_are_counters_with_labels(self, store: MemoryStore, clock: ManualClock) -> None:
        """Two sent to slack for job_stuck: a counter sample of 2 with both labels."""
        for _ in range(2):
            record_delivery(
                store,
                channel="slack",
                alert_type="job_stuck",
                delivered=True,
                now=clock.timestamp(),
            )
        with running(reader(store, clock)) as server, httpx.Client(timeout=10) as client:
            text = client.get(f"{server.url}/metrics").text
        families = {family.name: family for family in text_string_to_metric_families(text)}
        sent = families["chaperone_alerts_sent"]
        assert sent.type == "counter"
        [sample] = [s for s in sent.samples if s.name == "chaperone_alerts_sent_total"]
        assert sample.labels == {"channel": "slack", "type": "job_stuck"}
        assert sample.value == 2.0
        assert families["chaperone_delivery_failure_rate_percent"].type == "gauge"

    def test_head_is_not_allowed_and_has_no_body(
        self, store: MemoryStore, clock: ManualClock
    ) -> None:
        """HEAD /health: 405 naming GET, no body."""
        with running(reader(store, clock)) as server, httpx.Client(timeout=10) as client:
            response = client.head(f"{server.url}/health")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET"
        assert response.content == b""


class TestChecks:
    """Every check decides the status; /metrics has a gauge per check."""

    def test_no_monitor_is_503_naming_the_check(
        self, store: MemoryStore, clock: ManualClock
    ) -> None:
        """Monitor required and none ticking: 503, the monitor check failed and says why,
        the gauges say 0; a beat later, 200 and 1, without a restart.
        """
        read = reader(store, clock, require_monitor=True)
        with running(read) as server, httpx.Client(timeout=10) as client:
            unhealthy = client.get(f"{server.url}/health")
            gauges = metric_values(client.get(f"{server.url}/metrics").text)
            MonitorBeat(
                monitor="m", host="h", pid=1, interval=1.0, ticked_at=clock.timestamp()
            ).write(store)
            healthy = client.get(f"{server.url}/health")
            healed = metric_values(client.get(f"{server.url}/metrics").text)
        assert unhealthy.status_code == 503
        checks = unhealthy.json()["checks"]
        assert [name for name, check in checks.items() if not check["ok"]] == ["monitor"]
        assert "chaperone monitor" in checks["monitor"]["detail"]
        assert gauges[("chaperone_health_check", "monitor")] == 0.0
        assert gauges[("chaperone_health_check", "store")] == 1.0
        assert gauges[("chaperone_healthy", "")] == 0.0
        assert healthy.status_code == 200
        assert healthy.json()["healthy"] is True
        assert healed[("chaperone_healthy", "")] == 1.0
        assert {healed[("chaperone_health_check", name)] for name in CHECKS} == {1.0}


class TestStoreAway:
    """A store that does not answer makes the endpoint say so, not crash."""

    def test_refused_store_is_503_and_gauges_say_0(self) -> None:
        """A Redis URL where nothing listens: /health 503 naming the store; /metrics
        answers the health gauges at 0 and leaves the delivery counters out.
        """
        store = open_store("redis://127.0.0.1:1/0?retries=0&connect_timeout=0.5", SystemClock())
        try:
            with (
                running(reader(store, SystemClock())) as server,
                httpx.Client(timeout=10) as client,
            ):
                health = client.get(f"{server.url}/health")
                metrics = client.get(f"{server.url}/metrics")
        finally:
            assert close_when_idle(store, timeout=30)
        assert health.status_code == 503
        assert "refused" in health.json()["checks"]["store"]["detail"].lower()
        assert health.json()["stats"] is None
        assert metrics.status_code == 200
        values = metric_values(metrics.text)
        assert values[("chaperone_health_check", "store")] == 0.0
        assert values[("chaperone_healthy", "")] == 0.0
        assert not any(name.startswith("chaperone_delivery") for name, _ in values)

    def test_a_read_that_raises_is_503(self) -> None:
        """A report that cannot be made at all: both paths 503, /health says unhealthy in
        JSON with the reason; the server lives on.
        """

        def read() -> HealthReport:
            raise RuntimeError("a bug in a check")

        settings = Settings()
        context = WebContext(
            settings=settings,
            clock=SystemClock(),
            judge=ReadingJudge(settings, SystemClock(), read),
        )
        with running(context) as server, httpx.Client(timeout=10) as client:
            health = client.get(f"{server.url}/health")
            metrics = client.get(f"{server.url}/metrics")
            again = client.get(f"{server.url}/health")
        assert health.status_code == 503
        assert health.json()["healthy"] is False
        assert "a bug in a check" in health.json()["error"]
        assert metrics.status_code == 503
        assert again.status_code == 503


class TestToken:
    """The bearer token is compared whole."""

    @pytest.mark.parametrize(
        ("header", "status"),
        [
            (None, 401),
            ("", 401),
            ("Bearer", 401),
            (f"Bearer {TOKEN[:-1]}", 401),
            (f"Bearer {TOKEN}0", 401),
            (f"Token {TOKEN}", 401),
            (f"Bearer {TOKEN}", 200),
            (f"BEARER  {TOKEN}", 200),
        ],
    )
    def test_only_the_whole_token_passes(
        self, store: MemoryStore, clock: ManualClock, header: str | None, status: int
    ) -> None:
        """A prefix, an extension or another scheme is refused; case and spacing of the
        scheme are not held against the caller.
        """
        headers = {} if header is None else {"Authorization": header}
        with (
            running(reader(store, clock, token=TOKEN)) as server,
            httpx.Client(timeout=10) as client,
        ):
            response = client.get(f"{server.url}/health", headers=headers)
        assert response.status_code == status
        assert TOKEN not in response.text

"""The HTTP endpoint in-process, on 127.0.0.1: answers from a real store on a manual clock,
a store that is away, HEAD, and the token compared in full.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chaperone import ManualClock, StoreError
from chaperone.metrics import DeliveryStats, read_delivery_stats, record_delivery
from chaperone.metrics._server import HealthServer
from chaperone.store import MemoryStore

TOKEN = "srv-0b7d41c9e2a85f36"  # noqa: S105 - a test token


@contextmanager
def running(read: Callable[[], DeliveryStats], token: str | None = None) -> Iterator[HealthServer]:
    """A HealthServer on a free loopback port, served from a thread, closed after."""
    server = HealthServer(read, host="127.0.0.1", port=0, token=token)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(clock: ManualClock) -> Iterator[MemoryStore]:
    opened = MemoryStore(clock)
    yield opened
    opened.close()


def reader(store: MemoryStore, clock: ManualClock) -> Callable[[], DeliveryStats]:
    """Reads a snapshot at the clock's time, over an hour, against 5 %."""
    return lambda: read_delivery_stats(
        store, now=clock.timestamp(), window=timedelta(hours=1), threshold=5.0
    )


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


class TestStoreAway:
    """A store that does not answer makes the endpoint say so, not crash."""

    def test_health_and_metrics_503(self) -> None:
        """Both paths answer 503; /health says unhealthy in JSON; the server lives on."""

        def read() -> DeliveryStats:
            raise StoreError("read keys: connection refused")

        with running(read) as server, httpx.Client(timeout=10) as client:
            health = client.get(f"{server.url}/health")
            metrics = client.get(f"{server.url}/metrics")
            again = client.get(f"{server.url}/health")
        assert health.status_code == 503
        assert health.json()["healthy"] is False
        assert "connection refused" in health.json()["error"]
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
            running(reader(store, clock), token=TOKEN) as server,
            httpx.Client(timeout=10) as client,
        ):
            response = client.get(f"{server.url}/health", headers=headers)
        assert response.status_code == status
        assert TOKEN not in response.text

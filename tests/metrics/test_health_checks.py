"""The health checks judged in-process: each check passing and failing on a memory store
and a manual clock, the report's JSON, a store that fails or hangs (a memory store that
raises or blocks on demand), and the worker that never lets two reads of one store pile
up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from chaperone import Destination, ManualClock, StoreError
from chaperone._outbox import Outbox, SecretBook
from chaperone.config import Settings
from chaperone.metrics import CHECKS, HealthReport, check_health, record_delivery
from chaperone.metrics._bounded import NoAnswerError, call_bounded
from chaperone.metrics._health import (
    MONITOR_INTERVALS,
    MONITOR_SLACK,
    PROBE_PREFIX,
    close_when_idle,
    unreachable_store_report,
)
from chaperone.metrics._liveness import DegradedRecord, MonitorBeat
from chaperone.store import MemoryStore
from helpers.delivery import make_alert

SECRET_URL = "https://hooks.example.test/services/T0/B0/health-secret-9321"  # noqa: S105 - looked for
SLACK_URL = "https://hooks.slack.com/services/T000/B000/health0secret0932100000"
QUICK = 0.3
"""The store timeout of the tests where the store hangs (seconds)."""
SETTLE = 5.0
"""How long a test waits at most for a worker it released to finish (seconds)."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(clock: ManualClock) -> Iterator[MemoryStore]:
    opened = MemoryStore(clock)
    yield opened
    opened.close()


def settings(**health: Any) -> Settings:
    """Default settings with ``health`` changed."""
    return attrs.evolve(Settings(), health=attrs.evolve(Settings().health, **health))


def beat(
    clock: ManualClock,
    *,
    ago: float = 0.0,
    interval: float = 1.0,
    error: str | None = None,
    monitor: str = "m1",
) -> MonitorBeat:
    """A monitor's beat that ticked ``ago`` seconds before the clock's time."""
    return MonitorBeat(
        monitor=monitor,
        host="worker-7",
        pid=4242,
        interval=interval,
        ticked_at=clock.timestamp() - ago,
        error=error,
    )


def judge(store: MemoryStore, clock: ManualClock, **health: Any) -> HealthReport:
    """The report at the clock's time, with ``health`` settings."""
    return check_health(store, settings(**health), clock.timestamp())


class TestAllPass:
    """A store with a ticking monitor and nothing wrong is healthy."""

    def test_every_check_passes(self, store: MemoryStore, clock: ManualClock) -> None:
        """A fresh beat, an empty outbox, no degraded part, no failed delivery: healthy,
        and each of the six checks is named, passed and explained.
        """
        beat(clock).write(store)
        report = judge(store, clock)
        assert report.healthy, report
        assert [check.name for check in report.checks] == list(CHECKS)
        assert all(check.ok and check.detail for check in report.checks)
        assert report.failed == ()

    def test_json_keeps_the_contract_and_adds_checks(
        self, store: MemoryStore, clock: ManualClock
    ) -> None:
        """The JSON has the delivery counters' keys and ``checks`` with ok and detail."""
        beat(clock).write(store)
        data = judge(store, clock).to_dict()
        assert list(data) == [
            "healthy",
            "stats",
            "failure_rate",
            "threshold",
            "window",
            "checks",
        ]
        assert data["healthy"] is True
        assert list(data["checks"]) == list(CHECKS)
        assert all(set(check) == {"ok", "detail"} for check in data["checks"].values())

    def test_the_probe_leaves_nothing_behind(self, store: MemoryStore, clock: ManualClock) -> None:
        """The store check wrote, read and deleted its key: none is left."""
        report = judge(store, clock)
        assert report.check("store").ok
        assert "written, read back and deleted" in report.check("store").detail
        assert store.keys(PROBE_PREFIX) == []


class TestMonitor:
    """Some monitor must have ticked within three of its intervals, plus a little."""

    def test_no_monitor_is_unhealthy(self, store: MemoryStore, clock: ManualClock) -> None:
        """No beat at all: the monitor check fails, saying what to run or set."""
        report = judge(store, clock)
        check = report.check("monitor")
        assert not report.healthy
        assert report.failed == ("monitor",)
        assert "`chaperone monitor`" in check.detail
        assert "CHAPERONE_HEALTH_REQUIRE_MONITOR=false" in check.detail

    def test_a_stale_beat_is_unhealthy(self, store: MemoryStore, clock: ManualClock) -> None:
        """A monitor that ticked a minute ago every second is no longer ticking."""
        beat(clock, ago=60).write(store)
        check = judge(store, clock).check("monitor")
        assert not check.ok
        assert "no monitor has ticked for 1 minute" in check.detail
        assert "worker-7 pid 4242" in check.detail

    def test_fresh_is_three_intervals_plus_slack(
        self, store: MemoryStore, clock: ManualClock
    ) -> None:
        """A beat exactly at the limit passes; a second later it fails."""
        interval = 10.0
        beat(clock, interval=interval).write(store)
        clock.advance(MONITOR_INTERVALS * interval + MONITOR_SLACK)
        assert judge(store, clock).check("monitor").ok
        clock.advance(1)
        assert not judge(store, clock).check("monitor").ok

    def test_one_fresh_monitor_of_two_is_enough(
        self, store: MemoryStore, clock: ManualClock
    ) -> None:
        """A dead monitor next to a ticking one: healthy, two listed as seen."""
        beat(clock, ago=600, interval=60, monitor="old").write(store)
        beat(clock, ago=0.4, monitor="new").write(store)
        check = judge(store, clock).check("monitor")
        assert check.ok
        assert check.detail.startswith("1 monitor ticking; the latest tick 0.4 seconds ago")

    def test_not_required_is_skipped(self, store: MemoryStore, clock: ManualClock) -> None:
        """With require_monitor false, no monitor is healthy and the check says skipped."""
        report = judge(store, clock, require_monitor=False)
        check = report.check("monitor")
        assert report.healthy
        assert check.ok
        assert check.skipped
        assert check.detail.startswith("skipped (CHAPERONE_HEALTH_REQUIRE_MONITOR=false)")

    @given(
        interval=st.floats(min_value=0.05, max_value=3600),
        ago=st.floats(min_value=0, max_value=20_000),
    )
    def test_freshness_property(self, interval: float, ago: float) -> None:
        """For any interval and age, the check passes exactly when the age is within
        three intervals plus the slack.
        """
        clock = ManualClock()
        store = MemoryStore(clock)
        beat(clock, ago=ago, interval=interval).write(store)
        limit = MONITOR_INTERVALS * interval + MONITOR_SLACK
        assume(abs(ago - limit) > 1e-3)  # Unix-time floats round in the last digits
        expected = ago <= limit
        assert judge(store, clock).check("monitor").ok is expected
        store.close()


class TestDetection:
    """No monitor that ticked recently reports a detection error."""

    def test_an_error_in_a_fresh_tick_is_unhealthy(
        self, store: MemoryStore, clock: ManualClock
    ) -> None:
        """The error of the latest tick is shown, with where it happened."""
        error = "StoreError: database or disk is full"
        beat(clock, ago=1, error=error).write(store)
        report = judge(store, clock)
        check = report.check("detection")
        assert report.failed == ("detection",)
        assert error in check.detail
        assert "worker-7 pid 4242" in check.detail

    def test_an_error_of_a_dead_monitor_is_not_judged(
        self, store: MemoryStore, clock: ManualClock
    ) -> None:
        """A stale beat's error no longer counts (the monitor check fails instead)."""
        beat(clock, ago=600, interval=60, error="boom").write(store)
        report = judge(store, clock)
        assert report.check("detection").ok
        assert report.failed == ("monitor",)

    def test_recovery_clears_it(self, store: MemoryStore, clock: ManualClock) -> None:
        """The next clean tick of the same monitor makes detection healthy again."""
        beat(clock, error="boom").write(store)
        assert not judge(store, clock).check("detection").ok
        clock.advance(1)
        beat(clock).write(store)
        assert judge(store, clock).check("detection").ok

    def test_a_secret_in_the_error_is_masked(self, store: MemoryStore, clock: ManualClock) -> None:
        """A webhook URL in a detection error is not in the detail."""
        beat(clock, error=f"ConnectError: {SLACK_URL}").write(store)
        check = judge(store, clock).check("detection")
        assert not check.ok
        assert "health0secret" not in check.detail
        assert "ConnectError" in check.detail


class TestOutbox:
    """The oldest alert waiting in the outbox is younger than ``outbox_max_age``."""

    def test_empty_is_healthy(self, store: MemoryStore, clock: ManualClock) -> None:
        """Nothing waiting: passes, says empty."""
        check = judge(store, clock).check("outbox")
        assert (check.ok, check.detail) == (True, "empty")

    def test_an_alert_waiting_too_long_is_unhealthy(
        self, store: MemoryStore, clock: ManualClock
    ) -> None:
        """Ten minutes by default: at 9 minutes it passes, at 10 it fails naming the
        alert type and the channel.
        """
        Outbox(store, clock).enqueue(make_alert("a"), Destination(channel="slack"), lease=30)
        clock.advance(timedelta(minutes=9))
        beat(clock).write(store)
        waiting = judge(store, clock).check("outbox")
        clock.advance(timedelta(minutes=1))
        beat(clock).write(store)
        report = judge(store, clock)
        assert waiting.ok
        assert waiting.detail == "1 waiting; the oldest for 9 minutes (unhealthy from 10 minutes)"
        assert report.failed == ("outbox",)
        detail = report.check("outbox").detail
        assert "an alert has waited 10 minutes in the outbox" in detail
        assert "job_stuck for slack" in detail

    def test_the_limit_is_a_setting(self, store: MemoryStore, clock: ManualClock) -> None:
        """outbox_max_age of one minute: an alert two minutes old fails."""
        Outbox(store, clock).enqueue(make_alert("a"), Destination(channel="mail"), lease=30)
        clock.advance(120)
        assert not judge(store, clock, outbox_max_age=timedelta(minutes=1)).check("outbox").ok
        assert judge(store, clock, outbox_max_age=timedelta(minutes=5)).check("outbox").ok

    def test_a_route_secret_unknown_here_does_not_hide_the_entry(
        self, store: MemoryStore, clock: ManualClock
    ) -> None:
        """An entry whose route holds a webhook URL this process does not know is still
        judged, and the URL shows nowhere.
        """
        writer = Outbox(store, clock, secrets=SecretBook(lambda _channel, key: key == "url"))
        destination = Destination(channel="slack", route="db-team", settings={"url": SECRET_URL})
        writer.enqueue(make_alert("a"), destination, lease=30)
        clock.advance(timedelta(hours=1))
        check = judge(store, clock).check("outbox")
        assert not check.ok
        assert "job_stuck for slack" in check.detail
        assert SECRET_URL not in repr(judge(store, clock).to_dict())


class TestDegraded:
    """No part of Chaperone is recorded as failing."""

    def test_a_degraded_part_is_unhealthy(self, store: MemoryStore, clock: ManualClock) -> None:
        """Each failing part is named with its reason and since when."""
        for part, reason in (("store", "database or disk is full"), ("channel:slack", "HTTP 500")):
            DegradedRecord(
                part=part, reason=reason, since=clock.timestamp() - 180, host="h", pid=1
            ).write(store)
        beat(clock).write(store)
        report = judge(store, clock)
        detail = report.check("degraded").detail
        assert report.failed == ("degraded",)
        assert "channel:slack since 3 minutes (h pid 1): HTTP 500" in detail
        assert "store since 3 minutes (h pid 1): database or disk is full" in detail

    def test_resolved_when_the_record_goes(self, store: MemoryStore, clock: ManualClock) -> None:
        """Deleting the record (the part works again) makes the check pass."""
        record = DegradedRecord(part="outbox", reason="x", since=clock.timestamp(), host="h", pid=1)
        record.write(store)
        assert not judge(store, clock).check("degraded").ok
        store.delete(record.key)
        assert judge(store, clock).check("degraded").ok


class TestDelivery:
    """The recent failure rate stays below the threshold."""

    def test_failures_over_the_threshold_are_unhealthy(
        self, store: MemoryStore, clock: ManualClock
    ) -> None:
        """1 of 2 failed: fails with the rate; the JSON's rate and stats agree."""
        for delivered in (True, False):
            record_delivery(
                store, channel="slack", alert_type="job_stuck", delivered=delivered, now=0
            )
            record_delivery(
                store,
                channel="slack",
                alert_type="job_stuck",
                delivered=delivered,
                now=clock.timestamp(),
            )
        beat(clock).write(store)
        report = judge(store, clock)
        assert report.failed == ("delivery",)
        assert report.check("delivery").detail == (
            "1 of 2 deliveries failed in the last 1 hour (50.00%; unhealthy at 5%)"
        )
        data = report.to_dict()
        assert data["failure_rate"] == 50.0
        assert data["stats"]["total_failed"] == 2


class FailingStore(MemoryStore):
    """A memory store whose operations raise StoreError while ``failing`` says so:
    ``"writes"`` (a full disk) or ``"all"`` (a store that is away).
    """

    failing: str = ""

    def _check(self, writing: bool) -> None:
        if self.failing == "all" or (writing and self.failing == "writes"):
            raise StoreError("the store could not set a key: database or disk is full")

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._check(writing=True)
        super().set(key, value, ttl)

    def keys(self, prefix: str) -> list[str]:
        self._check(writing=False)
        return super().keys(prefix)


class TestStoreFailures:
    """A store that fails makes the checks that need it fail, saying why; nothing raises."""

    def test_a_store_that_cannot_be_written(self, clock: ManualClock) -> None:
        """Reads work, writes fail: the store check fails with the reason, the others are
        still judged from what was read.
        """
        store = FailingStore(clock)
        beat(clock).write(store)
        store.failing = "writes"
        report = check_health(store, settings(), clock.timestamp())
        assert report.failed == ("store",)
        assert "database or disk is full" in report.check("store").detail

    def test_a_store_that_is_away(self, clock: ManualClock) -> None:
        """Nothing answers: every check fails, the store with the reason and the others
        "not checked" with it; the JSON's counters are null rather than zeros.
        """
        store = FailingStore(clock)
        store.failing = "all"
        report = check_health(store, settings(), clock.timestamp())
        assert report.failed == ("store", "monitor", "detection", "outbox", "degraded", "delivery")
        for check in report.checks[1:]:
            assert check.detail.startswith("not checked: the store could not set a key")
        data = report.to_dict()
        assert (data["healthy"], data["stats"], data["failure_rate"]) == (False, None, None)
        assert data["window"] == {"seconds": 3600, "sent": None, "failed": None}

    def test_a_store_that_cannot_be_opened(self) -> None:
        """The report without a store: every check fails with the reason given."""
        report = unreachable_store_report(settings(), "cannot open the SQLite store /x: nope")
        assert report.failed == CHECKS
        assert report.check("store").detail == "cannot open the SQLite store /x: nope"
        assert report.check("outbox").detail == (
            "not checked: cannot open the SQLite store /x: nope"
        )


class HangingStore(MemoryStore):
    """A memory store whose probe write waits until ``release`` is set, counting the
    probes that started.
    """

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.release = threading.Event()
        self.probes = 0

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        if key.startswith(PROBE_PREFIX):
            self.probes += 1
            self.release.wait(timeout=30)
        super().set(key, value, ttl)


@pytest.fixture
def hanging(clock: ManualClock) -> Iterator[HangingStore]:
    store = HangingStore(clock)
    beat(clock).write(store)
    yield store
    store.release.set()
    assert close_when_idle(store, timeout=SETTLE)


class TestHangingStore:
    """A store that does not answer makes health answer within the timeout."""

    def test_answers_within_the_timeout(self, hanging: HangingStore, clock: ManualClock) -> None:
        """The probe hangs: the report comes back after about the timeout, the store
        check failed and says reads answer; what was read is still judged.
        """
        started = time.monotonic()
        report = check_health(hanging, settings(), clock.timestamp(), store_timeout=QUICK)
        took = time.monotonic() - started
        assert took < QUICK + 2.0, took
        assert report.failed == ("store",)
        assert report.check("store").detail.startswith(
            "reads answer, but writing a probe key gave no answer within 0.3 s"
        )
        assert report.check("monitor").ok

    def test_probes_never_pile_up(self, hanging: HangingStore, clock: ManualClock) -> None:
        """Three checks while the first probe hangs start no second probe; each answers
        in time, saying an earlier call is waiting. Released, the next check passes.
        """
        first = check_health(hanging, settings(), clock.timestamp(), store_timeout=QUICK)
        later = [
            check_health(hanging, settings(), clock.timestamp(), store_timeout=QUICK)
            for _ in range(3)
        ]
        assert hanging.probes == 1
        assert not first.check("store").ok
        for report in later:
            assert report.failed == CHECKS
            assert "an earlier call has been waiting" in report.check("store").detail
            assert report.check("outbox").detail.startswith("not checked: the store gave")
        hanging.release.set()
        recovered = check_health(hanging, settings(), clock.timestamp(), store_timeout=SETTLE)
        assert recovered.healthy, recovered
        assert hanging.probes == 2


class TestBoundedCall:
    """The worker behind every read: bounded, one per key."""

    def test_returns_the_result_and_raises_the_error(self) -> None:
        """A quick call's value comes back; its exception too, as itself."""
        assert call_bounded("k-value", lambda: 42, 1.0) == 42

        def fails() -> None:
            raise TimeoutError("the call's own timeout")

        with pytest.raises(TimeoutError, match="the call's own timeout"):
            call_bounded("k-error", fails, 1.0)

    def test_other_keys_do_not_wait(self) -> None:
        """A call hanging on one key does not delay a call on another."""
        release = threading.Event()
        with pytest.raises(NoAnswerError):
            call_bounded("k-hang", lambda: release.wait(30), 0.1)
        try:
            assert call_bounded("k-other", lambda: "free", 1.0) == "free"
        finally:
            release.set()
        assert call_bounded("k-hang", lambda: "after", SETTLE) == "after"

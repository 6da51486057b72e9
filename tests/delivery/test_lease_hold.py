"""A long batch holds its own leases: an alert whose turn to send comes in the last second
of its lease is not reported as taken over by another process when there is none.

Regression test of ``_delivery._hold_lease``: a claim that reached a send slot with less
than ``_outbox.RENEW_GUARD`` of its own lease left tried to take the lease anew, which the
store refused (the lease was still live, held by this very process), so the alert was
reported "taken over" and left in the outbox, and so were the claims after it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from chaperone import Alert, Chaperone, JobStuck, ManualClock, Outcome, SendContext
from chaperone._outbox import LEASE_MARGIN
from chaperone.store import MemoryStore, SQLiteStore, Store
from helpers.delivery import AfterDelivery, Channels, scripted
from helpers.runtime import GROUPING_OFF, make_runtime

ALERTS = 100
"""Alerts of the batch: several times the sends in flight at once to one destination
(``_gates.PER_DESTINATION``)."""
SEND_SECONDS = 0.5
"""How long each send takes on the clock: the batch outlasts the first claims' leases."""


class SlowChannel:
    """A channel behaviour whose every send takes :data:`SEND_SECONDS` on the runtime's
    clock; it records each alert key, and how many entries the outbox held at the first
    send.
    """

    def __init__(self) -> None:
        self.runtime: Chaperone | None = None
        self.keys: list[str] = []
        self.held_at_first_send: int | None = None

    async def __call__(self, alert: Alert, context: SendContext) -> Outcome:
        assert self.runtime is not None
        if self.held_at_first_send is None:
            self.held_at_first_send = len(self.runtime.outbox.entries(limit=10 * ALERTS))
        await context.clock.sleep(SEND_SECONDS)
        self.keys.append(alert.key)
        return Outcome.delivered("ok")


def stuck(number: int) -> JobStuck:
    """A job-stuck event of its own job (its alert's key is ``job-<number>``)."""
    return JobStuck(
        supervision_id=f"job-{number}",
        job_class="App\\Jobs\\Import",
        stuck_duration=timedelta(minutes=5),
        last_heartbeat=None,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path) -> Iterator[Store]:
    """A memory store, or a real SQLite file in ``tmp_path``, on ``clock`` (the runtime
    closes it; closing twice is harmless)."""
    if request.param == "memory":
        opened: Store = MemoryStore(clock)
    else:
        path = tmp_path / "c.db"
        opened = SQLiteStore(path, clock, f"sqlite:///{path}")
    yield opened
    opened.close()


class TestLongBatch:
    """One dispatch_all of many slow sends delivers every alert, each once."""

    def test_every_alert_is_delivered_once_in_one_dispatch(
        self, store: Store, clock: ManualClock
    ) -> None:
        """100 alerts whose sends take 0.5 s each, 16 at a time, outlast the first leases
        (send timeout plus margin, 10 s): each is delivered once in that one dispatch_all,
        none reported taken over, and the outbox is empty afterwards.
        """
        channel = SlowChannel()
        hooks = AfterDelivery()
        with make_runtime(
            Channels(scripted("slow", channel)),
            hooks,
            clock=clock,
            store=store,
            channels=("slow",),
            timeout=5,
            grouping=GROUPING_OFF,
        ) as runtime:
            channel.runtime = runtime
            start = clock.timestamp()
            reports = runtime.dispatch_all([stuck(number) for number in range(ALERTS)])
            elapsed = clock.timestamp() - start
            left = runtime.outbox.entries(limit=10 * ALERTS)
            next_due = runtime.outbox.next_due()

        # The outbox was durable: every entry was in the store before the first send.
        assert channel.held_at_first_send == ALERTS
        results = [
            result for report in reports for alert in report.alerts for result in alert.deliveries
        ]
        taken_over = [
            alert.alert.key
            for report in reports
            for alert in report.alerts
            for result in alert.deliveries
            if "took this delivery over" in result.outcome.detail
        ]
        assert len(taken_over) == 0, f"{len(taken_over)} of {ALERTS} reported taken over"
        assert Counter(result.status for result in results) == {"delivered": ALERTS}
        assert all(alert.delivered for report in reports for alert in report.alerts)
        assert Counter(channel.keys) == Counter(f"job-{number}" for number in range(ALERTS))
        assert len(hooks.delivered) == ALERTS
        assert left == []
        assert next_due is None
        # Every send took its time: the batch outlasted the leases it was written with.
        assert elapsed >= ALERTS * SEND_SECONDS > 5 + LEASE_MARGIN

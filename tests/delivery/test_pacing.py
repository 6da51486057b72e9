"""Pacing: a channel's documented rate spaces a burst to one destination, and a service's
Retry-After holds that destination (only that one) in every process sharing the store.
Most tests run on a manual clock; one runs against real loopback servers in real time."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chaperone
from chaperone import Alert, Destination, ManualClock, Monitor, Outcome, SendContext, SystemClock
from chaperone._pacing import HOLD_PREFIX, SLOT_PREFIX, held_until, hold, take_slot
from chaperone.store import MemoryStore, SQLiteStore, Store
from chaperone.testing.servers import RecordingServer, Reply
from helpers.delivery import (
    AfterDelivery,
    Channels,
    http_channel,
    make_alert,
    outcomes,
    scripted,
)
from helpers.report import report
from helpers.runtime import GROUPING_OFF, make_runtime


def send_burst(runtime: chaperone.Chaperone, count: int) -> list[Any]:
    """Send ``count`` alerts of distinct keys, one after another; return the results."""
    return [
        result
        for number in range(count)
        for result in runtime.send(make_alert(f"k{number}")).deliveries
    ]


def drain_all(runtime: chaperone.Chaperone, clock: ManualClock, rounds: int = 100) -> None:
    """Advance the clock to each due entry and drain, until the outbox is empty."""
    for _ in range(rounds):
        due = runtime.outbox.next_due()
        if due is None:
            return
        clock.advance(max(0.0, due - clock.timestamp()))
        runtime.drain_outbox()
    raise AssertionError("the outbox did not empty")


class Router:
    """Routes every alert to the given destinations (a route plugin)."""

    def __init__(self, *destinations: Destination) -> None:
        self.destinations = list(destinations)

    @chaperone.hookimpl
    def chaperone_route(self) -> Sequence[Destination]:
        return self.destinations


class TestSlots:
    """The store counters behind a pace, on every backend."""

    def test_a_slot_admits_its_count_then_names_the_wait(
        self, store: Store, clock: ManualClock
    ) -> None:
        """Two sends a second: the third in the same second waits for the next one."""
        clock.advance(0.25 - (clock.timestamp() % 1.0))
        assert take_slot(store, clock, "hook:abc", (2, 1.0)) == 0
        assert take_slot(store, clock, "hook:abc", (2, 1.0)) == 0
        assert take_slot(store, clock, "hook:abc", (2, 1.0)) == pytest.approx(0.75)
        assert take_slot(store, clock, "other:abc", (2, 1.0)) == 0
        clock.advance(0.75)
        assert take_slot(store, clock, "hook:abc", (2, 1.0)) == 0

    def test_a_hold_keeps_the_longest(self, store: Store, clock: ManualClock) -> None:
        """A shorter hold does not shorten a longer one; the hold ends on time."""
        start = clock.timestamp()
        assert hold(store, clock, "hook:abc", 30) == start + 30
        assert hold(store, clock, "hook:abc", 5) == start + 30
        assert held_until(store, "hook:abc") == start + 30
        clock.advance(30)
        assert held_until(store, "hook:abc") == 0.0


class TestPace:
    """A burst to one destination is spread over the channel's rate."""

    def test_one_a_second_spaces_a_burst(self) -> None:
        """Five alerts to a channel of one send a second go out in five different
        seconds, each wait inline and under a second.
        """
        clock = ManualClock()
        behaviour, calls = outcomes(Outcome.delivered())
        plugin = Channels(scripted("paced", behaviour, pace=(1, 1.0)))
        with make_runtime(
            plugin, clock=clock, channels=("paced",), timeout=5.0, grouping=GROUPING_OFF
        ) as runtime:
            results = send_burst(runtime, 5)
        assert all(result.ok for result in results)
        slots = [math.floor(moment) for moment in calls.times]
        assert len(set(slots)) == 5
        assert all(0 < pause <= 1.0 for pause in clock.slept)

    @settings(max_examples=25, deadline=None)
    @given(
        requests=st.integers(min_value=1, max_value=3),
        per=st.sampled_from([0.5, 1.0, 60.0]),
        burst=st.integers(min_value=1, max_value=8),
    )
    def test_never_more_than_the_rate_in_a_slot(
        self, requests: int, per: float, burst: int
    ) -> None:
        """Whatever the rate and the burst, no slot sees more sends than the rate allows,
        and every alert is delivered in the end (a wait past the inline limit through the
        outbox).
        """
        clock = ManualClock()
        hooks = AfterDelivery()
        behaviour, calls = outcomes(Outcome.delivered())
        plugin = Channels(scripted("paced", behaviour, pace=(requests, per)))
        with make_runtime(
            plugin, hooks, clock=clock, channels=("paced",), timeout=5.0, grouping=GROUPING_OFF
        ) as runtime:
            send_burst(runtime, burst)
            drain_all(runtime, clock)
        per_slot = Counter(math.floor(moment / per) for moment in calls.times)
        assert max(per_slot.values()) <= requests
        assert sorted(calls.keys) == sorted(f"k{number}" for number in range(burst))
        assert len(hooks.delivered) == burst

    def test_the_pace_is_shared_by_processes(self, tmp_path: Path) -> None:
        """Two runtimes on one SQLite file sending to the same destination share its
        slots: the second one's send in the same second waits for the next.
        """
        clock = ManualClock()
        path = tmp_path / "c.db"
        behaviour, calls = outcomes(Outcome.delivered())
        runtimes = [
            make_runtime(
                Channels(scripted("paced", behaviour, pace=(1, 1.0))),
                clock=clock,
                store=SQLiteStore(path, clock, f"sqlite:///{path}"),
                channels=("paced",),
                timeout=5.0,
                grouping=GROUPING_OFF,
            )
            for _ in range(2)
        ]
        try:
            runtimes[0].send(make_alert("a"))
            runtimes[1].send(make_alert("b"))
        finally:
            for runtime in runtimes:
                runtime.close()
        first, second = calls.times
        assert math.floor(second) > math.floor(first)
        assert clock.slept
        assert clock.slept[0] <= 1.0


class TestHold:
    """A Retry-After holds its destination, and only it."""

    def test_other_destinations_keep_flowing(self) -> None:
        """One channel answers 429 with Retry-After 30: its alert and the next wait in
        the outbox without another request; the other channel delivers both alerts at
        once; after 30 s the held one delivers both.
        """
        clock = ManualClock()
        limited, limited_calls = outcomes(
            Outcome.transient("HTTP 429", retry_after=30, status_code=429), Outcome.delivered()
        )
        fine, fine_calls = outcomes(Outcome.delivered())
        plugin = Channels(scripted("held", limited), scripted("fine", fine))
        with make_runtime(
            plugin, clock=clock, channels=("held", "fine"), timeout=5.0, grouping=GROUPING_OFF
        ) as runtime:
            first = runtime.send(make_alert("a"))
            second = runtime.send(make_alert("b"))
            statuses = [[r.status for r in report.deliveries] for report in (first, second)]
            assert statuses == [["deferred", "delivered"], ["deferred", "delivered"]]
            assert limited_calls.keys == ["a"]
            assert fine_calls.keys == ["a", "b"]
            clock.advance(29.99)
            assert runtime.drain_outbox() == []
            clock.advance(0.01)
            drained = runtime.drain_outbox()
        assert [result.status for result in drained] == ["delivered", "delivered"]
        assert limited_calls.times[1:] == [clock.timestamp()] * 2
        assert sorted(limited_calls.keys) == ["a", "a", "b"]

    def test_a_hold_is_per_destination_settings(self) -> None:
        """One channel, two destinations (two webhooks): a 429 from one holds only it."""
        clock = ManualClock()
        seen: list[str] = []

        async def by_url(alert: Alert, context: SendContext) -> Outcome:
            url = context.route
            seen.append(url)
            if url == "one" and len(seen) == 1:
                return Outcome.transient("HTTP 429", retry_after=30, status_code=429)
            return Outcome.delivered()

        router = Router(
            Destination(channel="hook", route="one", settings={"url": "https://one.test/h"}),
            Destination(channel="hook", route="two", settings={"url": "https://two.test/h"}),
        )
        with make_runtime(
            Channels(scripted("hook", by_url)),
            router,
            clock=clock,
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:
            first = runtime.send(make_alert("a"))
            second = runtime.send(make_alert("b"))
        assert [r.status for r in first.deliveries] == ["deferred", "delivered"]
        assert [r.status for r in second.deliveries] == ["deferred", "delivered"]
        assert seen == ["one", "two", "two"]

    def test_a_hold_is_shared_by_processes(self, tmp_path: Path) -> None:
        """A 429 one runtime received holds the destination for another runtime on the
        same SQLite file: it sends nothing before the hold ends.
        """
        clock = ManualClock()
        path = tmp_path / "c.db"
        behaviour, calls = outcomes(
            Outcome.transient("HTTP 429", retry_after=30, status_code=429), Outcome.delivered()
        )
        runtimes = [
            make_runtime(
                Channels(scripted("hook", behaviour)),
                clock=clock,
                store=SQLiteStore(path, clock, f"sqlite:///{path}"),
                channels=("hook",),
                timeout=5.0,
                grouping=GROUPING_OFF,
            )
            for _ in range(2)
        ]
        try:
            runtimes[0].send(make_alert("a"))
            (held,) = runtimes[1].send(make_alert("b")).deliveries
        finally:
            for runtime in runtimes:
                runtime.close()
        assert held.deferred
        assert calls.keys == ["a"]

    def test_an_emptied_bucket_holds_after_a_delivery(self) -> None:
        """A delivered outcome carrying retry_after (Discord's emptied bucket) holds the
        destination that long: the next send waits it inline.
        """
        clock = ManualClock()
        behaviour, calls = outcomes(Outcome.delivered("ok", retry_after=1.5), Outcome.delivered())
        with make_runtime(
            Channels(scripted("hook", behaviour)),
            clock=clock,
            channels=("hook",),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:
            send_burst(runtime, 2)
        assert clock.slept == [1.5]
        assert calls.times[1] - calls.times[0] == pytest.approx(1.5)

    def test_no_secret_in_pace_keys(self) -> None:
        """The destination id in the hold and slot keys is a hash, not the webhook URL."""
        clock = ManualClock()
        secret = "https://hooks.example.test/T0/B0/pace-secret-99"  # noqa: S105 - looked for
        store = MemoryStore(clock)
        limited, _ = outcomes(Outcome.transient("HTTP 429", retry_after=30, status_code=429))
        router = Router(Destination(channel="hook", settings={"url": secret}))
        plugin = Channels(scripted("hook", limited, pace=(1, 1.0)))
        with make_runtime(
            plugin, router, clock=clock, store=store, timeout=5.0, grouping=GROUPING_OFF
        ) as runtime:
            runtime.send(make_alert())
            policy = runtime.channels.policy_for(
                Destination(channel="hook", settings={"url": secret})
            )
            keys = store.keys("pace:")
        assert keys
        assert all("pace-secret" not in key and "hooks.example" not in key for key in keys)
        assert HOLD_PREFIX + policy.destination_id in keys
        assert any(key.startswith(SLOT_PREFIX + policy.destination_id) for key in keys)


class TestRetryAfterInRealTime:
    """Against real servers on loopback, in real time (bounded): a webhook answering 429
    with Retry-After: 3 sees its next request 3 s later or more, while alerts to another
    webhook keep flowing meanwhile.
    """

    def test_retry_after_3_holds_one_webhook_only(self, tmp_path: Path) -> None:
        """The held webhook's second request comes 3 to 5 s after its first (the monitor
        drains every 0.1 s), a second alert for it waits as well, and the other webhook
        gets its alerts (one every 0.25 s) throughout.
        """
        store_path = tmp_path / "c.db"
        rate_limited = Reply(status=429, headers={"Retry-After": "3"}, body="slow down")
        with RecordingServer([rate_limited]) as held, RecordingServer() as other:
            router = Router()
            plugin = Channels(http_channel("hook"))
            clock = SystemClock()
            with make_runtime(
                plugin,
                router,
                clock=clock,
                store=SQLiteStore(store_path, clock, f"sqlite:///{store_path}"),
                timeout=5,
                grouping=GROUPING_OFF,
            ) as runtime:
                stop = threading.Event()
                monitor = threading.Thread(
                    target=Monitor(runtime, vouch_for=None).run, args=(0.1, stop), daemon=True
                )
                monitor.start()
                try:
                    to_held = Destination(
                        channel="hook", route="held", settings={"url": held.url_for("/h")}
                    )
                    to_other = Destination(
                        channel="hook", route="other", settings={"url": other.url_for("/o")}
                    )
                    router.destinations = [to_held]
                    (first,) = runtime.send(make_alert("held-1")).deliveries
                    assert first.deferred, first
                    (second,) = runtime.send(make_alert("held-2")).deliveries
                    assert second.deferred, second
                    router.destinations = [to_other]
                    started = time.monotonic()
                    flowing = 0
                    while time.monotonic() - started < 3.5:
                        (result,) = runtime.send(make_alert(f"other-{flowing}")).deliveries
                        assert result.ok, result
                        flowing += 1
                        time.sleep(0.25)
                    requests = held.wait_for_requests(3, timeout=5.0)
                finally:
                    stop.set()
                    monitor.join(timeout=10)
        first_at = requests[0].received_at
        later = [request.received_at - first_at for request in requests[1:]]
        shown = ", ".join(f"+{delay:.2f}s" for delay in later)
        report(f"held webhook: requests at +0 (429), {shown}")
        report(f"other webhook: {len(other.requests)} alerts received meanwhile")
        assert len(requests) == 3
        assert all(3.0 <= delay <= 5.0 for delay in later), later
        during_hold = [
            request for request in other.requests if first_at < request.received_at < first_at + 3.0
        ]
        assert len(during_hold) >= 8

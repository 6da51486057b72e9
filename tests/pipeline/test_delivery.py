"""Delivery in-process: concurrency, timeouts, retries, classification and the hooks after."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chaperone
from chaperone import (
    Alert,
    Channel,
    ChannelSettings,
    Destination,
    ManualClock,
    Outcome,
    OutcomeKind,
    Secret,
    SendContext,
)
from chaperone.builtin.database_channel import read_history
from helpers.delivery import AfterDelivery, Channels, confirm
from helpers.runtime import make_runtime

Behaviour = Callable[[Alert, SendContext], Awaitable[Any]]

# -------------------------------------------------------------------------------------
# Helpers
# -------------------------------------------------------------------------------------


def scripted(name: str, behaviour: Behaviour) -> type[Channel]:
    """A channel class named ``name`` whose ``send`` is ``behaviour``."""

    class Scripted(Channel):
        @classmethod
        def from_settings(cls, settings: ChannelSettings) -> Self:
            return cls()

        async def send(self, alert: Alert, context: SendContext) -> Any:
            return await behaviour(alert, context)

    Scripted.name = name
    return Scripted


def outcomes(*results: Outcome) -> tuple[Behaviour, list[int]]:
    """A behaviour returning ``results`` in turn (the last one for ever after), and the list
    of attempt numbers it was called with.
    """
    attempts: list[int] = []

    async def behaviour(alert: Alert, context: SendContext) -> Outcome:
        attempts.append(context.attempt)
        return results[min(len(attempts), len(results)) - 1]

    return behaviour, attempts


def raising(exc: BaseException) -> Behaviour:
    """A behaviour that raises ``exc``."""

    async def behaviour(alert: Alert, context: SendContext) -> Outcome:
        raise exc

    return behaviour


def alert(key: str = "sup-1") -> Alert:
    """A firing alert."""
    return Alert(
        type="job_stuck",
        key=key,
        headline="Job Stuck",
        title="Job Stuck: App\\Jobs\\ImportFeed",
        summary="A supervised job has been detected as stuck.",
        occurred_at=datetime(2024, 1, 15, 10, 0, tzinfo=UTC),
    )


# -------------------------------------------------------------------------------------
# Tests
# -------------------------------------------------------------------------------------


class TestConcurrency:
    def test_a_slow_channel_does_not_block_another(self) -> None:
        """Channels are delivered at once: the first channel waits for an event only the
        second sets after delivering, which sequential delivery could never reach in time.
        """
        other_delivered = asyncio.Event()
        finished: list[str] = []

        async def slow(alert: Alert, context: SendContext) -> Outcome:
            await other_delivered.wait()
            finished.append("slow")
            return Outcome.delivered()

        async def fast(alert: Alert, context: SendContext) -> Outcome:
            finished.append("fast")
            other_delivered.set()
            return Outcome.delivered()

        plugin = Channels(scripted("slow", slow), scripted("fast", fast))
        with make_runtime(plugin, channels=("slow", "fast"), timeout=5, max_attempts=1) as rt:
            report = rt.send(alert())
        assert report.delivered, report.deliveries
        assert finished == ["fast", "slow"]
        assert [r.destination.channel for r in report.deliveries] == ["slow", "fast"]


class TestTimeout:
    def test_a_hanging_channel_times_out_and_fails_after_max_attempts(self) -> None:
        """A channel that never answers is cut off at the delivery timeout, each time a
        transient failure, and failed once the attempts run out; the other channel is
        delivered and the whole thing stays well under two seconds.
        """
        never = asyncio.Event()

        async def hang(alert: Alert, context: SendContext) -> Outcome:
            await never.wait()
            return Outcome.delivered()

        hooks = AfterDelivery()
        clock = ManualClock()
        plugin = Channels(scripted("hang", hang), scripted("fine", confirm))
        started = time.monotonic()
        with make_runtime(
            plugin, hooks, clock=clock, channels=("hang", "fine"), timeout=0.2, max_attempts=3
        ) as runtime:
            report = runtime.send(alert())
        elapsed = time.monotonic() - started
        hung, fine = report.deliveries
        assert hung.outcome.kind is OutcomeKind.TRANSIENT
        assert hung.outcome.detail == "timed out after 0.2s"
        assert hung.attempts == 3
        assert fine.ok
        assert len(clock.slept) == 2
        assert [(d.channel, attempts) for _, d, _, attempts in hooks.failed] == [("hang", 3)]
        assert elapsed < 2.0


class TestClassification:
    def test_a_raising_channel_is_a_permanent_failure_without_secrets(self) -> None:
        """A channel raising with a secret in its message fails permanently after one
        attempt; the detail the hooks and report see is masked and the other channel is
        delivered.
        """
        secret = Secret("xoxb-delivery-secret-4711")
        hooks = AfterDelivery()
        clock = ManualClock()
        plugin = Channels(
            scripted("boom", raising(RuntimeError(f"auth failed for {secret.reveal()}"))),
            scripted("fine", confirm),
        )
        with make_runtime(
            plugin, hooks, clock=clock, channels=("boom", "fine"), timeout=5.0
        ) as runtime:
            report = runtime.send(alert())
        boom, fine = report.deliveries
        assert boom.outcome.kind is OutcomeKind.PERMANENT
        assert boom.attempts == 1
        assert "RuntimeError" in boom.outcome.detail
        assert secret.reveal() not in boom.outcome.detail
        assert "********" in boom.outcome.detail
        assert fine.ok
        assert clock.slept == []
        ((_, destination, outcome, attempts),) = hooks.failed
        assert destination.channel == "boom"
        assert attempts == 1
        assert outcome == boom.outcome
        assert secret.reveal() not in outcome.detail
        assert [d.channel for _, d, _ in hooks.delivered] == ["fine"]

    def test_a_secret_in_an_outcome_detail_is_masked(self) -> None:
        """A channel that quotes a secret in its own outcome detail has it masked."""
        secret = Secret("routing-key-0xdeadbeef")
        behaviour, _ = outcomes(Outcome.permanent(f"rejected key {secret.reveal()}"))
        with make_runtime(
            Channels(scripted("leaky", behaviour)), channels=("leaky",), timeout=5.0
        ) as rt:
            report = rt.send(alert())
        (result,) = report.deliveries
        assert secret.reveal() not in result.outcome.detail
        assert result.outcome.detail == "rejected key ********"

    def test_connect_error_is_transient(self) -> None:
        """httpx.ConnectError raised by a channel is retried as a transient failure."""
        calls: list[int] = []

        async def refuse(alert: Alert, context: SendContext) -> Outcome:
            calls.append(context.attempt)
            raise httpx.ConnectError("connection refused")

        with make_runtime(
            Channels(scripted("down", refuse)), channels=("down",), max_attempts=3, timeout=5.0
        ) as runtime:
            report = runtime.send(alert())
        (result,) = report.deliveries
        assert result.outcome.kind is OutcomeKind.TRANSIENT
        assert "ConnectError" in result.outcome.detail
        assert result.attempts == 3
        assert calls == [1, 2, 3]

    @pytest.mark.parametrize("returned", [None, "delivered", True, {"ok": True}])
    def test_a_non_outcome_is_permanent(self, returned: object) -> None:
        """A channel returning anything but an Outcome fails permanently, not retried."""

        async def wrong(alert: Alert, context: SendContext) -> object:
            return returned

        with make_runtime(
            Channels(scripted("wrong", wrong)), channels=("wrong",), timeout=5.0
        ) as runtime:
            report = runtime.send(alert())
        (result,) = report.deliveries
        assert result.outcome.kind is OutcomeKind.PERMANENT
        assert "not an Outcome" in result.outcome.detail
        assert result.attempts == 1

    def test_a_channel_failing_to_build_is_permanent(self) -> None:
        """A channel whose from_settings raises at send time fails that delivery only."""

        class Unbuildable(Channel):
            name = "unbuildable"

            @classmethod
            def from_settings(cls, settings: ChannelSettings) -> Self:
                raise settings.problem("token", "is required")

            async def send(self, alert: Alert, context: SendContext) -> Outcome:
                raise AssertionError("never built")

        class Route:
            @chaperone.hookimpl
            def chaperone_route(self, alert: Alert) -> Sequence[Destination]:
                return [Destination(channel="unbuildable"), Destination(channel="fine")]

        plugin = Channels(Unbuildable, scripted("fine", confirm))
        with make_runtime(plugin, Route(), channels=("fine",), timeout=5.0) as runtime:
            report = runtime.send(alert())
        broken, fine = report.deliveries
        assert broken.outcome.kind is OutcomeKind.PERMANENT
        assert "CHAPERONE_UNBUILDABLE_TOKEN" in broken.outcome.detail
        assert broken.attempts == 0
        assert fine.ok


class TestRetries:
    def test_transient_is_retried_with_exponential_backoff(self) -> None:
        """Transient outcomes are tried max_attempts times, waiting about 1, 2, 4 s (plus
        up to 1 s of jitter) on the runtime's clock.
        """
        clock = ManualClock()
        behaviour, attempts = outcomes(Outcome.transient("503", status_code=503))
        with make_runtime(
            Channels(scripted("flaky", behaviour)),
            clock=clock,
            channels=("flaky",),
            max_attempts=4,
            max_backoff=60,
            timeout=5.0,
        ) as runtime:
            report = runtime.send(alert())
        (result,) = report.deliveries
        assert result.outcome.kind is OutcomeKind.TRANSIENT
        assert result.attempts == 4
        assert attempts == [1, 2, 3, 4]
        assert len(clock.slept) == 3
        for index, pause in enumerate(clock.slept):
            assert 2**index <= pause <= 2**index + 1

    def test_backoff_is_capped_at_max_backoff(self) -> None:
        """No wait between attempts is longer than max_backoff."""
        clock = ManualClock()
        behaviour, _ = outcomes(Outcome.transient("503"))
        with make_runtime(
            Channels(scripted("flaky", behaviour)),
            clock=clock,
            channels=("flaky",),
            max_attempts=6,
            max_backoff=3,
            timeout=5.0,
        ) as runtime:
            runtime.send(alert())
        assert len(clock.slept) == 5
        assert max(clock.slept) <= 3
        assert clock.slept[-1] == 3

    def test_transient_then_delivered_is_delivered(self) -> None:
        """A retry that succeeds ends the delivery as delivered, with the attempts it took."""
        hooks = AfterDelivery()
        behaviour, attempts = outcomes(Outcome.transient("busy"), Outcome.delivered("ok"))
        with make_runtime(
            Channels(scripted("flaky", behaviour)), hooks, channels=("flaky",), timeout=5.0
        ) as runtime:
            report = runtime.send(alert())
        (result,) = report.deliveries
        assert result.ok
        assert result.attempts == 2
        assert attempts == [1, 2]
        assert len(hooks.delivered) == 1
        assert hooks.failed == []

    def test_retry_after_is_honoured(self) -> None:
        """A transient outcome asking for 45 s (more than the inline wait) puts the alert
        back in the outbox for 45 s: a drain before then sends nothing, one after it
        delivers, and the delivered hook is called once, then.
        """
        clock = ManualClock()
        hooks = AfterDelivery()
        behaviour, attempts = outcomes(
            Outcome.transient("429", retry_after=45, status_code=429), Outcome.delivered()
        )
        with make_runtime(
            Channels(scripted("limited", behaviour)),
            hooks,
            clock=clock,
            channels=("limited",),
            max_backoff=30,
            timeout=5.0,
        ) as runtime:
            report = runtime.send(alert())
            (result,) = report.deliveries
            assert result.deferred
            assert result.deferred_until == clock.now() + timedelta(seconds=45)
            assert clock.slept == []
            clock.advance(44.9)
            assert runtime.drain_outbox() == []
            assert attempts == [1]
            clock.advance(0.1)
            (drained,) = runtime.drain_outbox()
        assert drained.ok
        assert attempts == [1, 2]
        assert [d.channel for _, d, _ in hooks.delivered] == ["limited"]
        assert hooks.failed == []

    @settings(max_examples=15, deadline=None)
    @given(retry_after=st.floats(min_value=0, max_value=3000, allow_nan=False))
    def test_the_wait_is_never_shorter_than_retry_after(self, retry_after: float) -> None:
        """Whatever Retry-After a service gives (within delivery.max_total), the next
        attempt comes no sooner: waited inline when short, from the outbox when long.
        """
        clock = ManualClock()
        sent_at: list[float] = []

        async def limited(alert: Alert, context: SendContext) -> Outcome:
            sent_at.append(context.clock.timestamp())
            return Outcome.transient("429", retry_after=retry_after)

        with make_runtime(
            Channels(scripted("limited", limited)),
            clock=clock,
            channels=("limited",),
            max_attempts=2,
            timeout=5.0,
        ) as runtime:
            (result,) = runtime.send(alert()).deliveries
            if result.deferred:
                assert result.deferred_until is not None
                # deferred_until is to the microsecond: one more covers its rounding.
                clock.advance(result.deferred_until - clock.now() + timedelta(microseconds=1))
                runtime.drain_outbox()
        first, second = sent_at
        assert second - first >= retry_after

    def test_retry_after_past_max_total_fails_at_once(self) -> None:
        """A Retry-After that would put the next attempt past delivery.max_total ends the
        delivery as failed at once, without a wait.
        """
        clock = ManualClock()
        hooks = AfterDelivery()
        behaviour, attempts = outcomes(Outcome.transient("429", retry_after=7200))
        with make_runtime(
            Channels(scripted("limited", behaviour)),
            hooks,
            clock=clock,
            channels=("limited",),
            timeout=5.0,
        ) as runtime:
            (result,) = runtime.send(alert()).deliveries
        assert result.status == "failed"
        assert "delivery.max_total" in result.outcome.detail
        assert attempts == [1]
        assert clock.slept == []
        assert [n for *_, n in hooks.failed] == [1]

    @settings(max_examples=10, deadline=None)
    @given(max_attempts=st.integers(min_value=1, max_value=6))
    def test_attempts_never_exceed_max_attempts(self, max_attempts: int) -> None:
        """An always-transient channel is tried exactly max_attempts times, with one wait
        between each two.
        """
        clock = ManualClock()
        hooks = AfterDelivery()
        behaviour, attempts = outcomes(Outcome.transient("503"))
        with make_runtime(
            Channels(scripted("flaky", behaviour)),
            hooks,
            clock=clock,
            channels=("flaky",),
            max_attempts=max_attempts,
            timeout=5.0,
        ) as runtime:
            runtime.send(alert())
        assert attempts == list(range(1, max_attempts + 1))
        assert len(clock.slept) == max_attempts - 1
        assert [n for *_, n in hooks.failed] == [max_attempts]

    def test_permanent_is_not_retried(self) -> None:
        """A permanent outcome ends the delivery after one attempt, with no wait."""
        clock = ManualClock()
        behaviour, attempts = outcomes(Outcome.permanent("400 bad payload", status_code=400))
        with make_runtime(
            Channels(scripted("strict", behaviour)), clock=clock, channels=("strict",), timeout=5.0
        ) as runtime:
            report = runtime.send(alert())
        (result,) = report.deliveries
        assert result.outcome.kind is OutcomeKind.PERMANENT
        assert result.outcome.status_code == 400
        assert result.attempts == 1
        assert attempts == [1]
        assert clock.slept == []


class TestAfterDeliveryHooks:
    def test_hooks_get_the_destination_and_outcome(self) -> None:
        """chaperone_delivered and chaperone_delivery_failed receive the alert, the
        destination with its route, and the channel's outcome.
        """

        class Route:
            @chaperone.hookimpl
            def chaperone_route(self, alert: Alert) -> Sequence[Destination]:
                return [
                    Destination(channel="good", route="oncall"),
                    Destination(channel="bad", route="oncall"),
                ]

        hooks = AfterDelivery()
        good, _ = outcomes(Outcome.delivered("accepted", status_code=202))
        bad, _ = outcomes(Outcome.permanent("404 no such channel", status_code=404))
        sent = alert()
        with make_runtime(
            Channels(scripted("good", good), scripted("bad", bad)),
            Route(),
            hooks,
            channels=("good", "bad"),
            timeout=5.0,
        ) as runtime:
            runtime.send(sent)
        assert hooks.delivered == [
            (
                sent,
                Destination(channel="good", route="oncall"),
                Outcome.delivered("accepted", status_code=202),
            )
        ]
        assert hooks.failed == [
            (
                sent,
                Destination(channel="bad", route="oncall"),
                Outcome.permanent("404 no such channel", status_code=404),
                1,
            )
        ]


class TestHistory:
    def test_database_channel_records_other_channels_outcomes(self) -> None:
        """With ``database`` configured, every channel's outcome lands in the history:
        delivered ones, and failed ones with their attempts and reason.
        """
        bad, _ = outcomes(Outcome.transient("503 unavailable", status_code=503))
        with make_runtime(
            Channels(scripted("good", confirm), scripted("bad", bad)),
            channels=("database", "good", "bad"),
            max_attempts=2,
            timeout=5.0,
        ) as runtime:
            runtime.send(alert())
            assert runtime.self_watch.wait(10) == 0
            everything = read_history(runtime.store, 20)
        # The degraded alert about "bad" is in the history too (tests/resilience).
        history = [record for record in everything if record["type"] != "chaperone_degraded"]
        assert {r["key"] for r in everything if r not in history} == {"channel:bad"}
        by_channel = {record["channel"]: record for record in history}
        assert set(by_channel) == {"database", "good", "bad"}
        assert by_channel["database"]["status"] == "delivered"
        assert by_channel["good"]["status"] == "delivered"
        assert by_channel["bad"]["status"] == "failed"
        assert by_channel["bad"]["attempts"] == 2
        assert by_channel["bad"]["detail"] == "503 unavailable"
        assert all(record["key"] == "sup-1" for record in history)

    def test_no_history_without_the_database_channel(self) -> None:
        """Without ``database`` among the channels nothing is recorded."""
        with make_runtime(
            Channels(scripted("good", confirm)), channels=("good",), timeout=5.0
        ) as runtime:
            runtime.send(alert())
            history = read_history(runtime.store, 10)
        assert history == []

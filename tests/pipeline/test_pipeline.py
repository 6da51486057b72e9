"""The alert pipeline in-process: event → alerts → filters → route → channels."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chaperone
from chaperone import (
    Alert,
    Channel,
    ChannelSettings,
    Destination,
    Event,
    JobRecovered,
    JobStuck,
    ManualClock,
    Outcome,
    Runtime,
    SendContext,
    Verdict,
    VerdictKind,
)
from chaperone.builtin.ratelimit_filter import rate_limit_key
from helpers.runtime import make_runtime

# -------------------------------------------------------------------------------------
# Helpers
# -------------------------------------------------------------------------------------


class Sink:
    """Records what the in-test channels were sent and the settings they were built from."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Alert]] = []
        self.built: list[ChannelSettings] = []

    def channel(self, name: str) -> type[Channel]:
        """A channel class named ``name`` that records each alert and confirms it."""
        sink = self

        class Recording(Channel):
            @classmethod
            def from_settings(cls, settings: ChannelSettings) -> Self:
                sink.built.append(settings)
                return cls()

            async def send(self, alert: Alert, context: SendContext) -> Outcome:
                sink.sent.append((name, alert))
                return Outcome.delivered()

        Recording.name = name
        return Recording

    def to(self, name: str) -> list[Alert]:
        """The alerts channel ``name`` received."""
        return [alert for channel, alert in self.sent if channel == name]


class Channels:
    """A plugin that registers the given channel classes."""

    def __init__(self, *classes: type[Channel]) -> None:
        self.classes = classes

    @chaperone.hookimpl
    def chaperone_register_channels(self, register: Any) -> None:
        for channel_class in self.classes:
            register(channel_class)


def stuck(supervision_id: str = "sup-1", **kwargs: Any) -> JobStuck:
    """A JobStuck event."""
    return JobStuck(
        supervision_id=supervision_id,
        job_class="App\\Jobs\\ImportFeed",
        stuck_duration=timedelta(minutes=10),
        **kwargs,
    )


def custom_alert(key: str = "custom", occurred_at: datetime | None = None) -> Alert:
    """A hand-built alert."""
    return Alert(
        type="custom",
        key=key,
        headline="Custom",
        title=f"Custom: {key}",
        summary="Something custom happened.",
        occurred_at=occurred_at or datetime(2024, 1, 15, 10, 0, tzinfo=UTC),
    )


class FixedFilter:
    """A filter plugin returning the same verdict every time, counting its calls."""

    def __init__(self, verdict: Verdict | None) -> None:
        self.verdict = verdict
        self.calls = 0

    @chaperone.hookimpl
    def chaperone_filter_alert(self, alert: Alert) -> Verdict | None:
        self.calls += 1
        return self.verdict


class Raises:
    """A plugin whose every hook raises."""

    def __init__(self, message: str = "plugin bug") -> None:
        self.message = message

    @chaperone.hookimpl
    def chaperone_event(self, event: Event) -> None:
        raise RuntimeError(self.message)

    @chaperone.hookimpl
    def chaperone_alerts(self, event: Event) -> Sequence[Alert] | None:
        raise RuntimeError(self.message)

    @chaperone.hookimpl
    def chaperone_filter_alert(self, alert: Alert) -> Verdict | None:
        raise RuntimeError(self.message)

    @chaperone.hookimpl
    def chaperone_route(self, alert: Alert) -> Sequence[Destination] | None:
        raise RuntimeError(self.message)

    @chaperone.hookimpl
    def chaperone_delivered(self, alert: Alert) -> None:
        raise RuntimeError(self.message)

    @chaperone.hookimpl
    def chaperone_delivery_failed(self, alert: Alert) -> None:
        raise RuntimeError(self.message)


# -------------------------------------------------------------------------------------
# Tests
# -------------------------------------------------------------------------------------


class TestEndToEnd:
    def test_event_becomes_a_delivered_alert(self) -> None:
        """A JobStuck event is built into the seed's alert, passes the filters and reaches
        every configured channel.
        """
        sink = Sink()
        plugin = Channels(sink.channel("alpha"), sink.channel("beta"))
        with make_runtime(plugin, channels=("alpha", "beta")) as runtime:
            report = runtime.dispatch(stuck())
        assert report.skipped is None
        (alert_report,) = report.alerts
        assert alert_report.verdict.kind is VerdictKind.SEND
        assert alert_report.delivered
        assert [result.destination.channel for result in alert_report.deliveries] == [
            "alpha",
            "beta",
        ]
        for name in ("alpha", "beta"):
            (alert,) = sink.to(name)
            assert alert.type == "job_stuck"
            assert alert.key == "sup-1"
            assert alert.title == "Job Stuck: App\\Jobs\\ImportFeed"

    def test_occurred_at_is_filled_from_the_clock(self) -> None:
        """An event without ``occurred_at`` gets the clock's time; so do its alerts and the
        event observers see it filled in.
        """
        clock = ManualClock(datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC))
        seen: list[Event] = []

        class Observer:
            @chaperone.hookimpl
            def chaperone_event(self, event: Event) -> None:
                seen.append(event)

        sink = Sink()
        with make_runtime(
            Channels(sink.channel("alpha")), Observer(), clock=clock, channels=("alpha",)
        ) as runtime:
            report = runtime.dispatch(stuck())
        assert report.event.occurred_at == clock.now()
        assert seen[0].occurred_at == clock.now()
        assert sink.to("alpha")[0].occurred_at == clock.now()

    def test_given_occurred_at_is_kept(self) -> None:
        """An event that says when it happened keeps that time, whatever the clock says."""
        when = datetime(2020, 1, 1, tzinfo=UTC)
        sink = Sink()
        with make_runtime(Channels(sink.channel("alpha")), channels=("alpha",)) as runtime:
            report = runtime.dispatch(stuck(occurred_at=when))
        assert report.event.occurred_at == when
        assert sink.to("alpha")[0].occurred_at == when

    def test_send_delivers_a_hand_built_alert(self) -> None:
        """``Chaperone.send`` filters, routes and delivers an alert built by hand."""
        sink = Sink()
        with make_runtime(Channels(sink.channel("alpha")), channels=("alpha",)) as runtime:
            report = runtime.send(custom_alert())
        assert report.delivered
        assert sink.to("alpha") == [custom_alert()]


class TestEventObservers:
    def test_every_observer_is_called_and_one_raising_stops_nothing(self) -> None:
        """All chaperone_event implementations run even when one raises, and the alert is
        still delivered.
        """
        calls: list[str] = []

        class Observer:
            def __init__(self, name: str, fail: bool = False) -> None:
                self.name = name
                self.fail = fail

            @chaperone.hookimpl
            def chaperone_event(self, event: Event, runtime: Runtime) -> None:
                calls.append(self.name)
                if self.fail:
                    raise RuntimeError("observer broke")

        sink = Sink()
        with make_runtime(
            Observer("first"),
            Observer("broken", fail=True),
            Observer("last"),
            Channels(sink.channel("alpha")),
            channels=("alpha",),
        ) as runtime:
            report = runtime.dispatch(stuck())
        assert sorted(calls) == ["broken", "first", "last"]
        assert report.alerts[0].delivered
        assert len(sink.to("alpha")) == 1


class TestAlertHook:
    def test_plugin_alert_overrides_the_builtin(self) -> None:
        """A plugin's chaperone_alerts result replaces the seed's alert (firstresult)."""

        class Override:
            @chaperone.hookimpl
            def chaperone_alerts(self, event: Event) -> Sequence[Alert]:
                assert event.occurred_at is not None
                return [custom_alert("overridden", event.occurred_at)]

        sink = Sink()
        with make_runtime(Override(), Channels(sink.channel("alpha")), channels=("alpha",)) as rt:
            report = rt.dispatch(stuck())
        assert [alert.key for alert in sink.to("alpha")] == ["overridden"]
        assert report.alerts[0].alert.type == "custom"

    def test_empty_list_ignores_the_event(self) -> None:
        """A plugin returning [] means no alert at all: nothing reaches any channel."""

        class Ignore:
            @chaperone.hookimpl
            def chaperone_alerts(self, event: Event) -> Sequence[Alert]:
                return []

        sink = Sink()
        with make_runtime(Ignore(), Channels(sink.channel("alpha")), channels=("alpha",)) as rt:
            report = rt.dispatch(stuck())
        assert report.alerts == ()
        assert report.skipped is None
        assert sink.sent == []

    def test_several_alerts_from_one_event_are_all_delivered(self) -> None:
        """An alert hook may return several alerts; each goes through the pipeline."""

        class Several:
            @chaperone.hookimpl
            def chaperone_alerts(self, event: Event) -> Sequence[Alert]:
                return [custom_alert("one"), custom_alert("two")]

        sink = Sink()
        with make_runtime(Several(), Channels(sink.channel("alpha")), channels=("alpha",)) as rt:
            report = rt.dispatch(stuck())
        assert [r.alert.key for r in report.alerts] == ["one", "two"]
        assert [alert.key for alert in sink.to("alpha")] == ["one", "two"]

    def test_unknown_event_makes_no_alert(self) -> None:
        """An event type the built-ins do not know (and no plugin handles) is ignored."""

        class Unknown(Event):
            pass

        sink = Sink()
        with make_runtime(Channels(sink.channel("alpha")), channels=("alpha",)) as runtime:
            report = runtime.dispatch(Unknown())
        assert report.alerts == ()
        assert sink.sent == []

    def test_raising_alert_hook_falls_back_to_the_builtin(self) -> None:
        """When a plugin's alert builder raises, the seed's alert is sent instead."""

        class Broken:
            @chaperone.hookimpl
            def chaperone_alerts(self, event: Event) -> Sequence[Alert]:
                raise RuntimeError("alert builder bug")

        sink = Sink()
        with make_runtime(Broken(), Channels(sink.channel("alpha")), channels=("alpha",)) as rt:
            report = rt.dispatch(stuck())
        assert report.alerts[0].delivered
        (alert,) = sink.to("alpha")
        assert alert.type == "job_stuck"
        assert alert.title == "Job Stuck: App\\Jobs\\ImportFeed"


class TestFilters:
    def test_suppress_is_not_delivered_and_says_why(self) -> None:
        """A suppress verdict keeps the alert from every channel; the report gives the
        reason.
        """
        sink = Sink()
        with make_runtime(
            FixedFilter(Verdict.suppress("maintenance window")),
            Channels(sink.channel("alpha")),
            channels=("alpha",),
        ) as runtime:
            report = runtime.dispatch(stuck())
        (alert_report,) = report.alerts
        assert alert_report.verdict == Verdict.suppress("maintenance window")
        assert alert_report.deliveries == ()
        assert not alert_report.delivered
        assert sink.sent == []

    def test_hold_is_not_delivered_and_keeps_its_group(self) -> None:
        """A hold verdict keeps the alert back, reporting its group key."""
        sink = Sink()
        with make_runtime(
            FixedFilter(Verdict.hold("nightly-imports", "grouped")),
            Channels(sink.channel("alpha")),
            channels=("alpha",),
        ) as runtime:
            report = runtime.dispatch(stuck())
        (alert_report,) = report.alerts
        assert alert_report.verdict.kind is VerdictKind.HOLD
        assert alert_report.verdict.group_key == "nightly-imports"
        assert not alert_report.delivered
        assert sink.sent == []

    def test_send_skips_the_later_filters(self) -> None:
        """A send verdict delivers at once: the built-in rate limit is not asked, so the
        same alert twice is delivered twice and no rate-limit mark is set.
        """
        sink = Sink()
        with make_runtime(
            FixedFilter(Verdict.send("always page")),
            Channels(sink.channel("alpha")),
            channels=("alpha",),
        ) as runtime:
            first = runtime.dispatch(stuck())
            second = runtime.dispatch(stuck())
            marks = runtime.store.keys("ratelimit:")
        assert first.alerts[0].delivered
        assert second.alerts[0].delivered
        assert len(sink.to("alpha")) == 2
        assert marks == []

    def test_none_passes_to_the_next_filter(self) -> None:
        """A filter returning None has no opinion: the alert is delivered and the rate
        limit after it still counts, suppressing the repeat.
        """
        no_opinion = FixedFilter(None)
        sink = Sink()
        with make_runtime(no_opinion, Channels(sink.channel("alpha")), channels=("alpha",)) as rt:
            first = rt.dispatch(stuck())
            second = rt.dispatch(stuck())
        assert no_opinion.calls == 2
        assert first.alerts[0].delivered
        assert second.alerts[0].verdict.kind is VerdictKind.SUPPRESS
        assert "rate limited" in second.alerts[0].verdict.reason
        assert len(sink.to("alpha")) == 1

    def test_raising_filter_fails_open(self) -> None:
        """A filter that raises lets the alert through: a duplicate beats a lost page."""
        sink = Sink()
        with make_runtime(
            Raises(), Channels(sink.channel("alpha")), channels=("alpha",)
        ) as runtime:
            report = runtime.send(custom_alert())
        assert report.verdict.kind is VerdictKind.SEND
        assert report.delivered
        assert len(sink.to("alpha")) == 1

    @settings(max_examples=25, deadline=None)
    @given(
        verdicts=st.lists(
            st.sampled_from(
                [
                    None,
                    Verdict.send("s"),
                    Verdict.suppress("x"),
                    Verdict.hold("g"),
                ]
            ),
            min_size=1,
            max_size=3,
        )
    )
    def test_first_verdict_decides(self, verdicts: list[Verdict | None]) -> None:
        """Whatever chain of plugin filters, the first verdict given decides; no verdict at
        all means send.
        """
        filters = [FixedFilter(verdict) for verdict in verdicts]
        sink = Sink()
        # pluggy asks the last registered plugin first: register in reverse.
        with make_runtime(
            Channels(sink.channel("alpha")), *reversed(filters), channels=("alpha",)
        ) as runtime:
            report = runtime.send(custom_alert())
        decided = next((verdict for verdict in verdicts if verdict is not None), None)
        expected = VerdictKind.SEND if decided is None else decided.kind
        assert report.verdict.kind is expected
        assert len(sink.sent) == (1 if expected is VerdictKind.SEND else 0)
        asked = 1 + next(
            (index for index, verdict in enumerate(verdicts) if verdict is not None),
            len(verdicts) - 1,
        )
        assert [f.calls for f in filters] == [1] * asked + [0] * (len(verdicts) - asked)


class TestRateLimitTrap:
    def test_suppressed_alert_does_not_consume_the_rate_limit_window(self) -> None:
        """An alert suppressed by a maintenance-like plugin filter (which runs before the
        built-in rate limit) leaves the window free: once maintenance ends the same alert
        is delivered at once.
        """

        class Maintenance:
            def __init__(self) -> None:
                self.active = True

            @chaperone.hookimpl
            def chaperone_filter_alert(self, alert: Alert) -> Verdict | None:
                return Verdict.suppress("maintenance") if self.active else None

        maintenance = Maintenance()
        sink = Sink()
        clock = ManualClock()
        with make_runtime(
            maintenance, Channels(sink.channel("alpha")), clock=clock, channels=("alpha",)
        ) as runtime:
            during = runtime.dispatch(stuck())
            assert runtime.store.get(rate_limit_key("job_stuck", "sup-1")) is None
            maintenance.active = False
            clock.advance(1)
            after = runtime.dispatch(stuck())
            repeat = runtime.dispatch(stuck())
        assert during.alerts[0].verdict.reason == "maintenance"
        assert after.alerts[0].delivered
        assert repeat.alerts[0].verdict.kind is VerdictKind.SUPPRESS
        assert len(sink.to("alpha")) == 1

    def test_resolved_alerts_do_not_count(self) -> None:
        """A recovery alert passes the rate limit and does not start a window."""
        sink = Sink()
        with make_runtime(Channels(sink.channel("alpha")), channels=("alpha",)) as runtime:
            recovered = runtime.dispatch(JobRecovered(supervision_id="sup-1", job_class="J"))
            firing = runtime.dispatch(stuck())
        assert recovered.alerts[0].delivered
        assert firing.alerts[0].delivered

    def test_test_alerts_bypass_the_rate_limit(self) -> None:
        """With ``is_test`` the same alert is delivered every time."""
        sink = Sink()
        with make_runtime(Channels(sink.channel("alpha")), channels=("alpha",)) as runtime:
            reports = [runtime.dispatch(stuck(), is_test=True) for _ in range(3)]
        assert all(report.alerts[0].delivered for report in reports)
        assert len(sink.to("alpha")) == 3


class TestRouting:
    def test_route_override_chooses_destinations_with_settings(self) -> None:
        """A chaperone_route plugin picks the channels; the per-route settings reach the
        channel's ChannelSettings, named after the route.
        """

        class OnCall:
            @chaperone.hookimpl
            def chaperone_route(self, alert: Alert) -> Sequence[Destination]:
                return [Destination(channel="beta", route="oncall", settings={"team": "ops"})]

        sink = Sink()
        with make_runtime(
            OnCall(),
            Channels(sink.channel("alpha"), sink.channel("beta")),
            channels=("alpha", "beta"),
        ) as runtime:
            report = runtime.dispatch(stuck())
        assert sink.to("alpha") == []
        assert len(sink.to("beta")) == 1
        (result,) = report.alerts[0].deliveries
        assert result.destination == Destination(
            channel="beta", route="oncall", settings={"team": "ops"}
        )
        routed = [built for built in sink.built if built.get("team") is not None]
        assert len(routed) == 1
        assert routed[0].channel == "beta"
        assert routed[0].get("team") == "ops"
        assert routed[0].origins["team"] == ("beta.team", "route 'oncall'")

    def test_route_sees_the_route_name_in_the_send_context(self) -> None:
        """The channel is told which route sent the alert."""
        routes: list[str] = []

        class Spy(Channel):
            name = "spy"

            @classmethod
            def from_settings(cls, settings: ChannelSettings) -> Self:
                return cls()

            async def send(self, alert: Alert, context: SendContext) -> Outcome:
                routes.append(context.route)
                return Outcome.delivered()

        class Route:
            @chaperone.hookimpl
            def chaperone_route(self, alert: Alert) -> Sequence[Destination]:
                return [Destination(channel="spy", route="night")]

        with make_runtime(Route(), Channels(Spy), channels=("spy",)) as runtime:
            runtime.dispatch(stuck())
        assert routes == ["night"]

    def test_raising_route_falls_back_to_the_default_route(self) -> None:
        """When a route hook raises, the alert goes to every configured channel."""

        class Broken:
            @chaperone.hookimpl
            def chaperone_route(self, alert: Alert) -> Sequence[Destination]:
                raise RuntimeError("route bug")

        sink = Sink()
        with make_runtime(
            Broken(),
            Channels(sink.channel("alpha"), sink.channel("beta")),
            channels=("alpha", "beta"),
        ) as runtime:
            report = runtime.dispatch(stuck())
        assert report.alerts[0].delivered
        assert len(sink.to("alpha")) == 1
        assert len(sink.to("beta")) == 1

    def test_route_to_an_unknown_channel_fails_that_delivery_only(self) -> None:
        """A destination naming no installed channel is a permanent failure naming the
        package to install; the other destination is still delivered.
        """

        class Route:
            @chaperone.hookimpl
            def chaperone_route(self, alert: Alert) -> Sequence[Destination]:
                return [Destination(channel="nosuch"), Destination(channel="alpha")]

        sink = Sink()
        with make_runtime(Route(), Channels(sink.channel("alpha")), channels=("alpha",)) as rt:
            report = rt.dispatch(stuck())
        unknown, alpha = report.alerts[0].deliveries
        assert not unknown.ok
        assert unknown.attempts == 0
        assert "chaperone-nosuch" in unknown.outcome.detail
        assert alpha.ok
        job_alerts = [a for a in sink.to("alpha") if a.type != "chaperone_degraded"]
        assert len(job_alerts) == 1


class TestSwitches:
    def test_disabled_alerting_delivers_nothing_and_says_why(self) -> None:
        """With alerting disabled no channel is called and the report says so, naming the
        setting.
        """
        sink = Sink()
        with make_runtime(
            Channels(sink.channel("alpha")), channels=("alpha",), enabled=False
        ) as runtime:
            report = runtime.dispatch(stuck())
        assert report.alerts == ()
        assert report.skipped is not None
        assert "CHAPERONE_ALERTING_ENABLED" in report.skipped
        assert sink.sent == []

    def test_disabled_alerting_still_tells_observers(self) -> None:
        """Event observers see events even while alerting is disabled."""
        seen: list[Event] = []

        class Observer:
            @chaperone.hookimpl
            def chaperone_event(self, event: Event) -> None:
                seen.append(event)

        with make_runtime(Observer(), channels=("log",), enabled=False) as runtime:
            runtime.dispatch(stuck())
        assert len(seen) == 1

    def test_empty_recipients_silence_no_channel(self) -> None:
        """No recipients configured: every channel is still delivered to."""
        sink = Sink()
        names = ("alpha", "beta", "gamma")
        with make_runtime(
            Channels(*(sink.channel(name) for name in names)), channels=names, recipients=()
        ) as runtime:
            report = runtime.dispatch(stuck())
        assert report.alerts[0].delivered
        assert all(len(sink.to(name)) == 1 for name in names)


class TestNeverRaises:
    def test_every_plugin_hook_raising_still_delivers(self) -> None:
        """Observers, alert builder, filter, route, a channel and the after-delivery hooks
        all raising: dispatch returns a report and the seed's alert still reaches the other
        channel by the default route.
        """

        class Boom(Channel):
            name = "boom"

            @classmethod
            def from_settings(cls, settings: ChannelSettings) -> Self:
                return cls()

            async def send(self, alert: Alert, context: SendContext) -> Outcome:
                raise RuntimeError("channel bug")

        sink = Sink()
        with make_runtime(
            Raises(), Channels(sink.channel("alpha"), Boom), channels=("boom", "alpha")
        ) as runtime:
            report = runtime.dispatch(stuck())
        boom, alpha = report.alerts[0].deliveries
        assert not boom.ok
        assert "channel bug" in boom.outcome.detail
        assert alpha.ok
        assert sink.to("alpha")[0].type == "job_stuck"

    def test_a_pipeline_failure_is_reported_not_raised(self) -> None:
        """Even a failure outside every guarded step (an alert hook returning garbage
        whose error quotes a secret) comes back as a report with a masked reason.
        """
        secret = chaperone.Secret("pipeline-secret-8f2b")

        class Garbage:
            def __iter__(self) -> Any:
                raise RuntimeError(f"cannot iterate with {secret.reveal()}")

        class Returns:
            @chaperone.hookimpl
            def chaperone_alerts(self, event: Event) -> Any:
                return Garbage()

        sink = Sink()
        with make_runtime(
            Returns(), Channels(sink.channel("alpha")), channels=("alpha",)
        ) as runtime:
            report = runtime.dispatch(stuck())
        assert report.skipped is not None
        assert report.skipped.startswith("pipeline failed")
        assert secret.reveal() not in report.skipped
        assert sink.sent == []

    def test_a_raising_clock_is_reported_not_raised(self) -> None:
        """A clock that fails while filling ``occurred_at`` is a reported failure."""

        class BrokenClock(ManualClock):
            def now(self) -> datetime:
                raise OSError("clock unavailable")

        clock = BrokenClock()
        with make_runtime(clock=clock, channels=("log",)) as runtime:
            report = runtime.dispatch(stuck())
        assert report.skipped is not None
        assert "clock unavailable" in report.skipped

    @pytest.mark.parametrize("is_test", [False, True])
    def test_async_dispatch_never_raises(self, is_test: bool) -> None:
        """``adispatch`` returns a report too when the pipeline fails."""

        class Returns:
            @chaperone.hookimpl
            def chaperone_alerts(self, event: Event) -> Any:
                return 42

        with make_runtime(Returns(), channels=("log",)) as runtime:
            report = asyncio.run(runtime.adispatch(stuck(), is_test=is_test))
        assert report.skipped is not None
        assert "TypeError" in report.skipped

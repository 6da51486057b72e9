"""The pipeline's part in alert fatigue: the priority hook runs before the filters, digests
skip the filters, and a route's runbook reaches the channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_pipeline import Channels, FixedFilter, Sink, custom_alert

import chaperone
from chaperone import Alert, AlertsGrouped, Destination, Priority, Verdict, VerdictKind
from chaperone.testing import strategies
from helpers.runtime import make_runtime

AT = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)


class PriorityIs:
    """A plugin giving every alert one priority, and recording what the filters saw."""

    def __init__(self, priority: object) -> None:
        self.priority = priority
        self.filtered: list[Alert] = []

    @chaperone.hookimpl
    def chaperone_alert_priority(self, alert: Alert) -> object:
        return self.priority

    @chaperone.hookimpl(trylast=True)
    def chaperone_filter_alert(self, alert: Alert) -> Verdict | None:
        self.filtered.append(alert)
        return None


class TestPriorityHook:
    @given(priority=st.sampled_from(Priority))
    @settings(max_examples=8)
    def test_filters_channels_and_report_see_the_priority(self, priority: Priority) -> None:
        """The priority a plugin gives is on the alert the filters, channels and report see."""
        sink = Sink()
        plugin = PriorityIs(priority)
        with make_runtime(plugin, Channels(sink.channel("a")), channels=("a",)) as runtime:
            report = runtime.send(custom_alert())
        assert plugin.filtered[0].priority is priority
        assert sink.to("a")[0].priority is priority
        assert report.alert.priority is priority

    def test_none_keeps_the_built_priority(self) -> None:
        """A hook that answers None leaves the alert's own priority."""
        sink = Sink()
        alert = attrs.evolve(custom_alert(), priority=Priority.HIGH)
        with make_runtime(
            PriorityIs(None), Channels(sink.channel("a")), channels=("a",)
        ) as runtime:
            runtime.send(alert)
        assert sink.to("a")[0].priority is Priority.HIGH

    @pytest.mark.parametrize("answer", ["urgent", 3])
    def test_a_bad_answer_keeps_the_priority_and_delivers(self, answer: object) -> None:
        """A hook returning something that is not a priority is logged; the alert goes on."""
        sink = Sink()
        with make_runtime(
            PriorityIs(answer), Channels(sink.channel("a")), channels=("a",)
        ) as runtime:
            report = runtime.send(custom_alert())
        assert report.delivered
        assert sink.to("a")[0].priority is Priority.NORMAL

    def test_a_raising_hook_keeps_the_priority_and_delivers(self) -> None:
        """A priority plugin that raises costs nothing but its own opinion."""

        class Broken:
            @chaperone.hookimpl
            def chaperone_alert_priority(self, alert: Alert) -> Priority:
                raise RuntimeError("plugin bug")

        sink = Sink()
        with make_runtime(Broken(), Channels(sink.channel("a")), channels=("a",)) as runtime:
            assert runtime.send(custom_alert()).delivered


class TestDigestsSkipFilters:
    @given(event=strategies.alerts_grouped_events())
    @settings(max_examples=20, deadline=None)
    def test_a_suppressing_filter_does_not_stop_a_digest(self, event: AlertsGrouped) -> None:
        """Digest alerts are sent even when a filter would suppress everything, and the
        filter is never asked about them.
        """
        sink = Sink()
        suppress_all = FixedFilter(Verdict.suppress("no"))
        with make_runtime(
            suppress_all, Channels(sink.channel("a")), channels=("a",), clock=None
        ) as runtime:
            report = runtime.dispatch(event)
        assert suppress_all.calls == 0
        assert report.alerts
        assert all(item.verdict.kind is VerdictKind.SEND for item in report.alerts)
        assert all(alert.is_digest for alert in sink.to("a"))
        listed = sum(len(alert.fields) for alert in sink.to("a"))
        assert listed == len(event.alerts)

    def test_an_ordinary_alert_is_still_filtered(self) -> None:
        """The same filter suppresses an ordinary alert (the bypass is for digests only)."""
        sink = Sink()
        suppress_all = FixedFilter(Verdict.suppress("no"))
        with make_runtime(suppress_all, Channels(sink.channel("a")), channels=("a",)) as runtime:
            report = runtime.send(custom_alert())
        assert report.verdict.kind is VerdictKind.SUPPRESS
        assert sink.sent == []


class RouteWithRunbook:
    """Routes everything to channel ``a`` with a runbook link."""

    def __init__(self, runbook: str | None) -> None:
        self.runbook = runbook

    @chaperone.hookimpl
    def chaperone_route(self, alert: Alert) -> Sequence[Destination]:
        return [Destination(channel="a", route="r", runbook_url=self.runbook)]


class TestRunbookFromTheRoute:
    def test_route_runbook_fills_a_missing_link(self) -> None:
        """An alert without a runbook gets the route's."""
        sink = Sink()
        with make_runtime(
            RouteWithRunbook("https://docs.example.com/rb"),
            Channels(sink.channel("a")),
            channels=("a",),
        ) as runtime:
            runtime.send(custom_alert())
        assert sink.to("a")[0].runbook_url == "https://docs.example.com/rb"

    def test_the_alerts_own_runbook_wins(self) -> None:
        """A runbook set by the code that raised the alert is kept."""
        sink = Sink()
        alert = attrs.evolve(custom_alert(), runbook_url="https://own.example.com/rb")
        with make_runtime(
            RouteWithRunbook("https://docs.example.com/rb"),
            Channels(sink.channel("a")),
            channels=("a",),
        ) as runtime:
            runtime.send(alert)
        assert sink.to("a")[0].runbook_url == "https://own.example.com/rb"


class TestRoutesAreValidatedAtStartUp:
    def test_unknown_route_channel_is_named_with_the_route(self) -> None:
        """A route naming a channel no plugin provides fails at start-up, naming the route."""
        from chaperone._exceptions import UnknownChannelError
        from chaperone.config import Route

        with pytest.raises(UnknownChannelError) as caught:
            make_runtime(
                channels=("log",),
                routes=(Route(name="oncall", channels=("nosuchchannel",)),),
            )
        [problem] = caught.value.problems
        assert problem.key == "alerting.routes[0].channels"
        assert "nosuchchannel" in problem.message


def test_digest_events_cover_the_window() -> None:
    """An AlertsGrouped event's digest title says how long the group ran."""
    sink = Sink()
    members = [attrs.evolve(custom_alert(key=f"k{number}"), occurred_at=AT) for number in range(3)]
    event = AlertsGrouped(
        group_key="custom|-",
        alerts=members,
        window=timedelta(minutes=10),
        window_started=AT,
        occurred_at=AT + timedelta(minutes=10),
    )
    with make_runtime(Channels(sink.channel("a")), channels=("a",)) as runtime:
        runtime.dispatch(event)
    [digest] = sink.to("a")
    assert digest.title == "3 custom alerts for custom|- in the last 10 minutes"
    assert digest.digest_of == 3


def test_history_keeps_every_entry_of_a_digest_raised_in_one_second() -> None:
    """Twenty alerts of the same second stay twenty entries in the history record (the
    database channel keys fields by name; digest entries are numbered).
    """
    from chaperone.builtin.database_channel import read_history

    members = [custom_alert(key=f"k{number}", occurred_at=AT) for number in range(20)]
    event = AlertsGrouped(
        group_key="custom|-",
        alerts=members,
        window=timedelta(minutes=10),
        window_started=AT,
        occurred_at=AT + timedelta(minutes=10),
    )
    with make_runtime(channels=("database",)) as runtime:
        runtime.dispatch(event)
        [record] = read_history(runtime.store, 10)
    assert len(record["fields"]) == 20
    assert {
        value.split(")", 1)[0].removeprefix("(key ") for value in record["fields"].values()
    } == {f"k{number}" for number in range(20)}

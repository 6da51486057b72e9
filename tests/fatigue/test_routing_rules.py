"""The built-in routes (``[[alerting.routes]]``): first match wins unless it continues,
else the default route; per-route channel settings and runbook links on each destination.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chaperone
from chaperone import (
    Alert,
    Channel,
    ChannelSettings,
    Chaperone,
    Destination,
    JobStuck,
    ManualClock,
    Outcome,
    Priority,
    SendContext,
    Settings,
    Severity,
)
from chaperone._matching import ALERT_FIELDS, parse_match
from chaperone.builtin.routing import RouteStatus, chaperone_route, explain_route
from chaperone.config import PrioritySettings, Route
from helpers.fatigue import runtime_with

AT = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
TYPE_RUNBOOK = "https://docs.example.com/runbooks/job-stuck"
ROUTE_RUNBOOK = "https://docs.example.com/runbooks/critical"


def alert(**changes: Any) -> Alert:
    """A job-stuck alert for App\\Jobs\\ImportFeed, changed by ``changes``."""
    values: dict[str, Any] = {
        "type": "job_stuck",
        "key": "sup-1",
        "headline": "Job Stuck",
        "title": "Job Stuck: App\\Jobs\\ImportFeed",
        "summary": "Stuck.",
        "occurred_at": AT,
        "job_class": "App\\Jobs\\ImportFeed",
    }
    values.update(changes)
    return Alert(**values)


def route(name: str, match: Mapping[str, Any] | None = None, **changes: Any) -> Route:
    """A route named ``name`` matching ``match`` (everything when None)."""
    changes.setdefault("channels", ("a",))
    return Route(name=name, match=parse_match(match or {}), **changes)


def routed(alert: Alert, settings: Settings) -> list[tuple[str, str]]:
    """(channel, route) of each destination."""
    return [(d.channel, d.route) for d in explain_route(alert, settings).destinations]


# -------------------------------------------------------------------------------------
# A brute-force reference
# -------------------------------------------------------------------------------------


def field_of(alert: Alert, name: str) -> str | None:
    """The alert's value for a match field: an attribute's text, else a label."""
    if name in ALERT_FIELDS:
        value = getattr(alert, name)
        return None if value is None else str(value)
    return alert.labels.get(name)


def reference_destinations(alert: Alert, settings: Settings) -> list[Destination]:
    """Collect the routes that apply (the matching ones up to the first that does not
    continue), then their channels in order, dropping repeats of a channel with the same
    settings; the default channels when no route applies.
    """
    applying = []
    for candidate in settings.routes:
        fields_ok = [
            field_of(alert, name) is not None
            and any(fnmatch.fnmatchcase(str(field_of(alert, name)), glob) for glob in globs)
            for name, globs in candidate.match.patterns
        ]
        if all(fields_ok):
            applying.append(candidate)
            if not candidate.continue_matching:
                break
    runbook = settings.runbooks.get(alert.type)
    if applying:
        everything = [
            Destination(
                channel=channel,
                route=r.name,
                settings=dict(r.channel_settings.get(channel, {})),
                runbook_url=r.runbook_url or runbook,
            )
            for r in applying
            for channel in r.channels
        ]
    else:
        everything = [Destination(channel=c, runbook_url=runbook) for c in settings.channels]
    kept: list[Destination] = []
    for destination in everything:
        if not any(
            (k.channel, dict(k.settings)) == (destination.channel, dict(destination.settings))
            for k in kept
        ):
            kept.append(destination)
    return kept


# Small vocabularies, so that drawn routes match drawn alerts often.
CHANNELS = ("a", "b", "c")
GLOBS: Mapping[str, Sequence[str]] = {
    "type": ("job_stuck", "job_*", "circuit_breaker", "*"),
    "job_class": ("App\\Jobs\\Pay*", "*Order*", "App\\Jobs\\*", "*"),
    "service": ("payment-*", "mail", "*"),
    "severity": ("critical", "error", "warning", "*"),
    "priority": ("critical", "high", "low", "*"),
    "team": ("payments", "ops", "*"),
    "key": ("sup-*", "sup-1", "k"),
}
matchers = st.dictionaries(
    st.sampled_from(sorted(GLOBS)),
    st.sampled_from(sorted(GLOBS)).flatmap(
        lambda name: st.lists(st.sampled_from(GLOBS[name]), min_size=1, max_size=2)
    ),
    max_size=3,
)
channel_settings = st.dictionaries(
    st.sampled_from(CHANNELS),
    st.dictionaries(st.sampled_from(("url", "to")), st.sampled_from(("x", "y")), max_size=1),
    max_size=2,
)
routes = st.builds(
    lambda index, match, channels, overrides, runbook, keep_going: Route(
        name=f"route-{index}",
        match=parse_match(match),
        channels=tuple(channels),
        channel_settings={k: v for k, v in overrides.items() if k in channels},
        runbook_url=runbook,
        continue_matching=keep_going,
    ),
    st.integers(0, 10_000),
    matchers,
    st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True),
    channel_settings,
    st.none() | st.just(ROUTE_RUNBOOK),
    st.booleans(),
)
route_lists = st.lists(routes, max_size=6).map(
    lambda items: tuple(attrs.evolve(r, name=f"r{index}") for index, r in enumerate(items))
)
all_settings = st.builds(
    lambda routes_, default, runbooks: Settings(
        routes=routes_, channels=tuple(default), runbooks=runbooks
    ),
    route_lists,
    st.lists(st.sampled_from(CHANNELS), max_size=3, unique=True),
    st.sampled_from(({}, {"job_stuck": TYPE_RUNBOOK})),
)
alerts = st.builds(
    alert,
    type=st.sampled_from(("job_stuck", "job_timeout", "circuit_breaker")),
    key=st.sampled_from(("sup-1", "sup-2", "k")),
    job_class=st.none()
    | st.sampled_from(("App\\Jobs\\PaymentSync", "App\\Jobs\\ShipOrder", "Other")),
    service=st.none() | st.sampled_from(("payment-gateway", "mail")),
    severity=st.sampled_from(Severity),
    priority=st.sampled_from(Priority),
    labels=st.dictionaries(st.just("team"), st.sampled_from(("payments", "ops")), max_size=1),
)


class TestAgainstReference:
    """Routing is deterministic, and equals the brute-force reference."""

    @given(alert=alerts, settings=all_settings)
    @settings(max_examples=250)
    def test_destinations_equal_the_reference(self, alert: Alert, settings: Settings) -> None:
        """For random routes and alerts the destinations are the reference's, in order."""
        assert list(explain_route(alert, settings).destinations) == reference_destinations(
            alert, settings
        )

    @given(alert=alerts, settings=all_settings)
    @settings(max_examples=50)
    def test_deterministic(self, alert: Alert, settings: Settings) -> None:
        """The same alert and settings always give the same decision, and the hook
        returns the decision's destinations.
        """
        first = explain_route(alert, settings)
        assert explain_route(alert, settings) == first
        assert explain_route(attrs.evolve(alert), attrs.evolve(settings)) == first

    @given(alert=alerts, settings=all_settings)
    @settings(max_examples=120)
    def test_first_match_wins(self, alert: Alert, settings: Settings) -> None:
        """Without continue, only the first matching route's channels are used; every
        later route is reported as not considered.
        """
        stopping = [attrs.evolve(r, continue_matching=False) for r in settings.routes]
        settings = attrs.evolve(settings, routes=tuple(stopping))
        decision = explain_route(alert, settings)
        matching = [r for r in stopping if r.match.matches(alert)]
        if not matching:
            assert decision.default_route
            assert {d.route for d in decision.destinations} <= {"default"}
            return
        first = matching[0]
        assert [c.route.name for c in decision.matched] == [first.name]
        assert [d.channel for d in decision.destinations] == list(first.channels)
        assert {d.route for d in decision.destinations} == {first.name}
        after = stopping[stopping.index(first) + 1 :]
        assert [c.route for c in decision.not_considered] == after
        assert not decision.default_route

    @given(alert=alerts, settings=all_settings)
    @settings(max_examples=100)
    def test_every_route_is_accounted_for(self, alert: Alert, settings: Settings) -> None:
        """Each route appears once, in order: matched, not matched, or not considered;
        the matched ones really match and the not matched ones really do not.
        """
        decision = explain_route(alert, settings)
        assert [c.route for c in decision.checks] == list(settings.routes)
        for check in decision.checks:
            if check.status is RouteStatus.MATCHED:
                assert check.route.match.matches(alert)
            elif check.status is RouteStatus.NOT_MATCHED:
                assert not check.route.match.matches(alert)
            assert check.why


class TestContinue:
    """A route that says continue lets the later routes add their channels."""

    def test_continue_adds_later_matches(self) -> None:
        """audit (continue) then critical: both routes' channels, audit's first."""
        settings = Settings(
            routes=(
                route("audit", channels=("database",), continue_matching=True),
                route("critical", {"priority": "high"}, channels=("pagerduty", "slack")),
                route("rest", channels=("mail",)),
            )
        )
        decision = explain_route(alert(priority="high"), settings)
        assert [(d.channel, d.route) for d in decision.destinations] == [
            ("database", "audit"),
            ("pagerduty", "critical"),
            ("slack", "critical"),
        ]
        assert [c.status for c in decision.checks] == [
            RouteStatus.MATCHED,
            RouteStatus.MATCHED,
            RouteStatus.NOT_CONSIDERED,
        ]
        assert decision.checks[2].why == ("route 'critical' matched first and does not continue",)

    def test_continue_skips_routes_that_do_not_match(self) -> None:
        """After a continuing route, a non-matching route is passed over, not a stop."""
        settings = Settings(
            routes=(
                route("audit", channels=("database",), continue_matching=True),
                route("critical", {"priority": "critical"}, channels=("pagerduty",)),
                route("rest", channels=("mail",)),
            )
        )
        assert routed(alert(), settings) == [("database", "audit"), ("mail", "rest")]

    def test_only_continuing_routes_do_not_fall_back_to_default(self) -> None:
        """A matched continuing route counts as a match: the default route is not added."""
        settings = Settings(
            channels=("log",), routes=(route("audit", channels=("a",), continue_matching=True),)
        )
        decision = explain_route(alert(), settings)
        assert routed(alert(), settings) == [("a", "audit")]
        assert not decision.default_route

    def test_same_channel_and_settings_is_sent_once(self) -> None:
        """Two continued routes naming slack with the same settings: one destination,
        for the first route.
        """
        hook = {"webhook_url": "https://hooks.slack.com/services/T0/B0/SAME"}
        settings = Settings(
            routes=(
                route("one", channels=("slack",), channel_settings={"slack": hook},
                      continue_matching=True),
                route("two", channels=("slack", "mail"), channel_settings={"slack": hook}),
            )
        )  # fmt: skip
        assert routed(alert(), settings) == [("slack", "one"), ("mail", "two")]

    def test_same_channel_with_other_settings_is_sent_twice(self) -> None:
        """Two continued routes sending slack to two webhooks: both destinations."""
        settings = Settings(
            routes=(
                route("one", channels=("slack",),
                      channel_settings={"slack": {"webhook_url": "https://a.test/1"}},
                      continue_matching=True),
                route("two", channels=("slack",),
                      channel_settings={"slack": {"webhook_url": "https://a.test/2"}}),
            )
        )  # fmt: skip
        destinations = explain_route(alert(), settings).destinations
        assert [(d.route, d.settings["webhook_url"]) for d in destinations] == [
            ("one", "https://a.test/1"),
            ("two", "https://a.test/2"),
        ]


class TestDefaultRoute:
    """No route matching means CHAPERONE_ALERT_CHANNELS."""

    def test_no_routes(self) -> None:
        """With no routes every alert takes the default channels, route 'default'."""
        decision = explain_route(alert(), Settings(channels=("log", "database")))
        assert routed(alert(), Settings(channels=("log", "database"))) == [
            ("log", "default"),
            ("database", "default"),
        ]
        assert decision.default_route
        assert decision.checks == ()

    def test_no_route_matches(self) -> None:
        """Routes that do not match leave the default route, and say why not."""
        settings = Settings(
            channels=("log",),
            routes=(route("critical", {"priority": ["critical", "high"]}),),
        )
        decision = explain_route(alert(), settings)
        assert routed(alert(), settings) == [("log", "default")]
        [check] = decision.unmatched
        assert check.why == ("priority 'normal' does not match 'critical' or 'high'",)

    def test_a_missing_field_never_matches(self) -> None:
        """A route on job_class does not take a circuit-breaker alert (no job class)."""
        settings = Settings(channels=("log",), routes=(route("jobs", {"job_class": "*"}),))
        assert routed(alert(job_class=None, service="payment-gateway"), settings) == [
            ("log", "default")
        ]

    def test_empty_match_takes_everything(self) -> None:
        """A route with no match table is a catch-all, and says so."""
        settings = Settings(channels=("log",), routes=(route("all", channels=("b",)),))
        decision = explain_route(alert(), settings)
        assert routed(alert(), settings) == [("b", "all")]
        assert decision.matched[0].why == ("no match table: matches every alert",)


class TestMatchFields:
    """Every field a route can match on: type, severity, priority, job class glob,
    service, labels and key.
    """

    @pytest.mark.parametrize(
        ("match", "changes", "expected"),
        [
            ({"type": "job_*"}, {}, True),
            ({"type": "circuit_breaker"}, {}, False),
            ({"severity": ["critical", "error"]}, {}, True),
            ({"severity": "critical"}, {}, False),
            ({"priority": "high"}, {"priority": "high"}, True),
            ({"job_class": "App\\Jobs\\Import*"}, {}, True),
            ({"job_class": "*Payment*"}, {}, False),
            ({"service": "payment-*"}, {"service": "payment-gateway"}, True),
            ({"service": "payment-*"}, {}, False),
            ({"team": "payments"}, {"labels": {"team": "payments"}}, True),
            ({"team": "payments"}, {"labels": {"team": "ops"}}, False),
            ({"key": "sup-*"}, {}, True),
            ({"type": "job_stuck", "severity": "critical"}, {}, False),
        ],
    )
    def test_field(self, match: dict[str, Any], changes: dict[str, Any], expected: bool) -> None:
        """The route is taken exactly when every field of its match table matches."""
        settings = Settings(channels=("log",), routes=(route("r", match, channels=("x",)),))
        assert routed(alert(**changes), settings) == (
            [("x", "r")] if expected else [("log", "default")]
        )


class TestRunbooks:
    """Each destination carries the route's runbook, else the alert type's."""

    def test_route_runbook(self) -> None:
        """A matched route's runbook_url goes on its destinations."""
        settings = Settings(
            runbooks={"job_stuck": TYPE_RUNBOOK},
            routes=(route("critical", channels=("a", "b"), runbook_url=ROUTE_RUNBOOK),),
        )
        destinations = explain_route(alert(), settings).destinations
        assert [d.runbook_url for d in destinations] == [ROUTE_RUNBOOK, ROUTE_RUNBOOK]

    def test_type_runbook_when_route_has_none(self) -> None:
        """A route with no runbook falls back to the type's from [alerting.runbooks]."""
        settings = Settings(runbooks={"job_stuck": TYPE_RUNBOOK}, routes=(route("r"),))
        assert explain_route(alert(), settings).destinations[0].runbook_url == TYPE_RUNBOOK

    def test_default_route_has_the_type_runbook(self) -> None:
        """The default route's destinations carry the type's runbook."""
        settings = Settings(channels=("log", "database"), runbooks={"job_stuck": TYPE_RUNBOOK})
        destinations = explain_route(alert(), settings).destinations
        assert [d.runbook_url for d in destinations] == [TYPE_RUNBOOK, TYPE_RUNBOOK]

    def test_other_types_get_no_runbook(self) -> None:
        """A type without a runbook entry gets none."""
        settings = Settings(channels=("log",), runbooks={"job_timeout": TYPE_RUNBOOK})
        assert explain_route(alert(), settings).destinations[0].runbook_url is None


# -------------------------------------------------------------------------------------
# End to end through the pipeline
# -------------------------------------------------------------------------------------


class Recorder:
    """A plugin with recording channels: what each was sent, and its settings."""

    def __init__(self, *names: str) -> None:
        self.names = names
        self.sent: list[tuple[str, Alert, str]] = []
        self.built: dict[str, list[Mapping[str, Any]]] = {}

    @chaperone.hookimpl
    def chaperone_register_channels(self, register: Any) -> None:
        for name in self.names:
            register(self._channel(name))

    def _channel(self, channel_name: str) -> type[Channel]:
        recorder = self

        class Recording(Channel):
            name = channel_name

            def __init__(self, label: str) -> None:
                self.label = label

            @classmethod
            def from_settings(cls, settings: ChannelSettings) -> Self:
                recorder.built.setdefault(channel_name, []).append(dict(settings.values))
                return cls(str(settings.get("label", "")))

            async def send(self, alert: Alert, context: SendContext) -> Outcome:
                recorder.sent.append((channel_name, alert, self.label))
                return Outcome.delivered()

        return Recording

    def to(self, name: str) -> list[Alert]:
        """The alerts channel ``name`` received."""
        return [alert for channel, alert, _ in self.sent if channel == name]


def runtime(settings: Settings, *plugins: object) -> Chaperone:
    """A runtime on a memory store with the built-ins and ``plugins``."""
    return runtime_with(attrs.evolve(settings, store_url="memory://"), ManualClock(AT), *plugins)


CRITICAL_CONFIG = Settings(
    channels=("mail", "chat"),
    priority=PrioritySettings(patterns={Priority.HIGH: ("*Payment*", "*Order*")}),
    routes=(
        Route(
            name="critical",
            match=parse_match({"priority": ["critical", "high"]}),
            channels=("pager", "chat"),
            channel_settings={"chat": {"label": "#alerts-critical"}},
            runbook_url=ROUTE_RUNBOOK,
        ),
    ),
    runbooks={"job_stuck": TYPE_RUNBOOK},
)
"""The issue's example, with recording channels: high goes to pager and chat
(``#alerts-critical``), the rest to the default channels mail and chat."""


def stuck(job_class: str, supervision_id: str = "sup-1") -> JobStuck:
    """A stuck job of ``job_class``."""
    return JobStuck(
        supervision_id=supervision_id, job_class=job_class, stuck_duration=timedelta(minutes=5)
    )


class TestEndToEnd:
    """Alerts dispatched through the pipeline reach exactly their route's channels."""

    def test_high_priority_goes_to_the_route_only(self) -> None:
        """A stuck PaymentSync (high) reaches pager and chat with the route's settings
        and runbook, and not mail.
        """
        recorder = Recorder("pager", "chat", "mail")
        with runtime(CRITICAL_CONFIG, recorder) as rt:
            report = rt.dispatch(stuck("App\\Jobs\\PaymentSync"))
        [alert_report] = report.alerts
        assert alert_report.delivered
        assert [(r.destination.channel, r.destination.route) for r in alert_report.deliveries] == [
            ("pager", "critical"),
            ("chat", "critical"),
        ]
        assert sorted((c, label) for c, _, label in recorder.sent) == [
            ("chat", "#alerts-critical"),
            ("pager", ""),
        ]
        for channel, sent, _ in recorder.sent:
            assert sent.priority is Priority.HIGH, channel
            assert sent.runbook_url == ROUTE_RUNBOOK, channel
        assert recorder.to("mail") == []

    def test_normal_priority_takes_the_default_route(self) -> None:
        """A stuck ImportFeed (normal) reaches mail and chat (default settings), with the
        type's runbook.
        """
        recorder = Recorder("pager", "chat", "mail")
        with runtime(CRITICAL_CONFIG, recorder) as rt:
            rt.dispatch(stuck("App\\Jobs\\ImportFeed"))
        assert sorted((c, label) for c, _, label in recorder.sent) == [("chat", ""), ("mail", "")]
        assert {sent.runbook_url for _, sent, _ in recorder.sent} == {TYPE_RUNBOOK}

    def test_alerts_own_runbook_wins(self) -> None:
        """An alert that brings its own runbook keeps it over the route's."""
        recorder = Recorder("pager", "chat", "mail")
        own = "https://wiki.example.com/payment-sync"
        with runtime(CRITICAL_CONFIG, recorder) as rt:
            rt.send(alert(job_class="App\\Jobs\\PaymentSync", runbook_url=own))
        assert [sent.runbook_url for _, sent, _ in recorder.sent] == [own, own]

    def test_route_channels_are_validated_with_route_settings(self) -> None:
        """At start-up the chat channel is built twice: default settings and the route's."""
        recorder = Recorder("pager", "chat", "mail")
        with runtime(CRITICAL_CONFIG, recorder):
            pass
        assert {"label": "#alerts-critical"} in recorder.built["chat"]
        assert {} in recorder.built["chat"]

    def test_a_route_plugin_answers_before_the_built_in(self) -> None:
        """A plugin's chaperone_route decides over the routes in config."""

        class EverythingToMail:
            @chaperone.hookimpl
            def chaperone_route(self, alert: Alert) -> list[Destination]:
                return [Destination(channel="mail", route="plugin")]

        recorder = Recorder("pager", "chat", "mail")
        with runtime(CRITICAL_CONFIG, recorder, EverythingToMail()) as rt:
            rt.dispatch(stuck("App\\Jobs\\PaymentSync"))
        assert [channel for channel, _, _ in recorder.sent] == ["mail"]

    def test_hook_returns_the_explained_destinations(self) -> None:
        """The built-in hook returns exactly what explain_route decides."""
        recorder = Recorder("pager", "chat", "mail")
        high = alert(priority="high")
        with runtime(CRITICAL_CONFIG, recorder) as rt:
            assert list(chaperone_route(alert=high, runtime=rt.runtime)) == list(
                explain_route(high, CRITICAL_CONFIG).destinations
            )

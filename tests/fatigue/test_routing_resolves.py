"""A resolution goes where its alert went: the routes a firing alert took are kept in the
store, and its resolve takes them, whatever its own fields (severity info) would match."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chaperone
from chaperone import (
    Alert,
    AlertStatus,
    Channel,
    ChannelSettings,
    Chaperone,
    JobRecovered,
    JobStuck,
    ManualClock,
    Outcome,
    SendContext,
    Severity,
)
from chaperone._matching import parse_match
from chaperone.builtin.routing import INCIDENT_MEMORY
from chaperone.config import Route
from chaperone.store import MemoryStore, open_store
from helpers.runtime import make_runtime

CHANNELS = ("pager", "chat", "sink")
AT = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


class Recorder:
    """Registers one recording channel per name of :data:`CHANNELS`."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Alert]] = []

    @chaperone.hookimpl
    def chaperone_register_channels(self, register: Any) -> None:
        recorder = self
        for name in CHANNELS:

            class Recording(Channel):
                channel_name = name

                @classmethod
                def from_settings(cls, settings: ChannelSettings) -> Self:
                    return cls()

                async def send(self, alert: Alert, context: SendContext) -> Outcome:
                    recorder.sent.append((self.channel_name, alert))
                    return Outcome.delivered()

            Recording.name = name
            register(Recording)

    def channels(self, status: AlertStatus) -> set[str]:
        """The channels that got an alert of ``status``."""
        return {channel for channel, alert in self.sent if alert.status is status}


def page_route(**changes: Any) -> Route:
    """A route paging on critical and error alerts, as the docs suggest."""
    values: dict[str, Any] = {
        "name": "page",
        "match": parse_match({"severity": ["critical", "error"]}),
        "channels": ("pager",),
    }
    values.update(changes)
    return Route(**values)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(AT)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def runtime(recorder: Recorder, clock: ManualClock) -> Iterator[Chaperone]:
    with make_runtime(
        ("recorder", recorder),
        store=MemoryStore(clock),
        clock=clock,
        channels=("sink",),
        routes=(page_route(),),
    ) as runtime:
        yield runtime


def stuck() -> JobStuck:
    return JobStuck(
        supervision_id="sup-1",
        job_class="App\\Jobs\\PaymentSync",
        stuck_duration=timedelta(minutes=30),
    )


def recovered() -> JobRecovered:
    return JobRecovered(supervision_id="sup-1", job_class="App\\Jobs\\PaymentSync")


class TestResolveFollowsItsAlert:
    def test_resolve_goes_where_the_page_went(self, runtime: Chaperone, recorder: Recorder) -> None:
        """A stuck job paged through a severity route; its recovery (severity info, which
        that route doesn't match) closes the incident on the same channel, not elsewhere."""
        runtime.dispatch(stuck())
        runtime.dispatch(recovered())
        assert recorder.channels(AlertStatus.FIRING) == {"pager"}
        assert recorder.channels(AlertStatus.RESOLVED) == {"pager"}

    def test_resolve_of_an_unknown_incident_is_routed_by_its_own_fields(
        self, runtime: Chaperone, recorder: Recorder
    ) -> None:
        """A recovery whose alert was never routed here goes where its own fields say."""
        runtime.dispatch(recovered())
        assert recorder.channels(AlertStatus.RESOLVED) == {"sink"}

    def test_the_memory_ends_with_the_incident(
        self, runtime: Chaperone, recorder: Recorder
    ) -> None:
        """Once resolved, the incident's routes are forgotten: a second resolve is routed
        by its own fields."""
        runtime.dispatch(stuck())
        runtime.dispatch(recovered())
        recorder.sent.clear()
        runtime.dispatch(recovered())
        assert recorder.channels(AlertStatus.RESOLVED) == {"sink"}

    def test_the_memory_expires(
        self, runtime: Chaperone, recorder: Recorder, clock: ManualClock
    ) -> None:
        """An incident resolved after the routes' memory ran out is routed by its own
        fields."""
        runtime.dispatch(stuck())
        clock.advance(INCIDENT_MEMORY + timedelta(seconds=1))
        runtime.dispatch(recovered())
        assert recorder.channels(AlertStatus.RESOLVED) == {"sink"}

    def test_nothing_is_kept_without_routes(self, recorder: Recorder, clock: ManualClock) -> None:
        """With only the default route, routing writes nothing: the resolve goes to the
        same channels anyway."""
        store = MemoryStore(clock)
        with make_runtime(
            ("recorder", recorder), store=store, clock=clock, channels=("sink",), routes=()
        ) as runtime:
            runtime.dispatch(stuck())
            assert store.keys("routed:") == []
            runtime.dispatch(recovered())
        assert recorder.channels(AlertStatus.RESOLVED) == {"sink"}

    def test_a_route_gone_from_the_config(
        self, recorder: Recorder, clock: ManualClock, tmp_path: Path
    ) -> None:
        """When the route the alert took was removed before the resolve, the resolve is
        routed by its own fields rather than lost."""
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
        with make_runtime(
            ("recorder", recorder),
            store=open_store(url, clock),
            clock=clock,
            channels=("sink",),
            routes=(page_route(),),
        ) as before:
            before.dispatch(stuck())
        with make_runtime(
            ("recorder", recorder),
            store=open_store(url, clock),
            clock=clock,
            channels=("sink",),
            routes=(),
        ) as after:
            after.dispatch(recovered())
        assert recorder.channels(AlertStatus.RESOLVED) == {"sink"}

    def test_across_processes_on_one_sqlite_file(
        self, recorder: Recorder, clock: ManualClock, tmp_path: Path
    ) -> None:
        """The page raised by one runtime is resolved through the same route by another
        runtime on the same SQLite store."""
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
        with make_runtime(
            ("recorder", recorder),
            store=open_store(url, clock),
            clock=clock,
            channels=("sink",),
            routes=(page_route(),),
        ) as first:
            first.dispatch(stuck())
        with make_runtime(
            ("recorder", recorder),
            store=open_store(url, clock),
            clock=clock,
            channels=("sink",),
            routes=(page_route(),),
        ) as second:
            second.dispatch(recovered())
        assert recorder.channels(AlertStatus.FIRING) == {"pager"}
        assert recorder.channels(AlertStatus.RESOLVED) == {"pager"}


severities = st.sampled_from(list(Severity))
routes = st.lists(
    st.tuples(
        st.sets(st.sampled_from(list(Severity)), min_size=1),
        st.sets(st.sampled_from(CHANNELS), min_size=1),
        st.booleans(),
    ),
    max_size=4,
)


class TestProperty:
    @settings(max_examples=60, deadline=None)
    @given(severity=severities, table=routes)
    def test_resolve_reaches_exactly_the_channels_of_its_alert(
        self, severity: Severity, table: list[tuple[set[Severity], set[str], bool]]
    ) -> None:
        """For any routes by severity, with or without continue, a resolve reaches exactly
        the channels its firing alert reached."""
        clock = ManualClock(AT)
        recorder = Recorder()
        configured = tuple(
            Route(
                name=f"r{index}",
                match=parse_match({"severity": sorted(level.value for level in levels)}),
                channels=tuple(sorted(channels)),
                continue_matching=keep_going,
            )
            for index, (levels, channels, keep_going) in enumerate(table)
        )
        with make_runtime(
            ("recorder", recorder),
            store=MemoryStore(clock),
            clock=clock,
            channels=("sink",),
            routes=configured,
        ) as runtime:
            firing = Alert(
                type="custom",
                key="k-1",
                headline="Custom",
                title="Custom: something",
                summary="Something broke.",
                occurred_at=AT,
                severity=severity,
            )
            runtime.send(firing)
            clock.advance(60)
            runtime.send(
                Alert(
                    type="custom",
                    key="k-1",
                    headline="Custom",
                    title="Custom: fixed",
                    summary="Fixed.",
                    occurred_at=clock.now(),
                    severity=Severity.INFO,
                    status=AlertStatus.RESOLVED,
                )
            )
        assert recorder.channels(AlertStatus.RESOLVED) == recorder.channels(AlertStatus.FIRING)

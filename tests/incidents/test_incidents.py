"""Open incidents and acknowledgements (issue 15, item 3): every firing alert opens or
counts in its incident before any filter, a resolution closes it; an acknowledgement
stops the repeats (escalating and fixed-window), is recorded in the history, is passed
on only to the destinations that carried the incident and take it, and happens once
whoever else acknowledges at the same moment; an undo resumes the escalation where it
was; silence opens a window for exactly that incident.

Runs on a SQLite file and on Redis (the ``store`` fixture); time moves only through a
ManualClock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Self

import attrs
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
    ManualClock,
    Outcome,
    Priority,
    SendContext,
    Settings,
    VerdictKind,
)
from chaperone._verdicts import Destination
from chaperone.builtin.database_channel import read_history
from chaperone.config import EscalationSettings, GroupingSettings, RateLimitSettings
from chaperone.incidents import (
    UnknownIncidentError,
    acknowledge,
    acknowledge_incident,
    escape_glob,
    find_incident,
    open_incidents,
    silence,
    unacknowledge,
    unacknowledge_incident,
)
from chaperone.incidents._records import destination_name
from chaperone.store import MemoryStore, Store
from helpers.fatigue import SEED_DELAYS, RecordingChannel, runtime_with, trouble

KEYS = ("a", "a|0", "a%7C0", "a:b")
"""Keys whose store prefixes would collide if they were not quoted."""


class AckRecorder:
    """A plugin registering the channel ``pager``, which takes acknowledgements and their
    undoing, and keeps every alert it is sent.
    """

    def __init__(self) -> None:
        self.sent: list[Alert] = []
        self._lock = threading.Lock()
        recorder = self

        class Pager(Channel):
            name = "pager"
            accepts_acknowledgements = True
            accepts_unacknowledgements = True

            @classmethod
            def from_settings(cls, settings: ChannelSettings) -> Self:
                return cls()

            async def send(self, alert: Alert, context: SendContext) -> Outcome:
                with recorder._lock:
                    recorder.sent.append(alert)
                return Outcome.delivered("paged")

        self.channel_class: type[Channel] = Pager

    @chaperone.hookimpl
    def chaperone_register_channels(self, register: Callable[[type[Channel]], None]) -> None:
        register(self.channel_class)

    def statuses(self) -> list[AlertStatus]:
        """The status of each alert sent, in order."""
        return [alert.status for alert in self.sent]


def facade(
    store: Store,
    clock: ManualClock,
    pager: AckRecorder,
    chat: RecordingChannel,
    **overrides: Any,
) -> Chaperone:
    """A runtime sending to ``pager`` (takes acknowledgements) and ``chat`` (does not),
    with the history kept, grouping off.
    """
    overrides.setdefault("grouping", GroupingSettings(enabled=False))
    return runtime_with(
        Settings(channels=("pager", chat.name, "database"), **overrides),
        clock,
        pager,
        chat,
        store=store,
    )


@pytest.fixture
def pager() -> AckRecorder:
    """The channel that takes acknowledgements."""
    return AckRecorder()


@pytest.fixture
def chat() -> RecordingChannel:
    """The channel that does not."""
    return RecordingChannel("chat")


@pytest.fixture
def runtime(
    store: Store, clock: ManualClock, pager: AckRecorder, chat: RecordingChannel
) -> Iterator[Chaperone]:
    """A runtime whose job_stuck alerts escalate by the seed's delays."""
    with facade(
        store,
        clock,
        pager,
        chat,
        escalation=EscalationSettings(per_type={"job_stuck": SEED_DELAYS}),
    ) as built:
        yield built


def send(runtime: Chaperone, clock: ManualClock, key: str = "job-1", **kwargs: Any) -> VerdictKind:
    """Raise the firing job_stuck alert of ``key`` now; its verdict."""
    return runtime.send(trouble("job_stuck", key, clock.now(), **kwargs)).verdict.kind


class TestOpenIncidents:
    def test_a_firing_alert_opens_an_incident(self, runtime: Chaperone, clock: ManualClock) -> None:
        """The incident has the alert's texts, one alert, opened and last seen now, and
        the destinations that carried it.
        """
        opened = clock.now()
        alert = Alert(
            type="job_stuck",
            key="sid-1",
            headline="Job Stuck",
            title="Job Stuck: Import",
            summary="It stopped.",
            occurred_at=opened,
            fields=(("Job Class", "Import"),),
            supervision_id="sid-1",
            priority=Priority.HIGH,
        )
        runtime.send(alert)
        (incident,) = open_incidents(runtime.store)
        assert (incident.type, incident.key, incident.title) == ("job_stuck", "sid-1", alert.title)
        assert (incident.summary, incident.severity, incident.priority) == (
            "It stopped.",
            "error",
            "high",
        )
        assert (incident.opened_at, incident.last_alert_at, incident.alerts) == (opened, opened, 1)
        assert incident.supervision_id == "sid-1"
        assert incident.fields == {"Job Class": "Import"}
        assert incident.state == "firing"
        assert incident.delivered_to == ("chat", "database", "pager")

    def test_repeats_are_counted_even_when_suppressed(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """Three alerts a minute apart: one sent, two held back by escalation, all three
        counted; the opening stays, the last alert moves.
        """
        opened = clock.now()
        verdicts = []
        for _ in range(3):
            verdicts.append(send(runtime, clock))
            clock.advance(timedelta(minutes=1))
        assert verdicts == [VerdictKind.SEND, VerdictKind.SUPPRESS, VerdictKind.SUPPRESS]
        incident = find_incident(runtime.store, "job_stuck", "job-1")
        assert incident is not None
        assert incident.alerts == 3
        assert incident.opened_at == opened
        assert incident.last_alert_at == opened + timedelta(minutes=2)

    def test_a_repeat_that_says_nothing_new_is_written_once_a_minute(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """Repeats seconds apart are all counted; the last alert's time moves only once a
        minute has passed since it was written, and at once for a repeat whose text
        changed.
        """
        opened = clock.now()
        for _ in range(5):
            send(runtime, clock)
            clock.advance(timedelta(seconds=10))
        incident = find_incident(runtime.store, "job_stuck", "job-1")
        assert incident is not None
        assert (incident.alerts, incident.last_alert_at) == (5, opened)
        clock.advance(timedelta(seconds=20))  # a minute after the written one
        send(runtime, clock)
        incident = find_incident(runtime.store, "job_stuck", "job-1")
        assert incident is not None
        assert (incident.alerts, incident.last_alert_at) == (6, clock.now())
        clock.advance(timedelta(seconds=5))
        changed = attrs.evolve(trouble("job_stuck", "job-1", clock.now()), title="Worse: job-1")
        runtime.send(changed)
        incident = find_incident(runtime.store, "job_stuck", "job-1")
        assert incident is not None
        assert (incident.title, incident.last_alert_at) == ("Worse: job-1", clock.now())

    def test_a_resolution_closes_it(self, runtime: Chaperone, clock: ManualClock) -> None:
        """The resolved alert deletes the incident; the other one stays."""
        send(runtime, clock, "job-1")
        send(runtime, clock, "job-2")
        runtime.send(trouble("job_stuck", "job-1", clock.now(), resolved=True))
        assert [incident.key for incident in open_incidents(runtime.store)] == ["job-2"]
        assert find_incident(runtime.store, "job_stuck", "job-1") is None

    def test_test_alerts_open_nothing(self, runtime: Chaperone, clock: ManualClock) -> None:
        """``chaperone test-alerts`` does not fill the list."""
        runtime.send(trouble("job_stuck", "job-1", clock.now()), is_test=True)
        assert open_incidents(runtime.store) == []

    def test_newest_first_and_keys_kept_apart(self, runtime: Chaperone, clock: ManualClock) -> None:
        """Keys whose quoted forms would collide are distinct incidents, listed newest first."""
        for key in KEYS:
            send(runtime, clock, key)
            clock.advance(timedelta(seconds=1))
        assert [incident.key for incident in open_incidents(runtime.store)] == list(reversed(KEYS))
        runtime.send(trouble("job_stuck", "a", clock.now(), resolved=True))
        assert sorted(incident.key for incident in open_incidents(runtime.store)) == sorted(
            KEYS[1:]
        )

    def test_a_named_route_is_named(self) -> None:
        """A destination of the default route is its channel; of a named one, channel@route."""
        assert destination_name(Destination(channel="pagerduty")) == "pagerduty"
        assert (
            destination_name(Destination(channel="pagerduty", route="payments"))
            == "pagerduty@payments"
        )


class TestAcknowledge:
    def test_the_escalation_repeats_stop(
        self, runtime: Chaperone, clock: ManualClock, pager: AckRecorder
    ) -> None:
        """After the first alert is acknowledged, two hours of alerts every minute send
        nothing more (the seed's schedule would have sent five), each suppressed with who
        acknowledged and when.
        """
        assert send(runtime, clock) is VerdictKind.SEND
        clock.advance(timedelta(minutes=1))
        acked_at = clock.now()
        incident = acknowledge(runtime, "job_stuck", "job-1", by="alice", note="on it")
        assert (incident.state, incident.acknowledged_by, incident.acknowledged_at) == (
            "acknowledged",
            "alice",
            acked_at,
        )
        reasons = []
        for _ in range(120):
            clock.advance(timedelta(minutes=1))
            report = runtime.send(trouble("job_stuck", "job-1", clock.now()))
            assert report.verdict.kind is VerdictKind.SUPPRESS
            reasons.append(report.verdict.reason)
        assert set(reasons) == {"acknowledged by alice at 2024-01-15 10:01:00 UTC"}
        assert pager.statuses() == [AlertStatus.FIRING, AlertStatus.ACKNOWLEDGED]

    def test_fixed_window_and_critical_repeats_stop_too(
        self, store: Store, clock: ManualClock, pager: AckRecorder, chat: RecordingChannel
    ) -> None:
        """A type on the fixed rate-limit window, and a critical alert, are held back too."""
        with facade(
            store, clock, pager, chat, rate_limit=RateLimitSettings(default=timedelta(minutes=5))
        ) as runtime:
            assert send(runtime, clock) is VerdictKind.SEND
            acknowledge(runtime, "job_stuck", "job-1", by="bob")
            clock.advance(timedelta(minutes=10))
            assert send(runtime, clock) is VerdictKind.SUPPRESS
            assert send(runtime, clock, priority=Priority.CRITICAL) is VerdictKind.SUPPRESS
        assert chat.individual == ["job-1"]

    def test_an_undo_resumes_the_escalation_where_it_was(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """Acknowledged after the first alert, undone ten minutes later: the next alert
        goes out (5 minutes have passed since the last delivery), the one after waits the
        next step, 15 minutes: the suppressed alerts used up no step.
        """
        sent_at: list[int] = []
        for minute in range(40):
            if minute == 1:
                acknowledge(runtime, "job_stuck", "job-1", by="alice")
            if minute == 10:
                unacknowledge(runtime, "job_stuck", "job-1", by="alice")
            if send(runtime, clock) is VerdictKind.SEND:
                sent_at.append(minute)
            clock.advance(timedelta(minutes=1))
        assert sent_at == [0, 10, 25]

    def test_the_resolution_goes_out_and_clears_it(
        self, runtime: Chaperone, clock: ManualClock, chat: RecordingChannel
    ) -> None:
        """The resolution of an acknowledged incident is sent; the next firing alert opens
        a new, unacknowledged incident and is sent.
        """
        send(runtime, clock)
        acknowledge(runtime, "job_stuck", "job-1", by="alice")
        clock.advance(timedelta(minutes=1))
        resolved = runtime.send(trouble("job_stuck", "job-1", clock.now(), resolved=True))
        assert resolved.verdict.kind is VerdictKind.SEND
        assert find_incident(runtime.store, "job_stuck", "job-1") is None
        clock.advance(timedelta(minutes=1))
        assert send(runtime, clock) is VerdictKind.SEND
        incident = find_incident(runtime.store, "job_stuck", "job-1")
        assert incident is not None
        assert incident.state == "firing"
        assert [alert.status for alert in chat.sent] == [
            AlertStatus.FIRING,
            AlertStatus.RESOLVED,
            AlertStatus.FIRING,
        ]

    def test_passed_on_only_where_it_went_and_is_taken(
        self, runtime: Chaperone, clock: ManualClock, pager: AckRecorder, chat: RecordingChannel
    ) -> None:
        """The acknowledgement reaches ``pager``, which carried the incident and takes it,
        not ``chat``; the undo likewise; an incident ``pager`` never carried is not passed on.
        """
        send(runtime, clock)
        result = acknowledge_incident(runtime, "job_stuck", "job-1", by="alice", note="on it")
        assert [item.destination.channel for item in result.deliveries] == ["pager"]
        assert all(item.ok for item in result.deliveries)
        ack = pager.sent[-1]
        assert (ack.status, ack.type, ack.key) == (AlertStatus.ACKNOWLEDGED, "job_stuck", "job-1")
        assert ("Acknowledged by", "alice") in ack.fields
        assert ("Note", "on it") in ack.fields
        undo = unacknowledge_incident(runtime, "job_stuck", "job-1", by="carol")
        assert [item.destination.channel for item in undo.deliveries] == ["pager"]
        assert pager.sent[-1].status is AlertStatus.UNACKNOWLEDGED
        assert [alert.status for alert in chat.sent] == [AlertStatus.FIRING]

    def test_recorded_in_the_history(self, runtime: Chaperone, clock: ManualClock) -> None:
        """An acknowledgement and its undo are history records with who, when and the note."""
        send(runtime, clock)
        clock.advance(timedelta(minutes=1))
        acknowledge(runtime, "job_stuck", "job-1", by="alice", note="restarting")
        clock.advance(timedelta(minutes=1))
        unacknowledge(runtime, "job_stuck", "job-1", by="bob")
        records = [
            record
            for record in read_history(runtime.store, 100)
            if record["status"] in {"acknowledged", "unacknowledged"}
        ]
        assert [(r["status"], r["alert_status"], r["by"], r["note"]) for r in records] == [
            ("unacknowledged", "unacknowledged", "bob", ""),
            ("acknowledged", "acknowledged", "alice", "restarting"),
        ]
        assert [datetime.fromisoformat(r["recorded_at"]) for r in records] == [
            clock.now(),
            clock.now() - timedelta(minutes=1),
        ]
        delivered = [
            record["channel"]
            for record in read_history(runtime.store, 100)
            if record["alert_status"] == "acknowledged" and record["status"] == "delivered"
        ]
        assert delivered == ["pager"]

    def test_an_unknown_incident_is_refused(self, runtime: Chaperone, clock: ManualClock) -> None:
        """Acknowledge, undo and silence of an incident that is not open raise, naming it."""
        send(runtime, clock, "job-1")
        for action in (
            lambda: acknowledge(runtime, "job_stuck", "job-2", by="alice"),
            lambda: unacknowledge(runtime, "job_stuck", "job-2", by="alice"),
            lambda: silence(runtime, "job_stuck", "job-2", by="a", duration=timedelta(hours=1)),
            lambda: acknowledge(runtime, "job_timeout", "job-1", by="alice"),
        ):
            with pytest.raises(UnknownIncidentError, match="no open incident job_"):
                action()

    def test_acknowledged_twice_is_one_acknowledgement(
        self, runtime: Chaperone, clock: ManualClock, pager: AckRecorder
    ) -> None:
        """The second acknowledgement changes nothing and says who was first."""
        send(runtime, clock)
        first = acknowledge_incident(runtime, "job_stuck", "job-1", by="alice")
        second = acknowledge_incident(runtime, "job_stuck", "job-1", by="bob")
        assert (first.changed, second.changed) == (True, False)
        assert second.incident.acknowledged_by == "alice"
        assert second.deliveries == ()
        assert pager.statuses().count(AlertStatus.ACKNOWLEDGED) == 1


class TestAcrossFacades:
    def test_two_facades_acknowledging_at_once_make_one(
        self, open_store: Callable[[], Store], clock: ManualClock
    ) -> None:
        """Eight threads, each with its own facade and connection to the one store,
        acknowledge the same incident at once: one changes it, one acknowledgement is
        passed on and recorded.
        """
        pager, chat = AckRecorder(), RecordingChannel("chat")
        runtimes = [facade(open_store(), clock, pager, chat) for _ in range(8)]
        try:
            send(runtimes[0], clock)
            barrier = threading.Barrier(len(runtimes))

            def act(index: int) -> bool:
                barrier.wait()
                return acknowledge_incident(
                    runtimes[index], "job_stuck", "job-1", by=f"person-{index}"
                ).changed

            with ThreadPoolExecutor(len(runtimes)) as pool:
                changed = list(pool.map(act, range(len(runtimes))))
        finally:
            for runtime in runtimes:
                runtime.close()
        store = open_store()
        assert changed.count(True) == 1
        assert pager.statuses().count(AlertStatus.ACKNOWLEDGED) == 1
        history = [r for r in read_history(store, 100) if r["status"] == "acknowledged"]
        assert len(history) == 1
        incident = find_incident(store, "job_stuck", "job-1")
        assert incident is not None
        assert incident.acknowledged_by == f"person-{changed.index(True)}"


class TestSilence:
    def test_a_window_for_exactly_that_incident(
        self, store: Store, clock: ManualClock, pager: AckRecorder, chat: RecordingChannel
    ) -> None:
        """Silencing the incident whose key holds glob characters suppresses it and no
        other incident, not even one whose key the unescaped glob would match.
        """
        with facade(
            store, clock, pager, chat, rate_limit=RateLimitSettings(default=timedelta(0))
        ) as runtime:
            key = "a*[b]?"
            send(runtime, clock, key)
            window = silence(
                runtime, "job_stuck", key, by="alice", duration=timedelta(hours=1), reason="deploy"
            )
            assert window.reason == "silenced by alice: deploy"
            assert window.ends_at == clock.now() + timedelta(hours=1)
            clock.advance(timedelta(minutes=1))
            assert send(runtime, clock, key) is VerdictKind.SUPPRESS
            assert send(runtime, clock, "axxb?") is VerdictKind.SEND
            assert send(runtime, clock, "a*[b]x") is VerdictKind.SEND
            runtime.send(trouble("job_timeout", key, clock.now()))
        assert chat.individual == [key, "axxb?", "a*[b]x", key]


class TestEscapeGlob:
    @given(text=st.text(max_size=30))
    def test_the_escaped_glob_matches_exactly_the_text(self, text: str) -> None:
        """Whatever the text holds, its escaped glob matches it and nothing else drawn."""
        import fnmatch

        pattern = escape_glob(text)
        assert fnmatch.fnmatchcase(text, pattern)
        assert not fnmatch.fnmatchcase(text + "x", pattern)
        if text:
            assert not fnmatch.fnmatchcase(text[:-1], pattern)


class TestFilterModel:
    """The filter against a model: any sequence of firing alerts, resolutions,
    acknowledgements and undos on one incident.
    """

    @settings(max_examples=40)
    @given(
        steps=st.lists(st.sampled_from(["fire", "resolve", "ack", "undo"]), max_size=12),
        critical=st.booleans(),
    )
    def test_acknowledged_alerts_and_only_they_are_suppressed(
        self, steps: list[str], critical: bool
    ) -> None:
        """With no rate limit, a firing alert is suppressed exactly while its incident is
        acknowledged; the incident is open exactly after a firing alert not yet resolved,
        counting the alerts since; an action on a closed incident is refused.
        """
        clock = ManualClock()
        chat = RecordingChannel("chat")
        priority = Priority.CRITICAL if critical else Priority.NORMAL
        with facade(
            MemoryStore(clock),
            clock,
            AckRecorder(),
            chat,
            rate_limit=RateLimitSettings(default=timedelta(0)),
        ) as runtime:
            is_open, acked, count = False, False, 0
            for step in steps:
                clock.advance(timedelta(minutes=1))
                if step == "fire":
                    kind = send(runtime, clock, priority=priority)
                    assert kind is (VerdictKind.SUPPRESS if acked else VerdictKind.SEND)
                    is_open, count = True, count + 1
                elif step == "resolve":
                    runtime.send(trouble("job_stuck", "job-1", clock.now(), resolved=True))
                    is_open, acked, count = False, False, 0
                elif not is_open:
                    with pytest.raises(UnknownIncidentError):
                        (acknowledge if step == "ack" else unacknowledge)(
                            runtime, "job_stuck", "job-1", by="x"
                        )
                else:
                    (acknowledge if step == "ack" else unacknowledge)(
                        runtime, "job_stuck", "job-1", by="x"
                    )
                    acked = step == "ack"
                incident = find_incident(runtime.store, "job_stuck", "job-1")
                assert (incident is not None) == is_open
                if incident is not None:
                    assert incident.alerts == count
                    assert incident.state == ("acknowledged" if acked else "firing")


class RefusingPager(AckRecorder):
    """``pager`` again, refusing acknowledgements for good (firing alerts it takes)."""

    def __init__(self) -> None:
        super().__init__()
        recorder = self

        class Refusing(self.channel_class):  # type: ignore[name-defined,misc]
            async def send(self, alert: Alert, context: SendContext) -> Outcome:
                recorder.sent.append(alert)
                if alert.is_firing:
                    return Outcome.delivered("paged")
                return Outcome.permanent("refused")

        self.channel_class = Refusing


class TestFallback:
    def test_no_acknowledgement_reaches_a_fallback_that_does_not_take_it(
        self, store: Store, clock: ManualClock, chat: RecordingChannel
    ) -> None:
        """``pager`` refuses the acknowledgement for good; its fallback ``chat`` (which
        takes none) is not sent it, and the failure is reported (``chat`` gets only
        Chaperone's own alert of the failing channel).
        """
        pager = RefusingPager()
        with facade(
            store, clock, pager, chat, channel_sections={"pager": {"fallback": "chat"}}
        ) as runtime:
            send(runtime, clock)
            result = acknowledge_incident(runtime, "job_stuck", "job-1", by="alice")
        assert [(item.destination.channel, item.ok) for item in result.deliveries] == [
            ("pager", False)
        ]
        incident_alerts = [alert.status for alert in chat.sent if alert.type == "job_stuck"]
        assert incident_alerts == [AlertStatus.FIRING]
        assert pager.statuses()[:2] == [AlertStatus.FIRING, AlertStatus.ACKNOWLEDGED]

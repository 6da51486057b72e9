"""Chaperone alerts about itself: a failing part raises one ``chaperone_degraded`` alert,
delivered without the store and the filters to every channel but the failing one, and
resolved when the part works again; rate-limited in memory; written to standard error
when no channel confirms it; recorded in the store for health while it lasts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone import Alert, Chaperone, ManualClock, Outcome, SendContext
from chaperone._degraded import REALERT_AFTER, RECORD_REFRESH
from chaperone.metrics._liveness import read_degraded
from chaperone.store import MemoryStore
from helpers.delivery import Channels, outcomes, scripted
from helpers.runtime import GROUPING_OFF, make_runtime

WAIT = 10.0


class Recorder:
    """A channel behaviour that keeps every alert it is sent."""

    def __init__(self, result: Outcome | None = None) -> None:
        self.alerts: list[Alert] = []
        self.result = result or Outcome.delivered("ok")

    async def __call__(self, alert: Alert, context: SendContext) -> Outcome:
        self.alerts.append(alert)
        return self.result

    def seen(self) -> list[tuple[str, str, str]]:
        """(type, key, status) of each alert received."""
        return [(a.type, a.key, a.status.value) for a in self.alerts]


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when told."""
    return ManualClock()


@pytest.fixture
def pager() -> Recorder:
    """What the "pager" channel received."""
    return Recorder()


@pytest.fixture
def chat() -> Recorder:
    """What the "chat" channel received."""
    return Recorder()


@pytest.fixture
def runtime(clock: ManualClock, pager: Recorder, chat: Recorder) -> Iterator[Chaperone]:
    """A runtime sending to "pager" and "chat", on a memory store."""
    with make_runtime(
        Channels(scripted("pager", pager), scripted("chat", chat)),
        clock=clock,
        channels=("pager", "chat"),
        timeout=5.0,
        grouping=GROUPING_OFF,
    ) as made:
        yield made


def settle(runtime: Chaperone) -> None:
    """Wait for the degraded alerts on their way."""
    assert runtime.self_watch.wait(WAIT) == 0


class TestOneAlertPerEpisode:
    """A part failing raises one alert; its recovery resolves it."""

    def test_failing_then_working(self, runtime: Chaperone, pager: Recorder) -> None:
        """Three failures of the store make one firing alert, critical, naming the part
        and the reason; working twice makes one resolved alert."""
        for attempt in range(3):
            runtime.self_watch.failing("store", f"database or disk is full ({attempt})")
        settle(runtime)
        assert pager.seen() == [("chaperone_degraded", "store", "firing")]
        [alert] = pager.alerts
        assert alert.severity.value == "critical"
        assert ("Reason", "database or disk is full (0)") in alert.fields
        assert alert.title == "Chaperone Degraded: store"
        runtime.self_watch.working("store")
        runtime.self_watch.working("store")
        settle(runtime)
        assert pager.seen()[1:] == [("chaperone_degraded", "store", "resolved")]
        assert runtime.self_watch.failing_parts == {}

    def test_parts_are_separate_incidents(self, runtime: Chaperone, pager: Recorder) -> None:
        """Detection and the outbox failing are two alerts, each resolved on its own."""
        runtime.self_watch.failing("detection", "boom")
        runtime.self_watch.failing("outbox", "refused")
        runtime.self_watch.working("detection")
        settle(runtime)
        assert sorted(pager.seen()) == [
            ("chaperone_degraded", "detection", "firing"),
            ("chaperone_degraded", "detection", "resolved"),
            ("chaperone_degraded", "outbox", "firing"),
        ]
        assert runtime.self_watch.failing_parts == {"outbox": "refused"}

    def test_a_failing_channel_is_told_on_the_others(
        self, runtime: Chaperone, pager: Recorder, chat: Recorder
    ) -> None:
        """The alert about channel:chat goes to the pager, not to chat itself."""
        runtime.self_watch.failing("channel:chat", "timed out after 10s")
        settle(runtime)
        assert pager.seen() == [("chaperone_degraded", "channel:chat", "firing")]
        assert chat.seen() == []

    def test_secrets_are_masked_in_the_reason(self, runtime: Chaperone, pager: Recorder) -> None:
        """A webhook URL in an error never reaches the alert."""
        url = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
        runtime.self_watch.failing("channel:slack", f"could not post to {url}")
        settle(runtime)
        [alert] = pager.alerts
        assert url not in json.dumps(alert.to_dict())


class TestThroughTheDelivery:
    """Deliveries that fail for good make their channel a degraded part."""

    def test_a_channel_failing_for_good_raises_and_its_success_resolves(
        self, clock: ManualClock
    ) -> None:
        """A permanent failure of "chat" raises channel:chat on "pager"; chat's next
        confirmed delivery resolves it."""
        pager = Recorder()
        chat, _calls = outcomes(Outcome.permanent("403 forbidden"), Outcome.delivered("ok"))
        with make_runtime(
            Channels(scripted("pager", pager), scripted("chat", chat)),
            clock=clock,
            channels=("pager", "chat"),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:
            alert = _job_alert(clock, "first")
            runtime.send(alert)
            settle(runtime)
            assert ("chaperone_degraded", "channel:chat", "firing") in pager.seen()
            runtime.send(_job_alert(clock, "second"))
            settle(runtime)
            assert pager.seen()[-1] == ("chaperone_degraded", "channel:chat", "resolved")

    def test_the_console_line_appears_when_every_channel_fails(
        self, clock: ManualClock, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """With both channels refusing, the degraded alert is written to stderr."""
        refusing = Recorder(Outcome.permanent("refused"))
        with make_runtime(
            Channels(scripted("pager", refusing), scripted("chat", Recorder(refusing.result))),
            clock=clock,
            channels=("pager", "chat"),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:
            runtime.self_watch.failing("store", "cannot open the SQLite store: not a database")
            settle(runtime)
        err = capfd.readouterr().err
        assert "[FIRING] Chaperone Degraded: store: cannot open the SQLite store" in err


class TestRateLimitedInMemory:
    """A part that flaps is alerted at most once per REALERT_AFTER."""

    def test_a_second_episode_soon_after_is_kept_quiet(
        self, runtime: Chaperone, clock: ManualClock, pager: Recorder
    ) -> None:
        """Fail, work, fail again a minute later: one firing and one resolved alert;
        the second episode (and its end) go unsaid; after REALERT_AFTER it is alerted."""
        watch = runtime.self_watch
        watch.failing("store", "away")
        watch.working("store")
        clock.advance(60)
        watch.failing("store", "away again")
        assert watch.failing_parts == {"store": "away again"}
        watch.working("store")
        clock.advance(REALERT_AFTER)
        watch.failing("store", "away a third time")
        settle(runtime)
        assert pager.seen() == [
            ("chaperone_degraded", "store", "firing"),
            ("chaperone_degraded", "store", "resolved"),
            ("chaperone_degraded", "store", "firing"),
        ]


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["fail", "work", "advance"]),
            st.sampled_from(["store", "detection", "channel:chat"]),
            st.floats(0, 2 * REALERT_AFTER),
        ),
        max_size=40,
    )
)
def test_alerts_alternate_and_are_spaced(steps: list[tuple[str, str, float]]) -> None:
    """For any sequence of failures, recoveries and waits, each part's alerts alternate
    firing / resolved starting with firing, two firings are at least REALERT_AFTER
    apart, and a part failing at the end has its record in the store."""
    clock = ManualClock()
    pager = Recorder()
    store = MemoryStore(clock)
    with make_runtime(
        Channels(scripted("pager", pager)),
        clock=clock,
        store=store,
        channels=("pager",),
        timeout=5.0,
        grouping=GROUPING_OFF,
    ) as runtime:
        fired_at: dict[str, list[float]] = {}
        for action, part, seconds in steps:
            if action == "fail":
                before = len(runtime.self_watch.failing_parts)
                runtime.self_watch.failing(part, "x")
                if len(runtime.self_watch.failing_parts) > before:
                    fired_at.setdefault(part, []).append(clock.timestamp())
            elif action == "work":
                runtime.self_watch.working(part)
            else:  # time passes as the monitor ticks: the records are refreshed
                settle(runtime)  # the alerts went out before (max_total counts from then)
                while seconds > 0:
                    clock.advance(min(seconds, RECORD_REFRESH))
                    seconds -= RECORD_REFRESH
                    runtime.self_watch.refresh()
        settle(runtime)
        failing = set(runtime.self_watch.failing_parts)
        assert {record.part for record in read_degraded(store)} == failing
    by_part: dict[str, list[str]] = {}
    for alert in pager.alerts:
        by_part.setdefault(alert.key, []).append(alert.status.value)
    for part, statuses in by_part.items():
        assert statuses[::2] == ["firing"] * len(statuses[::2]), (part, statuses)
        assert statuses[1::2] == ["resolved"] * len(statuses[1::2]), part
    firings = {part: statuses.count("firing") for part, statuses in by_part.items()}
    for part, times in fired_at.items():
        spaced = [times[0]] if times else []
        for moment in times[1:]:
            if moment - spaced[-1] >= REALERT_AFTER:
                spaced.append(moment)
        assert firings.get(part, 0) == len(spaced), part


class TestAnotherProcessResolves:
    """A part recorded as failing by a process that is gone is resolved by whoever sees
    it work."""

    def test_a_later_process_clears_and_resolves(self, clock: ManualClock) -> None:
        """Process A records channel:chat failing and dies; process B delivers to chat:
        the record goes and B sends the resolve, once however many deliveries follow."""
        store = MemoryStore(clock)
        first_pager, second_pager = Recorder(), Recorder()
        with make_runtime(
            Channels(scripted("pager", first_pager), scripted("chat", Recorder())),
            clock=clock,
            store=store,
            channels=("pager", "chat"),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as first:
            first.self_watch.failing("channel:chat", "503 for an hour")
            settle(first)
            first.store = MemoryStore(clock)  # A is gone: its close must not empty B's store
        assert [r.part for r in read_degraded(store)] == ["channel:chat"]
        with make_runtime(
            Channels(scripted("pager", second_pager), scripted("chat", Recorder())),
            clock=clock,
            store=store,
            channels=("pager", "chat"),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as second:
            for key in ("a", "b", "c"):
                second.send(_job_alert(clock, key))
            settle(second)
            assert read_degraded(store) == []
        resolves = [seen for seen in second_pager.seen() if seen[0] == "chaperone_degraded"]
        assert resolves == [("chaperone_degraded", "channel:chat", "resolved")]


class TestRecords:
    """Health reads the failing parts from the store."""

    def test_a_record_while_failing_refreshed_and_cleared(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """The record appears at the failure, is rewritten by refresh() once
        RECORD_REFRESH has passed, and goes at the recovery."""
        watch = runtime.self_watch
        watch.failing("detection", "boom")
        [record] = read_degraded(runtime.store)
        assert (record.part, record.reason) == ("detection", "boom")
        clock.advance(timedelta(seconds=RECORD_REFRESH))
        watch.refresh()
        assert read_degraded(runtime.store)[0].since == record.since
        watch.working("detection")
        assert read_degraded(runtime.store) == []
        settle(runtime)


def _job_alert(clock: ManualClock, key: str) -> Alert:
    return Alert(
        type="job_stuck",
        key=key,
        headline="Job Stuck",
        title=f"Job Stuck: {key}",
        summary="stuck",
        occurred_at=clock.now(),
    )

r"""Maintenance windows (issue 5, item 1) through the real pipeline: a window suppresses
exactly the alerts it matches while it is on, test alerts included; what it suppressed is
counted, per type too; and when it ends, one summary goes out, however many monitors
share the store.

Time moves only through a ManualClock; windows are opened with the same function
``chaperone maintenance start`` uses.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone import (
    Alert,
    AlertStatus,
    Chaperone,
    ManualClock,
    Monitor,
    Settings,
    VerdictKind,
)
from chaperone._matching import AlertMatcher, parse_match
from chaperone.builtin import maintenance_windows as maintenance_filter
from chaperone.config import RecurringWindow
from chaperone.maintenance import (
    ENDS_INDEX,
    MAX_EXAMPLES,
    RESOLVE_MEMORY,
    UnknownWindowError,
    Window,
    active_windows,
    due_summaries,
    end_windows,
    start_window,
    status,
    suppressed,
)
from chaperone.store import MemoryStore, Store
from helpers.fatigue import RecordingChannel, recording_runtime, sqlite_store

START = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)  # a Monday
JOBS = AlertMatcher((("job_class", ("App\\Jobs\\*",)),))
DAILY = RecurringWindow(
    name="daily",
    weekdays=frozenset(range(7)),
    start=time(10),
    end=time(11),
    timezone=ZoneInfo("UTC"),
)
"""A recurring window every day from 10:00 to 11:00 UTC: on at START."""
_keys = itertools.count()

# -------------------------------------------------------------------------------------
# Helpers
# -------------------------------------------------------------------------------------


class Recorder(RecordingChannel):
    """The channel ``recording``, which keeps every alert it gets."""

    @property
    def summaries(self) -> list[Alert]:
        """The maintenance summaries received."""
        return [alert for alert in self.sent if alert.type == "maintenance"]


def make_alert(
    clock: ManualClock,
    alert_type: str = "job_stuck",
    job_class: str | None = "App\\Jobs\\ImportFeed",
    *,
    service: str | None = None,
    key: str | None = None,
    resolved: bool = False,
) -> Alert:
    """An alert raised now, with a fresh key unless one is given."""
    key = key or f"k{next(_keys)}"
    return Alert(
        type=alert_type,
        key=key,
        headline="Trouble",
        title=f"Trouble {alert_type}: {key}",
        summary="Something went wrong.",
        status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
        job_class=job_class,
        service=service,
        occurred_at=clock.now(),
    )


def field(alert: Alert, name: str) -> str | None:
    """The value of the field ``name`` of ``alert``."""
    return dict(alert.fields).get(name)


def by_type_fields(alert: Alert) -> dict[str, int]:
    """The per-type counts a summary lists."""
    prefix = "Suppressed "
    return {
        name[len(prefix) :]: int(value) for name, value in alert.fields if name.startswith(prefix)
    }


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path) -> Store:
    """A fresh store of each backend (the runtime that takes it closes it)."""
    if request.param == "memory":
        return MemoryStore(clock)
    return sqlite_store(tmp_path / "maintenance.sqlite3", clock)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def runtime(store: Store, clock: ManualClock, recorder: Recorder) -> Iterator[Chaperone]:
    with recording_runtime(store, clock, recorder) as opened:
        yield opened


# -------------------------------------------------------------------------------------
# The property: exactly the matching alerts, counted
# -------------------------------------------------------------------------------------

MATCHERS = (
    {},
    {"job_class": "App\\Jobs\\*"},
    {"type": "job_stuck"},
    {"service": "pay*"},
    {"type": ["job_timeout", "custom"], "job_class": "*Mail*"},
)
TYPES = ("job_stuck", "job_timeout", "custom")
CLASSES = ("App\\Jobs\\Import", "App\\Jobs\\Mailer", "Legacy\\Cron", None)
SERVICES = ("payments", "mail", None)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.integers(1, 40 * 60)),
        st.tuples(st.just("start"), st.sampled_from(range(len(MATCHERS))), st.integers(1, 90)),
        st.tuples(
            st.just("alert"),
            st.sampled_from(TYPES),
            st.sampled_from(CLASSES),
            st.sampled_from(SERVICES),
            st.booleans(),
        ),
    ),
    max_size=40,
)


@attrs.define
class ModelWindow:
    """What the test expects of one window."""

    window: Window
    counts: Counter[str] = attrs.field(factory=Counter)


class TestSuppressesExactlyWhatItMatches:
    """While on, a window suppresses exactly its matching alerts; its summary counts them."""

    @given(steps=steps)
    @settings(max_examples=50)
    def test_windows_suppress_and_summarise(self, steps: list[tuple[Any, ...]]) -> None:
        """Every alert is suppressed iff a window on at that moment matches it (test alerts
        too), counted under the oldest such window; once all have ended, the monitor sends
        one summary per window with its count and per-type counts, and never a second.
        """
        clock = ManualClock(START)
        recorder = Recorder()
        model: list[ModelWindow] = []
        with recording_runtime(MemoryStore(clock), clock, recorder) as runtime:
            for step in steps:
                if step[0] == "advance":
                    clock.advance(step[1])
                elif step[0] == "start":
                    matcher = parse_match(MATCHERS[step[1]])
                    window = start_window(
                        runtime.store, clock.now(), timedelta(minutes=step[2]), matcher, "deploy"
                    )
                    model.append(ModelWindow(window))
                else:
                    _, alert_type, job_class, service, is_test = step
                    alert = make_alert(clock, alert_type, job_class, service=service)
                    report = runtime.send(alert, is_test=is_test)
                    now = clock.now()
                    on = sorted(
                        (
                            entry
                            for entry in model
                            if entry.window.started_at <= now < entry.window.ends_at
                            and entry.window.match.matches(alert)
                        ),
                        key=lambda entry: (entry.window.started_at, entry.window.id),
                    )
                    if on:
                        assert report.verdict.kind is VerdictKind.SUPPRESS
                        assert on[0].window.id in report.verdict.reason
                        on[0].counts[alert_type] += 1
                    else:
                        assert report.delivered, report
            clock.advance(timedelta(minutes=91))
            Monitor(runtime).tick()
            summaries = {alert.key: alert for alert in recorder.summaries}
            assert set(summaries) == {entry.window.id for entry in model}
            for entry in model:
                summary = summaries[entry.window.id]
                assert summary.digest_of == sum(entry.counts.values())
                assert by_type_fields(summary) == dict(entry.counts)
                assert field(summary, "Matched") == entry.window.match.describe()
            Monitor(runtime).tick()
            assert len(recorder.summaries) == len(model)

    @given(
        minutes=st.lists(st.integers(1, 600), min_size=1, max_size=40),
        kinds=st.lists(st.sampled_from(TYPES), min_size=40, max_size=40),
    )
    @settings(max_examples=40)
    def test_recurring_occurrences_summarise_what_each_suppressed(
        self, minutes: list[int], kinds: list[str]
    ) -> None:
        """A daily 02:00-02:30 UTC window, with the monitor ticking between alerts:
        suppressed exactly inside the occurrences, and one summary per occurrence that
        suppressed something, with its count.
        """
        clock = ManualClock(datetime(2024, 1, 15, 1, 0, tzinfo=UTC))
        recorder = Recorder()
        nightly = RecurringWindow(
            name="nightly",
            weekdays=frozenset(range(7)),
            start=time(2),
            end=time(2, 30),
            timezone=ZoneInfo("UTC"),
            reason="backups",
        )
        expected: Counter[str] = Counter()
        with recording_runtime(
            MemoryStore(clock), clock, recorder, maintenance=(nightly,)
        ) as runtime:
            monitor = Monitor(runtime)
            for step, alert_type in zip(minutes, kinds, strict=False):
                clock.advance(timedelta(minutes=step))
                monitor.tick()
                now = clock.now()
                report = runtime.send(make_alert(clock, alert_type))
                if time(2) <= now.time() < time(2, 30):
                    assert report.verdict.kind is VerdictKind.SUPPRESS
                    assert "maintenance window nightly@" in report.verdict.reason
                    expected[f"nightly@{now.date().isoformat()}T02:00+00:00"] += 1
                else:
                    assert report.delivered
            clock.advance(timedelta(days=1))
            monitor.tick()
        got = {summary.key: summary.digest_of for summary in recorder.summaries}
        assert got == dict(expected)


# -------------------------------------------------------------------------------------
# Examples
# -------------------------------------------------------------------------------------


class TestWindow:
    """One ad-hoc window, on each store backend."""

    def test_matching_alert_suppressed_other_delivered(
        self, runtime: Chaperone, clock: ManualClock, recorder: Recorder
    ) -> None:
        """A job alert matching job_class=App\\Jobs\\* is suppressed; a breaker's is not."""
        window = start_window(runtime.store, clock.now(), timedelta(minutes=30), JOBS, "deploy")
        job = runtime.send(make_alert(clock))
        breaker = runtime.send(
            make_alert(clock, "circuit_breaker", None, service="payment-gateway")
        )
        assert job.verdict.kind is VerdictKind.SUPPRESS
        assert job.verdict.reason == f"maintenance window {window.id}: deploy"
        assert breaker.delivered
        assert [alert.type for alert in recorder.sent] == ["circuit_breaker"]

    def test_test_alerts_are_not_exempt(self, runtime: Chaperone, clock: ManualClock) -> None:
        """test-alerts bypasses rate limits, not maintenance."""
        start_window(runtime.store, clock.now(), timedelta(minutes=30), JOBS)
        report = runtime.send(make_alert(clock), is_test=True)
        assert report.verdict.kind is VerdictKind.SUPPRESS

    def test_nothing_suppressed_once_it_ends(self, runtime: Chaperone, clock: ManualClock) -> None:
        """At its end time the window is off."""
        start_window(runtime.store, clock.now(), timedelta(minutes=30))
        clock.advance(timedelta(minutes=30))
        assert runtime.send(make_alert(clock)).delivered

    def test_examples_keep_the_first_titles(self, runtime: Chaperone, clock: ManualClock) -> None:
        """The summary keeps the titles of the first MAX_EXAMPLES alerts, in order."""
        window = start_window(runtime.store, clock.now(), timedelta(minutes=30))
        alerts = [make_alert(clock) for _ in range(MAX_EXAMPLES + 3)]
        for alert in alerts:
            runtime.send(alert)
        found = suppressed(runtime.store, window.id)
        assert found.total == MAX_EXAMPLES + 3
        assert found.examples == tuple(alert.title for alert in alerts[:MAX_EXAMPLES])

    def test_monitor_sends_one_summary_at_the_end(
        self, runtime: Chaperone, clock: ManualClock, recorder: Recorder
    ) -> None:
        """Before the end the monitor sends nothing; after, one summary naming the count,
        the reason and examples; then nothing more.
        """
        window = start_window(runtime.store, clock.now(), timedelta(minutes=30), JOBS, "deploy")
        runtime.send(make_alert(clock, "job_stuck"))
        runtime.send(make_alert(clock, "job_timeout"))
        monitor = Monitor(runtime)
        clock.advance(timedelta(minutes=29))
        monitor.tick()
        assert recorder.summaries == []
        clock.advance(timedelta(minutes=1))
        monitor.tick()
        monitor.tick()
        [summary] = recorder.summaries
        assert summary.key == window.id
        assert summary.digest_of == 2
        assert summary.title == "Maintenance window ended: 2 alerts suppressed"
        assert "(deploy)" in summary.summary
        assert by_type_fields(summary) == {"job_stuck": 1, "job_timeout": 1}
        assert field(summary, "Example 1") is not None
        assert runtime.store.due(ENDS_INDEX, clock.timestamp() + 1e9, 10) == []

    def test_window_with_nothing_suppressed_still_summarises(
        self, runtime: Chaperone, clock: ManualClock, recorder: Recorder
    ) -> None:
        """An ad-hoc window that hid nothing says so when it ends."""
        start_window(runtime.store, clock.now(), timedelta(minutes=5))
        clock.advance(timedelta(minutes=5))
        Monitor(runtime).tick()
        [summary] = recorder.summaries
        assert summary.digest_of == 0


class TestResolves:
    """A resolve is suppressed only when its firing alert was."""

    def test_resolve_of_suppressed_alert_is_suppressed_once(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """Even after the window ended, the resolve of a suppressed alert is suppressed; a
        second resolve of that incident goes out.
        """
        start_window(runtime.store, clock.now(), timedelta(minutes=30))
        firing = make_alert(clock, key="sup-1")
        assert runtime.send(firing).verdict.kind is VerdictKind.SUPPRESS
        clock.advance(timedelta(hours=1))
        resolve = make_alert(clock, key="sup-1", resolved=True)
        first = runtime.send(resolve)
        assert first.verdict.kind is VerdictKind.SUPPRESS
        assert "suppressed the alert this resolves" in first.verdict.reason
        assert runtime.send(resolve).delivered

    def test_other_resolves_go_out_during_a_window(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """A resolve whose firing alert was seen goes out, even while a window matching it
        is on: it closes an incident people saw.
        """
        assert runtime.send(make_alert(clock, key="sup-2")).delivered
        start_window(runtime.store, clock.now(), timedelta(minutes=30))
        assert runtime.send(make_alert(clock, key="sup-2", resolved=True)).delivered

    def test_a_delivered_repeat_lets_the_resolve_out(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """Suppressed in the window, then the incident fired again and was delivered after
        it: people saw it, so its resolve goes out.
        """
        start_window(runtime.store, clock.now(), timedelta(minutes=30))
        runtime.send(make_alert(clock, key="sup-3"))
        clock.advance(timedelta(hours=1))
        assert runtime.send(make_alert(clock, key="sup-3")).delivered
        assert runtime.send(make_alert(clock, key="sup-3", resolved=True)).delivered

    def test_the_mark_is_forgotten_after_a_day(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """A resolve coming more than RESOLVE_MEMORY later goes out."""
        start_window(runtime.store, clock.now(), timedelta(minutes=30))
        runtime.send(make_alert(clock, key="sup-4"))
        clock.advance(RESOLVE_MEMORY)
        assert runtime.send(make_alert(clock, key="sup-4", resolved=True)).delivered

    def test_resolves_are_not_counted(self, runtime: Chaperone, clock: ManualClock) -> None:
        """The summary counts the suppressed firing alerts, not their resolves."""
        window = start_window(runtime.store, clock.now(), timedelta(minutes=30))
        runtime.send(make_alert(clock, key="sup-5"))
        runtime.send(make_alert(clock, key="sup-5", resolved=True))
        assert suppressed(runtime.store, window.id).total == 1


class TestEnding:
    """``maintenance end``: ends windows now and claims each summary exactly once."""

    def test_end_by_id(self, runtime: Chaperone, clock: ManualClock, recorder: Recorder) -> None:
        """Ending a window turns it off at once; its summary is claimed by the end, and
        the monitor later sends no second one.
        """
        window = start_window(runtime.store, clock.now(), timedelta(minutes=30), JOBS)
        runtime.send(make_alert(clock))
        clock.advance(timedelta(minutes=5))
        [ending] = end_windows(runtime.settings, runtime.store, clock.now(), window.id)
        assert ending.ended_now
        assert ending.window.end == clock.now()
        assert ending.event is not None
        assert ending.event.suppressed == 1
        assert ending.event.ended_at == clock.now()
        assert runtime.send(make_alert(clock)).delivered
        runtime.dispatch(ending.event)
        clock.advance(timedelta(hours=1))
        Monitor(runtime).tick()
        assert len(recorder.summaries) == 1

    def test_ending_twice_claims_once(self, runtime: Chaperone, clock: ManualClock) -> None:
        """A second end of the same window finds it ended and its summary claimed."""
        window = start_window(runtime.store, clock.now(), timedelta(minutes=30))
        end_windows(runtime.settings, runtime.store, clock.now(), window.id)
        clock.advance(1)
        [again] = end_windows(runtime.settings, runtime.store, clock.now(), window.id)
        assert not again.ended_now
        assert again.event is None
        assert again.note == "its summary was already claimed"

    def test_unknown_id(self, runtime: Chaperone, clock: ManualClock) -> None:
        """An id no window has raises UnknownWindowError."""
        with pytest.raises(UnknownWindowError, match="mw-00000000"):
            end_windows(runtime.settings, runtime.store, clock.now(), "mw-00000000")

    def test_end_without_id_ends_every_adhoc_window(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """No id: every ad-hoc window on is ended, and a window that ended on its own with
        no monitor running gets its summary too.
        """
        old = start_window(runtime.store, clock.now(), timedelta(minutes=5))
        clock.advance(timedelta(minutes=10))
        first = start_window(runtime.store, clock.now(), timedelta(minutes=30))
        second = start_window(runtime.store, clock.now(), timedelta(hours=2))
        endings = end_windows(runtime.settings, runtime.store, clock.now())
        assert {ending.window.id for ending in endings} == {old.id, first.id, second.id}
        assert {ending.window.id for ending in endings if ending.ended_now} == {
            first.id,
            second.id,
        }
        assert all(ending.event is not None for ending in endings)
        assert active_windows(runtime.settings, runtime.store, clock.now()) == []
        assert end_windows(runtime.settings, runtime.store, clock.now()) == []

    def test_end_a_recurring_occurrence(self, clock: ManualClock, recorder: Recorder) -> None:
        """The occurrence of a recurring window in force can be ended by its id; the next
        occurrence still comes.
        """
        with recording_runtime(
            MemoryStore(clock), clock, recorder, maintenance=(DAILY,)
        ) as runtime:
            assert runtime.send(make_alert(clock)).verdict.kind is VerdictKind.SUPPRESS
            [on] = active_windows(runtime.settings, runtime.store, clock.now())
            assert on.id == "daily@2024-01-15T10:00+00:00"
            [ending] = end_windows(runtime.settings, runtime.store, clock.now(), on.id)
            assert ending.event is not None
            assert ending.event.suppressed == 1
            assert runtime.send(make_alert(clock)).delivered
            clock.advance(timedelta(days=1))
            assert runtime.send(make_alert(clock)).verdict.kind is VerdictKind.SUPPRESS

    def test_summaries_off(self, clock: ManualClock, recorder: Recorder) -> None:
        """With alerting.maintenance_summary off, a window ends with no summary, and says
        why.
        """
        with recording_runtime(
            MemoryStore(clock), clock, recorder, maintenance_summary=False
        ) as runtime:
            window = start_window(runtime.store, clock.now(), timedelta(minutes=5))
            runtime.send(make_alert(clock))
            [ending] = end_windows(runtime.settings, runtime.store, clock.now(), window.id)
            assert ending.event is None
            assert "summaries are off" in ending.note
            assert ending.suppressed.total == 1
            other = start_window(runtime.store, clock.now(), timedelta(minutes=5))
            clock.advance(timedelta(minutes=5))
            Monitor(runtime).tick()
        assert recorder.summaries == []
        assert other.summary

    def test_window_without_summary(self, runtime: Chaperone, clock: ManualClock) -> None:
        """A window started with --no-summary ends without one."""
        window = start_window(runtime.store, clock.now(), timedelta(minutes=5), summary=False)
        [ending] = end_windows(runtime.settings, runtime.store, clock.now(), window.id)
        assert ending.event is None
        assert ending.note == "this window's summary is off"

    def test_recurring_without_suppressions_sends_nothing(
        self, clock: ManualClock, recorder: Recorder
    ) -> None:
        """An occurrence that suppressed nothing ends silently."""
        with recording_runtime(
            MemoryStore(clock), clock, recorder, maintenance=(DAILY,)
        ) as runtime:
            monitor = Monitor(runtime)
            for _ in range(3):
                clock.advance(timedelta(hours=12))
                monitor.tick()
        assert recorder.summaries == []


class TestSharedStore:
    """Several processes (runtimes on one SQLite file) count once and summarise once."""

    def test_two_monitors_send_one_summary(self, tmp_path: Path) -> None:
        """Alerts suppressed through two runtimes are counted together; both monitors tick
        at once, again and again, and exactly one summary goes out.
        """
        clock = ManualClock(START)
        path = tmp_path / "shared.sqlite3"
        recorders = [Recorder(), Recorder()]
        runtimes = [
            recording_runtime(sqlite_store(path, clock), clock, recorder) for recorder in recorders
        ]
        try:
            window = start_window(runtimes[0].store, clock.now(), timedelta(minutes=30), JOBS)
            for index in range(6):
                runtimes[index % 2].send(make_alert(clock))
            clock.advance(timedelta(minutes=30))
            monitors = [Monitor(runtime) for runtime in runtimes]
            with ThreadPoolExecutor(max_workers=2) as pool:
                for _ in range(5):
                    list(pool.map(lambda monitor: monitor.tick(), monitors))
        finally:
            for runtime in runtimes:
                runtime.close()
        summaries = [summary for recorder in recorders for summary in recorder.summaries]
        assert [(summary.key, summary.digest_of) for summary in summaries] == [(window.id, 6)]

    def test_end_and_monitor_race_for_one_summary(self, tmp_path: Path) -> None:
        """``maintenance end`` in one process while a monitor ticks in another, both after
        the window's end: one of them claims the summary.
        """
        clock = ManualClock(START)
        path = tmp_path / "race.sqlite3"
        recorder = Recorder()
        with (
            recording_runtime(sqlite_store(path, clock), clock, recorder) as monitor_side,
            recording_runtime(sqlite_store(path, clock), clock) as cli_side,
        ):
            window = start_window(cli_side.store, clock.now(), timedelta(minutes=1))
            clock.advance(timedelta(minutes=1))
            with ThreadPoolExecutor(max_workers=2) as pool:
                ending = pool.submit(
                    end_windows, cli_side.settings, cli_side.store, clock.now(), window.id
                )
                ticked = pool.submit(Monitor(monitor_side).tick)
                [result] = ending.result()
                ticked.result()
        claimed = len(recorder.summaries) + (result.event is not None)
        assert claimed == 1


class TestCost:
    """The filter and the detector stay cheap when there are no windows."""

    def test_detector_reads_the_deadline_index_only(self, clock: ManualClock) -> None:
        """With nothing due, one tick of the detector is a single ``due`` read."""
        calls: list[str] = []
        store = Counting(MemoryStore(clock), calls)
        start_window(store, clock.now(), timedelta(hours=1))
        calls.clear()
        assert due_summaries(Settings(), store, clock.now()) == []
        assert calls == ["due"]

    def test_filter_writes_nothing_without_a_window(self, clock: ManualClock) -> None:
        """An alert no window matches costs a key scan and one read, and no write."""
        calls: list[str] = []
        store = Counting(MemoryStore(clock), calls)
        with recording_runtime(store, clock) as runtime:  # type: ignore[arg-type]
            calls.clear()
            verdict = maintenance_filter.chaperone_filter_alert(
                alert=make_alert(clock), runtime=runtime.runtime, is_test=False
            )
        assert verdict is None
        assert calls[:2] == ["keys", "get"]
        assert "close" in calls
        assert set(calls) == {"keys", "get", "close"}


class Counting:
    """A store that records the name of each method called, then calls the real one."""

    def __init__(self, inner: Store, calls: list[str]) -> None:
        self.inner = inner
        self.calls = calls
        self.url = inner.url

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return method(*args, **kwargs)

        return call


class TestStatus:
    """What ``maintenance status`` lists."""

    def test_adhoc_and_recurring(self, clock: ManualClock) -> None:
        """The ad-hoc window on, with its count; a recurring window on, with its count and
        next occurrence; one not on, with only its next occurrence.
        """
        utc = ZoneInfo("UTC")
        on = RecurringWindow(
            name="on", weekdays=frozenset({0}), start=time(9), end=time(12), timezone=utc
        )
        later = RecurringWindow(
            name="later",
            weekdays=frozenset({5, 6}),
            start=time(2),
            end=time(4),
            timezone=ZoneInfo("Europe/Berlin"),
            match=parse_match({"job_class": "App\\Jobs\\Backup*"}),
        )
        with recording_runtime(MemoryStore(clock), clock, maintenance=(on, later)) as runtime:
            window = start_window(runtime.store, clock.now(), timedelta(minutes=30), JOBS, "x")
            runtime.send(make_alert(clock, "job_stuck"))
            runtime.send(make_alert(clock, "custom", None))
            clock.advance(timedelta(minutes=10))
            rows = {
                row["name"] or row["id"]: row
                for row in status(runtime.settings, runtime.store, clock.now())
            }
        adhoc = rows[window.id]
        assert adhoc["active"]
        assert adhoc["kind"] == "ad-hoc"
        assert adhoc["remaining"] == 20 * 60
        assert adhoc["suppressed"] == 1
        assert adhoc["suppressed_by_type"] == {"job_stuck": 1}
        assert adhoc["match"] == {"job_class": ["App\\Jobs\\*"]}
        assert rows["on"]["active"]
        assert rows["on"]["suppressed"] == 1
        assert rows["on"]["id"] == "on@2024-01-15T09:00+00:00"
        assert rows["on"]["next_from"] == "2024-01-22T09:00:00+00:00"
        assert not rows["later"]["active"]
        assert rows["later"]["from"] is None
        assert rows["later"]["next_from"] == "2024-01-20T01:00:00+00:00"
        assert rows["later"]["matches"] == "job_class=App\\Jobs\\Backup*"

"""The built-in job detectors: stuck, timed out, recovered, found through the deadline
index, each episode reported once.

Jobs are supervised the way job code does it (``supervise(...)``), and the detector runs
as the monitor runs it (``check_due``, or a whole ``Monitor`` tick). Time moves only
through a ManualClock. The property compares the detector, on a memory store and on a
SQLite file, with what the issue promises for any rhythm of heartbeats and monitor ticks.
"""

from __future__ import annotations

import math
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone import (
    Chaperone,
    Event,
    IncidentRef,
    JobCompleted,
    JobRecovered,
    JobStuck,
    JobTimeout,
    ManualClock,
    PluginHost,
    Settings,
)
from chaperone._event_codec import decode_event
from chaperone._monitor import Monitor
from chaperone.builtin import job_detector as detector
from chaperone.builtin.database_channel import read_history
from chaperone.store import MemoryStore, SQLiteStore, Store
from chaperone.supervision import JobRecord, Supervision, Supervisor, _keys, supervise
from chaperone.supervision._records import flush_interval
from helpers.runtime import make_runtime

START = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
T0 = START.timestamp()

# -------------------------------------------------------------------------------------
# Helpers
# -------------------------------------------------------------------------------------


def open_store(kind: str, clock: ManualClock, folder: Path) -> Store:
    """A fresh memory store, or a SQLite file in ``folder``."""
    if kind == "memory":
        return MemoryStore(clock)
    path = folder / "c.db"
    return SQLiteStore(path, clock, f"sqlite:///{path}")


@contextmanager
def a_store(kind: str) -> Iterator[tuple[Store, ManualClock]]:
    """A store of ``kind`` on a new manual clock, closed after (for hypothesis bodies,
    which cannot use function-scoped fixtures)."""
    clock = ManualClock(START)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(kind, clock, Path(folder))
        try:
            yield store, clock
        finally:
            store.close()


def start_job(
    store: Store, clock: ManualClock, name: str = "etl.load", **options: Any
) -> tuple[supervise, Supervision]:
    """Enter a ``supervise`` block and return it with its handle (leave it with
    ``end_job``)."""
    guard = supervise(name, supervisor=Supervisor(store, clock), **options)
    return guard, guard.__enter__()


def running_job(supervisor: Supervisor, name: str = "j", **options: Any) -> Supervision:
    """A job started as ``supervise`` starts one and left running, without making it
    the current job of this context (so nothing leaks into later tests)."""
    record = JobRecord(
        supervision_id=str(uuid.uuid4()),
        name=name,
        started_at=supervisor.clock.timestamp(),
        **options,
    )
    job = Supervision(supervisor, record)
    job.start()
    return job


def end_job(guard: supervise, error: BaseException | None = None) -> None:
    """Leave a block entered by ``start_job``."""
    guard.__exit__(None if error is None else type(error), error, None)


def queued(store: Store) -> list[Event]:
    """Pop and decode every event waiting in the store's queue."""
    return [decode_event(text) for text in store.pop(_keys.EVENTS_QUEUE, 10_000)]


def tick(store: Store, clock: ManualClock) -> list[Event]:
    """One detection pass at the clock's time."""
    return list(detector.check_due(store, clock.timestamp()))


def advance_to(clock: ManualClock, seconds: float) -> None:
    """Move the clock to ``seconds`` after START (never back)."""
    clock.advance(T0 + seconds - clock.timestamp())


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


class _Intercepting:
    """Wraps a store; runs ``cut_in`` once, just before the first ``method`` call on
    ``key``, so that a test can place another party's work exactly there."""

    def __init__(self, inner: Store, method: str, key: str, cut_in: Callable[[], None]) -> None:
        self.inner = inner
        self.url = inner.url
        self._method = method
        self._key = key
        self._cut_in: Callable[[], None] | None = cut_in

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if name != self._method:
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            if args and args[0] == self._key and self._cut_in is not None:
                cut_in, self._cut_in = self._cut_in, None
                cut_in()
            return method(*args, **kwargs)

        return call


class CountingStore:
    """Wraps a store and records every call: the method and its first argument."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.calls: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args[0] if args else None))
            return method(*args, **kwargs)

        return counted


# -------------------------------------------------------------------------------------
# The property: any rhythm of heartbeats and ticks
# -------------------------------------------------------------------------------------


@attrs.frozen
class Schedule:
    """A job's heartbeats and the monitor's ticks, in seconds after the job started."""

    interval: int
    missed: int
    timeout: int | None
    heartbeats: tuple[int, ...]
    ticks: tuple[float, ...]

    @property
    def stuck_after(self) -> float:
        """Seconds after the last heartbeat at which the job is reported stuck: the
        promised interval x missed, plus the flush interval by which the stored
        heartbeat may trail the job's latest."""
        return self.interval * self.missed + flush_interval(self.interval)

    def last_heartbeat(self, at: float) -> float:
        """The last sign of life at ``at`` (a heartbeat at ``at`` counts: heartbeats come
        before a tick at the same instant)."""
        return max((h for h in self.heartbeats if h <= at), default=0)

    def stuck_deadline(self, at: float) -> float:
        """When the job is stuck, judged by the heartbeats up to ``at``."""
        return self.last_heartbeat(at) + self.stuck_after


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    """Heartbeats on whole seconds (at least a flush interval apart, so each one is
    written at once), ticks on quarter seconds (the flush interval, a quarter of a whole
    interval, puts deadlines on quarter seconds too), gaps of any length in both."""
    return Schedule(
        interval=draw(st.integers(min_value=1, max_value=4)),
        missed=draw(st.integers(min_value=1, max_value=3)),
        timeout=draw(st.none() | st.integers(min_value=1, max_value=45)),
        heartbeats=tuple(sorted(draw(st.sets(st.integers(1, 40), max_size=25)))),
        ticks=tuple(
            q / 4 for q in sorted(draw(st.sets(st.integers(0, 200), min_size=1, max_size=60)))
        ),
    )


def run_schedule(
    store: Store, clock: ManualClock, schedule: Schedule
) -> tuple[str, list[tuple[float, list[Event]]], list[Event]]:
    """Run the job and the monitor along ``schedule``; return the job's id, each tick's
    events, and what the job's end queued."""
    guard, job = start_job(
        store,
        clock,
        heartbeat_interval=schedule.interval,
        missed_heartbeats=schedule.missed,
        timeout=schedule.timeout,
    )
    moments = sorted(
        [(float(h), 0) for h in schedule.heartbeats] + [(t, 1) for t in schedule.ticks]
    )
    found: list[tuple[float, list[Event]]] = []
    for at, kind in moments:
        advance_to(clock, at)
        if kind == 0:
            job.heartbeat()
        else:
            found.append((at, tick(store, clock)))
    advance_to(clock, 60)
    end_job(guard)
    return job.supervision_id, found, queued(store)


class TestAnyRhythm:
    """Stuck and timeout detection for any rhythm of heartbeats and monitor ticks."""

    @pytest.mark.parametrize("kind", ["memory", "sqlite"])
    @given(schedule=schedules())
    def test_episodes_follow_elapsed_time_not_ticks(self, kind: str, schedule: Schedule) -> None:
        """JobStuck comes at the first tick at or after last heartbeat + interval x
        missed + flush interval, never earlier and once per episode; once heartbeats
        resume one JobRecovered follows within min(interval, 5) s; JobTimeout comes once,
        at the first tick at or after the limit; the end resolves exactly what is still
        open."""
        with a_store(kind) as (store, clock):
            supervision_id, found, at_end = run_schedule(store, clock, schedule)
            later = [tick(store, clock) for _ in range(3)]
        recovery_wait = min(schedule.interval, 5)
        open_since: float | None = None
        stuck_count = recovered_count = 0
        timeouts: list[float] = []
        for at, events in found:
            for event in events:
                assert getattr(event, "supervision_id", None) == supervision_id
                if isinstance(event, JobStuck):
                    assert open_since is None, f"a second JobStuck at {at} in one episode"
                    assert at >= schedule.stuck_deadline(at), (
                        f"JobStuck at {at}, last heartbeat {schedule.last_heartbeat(at)}"
                    )
                    open_since = at
                    stuck_count += 1
                elif isinstance(event, JobRecovered):
                    assert open_since is not None, f"JobRecovered at {at} with nothing open"
                    assert any(open_since < h <= at for h in schedule.heartbeats)
                    open_since = None
                    recovered_count += 1
                else:
                    assert isinstance(event, JobTimeout), event
                    timeouts.append(at)
            overdue = at >= schedule.stuck_deadline(at)
            if overdue:
                assert open_since is not None, f"stuck at {at} but not reported"
            if open_since is not None:
                resumed = [h for h in schedule.heartbeats if h > open_since]
                if resumed:
                    assert at < resumed[0] + recovery_wait, (
                        f"heartbeats resumed at {resumed[0]}, still not recovered at {at}"
                    )
        limit = math.inf if schedule.timeout is None else schedule.timeout
        first_past_limit = [t for t in schedule.ticks if t >= limit][:1]
        timed_out = bool(first_past_limit)
        assert timeouts == first_past_limit
        assert later == [[], [], []]
        expected = set()
        if open_since is not None:
            expected.add(IncidentRef(type="job_stuck", key=supervision_id))
        if timed_out:
            expected.add(IncidentRef(type="job_timeout", key=supervision_id))
        if expected:
            assert len(at_end) == 1
            completed = at_end[0]
            assert isinstance(completed, JobCompleted)
            assert set(completed.resolves) == expected
            assert len(completed.resolves) == len(expected)
        else:
            assert at_end == []
        assert stuck_count - recovered_count == (1 if open_since is not None else 0)


# -------------------------------------------------------------------------------------
# Stuck
# -------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def store_and_clock(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Store, ManualClock]]:
    """A memory store or a SQLite file, on a manual clock."""
    clock = ManualClock(START)
    store = open_store(request.param, clock, tmp_path)
    yield store, clock
    store.close()


class TestStuck:
    """No heartbeat for interval x missed (plus the flush interval by which the stored
    heartbeat may trail) of elapsed time is stuck."""

    def test_sparse_ticks_report_at_the_first_tick_past_the_deadline(
        self, store_and_clock: tuple[Store, ManualClock]
    ) -> None:
        """With ticks 7 s apart and a 30 s limit (a 31 s deadline with the flush
        interval), the job is reported at 35 s with the time it has really been silent,
        and never again."""
        store, clock = store_and_clock
        guard, job = start_job(store, clock, heartbeat_interval=10, missed_heartbeats=3)
        assert job.record.stuck_deadline == T0 + 30 + flush_interval(10)
        seen: dict[float, list[Event]] = {}
        for at in range(0, 85, 7):
            advance_to(clock, at)
            seen[at] = tick(store, clock)
        reported = {at: events for at, events in seen.items() if events}
        assert list(reported) == [35]
        (event,) = reported[35]
        assert isinstance(event, JobStuck)
        assert event.supervision_id == job.supervision_id
        assert event.job_class == "etl.load"
        assert event.stuck_duration.total_seconds() == 35
        assert event.last_heartbeat is None
        assert event.occurred_at == datetime.fromtimestamp(T0 + 35, UTC)
        end_job(guard)

    def test_the_event_names_the_last_heartbeat(
        self, store_and_clock: tuple[Store, ManualClock]
    ) -> None:
        """A job that heartbeat and then went silent is reported with that heartbeat's
        time and the silence since, not at interval x missed but a flush interval
        later."""
        store, clock = store_and_clock
        guard, job = start_job(store, clock, heartbeat_interval=2, missed_heartbeats=2)
        silence = 2 * 2 + flush_interval(2)
        advance_to(clock, 3)
        job.heartbeat()
        advance_to(clock, 3 + 2 * 2)
        assert tick(store, clock) == []
        advance_to(clock, 3 + silence)
        (event,) = tick(store, clock)
        assert isinstance(event, JobStuck)
        assert event.last_heartbeat == datetime.fromtimestamp(T0 + 3, UTC)
        assert event.stuck_duration.total_seconds() == silence
        end_job(guard)

    def test_many_ticks_before_the_deadline_change_nothing(
        self, store_and_clock: tuple[Store, ManualClock]
    ) -> None:
        """A thousand ticks before the deadline, the last of them a millisecond short
        of it, find nothing, and the report still comes exactly at it."""
        store, clock = store_and_clock
        guard, job = start_job(store, clock, heartbeat_interval=5, missed_heartbeats=2)
        deadline = 2 * 5 + flush_interval(5)
        assert job.record.stuck_deadline == T0 + deadline
        step = (deadline - 0.001) / 1000
        for index in range(1, 1001):
            advance_to(clock, step * index)
            assert tick(store, clock) == []
        assert clock.timestamp() == pytest.approx(T0 + deadline - 0.001, abs=1e-6)
        advance_to(clock, deadline)
        assert [type(e) for e in tick(store, clock)] == [JobStuck]
        end_job(guard)

    def test_a_held_back_heartbeat_still_counts(
        self, store_and_clock: tuple[Store, ManualClock]
    ) -> None:
        """A heartbeat held back by coalescing still counts: a job that heartbeat twice
        in quick succession, then paused, is not stuck until interval x missed after
        the second heartbeat."""
        store, clock = store_and_clock
        guard, job = start_job(store, clock, heartbeat_interval=4, missed_heartbeats=1)
        job.heartbeat()  # written at once
        advance_to(clock, 0.9)
        job.heartbeat()  # held back: within the flush interval of 1 s
        advance_to(clock, 4.5)  # 3.6 s of silence, under the 4 s promised
        try:
            assert tick(store, clock) == []
        finally:
            end_job(guard)

    def test_no_interval_means_no_stuck_check(
        self, store_and_clock: tuple[Store, ManualClock]
    ) -> None:
        """A job without a heartbeat interval is never reported stuck."""
        store, clock = store_and_clock
        guard, _job = start_job(store, clock)
        for at in (10, 1000, 100_000):
            advance_to(clock, at)
            assert tick(store, clock) == []
        end_job(guard)

    def test_recovery_then_a_second_episode(
        self, store_and_clock: tuple[Store, ManualClock]
    ) -> None:
        """Heartbeats resuming yield one JobRecovered; going silent again is a new
        episode, reported again."""
        store, clock = store_and_clock
        guard, job = start_job(store, clock, heartbeat_interval=2, missed_heartbeats=3)
        stuck_after = 2 * 3 + flush_interval(2)
        advance_to(clock, stuck_after)
        assert [type(e) for e in tick(store, clock)] == [JobStuck]
        advance_to(clock, 7)
        job.heartbeat()
        kinds: list[type[Event]] = []
        for at in (7, 7.5, 8, 8.5, 9, 9.5, 10, 11, 12, 13):
            advance_to(clock, at)
            kinds += [type(e) for e in tick(store, clock)]
        assert kinds == [JobRecovered]
        advance_to(clock, 7 + stuck_after)
        assert [type(e) for e in tick(store, clock)] == [JobStuck]
        end_job(guard)

    def test_the_recovered_event(self, store_and_clock: tuple[Store, ManualClock]) -> None:
        """JobRecovered names the job and why it recovered, and closes the incident."""
        store, clock = store_and_clock
        guard, job = start_job(store, clock, name="n", heartbeat_interval=1, missed_heartbeats=1)
        stuck_at = 1 + flush_interval(1)
        advance_to(clock, stuck_at)
        assert [type(e) for e in tick(store, clock)] == [JobStuck]
        advance_to(clock, 1.5)
        job.heartbeat()
        recovery_check = stuck_at + 1  # one heartbeat interval after the report
        advance_to(clock, recovery_check)
        (event,) = tick(store, clock)
        assert event == JobRecovered(
            supervision_id=job.supervision_id,
            job_class="n",
            recovered_from="job_stuck",
            reason="heartbeats resumed",
            occurred_at=datetime.fromtimestamp(T0 + recovery_check, UTC),
        )
        assert store.keys(_keys.incident_prefix(job.supervision_id)) == []
        end_job(guard)
        assert queued(store) == []

    def test_finishing_resolves_the_open_episode_once(
        self, store_and_clock: tuple[Store, ManualClock]
    ) -> None:
        """A stuck job that finishes queues one JobCompleted resolving job_stuck; the
        monitor's recovery check then finds nothing to report."""
        store, clock = store_and_clock
        guard, job = start_job(store, clock, heartbeat_interval=1, missed_heartbeats=2)
        advance_to(clock, 2 + flush_interval(1))
        assert [type(e) for e in tick(store, clock)] == [JobStuck]
        advance_to(clock, 2.5)
        job.heartbeat()
        end_job(guard, ValueError("bad row"))
        (completed,) = queued(store)
        assert isinstance(completed, JobCompleted)
        assert completed.failed
        assert completed.error == "ValueError: bad row"
        assert completed.resolves == (IncidentRef(type="job_stuck", key=job.supervision_id),)
        for at in (3, 4, 10, 100):
            advance_to(clock, at)
            assert tick(store, clock) == []
        assert store.due(_keys.DEADLINES, math.inf, 10) == []


def _monitor_until(store: Store, now: float, stop: threading.Event, found: list[Event]) -> None:
    """Tick at ``now`` as fast as possible until ``stop`` is set."""
    while not stop.is_set():
        found.extend(detector.check_due(store, now))


class TestRecoveryRace:
    """The job's end and the monitor's recovery check close an episode exactly once."""

    @pytest.mark.parametrize("first", ["the job's end", "the monitor"])
    def test_either_order_resolves_once(
        self, first: str, store_and_clock: tuple[Store, ManualClock]
    ) -> None:
        """The monitor's recovery check has read the job as running and is about to
        close the incident when the job ends (or the job's end is about to write when
        the monitor closes it): whichever closes the incident reports, the other
        reports nothing."""
        store, clock = store_and_clock
        guard, job = start_job(store, clock, heartbeat_interval=1, missed_heartbeats=1)
        stuck_at = 1 + flush_interval(1)
        advance_to(clock, stuck_at)
        assert [type(e) for e in tick(store, clock)] == [JobStuck]
        advance_to(clock, 1.5)
        job.heartbeat()
        advance_to(clock, stuck_at + 1)  # the recovery check is due
        incident = _keys.incident_key(job.supervision_id, "job_stuck")
        record = _keys.job_key(job.supervision_id)
        monitor_found: list[Event] = []
        if first == "the job's end":
            # The monitor is about to delete the incident when the job ends.
            intercepting = _Intercepting(store, "delete", incident, lambda: end_job(guard))
            monitor_found.extend(detector.check_due(intercepting, clock.timestamp()))
        else:
            # The job's end is about to write its final record when the monitor ticks.
            intercepting = _Intercepting(
                store, "set", record, lambda: monitor_found.extend(tick(store, clock))
            )
            job._supervisor.store = intercepting
            end_job(guard)
            job._supervisor.store = store
        recovered = [e for e in monitor_found if isinstance(e, JobRecovered)]
        resolves = [r for e in queued(store) if isinstance(e, JobCompleted) for r in e.resolves]
        assert len(recovered) + len(resolves) == 1
        assert (len(recovered) == 1) == (first == "the monitor")
        assert store.keys(_keys.incident_prefix(job.supervision_id)) == []

    def test_end_and_monitor_racing_in_threads(self, tmp_path: Path) -> None:
        """Over many rounds on a SQLite file, a monitor ticking as fast as it can, with
        the recovery check due, while the job heartbeats and ends: each episode is
        resolved exactly once, by JobRecovered or by JobCompleted."""
        clock = ManualClock(START)
        path = tmp_path / "race.db"
        job_store = SQLiteStore(path, clock, f"sqlite:///{path}")
        monitor_store = SQLiteStore(path, clock, f"sqlite:///{path}")
        try:
            for round_ in range(25):
                guard, job = start_job(job_store, clock, heartbeat_interval=1, missed_heartbeats=1)
                clock.advance(1 + flush_interval(1))
                assert [type(e) for e in tick(monitor_store, clock)] == [JobStuck]
                clock.advance(1)  # the recovery check is due
                stop = threading.Event()
                found: list[Event] = []
                thread = threading.Thread(
                    target=_monitor_until, args=(monitor_store, clock.timestamp(), stop, found)
                )
                thread.start()
                job.heartbeat()
                end_job(guard)
                stop.set()
                thread.join(timeout=30)
                recovered = [e for e in found if isinstance(e, JobRecovered)]
                resolves = [
                    ref
                    for e in queued(job_store)
                    if isinstance(e, JobCompleted)
                    for ref in e.resolves
                ]
                assert len(recovered) + len(resolves) == 1, (round_, found, resolves)
                assert [e for e in found if isinstance(e, JobStuck)] == []
                clock.advance(10)
        finally:
            job_store.close()
            monitor_store.close()


# -------------------------------------------------------------------------------------
# Timeout
# -------------------------------------------------------------------------------------


class TestTimeout:
    """Running past the limit is reported once; the end resolves it."""

    def test_reported_once_at_the_first_tick_past_the_limit(
        self, store_and_clock: tuple[Store, ManualClock]
    ) -> None:
        """With a 30 s limit and a tick every 4 s, the job is reported at 32 s, with
        how long it has run, then never again, heartbeats or not."""
        store, clock = store_and_clock
        guard, job = start_job(store, clock, timeout=30)
        seen: dict[int, list[Event]] = {}
        for at in range(0, 121, 4):
            advance_to(clock, at)
            job.heartbeat()
            seen[at] = tick(store, clock)
        reported = {at: events for at, events in seen.items() if events}
        assert list(reported) == [32]
        (event,) = reported[32]
        assert isinstance(event, JobTimeout)
        assert event.timeout.total_seconds() == 30
        assert event.actual_duration.total_seconds() == 32
        assert event.supervision_id == job.supervision_id
        end_job(guard)
        (completed,) = queued(store)
        assert isinstance(completed, JobCompleted)
        assert completed.resolves == (IncidentRef(type="job_timeout", key=job.supervision_id),)

    def test_heartbeats_do_not_postpone_it(
        self, store_and_clock: tuple[Store, ManualClock]
    ) -> None:
        """A job heartbeating busily still times out at its limit."""
        store, clock = store_and_clock
        guard, job = start_job(store, clock, timeout=5, heartbeat_interval=1)
        for _ in range(20):
            clock.advance(0.25)
            job.heartbeat()
        assert [type(e) for e in tick(store, clock)] == [JobTimeout]
        end_job(guard)

    def test_a_job_ending_in_time_is_never_reported(
        self, store_and_clock: tuple[Store, ManualClock]
    ) -> None:
        """A job that ends before its limit leaves nothing for later ticks."""
        store, clock = store_and_clock
        guard, _job = start_job(store, clock, timeout=30, heartbeat_interval=1)
        advance_to(clock, 29)
        end_job(guard)
        for at in (30, 31, 1000):
            advance_to(clock, at)
            assert tick(store, clock) == []
        assert queued(store) == []


# -------------------------------------------------------------------------------------
# Several monitors, the deadline index
# -------------------------------------------------------------------------------------


def runtime_on(path: Path, clock: ManualClock) -> Chaperone:
    """A runtime on the SQLite file ``path`` with the database channel only."""
    store = SQLiteStore(path, clock, f"sqlite:///{path}")
    return Chaperone(
        Settings(channels=("database",), store_url=store.url),
        clock=clock,
        store=store,
        plugins=PluginHost(entry_points=False),
    )


def firing_and_resolved(history: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """How many alerts of each (type, status) the history holds."""
    return Counter((record["type"], record["alert_status"]) for record in history)


class TestSeveralMonitors:
    """Two monitors on one store report each episode once."""

    @settings(max_examples=10)
    @given(order=st.lists(st.booleans(), min_size=30, max_size=30))
    def test_two_monitors_taking_turns(self, order: list[bool]) -> None:
        """Whichever of two monitors ticks when, a stuck episode, its recovery, a
        timeout and the job's end each give one alert."""
        clock = ManualClock(START)
        with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
            path = Path(folder) / "c.db"
            monitors = [Monitor(stack.enter_context(runtime_on(path, clock))) for _ in range(2)]
            store = monitors[0].chaperone.store
            guard, job = start_job(store, clock, timeout=7, heartbeat_interval=1)
            for step, first in enumerate(order):
                clock.advance(0.5)  # step k runs at (k + 1) / 2 s
                if step == 12:
                    job.heartbeat()  # at 6.5 s: stuck since 3.25 s, recovers by 7.5 s
                if step == 16:
                    end_job(guard)  # at 8.5 s: timed out since 7 s, not stuck again
                monitors[0 if first else 1].tick()
            counts = firing_and_resolved(read_history(store, 1000))
        assert counts == {
            ("job_stuck", "firing"): 1,
            ("job_stuck", "resolved"): 1,
            ("job_timeout", "firing"): 1,
            ("job_timeout", "resolved"): 1,
        }

    def test_two_monitors_ticking_at_once(self, tmp_path: Path) -> None:
        """Two monitors in two threads, ticking together over 40 jobs stuck at once,
        report each job once."""
        clock = ManualClock(START)
        path = tmp_path / "c.db"
        with runtime_on(path, clock) as first, runtime_on(path, clock) as second:
            supervisor = Supervisor(first.store, clock)
            ids = [
                running_job(supervisor, "many", heartbeat_interval=1).supervision_id
                for _ in range(40)
            ]
            clock.advance(5)
            barrier = threading.Barrier(2)
            found: list[list[Event]] = [[], []]

            def run(index: int, monitor: Monitor) -> None:
                barrier.wait(timeout=10)
                for _ in range(3):
                    found[index].extend(monitor.detect())

            threads = [
                threading.Thread(target=run, args=(i, Monitor(r)))
                for i, r in enumerate((first, second))
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        stuck = Counter(e.supervision_id for side in found for e in side if isinstance(e, JobStuck))
        assert stuck == dict.fromkeys(ids, 1)


class TestDeadlineIndex:
    """Jobs are found through the deadline index, not by scanning them."""

    @pytest.mark.parametrize("kind", ["memory", "sqlite"])
    def test_a_tick_with_nothing_due_reads_no_job(self, kind: str, tmp_path: Path) -> None:
        """Over thousands of running jobs none of which is due, the detector asks the
        index once and reads no job record."""
        clock = ManualClock(START)
        inner = open_store(kind, clock, tmp_path)
        supervisor = Supervisor(inner, clock)
        for index in range(2_000):
            running_job(supervisor, f"j{index % 7}", heartbeat_interval=60, timeout=3600)
        clock.advance(100)
        store = CountingStore(inner)
        events = list(detector.check_due(store, clock.timestamp()))
        inner.close()
        assert events == []
        assert [name for name, _ in store.calls] == ["due"]

    def test_a_monitor_tick_touches_no_job_record(self, tmp_path: Path) -> None:
        """A whole monitor tick (every built-in detector) over thousands of jobs of
        which none is due reads no job record and lists no job keys."""
        clock = ManualClock(START)
        path = tmp_path / "c.db"
        inner = SQLiteStore(path, clock, f"sqlite:///{path}")
        counting = CountingStore(inner)
        with make_runtime(store=counting, clock=clock, channels=("database",)) as runtime:
            supervisor = Supervisor(inner, clock)
            for _ in range(1000):
                running_job(supervisor, heartbeat_interval=60)
            clock.advance(30)
            counting.calls.clear()
            reports = Monitor(runtime).tick()
        assert reports == []
        touched = [
            (name, arg)
            for name, arg in counting.calls
            if any(str(key).startswith(_keys.JOB_PREFIX) for key in _as_list(arg))
            or (name == "keys" and _keys.JOB_PREFIX.startswith(str(arg)))
        ]
        assert touched == []
        # One read of the jobs' deadline index (other detectors read their own indexes).
        assert counting.calls.count(("due", _keys.DEADLINES)) == 1

    def test_a_tick_handles_a_bounded_number_of_due_checks(
        self, store_and_clock: tuple[Store, ManualClock]
    ) -> None:
        """With more checks due than a tick handles, the rest wait for the next tick;
        none is lost or reported twice."""
        store, clock = store_and_clock
        supervisor = Supervisor(store, clock)
        count = detector.MAX_DUE_PER_TICK + 250
        deadlines = {
            running_job(supervisor, heartbeat_interval=1).record.stuck_deadline
            for _ in range(count)
        }
        (deadline,) = deadlines
        assert deadline is not None
        clock.advance(deadline - clock.timestamp())
        first, second, third = tick(store, clock), tick(store, clock), tick(store, clock)
        assert len(first) == detector.MAX_DUE_PER_TICK
        assert len(second) == 250
        assert third == []
        ids = [e.supervision_id for e in first + second if isinstance(e, JobStuck)]
        assert len(set(ids)) == count

    def test_checks_of_vanished_or_finished_jobs_are_dropped(
        self, store_and_clock: tuple[Store, ManualClock]
    ) -> None:
        """A scheduled check whose job record is gone, or whose job is no longer
        running, or of an unknown kind, is dropped without an event."""
        store, clock = store_and_clock
        guard, job = start_job(store, clock, heartbeat_interval=1, timeout=2)
        store.delete(_keys.job_key(job.supervision_id))
        record = JobRecord(supervision_id="finished", name="x", started_at=T0, heartbeat_interval=1)
        store.set(_keys.job_key("finished"), attrs.evolve(record, state="completed").to_json())
        store.schedule(_keys.DEADLINES, _keys.member("finished", "stuck"), T0)
        store.schedule(_keys.DEADLINES, _keys.member(job.supervision_id, "sideways"), T0)
        clock.advance(10)
        assert tick(store, clock) == []
        assert store.due(_keys.DEADLINES, math.inf, 10) == []
        end_job(guard)


# -------------------------------------------------------------------------------------
# Through the pipeline
# -------------------------------------------------------------------------------------


class TestAlerts:
    """What the detector finds becomes alerts through the monitor."""

    def test_stuck_then_recovered_alerts(self, tmp_path: Path) -> None:
        """A stuck job gives a firing job_stuck alert keyed by its id, and its recovery
        the resolved one."""
        clock = ManualClock(START)
        with runtime_on(tmp_path / "c.db", clock) as runtime:
            monitor = Monitor(runtime)
            guard, job = start_job(runtime.store, clock, heartbeat_interval=1)
            deadline = job.record.stuck_deadline
            assert deadline is not None
            clock.advance(deadline - clock.timestamp())
            monitor.tick()
            clock.advance(0.5)
            job.heartbeat()
            clock.advance(1)
            monitor.tick()
            end_job(guard)
            monitor.tick()
            history = read_history(runtime.store, 100)
        assert [(r["type"], r["alert_status"], r["key"]) for r in reversed(history)] == [
            ("job_stuck", "firing", job.supervision_id),
            ("job_stuck", "resolved", job.supervision_id),
        ]

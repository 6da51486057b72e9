"""How a schedule stands (up, late, missed, failed, paused), its last run from the
last-run index supervision writes, and schedules declared in code merged with the
configuration's. An injected clock; real supervision into memory and SQLite stores.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaperone._clock import ManualClock
from chaperone.config import Settings
from chaperone.schedules import (
    LastRun,
    Schedule,
    ScheduleReading,
    ScheduleState,
    all_schedules,
    declarations,
    declare,
    last_run,
    pause,
    resume,
    schedule_of,
    schedule_state,
    schedule_states,
)
from chaperone.schedules._stored import ScheduleFacts
from chaperone.store import MemoryStore, SQLiteStore, Store
from chaperone.supervision import Supervisor, supervise
from chaperone.testing.redis_server import RedisServer

START = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
NIGHTLY = Schedule(job="nightly", cron="0 3 * * *", grace=timedelta(minutes=10))


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    """A memory store, a real SQLite file and the real Redis server, on the test's clock."""
    opened: Store
    cleanup = None
    if request.param == "memory":
        opened = MemoryStore(clock)
    elif request.param == "sqlite":
        path = tmp_path / "store.db"
        opened = SQLiteStore(path, clock, f"sqlite:///{path}")
    else:
        from chaperone.store._redis import RedisStore

        server: RedisServer = request.getfixturevalue("redis_server")
        prefix = f"schedules{uuid.uuid4().hex}:"
        opened = RedisStore(server.url(prefix=prefix), clock)
        cleanup = functools.partial(server.clear, prefix)
    yield opened
    opened.close()
    if cleanup is not None:
        cleanup()


@pytest.fixture
def clock() -> ManualClock:
    """A clock at 02:00 UTC on 2026-01-01."""
    return ManualClock(START)


def run_job(store: Store, clock: ManualClock, name: str, *, fail: bool = False) -> None:
    """One run of job ``name`` through ``supervise``, ending at once (failed on request)."""
    job = supervise(name, supervisor=Supervisor(store, clock))
    if fail:
        with pytest.raises(RuntimeError), job:
            raise RuntimeError("boom")
    else:
        with job:
            pass


class TestStates:
    def test_never_ran_counts_from_first_seen(self, store: Store, clock: ManualClock) -> None:
        """A job that never ran is up until its first expected run after the schedule was
        first seen, late within grace, missed after.
        """
        assert schedule_state(NIGHTLY, store, clock.now()).state is ScheduleState.UP
        clock.advance(timedelta(hours=1, minutes=5))  # 03:05
        status = schedule_state(NIGHTLY, store, clock.now())
        assert (status.state, status.expected_at) == (
            ScheduleState.LATE,
            START + timedelta(hours=1),
        )
        clock.advance(timedelta(minutes=5))  # 03:10, grace over
        status = schedule_state(NIGHTLY, store, clock.now())
        assert (status.state, status.missed, status.last_run) == (ScheduleState.MISSED, 1, None)

    def test_a_run_moves_the_next_expected(self, store: Store, clock: ManualClock) -> None:
        """A run at 03:00 makes the next expected run tomorrow's, and the state up."""
        clock.advance(timedelta(hours=1, minutes=20))
        run_job(store, clock, "nightly")
        status = schedule_state(NIGHTLY, store, clock.now())
        assert status.state is ScheduleState.UP
        assert status.expected_at == datetime(2026, 1, 2, 3, tzinfo=UTC)
        assert status.last_run is not None
        assert (status.last_run.started_at, status.last_run.state) == (clock.now(), "completed")

    def test_three_days_silent_counts_three(self, store: Store, clock: ManualClock) -> None:
        """After a run, three nights without one are three missed runs."""
        clock.advance(timedelta(hours=1))
        run_job(store, clock, "nightly")
        clock.advance(timedelta(days=3, minutes=10))
        status = schedule_state(NIGHTLY, store, clock.now())
        assert (status.state, status.missed) == (ScheduleState.MISSED, 3)

    def test_failed_run_until_the_next_success(self, store: Store, clock: ManualClock) -> None:
        """A run that ended failed says failed; the next successful one says up again."""
        run_job(store, clock, "nightly", fail=True)
        assert schedule_state(NIGHTLY, store, clock.now()).state is ScheduleState.FAILED
        run_job(store, clock, "nightly")
        assert schedule_state(NIGHTLY, store, clock.now()).state is ScheduleState.UP

    def test_running_job_is_up(self, store: Store, clock: ManualClock) -> None:
        """A run under way counts as the expected start."""
        supervisor = Supervisor(store, clock)
        with supervise("nightly", supervisor=supervisor):
            run = last_run(store, "nightly")
            assert run is not None
            assert run.state == "running"
            assert schedule_state(NIGHTLY, store, clock.now()).state is ScheduleState.UP

    def test_pause_and_resume(self, store: Store, clock: ManualClock) -> None:
        """A paused schedule says paused, even when missed; resumed, the runs expected
        while it was paused are not missed: it is up until the next run after the resume
        passes its grace.
        """
        assert schedule_state(NIGHTLY, store, clock.now()).state is ScheduleState.UP
        clock.advance(timedelta(days=1))
        assert schedule_state(NIGHTLY, store, clock.now()).state is ScheduleState.MISSED
        pause(store, "nightly", clock.now())
        assert schedule_state(NIGHTLY, store, clock.now()).state is ScheduleState.PAUSED
        assert resume(store, "nightly", clock.now()) is True
        assert resume(store, "nightly", clock.now()) is False
        resumed = schedule_state(NIGHTLY, store, clock.now())
        assert resumed.state is ScheduleState.UP
        assert resumed.expected_at > clock.now()
        clock.advance(timedelta(days=1, hours=1))
        assert schedule_state(NIGHTLY, store, clock.now()).state is ScheduleState.MISSED

    def test_every_expects_a_period_after_the_last_start(
        self, store: Store, clock: ManualClock
    ) -> None:
        """An every-15m job that ran is up for 15 minutes, late for its grace, then missed."""
        schedule = Schedule.from_text("sync", "every 15m", grace=timedelta(minutes=2))
        run_job(store, clock, "sync")
        clock.advance(timedelta(minutes=14))
        assert schedule_state(schedule, store, clock.now()).state is ScheduleState.UP
        clock.advance(timedelta(minutes=2))
        assert schedule_state(schedule, store, clock.now()).state is ScheduleState.LATE
        clock.advance(timedelta(minutes=1))
        assert schedule_state(schedule, store, clock.now()).state is ScheduleState.MISSED

    def test_public_form(self, store: Store, clock: ManualClock) -> None:
        """The JSON form names the job, its schedule, state, last run and expected run."""
        run_job(store, clock, "nightly")
        public = schedule_state(NIGHTLY, store, clock.now()).to_public()
        assert public["job"] == "nightly"
        assert public["schedule"] == "0 3 * * *"
        assert public["state"] == "up"
        assert public["last_run"]["state"] == "completed"
        assert public["expected_at"] == "2026-01-01T03:00:00+00:00"


class TestManyAtOnce:
    def test_the_same_as_one_by_one(self, store: Store, clock: ManualClock) -> None:
        """Read together, the schedules stand as each does read alone: missed, failed,
        late, paused, up and never run, in the order given.
        """
        schedules = [
            NIGHTLY,
            Schedule.from_text("sync", "every 15m", grace=timedelta(minutes=5)),
            Schedule.from_text("import", "every 2h"),
            Schedule.from_text("paused", "every 1m"),
            Schedule(job="hourly", cron="@hourly", grace=timedelta(0)),
            Schedule(job="weekly", cron="@weekly"),
        ]
        schedule_states(schedules, store, clock.now())  # first seen now
        run_job(store, clock, "sync")
        run_job(store, clock, "import", fail=True)
        pause(store, "paused", clock.now())
        clock.advance(timedelta(hours=1, minutes=18))  # 03:18
        run_job(store, clock, "hourly")
        together = schedule_states(schedules, store, clock.now())
        alone = [schedule_state(schedule, store, clock.now()) for schedule in schedules]
        assert together == alone
        assert [status.state.value for status in together] == [
            "missed",
            "missed",
            "failed",
            "paused",
            "up",
            "up",
        ]

    def test_one_read_for_any_number(self, clock: ManualClock) -> None:
        """Two hundred schedules, some run, some paused: one read of the store, of many
        keys, and no read of one key.
        """
        store = MemoryStore(clock)
        schedules = [Schedule.from_text(f"job-{n:03}", "every 1h") for n in range(200)]
        for schedule in schedules[::7]:
            run_job(store, clock, schedule.job)
        pause(store, "job-005", clock.now())
        schedule_states(schedules, store, clock.now())  # first seen now
        calls: list[str] = []
        for name in ("get", "get_many", "keys"):
            original = getattr(store, name)

            def counting(*args: object, _name: str = name, _original: object = original) -> object:
                calls.append(_name)
                return _original(*args)  # type: ignore[operator]

            object.__setattr__(store, name, counting)
        states = schedule_states(schedules, store, clock.now())
        assert calls == ["get_many"]
        assert sum(status.state is ScheduleState.PAUSED for status in states) == 1
        assert sum(status.last_run is not None for status in states) == len(schedules[::7])

    def test_none_is_no_read(self, store: Store, clock: ManualClock) -> None:
        """No schedules: no status."""
        assert schedule_states([], store, clock.now()) == []


graces = st.integers(0, 180).map(lambda minutes: timedelta(minutes=minutes))
"""Whole minutes, so that a run's deadline often falls on the very minute looked at."""
schedules = st.one_of(
    st.builds(
        lambda minutes, grace: Schedule.from_text("j", f"every {minutes}m", grace=grace),
        st.integers(1, 3 * 24 * 60),
        graces,
    ),
    st.builds(
        lambda cron, zone, grace: Schedule(
            job="j", cron=cron, timezone=ZoneInfo(zone), grace=grace
        ),
        st.sampled_from(["* * * * *", "*/7 * * * *", "30 2 * * *", "@hourly", "0 9 * * 1-5"]),
        st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
        graces,
    ),
)
runs = st.one_of(
    st.none(),
    st.builds(
        lambda state: LastRun(supervision_id="s", started_at=START, finished_at=None, state=state),
        st.sampled_from(["running", "completed", "failed", "abandoned"]),
    ),
)


class TestReading:
    @given(
        schedule=schedules,
        run=runs,
        paused=st.booleans(),
        claimed=st.booleans(),
        later=st.integers(0, 3 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes)),
    )
    def test_the_cheap_state_is_the_full_ones(
        self,
        schedule: Schedule,
        run: LastRun | None,
        paused: bool,
        claimed: bool,
        later: timedelta,
    ) -> None:
        """The state told from one expected time is the one the full status (which
        counts the runs missed) says, for any schedule, last run, pause, open missed-run
        incident and time.
        """
        facts = ScheduleFacts(
            last_run=run,
            paused=paused,
            resumed_at=None,
            seen_at=START,
            missed_claim={"expected_at": START.isoformat()} if claimed else None,
        )
        reading = ScheduleReading(schedule=schedule, facts=facts, anchor=START)
        now = START + later
        status = reading.status(now)
        assert reading.state(now) is status.state
        missed = status.missed > 0 or claimed
        assert (status.state is ScheduleState.MISSED) == (missed and not paused)


class TestScheduleOf:
    def test_configuration_then_declaration(self, store: Store, clock: ManualClock) -> None:
        """A job's schedule is the config file's, else the one declared, else none."""
        declare(store, Schedule(job="nightly", cron="@hourly"), "code", clock.now())
        declare(store, Schedule.from_text("sync", "every 5m"), "code", clock.now())
        settings = Settings(schedules=(NIGHTLY,))
        assert schedule_of(settings, store, "nightly") == NIGHTLY
        assert schedule_of(settings, store, "sync") == Schedule.from_text("sync", "every 5m")
        assert schedule_of(settings, store, "other") is None

    def test_unreadable_declaration_is_none(self, store: Store) -> None:
        """A declaration this version cannot read is no schedule, as the list skips it."""
        store.set("schedules:declared:odd", '{"schedule": {}}')
        assert schedule_of(Settings(), store, "odd") is None


class TestDeclarations:
    def test_code_declares_and_refreshes(self, store: Store, clock: ManualClock) -> None:
        """``supervise(schedule=...)`` registers the schedule; a later run refreshes it and
        keeps when it was first declared.
        """
        supervisor = Supervisor(store, clock)
        declared = supervise(
            "backup",
            schedule="30 2 * * *",
            grace="10m",
            timezone="Europe/Berlin",
            supervisor=supervisor,
        )
        with declared:
            pass
        clock.advance(timedelta(hours=1))
        with declared:
            pass
        (declaration,) = declarations(store)
        assert declaration.schedule == Schedule(
            job="backup",
            cron="30 2 * * *",
            timezone=ZoneInfo("Europe/Berlin"),
            grace=timedelta(minutes=10),
        )
        assert declaration.declared_at == START
        assert declaration.refreshed_at == START + timedelta(hours=1)
        assert declaration.declared_by.startswith("code in pid ")

    def test_every_form_in_code(self, store: Store, clock: ManualClock) -> None:
        """``schedule="every 15m"`` declares a period."""
        with supervise("sync", schedule="every 15m", supervisor=Supervisor(store, clock)):
            pass
        (declaration,) = declarations(store)
        assert declaration.schedule.every == timedelta(minutes=15)

    def test_bad_schedule_in_code_fails_at_once(self) -> None:
        """A wrong schedule is the programmer's error: ValueError when supervise is built."""
        with pytest.raises(ValueError, match="cron"):
            supervise("j", schedule="0 3 * *")
        with pytest.raises(ValueError, match="duration"):
            supervise("j", schedule="every day at noon")
        with pytest.raises(ValueError, match="time zone"):
            supervise("j", schedule="@daily", timezone="Nowhere/Else")
        with pytest.raises(ValueError, match="need a schedule"):
            supervise("j", grace="5m")

    def test_configuration_wins(self, store: Store, clock: ManualClock) -> None:
        """For a job both name, the config file's schedule is the one; others are merged."""
        declare(store, Schedule(job="nightly", cron="@hourly"), "code", clock.now())
        declare(store, Schedule.from_text("sync", "every 5m"), "code", clock.now())
        settings = Settings(schedules=(NIGHTLY,))
        assert all_schedules(settings, store) == [
            NIGHTLY,
            Schedule.from_text("sync", "every 5m"),
        ]

    def test_unreadable_declaration_is_skipped(self, store: Store, clock: ManualClock) -> None:
        """A declaration another version wrote in a form this one cannot read is left out."""
        store.set("schedules:declared:odd", '{"schedule": {}}')
        declare(store, NIGHTLY, "code", clock.now())
        assert [each.schedule for each in declarations(store)] == [NIGHTLY]


def test_start_and_end_are_noted_not_heartbeats(clock: ManualClock) -> None:
    """The last-run index is written at a run's start and end, not at each heartbeat."""
    store = MemoryStore(clock)
    supervisor = Supervisor(store, clock)
    writes: list[str] = []
    original = store.set

    def counting(key: str, value: str, ttl: float | None = None) -> None:
        writes.append(key)
        original(key, value, ttl)

    object.__setattr__(store, "set", counting)
    with supervise("j", heartbeat_interval=1, supervisor=supervisor) as job:
        for _ in range(5):
            clock.advance(2)
            job.heartbeat()
    assert writes.count("lastrun:j") == 2

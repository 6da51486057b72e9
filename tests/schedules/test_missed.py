"""``job_missed``: a scheduled run that did not start by its expected time plus grace is
reported once, through the schedules' deadline index, by whichever monitor finds it; the
next run that starts resolves it, as do a pause and the schedule's removal.

Runtimes are real (built-in plugins, the database channel keeping the history) on SQLite
files and the real Redis server; time moves through a ManualClock; job processes are
supervisors on their own connections, writing inline.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone import Chaperone, JobMissed, ManualClock, ScheduleRecovered
from chaperone._monitor import Monitor
from chaperone.builtin.database_channel import read_history
from chaperone.config import Settings
from chaperone.maintenance import start_window
from chaperone.schedules import Schedule, declare, forget, pause, resume
from chaperone.schedules import _keys as schedule_keys
from chaperone.schedules._watch import RECHECK, check_schedules
from chaperone.store import MemoryStore, Store
from chaperone.supervision import JobRecord, JobState, Supervisor, supervise
from chaperone.supervision._last_run import note_run
from helpers.fatigue import sqlite_store
from helpers.runtime import GROUPING_OFF, make_runtime
from helpers.stores import connect

START = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
JOB = "reports.nightly"
NIGHTLY = Schedule(job=JOB, cron="0 3 * * *", grace=timedelta(minutes=10))


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when told."""
    return ManualClock(START)


def monitor_runtime(store: Store, clock: ManualClock, **settings: Any) -> Chaperone:
    """A monitor's runtime on ``store``, keeping the alert history, with NIGHTLY in its
    configuration unless told otherwise."""
    settings.setdefault("schedules", (NIGHTLY,))
    return make_runtime(
        store=store, clock=clock, channels=("database",), grouping=GROUPING_OFF, **settings
    )


@pytest.fixture
def runtime(clock: ManualClock, tmp_path: Path) -> Iterator[Chaperone]:
    """A monitor's runtime on a SQLite file, NIGHTLY configured."""
    with monitor_runtime(sqlite_store(tmp_path / "c.db", clock), clock) as made:
        yield made


@pytest.fixture
def supervisor(clock: ManualClock, tmp_path: Path) -> Iterator[Supervisor]:
    """A job process's supervisor on its own connection to the same file."""
    made = Supervisor(sqlite_store(tmp_path / "c.db", clock), clock)
    yield made
    made.store.close()


def missed_alerts(store: Store) -> list[dict[str, Any]]:
    """The ``job_missed`` alerts delivered so far, oldest first."""
    history = reversed(read_history(store, 1000))
    return [record for record in history if record["type"] == "job_missed"]


def run_job(supervisor: Supervisor, clock: ManualClock, name: str = JOB) -> None:
    """One run of ``name`` that takes a minute."""

    @supervise(name, supervisor=supervisor)
    def nightly() -> None:
        clock.advance(timedelta(minutes=1))

    nightly()


def tick_until(runtime: Chaperone, clock: ManualClock, until: datetime, step: timedelta) -> None:
    """Tick the monitor every ``step`` until ``until``."""
    while clock.now() < until:
        clock.advance(min(step, until - clock.now()))
        Monitor(runtime).tick()


def move_to(clock: ManualClock, moment: datetime) -> None:
    """Move ``clock`` forward to ``moment``."""
    clock.advance(moment - clock.now())


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of January 2026, UTC."""
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


class TestMissedRun:
    def test_reported_once_with_what_to_act_on(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """A nightly job that never starts is late at 03:00, missed at 03:10: one alert
        saying when it was expected, that it never ran, and one run missed; the ticks after
        it add nothing."""
        Monitor(runtime).tick()
        tick_until(runtime, clock, at(1, 3, 9), timedelta(minutes=3))
        assert missed_alerts(runtime.store) == []
        tick_until(runtime, clock, at(1, 4), timedelta(seconds=30))
        [alert] = missed_alerts(runtime.store)
        assert (alert["alert_status"], alert["key"], alert["severity"]) == (
            "firing",
            JOB,
            "error",
        )
        assert alert["title"] == f"Job Missed: {JOB}"
        fields = alert["fields"]
        assert fields["Expected At"] == "2026-01-01 03:00:00 UTC"
        assert fields["Last Run"] == "never"
        assert fields["Missed Runs"] == "1"
        assert fields["Schedule"] == "0 3 * * * (UTC)"
        assert fields["Grace"] == "10 minutes"

    def test_resolves_when_the_next_run_starts(
        self, runtime: Chaperone, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """The run that starts after the alert resolves it within a few seconds, once; the
        next night's run on time raises nothing."""
        Monitor(runtime).tick()
        tick_until(runtime, clock, at(1, 3, 15), timedelta(minutes=1))
        run_job(supervisor, clock)
        tick_until(runtime, clock, clock.now() + timedelta(seconds=RECHECK), timedelta(seconds=1))
        statuses = [(alert["alert_status"], alert["key"]) for alert in missed_alerts(runtime.store)]
        assert statuses == [("firing", JOB), ("resolved", JOB)]
        [*_, resolved] = missed_alerts(runtime.store)
        assert resolved["fields"]["Reason"].startswith("a run started at 2026-01-01 03:15")
        assert runtime.store.get(schedule_keys.missed_key(JOB)) is None
        move_to(clock, at(2, 3, 1))
        run_job(supervisor, clock)
        tick_until(runtime, clock, at(2, 12), timedelta(minutes=5))
        assert len(missed_alerts(runtime.store)) == 2

    def test_runs_on_time_raise_nothing(
        self, runtime: Chaperone, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """A job that starts at 03:02 every night, within its grace, is never reported."""
        Monitor(runtime).tick()
        for day in range(1, 5):
            tick_until(runtime, clock, at(day, 3, 2), timedelta(minutes=20))
            run_job(supervisor, clock)
        tick_until(runtime, clock, at(5, 3, 9), timedelta(minutes=20))
        assert missed_alerts(runtime.store) == []

    def test_a_run_under_way_is_not_missed(
        self, runtime: Chaperone, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """An every-5m job whose run lasts 20 minutes misses nothing while it runs."""
        every = Schedule(job="sync", every=timedelta(minutes=5), grace=timedelta(minutes=1))
        with monitor_runtime(runtime.store, clock, schedules=(every,)) as watching:
            Monitor(watching).tick()
            with supervise("sync", supervisor=supervisor):
                tick_until(
                    watching, clock, clock.now() + timedelta(minutes=20), timedelta(minutes=1)
                )
            assert missed_alerts(watching.store) == []

    def test_restarted_three_periods_late_reports_one_with_the_count(
        self, clock: ManualClock, supervisor: Supervisor, tmp_path: Path
    ) -> None:
        """A monitor that stops after a run and comes back three nights (and a grace)
        later reports one missed run that says three were missed, the first expected the
        next night; its later ticks add nothing."""
        with monitor_runtime(sqlite_store(tmp_path / "c.db", clock), clock) as first:
            Monitor(first).tick()
            move_to(clock, at(1, 3))
            run_job(supervisor, clock)
            Monitor(first).tick()
        move_to(clock, at(4, 3, 30))
        with monitor_runtime(sqlite_store(tmp_path / "c.db", clock), clock) as second:
            tick_until(second, clock, at(4, 5), timedelta(minutes=5))
            [alert] = missed_alerts(second.store)
        assert alert["fields"]["Missed Runs"] == "3"
        assert alert["fields"]["Expected At"] == "2026-01-02 03:00:00 UTC"
        assert alert["fields"]["Last Run"] == "2026-01-01 03:00:00 UTC"


class TestManyMonitors:
    @pytest.mark.parametrize("backend", ["sqlite", "redis"])
    def test_two_monitors_report_each_missed_run_once(
        self, backend: str, request: pytest.FixtureRequest, clock: ManualClock
    ) -> None:
        """Two monitors on one store, ticking at the same moments from two threads, over
        five nights of which three are missed: three missed alerts and three resolves."""
        stores = [connect(backend, request, clock) for _ in range(3)]
        supervisor = Supervisor(stores[2], clock)
        with (
            monitor_runtime(stores[0], clock) as one,
            monitor_runtime(stores[1], clock) as two,
            ThreadPoolExecutor(2) as pool,
        ):
            barrier = threading.Barrier(2)

            def tick(runtime: Chaperone) -> None:
                barrier.wait(timeout=10)
                Monitor(runtime).tick()

            def both() -> None:
                for future in [pool.submit(tick, one), pool.submit(tick, two)]:
                    future.result(timeout=30)

            both()
            for day, runs in enumerate([False, True, False, False, True], start=1):
                move_to(clock, at(day, 3, 1))
                if runs:
                    run_job(supervisor, clock)
                for minute in (11, 20, 40):
                    move_to(clock, at(day, 3, minute))
                    both()
                move_to(clock, at(day, 23, 50))
                both()
                if not runs:  # the next day's run resolves it: start one before 03:00
                    move_to(clock, at(day + 1, 0, 30))
                    run_job(supervisor, clock)
                    clock.advance(timedelta(seconds=RECHECK))
                    both()
            statuses = [alert["alert_status"] for alert in missed_alerts(stores[2])]
        supervisor.store.close()
        assert statuses == ["firing", "resolved"] * 3


class TestPauseAndRemoval:
    def test_a_paused_schedule_is_not_reported_and_a_pause_resolves(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """Pausing a missed job's schedule resolves its alert at the next tick; while it is
        paused nothing is reported; resumed, the runs of the pause are not missed ones."""
        Monitor(runtime).tick()
        tick_until(runtime, clock, at(1, 3, 20), timedelta(minutes=5))
        pause(runtime.store, JOB, clock.now())
        Monitor(runtime).tick()
        tick_until(runtime, clock, at(4, 12), timedelta(hours=1))
        resume(runtime.store, JOB, clock.now())
        tick_until(runtime, clock, at(5, 3, 5), timedelta(hours=1))
        alerts = missed_alerts(runtime.store)
        assert [a["alert_status"] for a in alerts] == ["firing", "resolved"]
        assert alerts[1]["fields"]["Reason"] == "its schedule was paused"
        tick_until(runtime, clock, at(5, 3, 30), timedelta(minutes=5))
        assert [a["alert_status"] for a in missed_alerts(runtime.store)][-1] == "firing"

    def test_a_forgotten_declared_schedule_stops_being_watched(
        self, clock: ManualClock, tmp_path: Path
    ) -> None:
        """A declared schedule is watched like a configured one; forgotten, its open alert
        resolves and nothing more is reported."""
        every = Schedule(job="sync", every=timedelta(minutes=5), grace=timedelta(minutes=1))
        with monitor_runtime(sqlite_store(tmp_path / "c.db", clock), clock, schedules=()) as rt:
            declare(rt.store, every, "test", clock.now())
            tick_until(rt, clock, clock.now() + timedelta(minutes=7), timedelta(minutes=1))
            assert forget(rt.store, "sync", clock.now()) is True
            tick_until(rt, clock, clock.now() + timedelta(hours=1), timedelta(minutes=1))
            alerts = missed_alerts(rt.store)
            assert [(a["alert_status"], a["key"]) for a in alerts] == [
                ("firing", "sync"),
                ("resolved", "sync"),
            ]
            assert alerts[1]["fields"]["Reason"] == "its schedule was removed"
            assert rt.store.due(schedule_keys.DEADLINES, 1e12, 10) == []


CONFIG = """\
[[schedules]]
job = "sync"
every = "{every}"
grace = "1m"
"""


class TestConfigurationChanges:
    def settings_of(self, path: Path, store: Store) -> Settings:
        """The settings of the configuration file ``path``, on ``store``."""
        from chaperone.config import load_settings

        return load_settings(
            {"CHAPERONE_CONFIG": str(path), "CHAPERONE_STORE": store.url}, path.parent
        )

    def runtime_for(self, path: Path, clock: ManualClock) -> Chaperone:
        """A monitor's runtime reading its schedules from ``path``."""
        store = sqlite_store(path.parent / "c.db", clock)
        settings = self.settings_of(path, store)
        return monitor_runtime(
            store, clock, schedules=settings.schedules, config_file=settings.config_file
        )

    def write(self, path: Path, text: str) -> None:
        """Rewrite the file so that its modification time surely changes."""
        before = path.stat().st_mtime_ns if path.exists() else 0
        path.write_text(text, encoding="utf-8")
        import os

        os.utime(path, ns=(before + 10**9, before + 10**9))

    def test_a_changed_schedule_takes_effect_at_the_next_tick(
        self, clock: ManualClock, tmp_path: Path
    ) -> None:
        """A daily schedule edited into every 5 minutes is watched as such from the next
        tick: 7 minutes later the job is missed."""
        path = tmp_path / "chaperone.toml"
        self.write(path, CONFIG.format(every="1d"))
        with self.runtime_for(path, clock) as rt:
            Monitor(rt).tick()
            self.write(path, CONFIG.format(every="5m"))
            Monitor(rt).tick()
            tick_until(rt, clock, clock.now() + timedelta(minutes=7), timedelta(minutes=1))
            assert [a["key"] for a in missed_alerts(rt.store)] == ["sync"]

    def test_a_removed_schedule_stops_being_watched_and_resolves(
        self, clock: ManualClock, tmp_path: Path
    ) -> None:
        """A missed job whose schedule leaves the file is resolved at the next tick and
        never reported again."""
        path = tmp_path / "chaperone.toml"
        self.write(path, CONFIG.format(every="5m"))
        with self.runtime_for(path, clock) as rt:
            tick_until(rt, clock, clock.now() + timedelta(minutes=7), timedelta(minutes=1))
            self.write(path, "")
            tick_until(rt, clock, clock.now() + timedelta(hours=2), timedelta(minutes=1))
            alerts = missed_alerts(rt.store)
            assert [a["alert_status"] for a in alerts] == ["firing", "resolved"]
            assert alerts[1]["fields"]["Reason"] == "its schedule was removed"

    def test_a_broken_edit_keeps_the_old_schedules_and_degrades(
        self, clock: ManualClock, tmp_path: Path
    ) -> None:
        """An edit that breaks the schedules keeps the ones before in force, and reports
        the schedules part of Chaperone degraded, naming the bad setting; fixed, it
        recovers."""
        path = tmp_path / "chaperone.toml"
        self.write(path, CONFIG.format(every="5m"))
        with self.runtime_for(path, clock) as rt:
            Monitor(rt).tick()
            self.write(path, CONFIG.format(every="5m") + 'cron = "61 * * * *"\n')
            Monitor(rt).tick()
            failing = rt.self_watch.failing_parts
            assert "schedules[0]" in failing["schedules"]
            tick_until(rt, clock, clock.now() + timedelta(minutes=7), timedelta(minutes=1))
            assert [a["key"] for a in missed_alerts(rt.store)] == ["sync"]
            self.write(path, CONFIG.format(every="5m"))
            Monitor(rt).tick()
            assert "schedules" not in rt.self_watch.failing_parts


class TestDaylightSaving:
    def test_spring_forward_expects_the_skipped_time_when_the_clocks_jump(
        self, clock: ManualClock, supervisor: Supervisor, tmp_path: Path
    ) -> None:
        """In Berlin, on 29 March 2026 02:30 does not exist: the run is expected when the
        clocks jump, 03:00 CEST (01:00 UTC), and missed 10 minutes later."""
        berlin = ZoneInfo("Europe/Berlin")
        schedule = Schedule(
            job=JOB, cron="30 2 * * *", timezone=berlin, grace=timedelta(minutes=10)
        )
        move_to(clock, datetime(2026, 3, 28, 2, 30, tzinfo=berlin))
        with monitor_runtime(
            sqlite_store(tmp_path / "c.db", clock), clock, schedules=(schedule,)
        ) as rt:
            run_job(supervisor, clock)
            Monitor(rt).tick()
            tick_until(rt, clock, datetime(2026, 3, 29, 1, 9, tzinfo=UTC), timedelta(minutes=30))
            assert missed_alerts(rt.store) == []
            tick_until(rt, clock, datetime(2026, 3, 29, 1, 30, tzinfo=UTC), timedelta(minutes=1))
            [alert] = missed_alerts(rt.store)
        assert alert["fields"]["Expected At"] == "2026-03-29 01:00:00 UTC"

    def test_fall_back_expects_the_doubled_time_once(
        self, clock: ManualClock, supervisor: Supervisor, tmp_path: Path
    ) -> None:
        """In New York, 01:30 happens twice on 1 November 2026: a job that ran at the first
        is not missed at the second, and is expected next the following night."""
        new_york = ZoneInfo("America/New_York")
        schedule = Schedule(
            job=JOB, cron="30 1 * * *", timezone=new_york, grace=timedelta(minutes=10)
        )
        move_to(clock, datetime(2026, 10, 31, 12, 0, tzinfo=UTC))
        with monitor_runtime(
            sqlite_store(tmp_path / "c.db", clock), clock, schedules=(schedule,)
        ) as rt:
            Monitor(rt).tick()
            move_to(clock, datetime(2026, 11, 1, 5, 30, tzinfo=UTC))  # 01:30 EDT
            run_job(supervisor, clock)
            tick_until(rt, clock, datetime(2026, 11, 2, 6, 35, tzinfo=UTC), timedelta(minutes=10))
            assert missed_alerts(rt.store) == []  # not at 06:40 UTC (01:30 EST) on the 1st
            tick_until(rt, clock, datetime(2026, 11, 2, 7, 0, tzinfo=UTC), timedelta(minutes=5))
            [alert] = missed_alerts(rt.store)
        assert alert["fields"]["Expected At"] == "2026-11-02 06:30:00 UTC"


class TestMaintenance:
    def test_a_window_suppresses_missed_runs_and_its_summary_lists_them(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """A missed run inside a maintenance window is not delivered; the window's summary
        names the job among its missed runs."""
        Monitor(runtime).tick()
        window = start_window(runtime.store, clock.now(), timedelta(hours=2), reason="upgrade")
        tick_until(runtime, clock, at(1, 3, 30), timedelta(minutes=5))
        assert missed_alerts(runtime.store) == []
        tick_until(runtime, clock, at(1, 4, 10), timedelta(minutes=5))
        history = list(reversed(read_history(runtime.store, 100)))
        [summary] = [record for record in history if record["type"] == "maintenance"]
        assert summary["key"] == window.id
        assert JOB in summary["fields"]["Missed Runs"]
        assert "1 run" in summary["fields"]["Missed Runs"]


class TestStandingMonitorsOnly:
    def test_a_run_with_another_configuration_leaves_schedules_alone(
        self, runtime: Chaperone, clock: ManualClock, tmp_path: Path
    ) -> None:
        """The monitor inside a `chaperone run` whose folder configures no schedules (a
        cron job's folder) neither reports nor unwatches the standing monitor's schedule."""
        Monitor(runtime).tick()
        with monitor_runtime(
            sqlite_store(tmp_path / "c.db", clock), clock, schedules=()
        ) as elsewhere:
            inline = Monitor(elsewhere, vouch_for=None)
            move_to(clock, at(1, 3, 30))
            assert inline.tick() == []
            assert [job for job, _ in runtime.store.due(schedule_keys.DEADLINES, 1e12, 10)] == [JOB]
        Monitor(runtime).tick()
        assert [a["key"] for a in missed_alerts(runtime.store)] == [JOB]


class TestProperties:
    @settings(max_examples=60, deadline=None)
    @given(
        period=st.integers(min_value=1, max_value=60),
        grace=st.integers(min_value=0, max_value=30),
        steps=st.lists(st.one_of(st.just(0), st.integers(min_value=1, max_value=90)), max_size=15),
    )
    def test_the_incident_is_open_exactly_while_a_run_is_overdue(
        self, period: int, grace: int, steps: list[int]
    ) -> None:
        """For any every-schedule and any runs and waits (0: a run starts; N: N one-minute
        ticks), after every tick the missed-run incident is open exactly while no run
        started by the last start (or the first look) plus period plus grace; alerts
        alternate firing then resolved, and each firing counts the runs missed."""
        clock = ManualClock(START)
        store = MemoryStore(clock)
        schedule = Schedule(
            job=JOB, every=timedelta(minutes=period), grace=timedelta(minutes=grace)
        )
        store.schedule(schedule_keys.DEADLINES, JOB, clock.timestamp())
        anchor = clock.now()
        events: list[object] = []

        def tick() -> None:
            found = list(check_schedules(store, lambda job: schedule, clock.now()))
            events.extend(found)
            for event in found:
                if isinstance(event, JobMissed):
                    overdue = clock.now() - schedule.grace - anchor
                    assert event.missed_count == max(1, overdue // schedule.every)
            overdue = clock.now() >= anchor + schedule.every + schedule.grace
            assert (store.get(schedule_keys.missed_key(JOB)) is not None) == overdue

        tick()
        for step in steps:
            if step == 0:
                record = JobRecord(
                    supervision_id=str(uuid.uuid4()), name=JOB, started_at=clock.timestamp()
                )
                note_run(store, attrs.evolve(record, state=JobState.COMPLETED))
                anchor = clock.now()
                continue
            for _ in range(step):
                clock.advance(timedelta(minutes=1))
                tick()
        kinds = [type(event) for event in events]
        assert kinds == [JobMissed, ScheduleRecovered] * (len(kinds) // 2) + [JobMissed] * (
            len(kinds) % 2
        )

"""The schedules' page data: plain functions of a real SQLite store (runs written by
``supervise``), the settings and a manual clock: the schedule list, trouble first and a
page at a time, the overview's schedules that are not up, and a job's schedule.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone._clock import ManualClock
from chaperone.config import Settings
from chaperone.metrics._health import check_health
from chaperone.schedules import Schedule, declare, last_run, pause
from chaperone.store import MemoryStore, SQLiteStore
from chaperone.supervision import Supervisor, supervise
from chaperone.web.pages._links import Links
from chaperone.web.pages._overview import overview
from chaperone.web.pages._schedules import (
    OVERVIEW_SCHEDULES,
    PAGE_SIZE,
    STATES,
    job_schedule,
    schedule_summary,
    schedules_page,
)

START = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
SCHEDULES = (
    Schedule(
        job="backup.nightly",
        cron="0 3 * * *",
        timezone=ZoneInfo("Europe/Berlin"),
        grace=timedelta(minutes=10),
    ),
    Schedule.from_text("cleanup", "every 30m", grace=timedelta(minutes=10)),
    Schedule.from_text("paused.job", "every 1m"),
    Schedule.from_text("report", "every 1h"),
    Schedule.from_text("sync", "every 15m", grace=timedelta(minutes=2)),
)
"""By 10:35: backup.nightly up, cleanup late, paused.job paused, report failed, sync
missed (twice), once :func:`scene` has run them."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[SQLiteStore]:
    path = tmp_path / "chaperone.db"
    opened = SQLiteStore(path, clock, f"sqlite:///{path}")
    yield opened
    opened.close()


def run_job(store: SQLiteStore, clock: ManualClock, name: str, *, fail: bool = False) -> None:
    """One run of job ``name`` through ``supervise``, ending at once (failed on request)."""
    job = supervise(name, supervisor=Supervisor(store, clock, background=False))
    if fail:
        with pytest.raises(RuntimeError), job:
            raise RuntimeError("boom")
    else:
        with job:
            pass


@pytest.fixture
def scene(store: SQLiteStore, clock: ManualClock) -> Settings:
    """:data:`SCHEDULES` first seen at 10:00, sync and cleanup run then, report failed,
    paused.job paused; the clock at 10:35.
    """
    settings = Settings(schedules=SCHEDULES)
    schedules_page(settings, store, clock.now())
    run_job(store, clock, "sync")
    run_job(store, clock, "cleanup")
    run_job(store, clock, "report", fail=True)
    pause(store, "paused.job", clock.now())
    clock.advance(timedelta(minutes=35))
    return settings


def every_hour(count: int) -> Settings:
    """``count`` schedules every hour, jobs ``job-0000`` on."""
    return Settings(
        schedules=tuple(Schedule.from_text(f"job-{n:04}", "every 1h") for n in range(count))
    )


class TestSchedulesPage:
    def test_trouble_first(self, scene: Settings, store: SQLiteStore, clock: ManualClock) -> None:
        """Missed, failed, late, paused, then up; each state counted."""
        page = schedules_page(scene, store, clock.now())
        assert [(row.job, row.state) for row in page.rows] == [
            ("sync", "missed"),
            ("report", "failed"),
            ("cleanup", "late"),
            ("paused.job", "paused"),
            ("backup.nightly", "up"),
        ]
        assert page.counts == {"missed": 1, "failed": 1, "late": 1, "paused": 1, "up": 1}
        assert page.total == 5
        assert (page.page, page.has_previous, page.has_next, page.state) == (1, False, False, "")

    def test_a_row_says_everything(
        self, scene: Settings, store: SQLiteStore, clock: ManualClock
    ) -> None:
        """A row has the schedule in words, its zone, grace, state, last run (which job
        record, when, how it ended), the next expected run and the runs missed."""
        rows = {row.job: row for row in schedules_page(scene, store, clock.now()).rows}
        sync = rows["sync"]
        run = last_run(store, "sync")
        assert run is not None
        assert (sync.schedule, sync.timezone, sync.grace, sync.missed) == (
            "every 15 minutes",
            None,
            "2 minutes",
            2,
        )
        assert sync.last_run is not None
        assert sync.last_run.supervision_id == run.supervision_id
        assert sync.last_run.state == "completed"
        assert sync.last_run.started is not None
        assert sync.last_run.started.iso == "2024-01-15T10:00:00Z"
        assert sync.last_run.finished is not None
        assert sync.expected is not None
        assert (sync.expected.iso, sync.expected.ago) == ("2024-01-15T10:15:00Z", "20 min ago")
        nightly = rows["backup.nightly"]
        assert (nightly.schedule, nightly.timezone, nightly.last_run) == (
            "0 3 * * *",
            "Europe/Berlin",
            None,
        )
        assert nightly.expected is not None
        assert nightly.expected.iso == "2024-01-16T02:00:00Z"  # 03:00 in Berlin
        assert rows["report"].last_run is not None
        assert rows["report"].last_run.state == "failed"
        assert [job for job, row in rows.items() if row.paused] == ["paused.job"]

    @pytest.mark.parametrize("state", [each.value for each in STATES])
    def test_filtered_by_state(
        self, scene: Settings, store: SQLiteStore, clock: ManualClock, state: str
    ) -> None:
        """``state`` shows only the schedules in it; the counts stay those of all."""
        page = schedules_page(scene, store, clock.now(), state=state)
        assert [row.state for row in page.rows] == [state]
        assert page.state == state
        assert page.total == 5

    @pytest.mark.parametrize("state", ["bogus", "UP", "<b>"])
    def test_an_unknown_state_is_no_filter(
        self, scene: Settings, store: SQLiteStore, clock: ManualClock, state: str
    ) -> None:
        """A state that is none of the five filters nothing."""
        page = schedules_page(scene, store, clock.now(), state=state)
        assert (len(page.rows), page.state) == (5, "")

    def test_pages_of_fixed_size(self, store: SQLiteStore, clock: ManualClock) -> None:
        """Two and a half pages of schedules: full pages, then the rest, then none."""
        settings = every_hour(PAGE_SIZE * 2 + PAGE_SIZE // 2)
        pages = [schedules_page(settings, store, clock.now(), page=n) for n in (1, 2, 3, 4)]
        assert [len(page.rows) for page in pages] == [PAGE_SIZE, PAGE_SIZE, PAGE_SIZE // 2, 0]
        assert [page.has_next for page in pages] == [True, True, False, False]
        assert pages[1].rows[0].job == f"job-{PAGE_SIZE:04}"

    def test_no_schedules(self, store: SQLiteStore, clock: ManualClock) -> None:
        """No schedule: an empty page, every state counted zero."""
        page = schedules_page(Settings(), store, clock.now())
        assert (page.rows, page.total, page.has_next) == ((), 0, False)

    def test_declared_schedules_too(self, store: SQLiteStore, clock: ManualClock) -> None:
        """A schedule declared by ``chaperone run --schedule`` is listed with the config's."""
        declare(store, Schedule(job="declared", cron="@hourly"), "chaperone run", clock.now())
        page = schedules_page(Settings(schedules=SCHEDULES[:1]), store, clock.now())
        assert [row.job for row in page.rows] == ["backup.nightly", "declared"]


KINDS = ("missed", "failed", "late", "paused", "up")
"""What :func:`kinds_at` makes of a job: trouble first, as the list orders them."""


def kinds_at(jobs: dict[str, str]) -> tuple[Settings, MemoryStore, ManualClock]:
    """A memory store where each job of ``jobs`` (name: kind) has a schedule every 10
    minutes, first seen at 10:00, and by 10:12 is what its kind says: missed (no grace,
    no run), late (5 minutes' grace, no run), failed or up (a run at 10:12) or paused.
    """
    clock = ManualClock(START)
    store = MemoryStore(clock)
    settings = Settings(
        schedules=tuple(
            Schedule.from_text(job, "every 10m", grace=timedelta(0 if kind == "missed" else 5 * 60))
            for job, kind in jobs.items()
        )
    )
    schedules_page(settings, store, clock.now())
    clock.advance(timedelta(minutes=12))
    supervisor = Supervisor(store, clock, background=False)
    for job, kind in jobs.items():
        if kind == "paused":
            pause(store, job, clock.now())
        elif kind in ("failed", "up"):
            with contextlib.suppress(RuntimeError), supervise(job, supervisor=supervisor):
                if kind == "failed":
                    raise RuntimeError("boom")
    return settings, store, clock


class TestOrderAndFilter:
    @settings(max_examples=30, deadline=None)
    @given(
        st.dictionaries(
            st.text(st.characters(codec="utf-8", categories=["L", "N", "P"]), max_size=12),
            st.sampled_from(KINDS),
            max_size=PAGE_SIZE + 30,
        )
    )
    def test_any_mix(self, jobs: dict[str, str]) -> None:
        """Any jobs of any states: page after page lists every one once, trouble first
        then by name; filtered by a state, only those in it; the counts are right."""
        config, store, clock = kinds_at(jobs)
        expected = sorted(jobs, key=lambda job: (KINDS.index(jobs[job]), job))
        for state in ("", *KINDS):
            listed = []
            for number in itertools.count(1):
                page = schedules_page(config, store, clock.now(), state=state, page=number)
                listed += [(row.job, row.state) for row in page.rows]
                if not page.has_next:
                    break
            assert listed == [(job, jobs[job]) for job in expected if state in ("", jobs[job])]
            assert page.counts == {kind: list(jobs.values()).count(kind) for kind in KINDS}


class TestScheduleSummary:
    def test_those_not_up(self, scene: Settings, store: SQLiteStore, clock: ManualClock) -> None:
        """Missed, failed, late and paused, trouble first; the number of all."""
        summary = schedule_summary(scene, store, clock.now())
        assert [row.job for row in summary.not_up] == ["sync", "report", "cleanup", "paused.job"]
        assert (summary.more, summary.total) == (0, 5)

    def test_all_up(self, store: SQLiteStore, clock: ManualClock) -> None:
        """Every schedule on time: none listed, all counted."""
        summary = schedule_summary(every_hour(3), store, clock.now())
        assert (summary.not_up, summary.more, summary.total) == ((), 0, 3)

    def test_none(self, store: SQLiteStore, clock: ManualClock) -> None:
        """No schedule: nothing to say."""
        summary = schedule_summary(Settings(), store, clock.now())
        assert (summary.not_up, summary.more, summary.total) == ((), 0, 0)

    def test_a_cut_list(self, store: SQLiteStore, clock: ManualClock) -> None:
        """Past OVERVIEW_SCHEDULES schedules not up, the first are listed, the rest counted."""
        settings = every_hour(OVERVIEW_SCHEDULES + 7)
        schedule_summary(settings, store, clock.now())  # first seen at 10:00
        clock.advance(timedelta(hours=1, minutes=2))
        summary = schedule_summary(settings, store, clock.now())
        assert len(summary.not_up) == OVERVIEW_SCHEDULES
        assert (summary.more, summary.total) == (7, OVERVIEW_SCHEDULES + 7)
        assert {row.state for row in summary.not_up} == {"late"}
        assert summary.not_up[0].job == "job-0000"

    def test_on_the_overview(self, scene: Settings, store: SQLiteStore, clock: ManualClock) -> None:
        """The overview carries the summary."""
        health = check_health(store, scene, clock.timestamp())
        page = overview(store, scene, clock.now(), incidents=[], health=health)
        assert page.schedules == schedule_summary(scene, store, clock.now())
        assert page.schedules.total == 5


class TestJobSchedule:
    def test_configured_declared_and_none(
        self, scene: Settings, store: SQLiteStore, clock: ManualClock
    ) -> None:
        """A job's schedule and its state, from the config or declared; none for others."""
        declare(store, Schedule(job="declared", cron="@hourly"), "chaperone run", clock.now())
        sync = job_schedule(scene, store, "sync", clock.now())
        assert sync is not None
        assert (sync.job, sync.state, sync.missed) == ("sync", "missed", 2)
        declared = job_schedule(scene, store, "declared", clock.now())
        assert declared is not None
        assert (declared.schedule, declared.state) == ("0 * * * *", "up")
        assert job_schedule(scene, store, "nope", clock.now()) is None


class TestScheduleLinks:
    def test_the_list_and_the_buttons(self) -> None:
        """The list with its filter and page; the buttons quote any job name whole."""
        links = Links("/chaperone/")
        assert links.schedules() == "/chaperone/schedules"
        assert links.schedules("missed") == "/chaperone/schedules?state=missed"
        assert links.schedules("", 3) == "/chaperone/schedules?page=3"
        assert links.schedules("up", 2) == "/chaperone/schedules?state=up&page=2"
        job = 'a/b c?d#"<x>'
        assert links.pause_schedule(job) == (
            "/chaperone/schedules/a%2Fb%20c%3Fd%23%22%3Cx%3E/pause"
        )
        assert links.resume_schedule(job).endswith("/a%2Fb%20c%3Fd%23%22%3Cx%3E/resume")

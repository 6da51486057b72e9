"""The page data: plain functions of a real SQLite store (jobs written by the supervisor,
history by the database channel's ``record_delivery``), the settings and the time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs
import pytest

import helpers.web_pages
from chaperone._alerts import Alert, AlertStatus
from chaperone._clock import ManualClock
from chaperone._matching import parse_match
from chaperone.builtin.database_channel import HISTORY_STREAM, record_delivery
from chaperone.config import RecurringWindow, Settings
from chaperone.maintenance import start_window
from chaperone.metrics._counters import record_delivery as record_metric
from chaperone.metrics._health import check_health
from chaperone.store import SQLiteStore
from chaperone.supervision import JobRecord, Supervisor, _keys, supervise
from chaperone.web.pages._history import PAGE_SIZE, history_page, page_number
from chaperone.web.pages._incidents import incident_page
from chaperone.web.pages._jobs import job_page, job_rows
from chaperone.web.pages._links import Links
from chaperone.web.pages._maintenance import maintenance_page
from chaperone.web.pages._moments import moment, relative
from chaperone.web.pages._overview import OVERVIEW_JOBS, delivery_health, overview

START = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[SQLiteStore]:
    path = tmp_path / "chaperone.db"
    opened = SQLiteStore(path, clock, f"sqlite:///{path}")
    yield opened
    opened.close()


@pytest.fixture
def supervisor(store: SQLiteStore, clock: ManualClock) -> Supervisor:
    return Supervisor(store, clock, background=False)


def old_job(supervisor: Supervisor, name: str, *, age: float, **settings: object) -> str:
    """Write a running job that started ``age`` seconds ago; return its id."""
    record = JobRecord(
        supervision_id=str(uuid.uuid4()),
        name=name,
        started_at=supervisor.clock.timestamp() - age,
        **settings,  # type: ignore[arg-type]
    )
    supervisor.write(record)
    return record.supervision_id


def alert_about(supervision_id: str, at: datetime, **changes: object) -> Alert:
    """A job-stuck alert about the job ``supervision_id`` at ``at``."""
    values: dict[str, object] = {
        "type": "job_stuck",
        "key": supervision_id,
        "headline": "Job Stuck",
        "title": "Job Stuck: reports.build",
        "summary": "No heartbeat for 30 minutes.",
        "occurred_at": at,
        "fields": {"Supervision ID": supervision_id, "Job Class": "reports.build"},
        "supervision_id": supervision_id,
    }
    values.update(changes)
    return Alert(**values)  # type: ignore[arg-type]


def deliver(
    store: SQLiteStore, clock: ManualClock, alert: Alert, channel: str, **more: object
) -> None:
    """Record ``alert``'s delivery to ``channel`` as the database channel does."""
    record_delivery(
        store,
        clock,
        alert=alert,
        channel=channel,
        route="default",
        status=str(more.pop("status", "delivered")),
        max_len=10_000,
        **more,  # type: ignore[arg-type]
    )


def incident_for(supervision_id: str, **changes: object) -> helpers.web_pages.StandInIncident:
    values: dict[str, object] = {
        "type": "job_stuck",
        "key": supervision_id,
        "title": "Job Stuck: reports.build",
        "opened_at": START,
        "last_alert_at": START,
        "supervision_id": supervision_id,
    }
    values.update(changes)
    return helpers.web_pages.StandInIncident(**values)  # type: ignore[arg-type]


class TestMoments:
    @pytest.mark.parametrize(
        ("seconds", "said"),
        [
            (0.2, "just now"),
            (42, "42 s ago"),
            (180, "3 min ago"),
            (7300, "2 h ago"),
            (90000, "1 d ago"),
            (-120, "in 2 min"),
        ],
    )
    def test_relative(self, seconds: float, said: str) -> None:
        """A span is said in its largest whole unit, before or after now."""
        assert relative(seconds) == said

    def test_a_moment_from_each_form(self) -> None:
        """A datetime, Unix seconds and ISO text give the same UTC moment; junk gives None."""
        now = START + timedelta(minutes=3)
        forms = [START, START.timestamp(), START.isoformat()]
        seen = {moment(form, now) for form in forms}
        assert len(seen) == 1
        only = seen.pop()
        assert only is not None
        assert (only.iso, only.ago) == ("2024-01-15T10:00:00Z", "3 min ago")
        assert moment("not a time", now) is None
        assert moment("2024-01-15T10:00:00", now) is None  # naive: its zone is unknown
        assert moment(None, now) is None


class TestLinks:
    def test_a_key_with_slashes_and_an_id_with_odd_characters(self) -> None:
        """Path parts are escaped: an incident key keeps its slashes, a job id does not."""
        links = Links("/chaperone/")
        assert links.job("a/b c") == "/chaperone/jobs/a%2Fb%20c"
        assert links.incident("threshold", "error_rate:api/v1") == (
            "/chaperone/incidents/threshold/error_rate%3Aapi/v1"
        )
        assert links.acknowledge("job_stuck", "x") == "/chaperone/incidents/job_stuck/x/acknowledge"
        assert links.jobs(state="stuck", name="a&b") == "/chaperone/jobs?state=stuck&name=a%26b"
        assert Links("").overview() == "/"


class TestJobRows:
    def test_filters_by_state_and_name(
        self, supervisor: Supervisor, store: SQLiteStore, clock: ManualClock
    ) -> None:
        """The list filters by state and by a name substring in any case, newest first."""
        with supervise("Reports.Build", supervisor=supervisor) as done:
            done.progress(5, 10)
        clock.advance(10)
        running = old_job(supervisor, "reports.email", age=1, heartbeat_interval=60)
        failing = supervise("feeds.import", supervisor=supervisor)
        with pytest.raises(RuntimeError, match="exploded"), failing as bad:
            raise RuntimeError("exploded")
        failed_id = bad.supervision_id
        now = clock.now()
        everything = job_rows(store, now)
        assert [row.name for row in everything] == [
            "feeds.import",
            "reports.email",
            "Reports.Build",
        ]
        assert {row.supervision_id for row in everything} == {
            done.supervision_id,
            running,
            failed_id,
        }
        reports = job_rows(store, now, name="REPORTS")
        assert {row.name for row in reports} == {"Reports.Build", "reports.email"}
        assert [row.supervision_id for row in job_rows(store, now, states=("failed",))] == [
            failed_id
        ]
        completed = job_rows(store, now, states=("completed",))[0]
        assert completed.progress is not None
        assert completed.progress.percent == 50

    def test_stuck_as_the_monitor_found_it(
        self, supervisor: Supervisor, store: SQLiteStore, clock: ManualClock
    ) -> None:
        """A running job with an open stuck incident is listed as stuck."""
        stuck = old_job(supervisor, "job.stuck", age=100, heartbeat_interval=1)
        store.set(_keys.incident_key(stuck, "job_stuck"), "{}")
        rows = job_rows(store, clock.now(), states=("stuck",))
        assert [row.supervision_id for row in rows] == [stuck]


class TestJobPage:
    def test_unknown_id(self, store: SQLiteStore, clock: ManualClock) -> None:
        """An id no job has gives no page."""
        assert job_page(store, "no-such-job", clock.now()) is None

    def test_everything_about_a_job(
        self, supervisor: Supervisor, store: SQLiteStore, clock: ManualClock
    ) -> None:
        """The page holds the job's facts, limits, metadata, open resource violation,
        its alerts with their deliveries per channel, and a timeline in time order."""
        job_id = old_job(
            supervisor,
            "reports.build",
            age=0,
            heartbeat_interval=30,
            missed_heartbeats=4,
            timeout=600,
            memory_limit_mb=512,
            cpu_limit_percent=150,
            metadata={"customer": "acme", "batch": [1, 2]},
            progress_current=3,
            progress_total=12,
        )
        clock.advance(60)
        record = JobRecord.from_json(store.get(_keys.job_key(job_id)) or "")
        supervisor.write(attrs.evolve(record, last_heartbeat=clock.timestamp()))
        clock.advance(200)
        store.set(
            _keys.incident_key(job_id, "resource_violation:memory"),
            json.dumps({"limit": 512, "actual": 768.5, "since": clock.timestamp()}),
        )
        fired = clock.now()
        stuck = alert_about(job_id, fired)
        deliver(store, clock, stuck, "database")
        clock.advance(2)
        deliver(store, clock, stuck, "slack", status="failed", attempts=3, detail="HTTP 500")
        deliver(store, clock, stuck, "log")
        other = alert_about("another-job", fired)
        deliver(store, clock, other, "database")
        clock.advance(30)
        acked = incident_for(
            job_id, acknowledged_by="grace", acknowledged_at=clock.now(), ack_note="on it"
        )
        clock.advance(30)

        page = job_page(store, job_id, clock.now(), [acked, incident_for("another-job")])

        assert page is not None
        assert (page.job.name, page.job.state) == ("reports.build", "running")
        assert page.job.progress is not None
        assert page.job.progress.percent == 25
        assert page.job.last_heartbeat is not None
        assert page.job.last_heartbeat.ago == "4 min ago"
        assert {limit.name: limit.value for limit in page.limits} == {
            "timeout": "600 s",
            "heartbeat interval": "30 s",
            "stuck after missing": "4 heartbeats",
            "memory": "512 MB",
            "CPU": "150 % of a core",
        }
        assert page.metadata == {"customer": "acme", "batch": "[1, 2]"}
        [sample] = page.samples
        assert (sample.measure, sample.limit, sample.actual) == ("memory", 512, 768.5)
        [alert] = page.alerts
        assert [(d.channel, d.status, d.attempts, d.detail) for d in alert.deliveries] == [
            ("database", "delivered", 1, ""),
            ("slack", "failed", 3, "HTTP 500"),
            ("log", "delivered", 1, ""),
        ]
        assert alert.failed == 1
        assert [incident.key for incident in page.incidents] == [job_id]
        whats = [entry.what for entry in page.timeline]
        assert whats == [
            "started",
            "last heartbeat",
            "alert firing: Job Stuck: reports.build",
            "acknowledged by grace",
        ]
        times = [entry.at.at for entry in page.timeline]
        assert times == sorted(times)

    def test_a_finished_job_ends_its_timeline(
        self, supervisor: Supervisor, store: SQLiteStore, clock: ManualClock
    ) -> None:
        """A failed job's timeline ends with its failure and the error; a resolved alert
        found by the supervision id in its fields is among its alerts."""
        clock.advance(5)
        failing = supervise("feeds.import", supervisor=supervisor)
        with pytest.raises(ValueError, match="bad row"), failing as job:
            raise ValueError("bad row 7")
        resolved = alert_about(
            "feeds.import:x",
            clock.now(),
            status=AlertStatus.RESOLVED,
            type="threshold",
            fields={"Supervision ID": job.supervision_id},
        )
        deliver(store, clock, resolved, "database")
        page = job_page(store, job.supervision_id, clock.now() + timedelta(seconds=1))
        assert page is not None
        assert page.timeline[-1].what == "failed"
        assert "bad row 7" in page.timeline[-1].detail
        assert [alert.status for alert in page.alerts] == ["resolved"]


def record_action(
    store: SQLiteStore, alert: Alert, status: str, by: str, at: datetime, note: str = ""
) -> None:
    """Append a person's action on ``alert``'s incident to the history, as the incidents
    module writes it: no channel, ``by`` and ``note``."""
    record = {
        "type": alert.type,
        "key": alert.key,
        "channel": "",
        "route": "",
        "status": status,
        "alert_status": status,
        "severity": alert.severity.value,
        "priority": alert.priority.value,
        "title": alert.title,
        "summary": alert.summary,
        "fields": dict(alert.fields),
        "occurred_at": at.isoformat(),
        "recorded_at": at.isoformat(),
        "attempts": 0,
        "detail": f"{status} by {by}",
        "by": by,
        "note": note,
    }
    store.append(HISTORY_STREAM, json.dumps(record), 10_000)


class TestActions:
    def test_acknowledgements_in_the_history(
        self, supervisor: Supervisor, store: SQLiteStore, clock: ManualClock
    ) -> None:
        """An acknowledgement and its undoing, recorded in the history, are the job's
        alerts without deliveries and on its timeline once each, the incident's
        acknowledgement in force not repeated."""
        job_id = old_job(supervisor, "reports.build", age=0)
        clock.advance(10)
        stuck = alert_about(job_id, clock.now())
        deliver(store, clock, stuck, "slack")
        clock.advance(10)
        record_action(store, stuck, "acknowledged", "grace", clock.now(), "on it")
        clock.advance(10)
        record_action(store, stuck, "unacknowledged", "grace", clock.now())
        clock.advance(10)
        again = clock.now()
        record_action(store, stuck, "acknowledged", "alan", again)
        incident = incident_for(job_id, acknowledged_by="alan", acknowledged_at=again)

        page = job_page(store, job_id, clock.now(), [incident])

        assert page is not None
        assert [
            (alert.status, alert.by, alert.note, alert.deliveries) for alert in page.alerts[:3]
        ] == [
            ("acknowledged", "alan", "", ()),
            ("unacknowledged", "grace", "", ()),
            ("acknowledged", "grace", "on it", ()),
        ]
        assert [entry.what for entry in page.timeline] == [
            "started",
            "alert firing: Job Stuck: reports.build",
            "acknowledged by grace",
            "unacknowledged by grace",
            "acknowledged by alan",
        ]
        assert page.timeline[2].detail == "on it"

    def test_an_acknowledgement_passed_on_shows_where(
        self, supervisor: Supervisor, store: SQLiteStore, clock: ManualClock
    ) -> None:
        """The acknowledgement's delivery to PagerDuty (the same moment as the person's
        record) is the action's delivery, not an alert of its own nor a blank channel."""
        job_id = old_job(supervisor, "reports.build", age=0)
        clock.advance(10)
        stuck = alert_about(job_id, clock.now())
        deliver(store, clock, stuck, "pagerduty")
        clock.advance(10)
        at = clock.now()
        record_action(store, stuck, "acknowledged", "grace", at, "on it")
        acknowledged = attrs.evolve(stuck, status=AlertStatus.ACKNOWLEDGED, occurred_at=at)
        deliver(store, clock, acknowledged, "pagerduty")

        page = job_page(store, job_id, clock.now())

        assert page is not None
        action = page.alerts[0]
        assert (action.status, action.by, action.note) == ("acknowledged", "grace", "on it")
        assert [delivery.channel for delivery in action.deliveries] == ["pagerduty"]
        assert len(page.alerts) == 2
        assert page.timeline[-1].what == "acknowledged by grace"
        assert page.timeline[-1].detail == "on it; passed on to pagerduty"


class TestOverview:
    def test_what_needs_a_look(
        self, supervisor: Supervisor, store: SQLiteStore, clock: ManualClock
    ) -> None:
        """Incidents as given, jobs running or in trouble (not completed ones), the
        health checks with each channel's counts, and the windows on now."""
        running = old_job(supervisor, "job.running", age=5)
        with supervise("job.completed", supervisor=supervisor):
            pass
        settings = Settings()
        window = start_window(
            store, clock.now(), timedelta(minutes=30), parse_match(["type=job_stuck"]), "deploy"
        )
        incidents = [incident_for(running)]
        health = check_health(store, settings, clock.timestamp())

        page = overview(store, settings, clock.now(), incidents=incidents, health=health)

        assert [job.supervision_id for job in page.jobs] == [running]
        assert page.more_jobs == 0
        assert page.incidents == tuple(incidents)
        assert {check.name for check in page.health.checks} >= {"store", "delivery"}
        assert [(row.id, row.reason, row.can_end) for row in page.windows] == [
            (window.id, "deploy", True)
        ]

    def test_lists_the_newest_jobs_only(
        self, supervisor: Supervisor, store: SQLiteStore, clock: ManualClock
    ) -> None:
        """Past OVERVIEW_JOBS jobs, the overview lists the newest and counts the rest."""
        ids = [old_job(supervisor, f"job.{n}", age=n) for n in range(OVERVIEW_JOBS + 3)]
        health = check_health(store, Settings(), clock.timestamp())
        page = overview(store, Settings(), clock.now(), incidents=[], health=health)
        assert [job.supervision_id for job in page.jobs] == ids[:OVERVIEW_JOBS]
        assert page.more_jobs == 3


class TestDeliveryHealth:
    def test_each_channels_failure_rate(self, store: SQLiteStore, clock: ManualClock) -> None:
        """The overview's health has each channel's counts and failure rate, and the
        window's rate said in words."""
        for channel, delivered in [("slack", True), ("slack", False), ("mail", True)] * 2:
            record_metric(
                store,
                channel=channel,
                alert_type="job_stuck",
                delivered=delivered,
                now=clock.timestamp(),
            )
        health = delivery_health(check_health(store, Settings(), clock.timestamp()))
        assert [(c.channel, c.sent, c.failed, c.failure_rate) for c in health.channels] == [
            ("mail", 2, 0, 0.0),
            ("slack", 2, 2, 50.0),
        ]
        assert health.recent_failure_rate == pytest.approx(100 / 3)
        assert health.window == "1 hour"
        assert not health.healthy


class TestHistoryPage:
    def test_pages_of_fixed_size(self, store: SQLiteStore, clock: ManualClock) -> None:
        """120 records make pages of 50, 50 and 20, newest first; only the last has no next."""
        for number in range(120):
            clock.advance(1)
            deliver(store, clock, alert_about(f"job-{number:03d}", clock.now()), "database")
        pages = [history_page(store, page, clock.now()) for page in (1, 2, 3)]
        assert [len(page.alerts) for page in pages] == [PAGE_SIZE, PAGE_SIZE, 20]
        assert [page.has_next for page in pages] == [True, True, False]
        assert [page.has_previous for page in pages] == [False, True, True]
        assert pages[0].alerts[0].key == "job-119"
        assert pages[2].alerts[-1].key == "job-000"

    @pytest.mark.parametrize(
        ("text", "page"),
        [(None, 1), ("3", 3), ("0", 1), ("-2", 1), ("x", 1), ("٣", 1), ("99999999", 10_000)],
    )
    def test_page_numbers(self, text: str | None, page: int) -> None:
        """Anything but a whole number from 1 is page 1; a huge one is capped."""
        assert page_number(text) == page


class TestIncidentPage:
    def test_its_alerts_only(self, store: SQLiteStore, clock: ManualClock) -> None:
        """The incident's page lists the alerts of its type and key, not others'."""
        mine, other = alert_about("job-a", clock.now()), alert_about("job-b", clock.now())
        deliver(store, clock, mine, "database")
        deliver(store, clock, other, "database")
        page = incident_page(store, incident_for("job-a"), clock.now())
        assert [alert.key for alert in page.alerts] == ["job-a"]


class TestMaintenancePage:
    def test_a_recurring_window_and_its_next_occurrence(
        self, store: SQLiteStore, clock: ManualClock
    ) -> None:
        """A recurring window of the settings is listed with its next occurrence."""
        nightly = RecurringWindow(
            name="nightly backup",
            weekdays=frozenset(range(7)),
            start=time(2, 0),
            end=time(3, 0),
            timezone=ZoneInfo("UTC"),
            reason="backups",
        )
        page = maintenance_page(Settings(maintenance=(nightly,)), store, clock.now())
        [scheduled] = page.scheduled
        assert (scheduled.name, scheduled.reason) == ("nightly backup", "backups")
        assert scheduled.next_start is not None
        assert scheduled.next_start.iso == "2024-01-16T02:00:00Z"
        assert scheduled.next_end is not None
        assert scheduled.next_end.iso == "2024-01-16T03:00:00Z"
        assert page.active == ()

    def test_on_now_and_ended(self, store: SQLiteStore, clock: ManualClock) -> None:
        """A window on now is active; one whose end passed is among the recently ended."""
        short = start_window(store, clock.now(), timedelta(minutes=5), reason="short")
        clock.advance(60)
        long = start_window(store, clock.now(), timedelta(hours=2), reason="long")
        page = maintenance_page(Settings(), store, clock.now() + timedelta(minutes=10))
        assert [row.id for row in page.active] == [long.id]
        assert [row.id for row in page.ended] == [short.id]
        assert page.scheduled == ()

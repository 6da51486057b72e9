"""``job_failed``: a failed run of a job that asked for it (``alert_on_failure``) opens one
incident per job name, reported once; the next successful run of that name resolves it,
once.

Runtimes are real (built-in plugins, the database channel keeping the history) on SQLite
files; time moves through a ManualClock; supervisors write inline.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chaperone import Chaperone, IncidentRef, JobFailed, ManualClock
from chaperone._monitor import Monitor
from chaperone._secrets import MASK
from chaperone.builtin.alert_builder import ALERT_TYPES, ERROR_LIMIT, build_alerts
from chaperone.builtin.database_channel import read_history
from chaperone.store import Store
from chaperone.supervision import JobRecord, JobState, Supervisor, _keys, supervise
from chaperone.supervision._failures import close_failure, report_failure
from helpers.fatigue import sqlite_store
from helpers.runtime import GROUPING_OFF, make_runtime
from helpers.stores import connect

START = datetime(2024, 1, 15, 3, 0, tzinfo=UTC)
JOB = "reports.nightly"


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when told."""
    return ManualClock(START)


def failed_alerts(runtime: Chaperone) -> list[dict[str, Any]]:
    """The ``job_failed`` alerts delivered so far, oldest first."""
    history = reversed(read_history(runtime.store, 1000))
    return [record for record in history if record["type"] == "job_failed"]


def run_job(supervisor: Supervisor, clock: ManualClock, *, fail: bool, **options: Any) -> None:
    """One run of :data:`JOB` that takes a minute and raises or not."""

    @supervise(JOB, supervisor=supervisor, **options)
    def nightly() -> None:
        clock.advance(timedelta(minutes=1))
        if fail:
            raise ValueError("the export table is locked")

    if fail:
        with pytest.raises(ValueError, match="locked"):
            nightly()
    else:
        nightly()


class TestSupervisedJob:
    """Runs of ``@chaperone.supervise`` raise and resolve ``job_failed``."""

    def test_a_raising_run_raises_job_failed_with_the_exception(
        self, runtime: Chaperone, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """A supervised function that raises gives one job_failed keyed by the job's name,
        carrying the exception and the run's duration."""
        run_job(supervisor, clock, fail=True, alert_on_failure=True)
        Monitor(runtime).tick()
        [alert] = failed_alerts(runtime)
        assert (alert["alert_status"], alert["key"], alert["severity"]) == (
            "firing",
            JOB,
            "error",
        )
        assert alert["title"] == f"Job Failed: {JOB}"
        assert alert["fields"]["Error"] == "ValueError: the export table is locked"
        assert alert["fields"]["Duration"] == "1 minute"

    def test_the_next_success_resolves_it(
        self, runtime: Chaperone, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """A successful run of the same name after a failed one resolves the incident, and
        a second success resolves nothing more."""
        run_job(supervisor, clock, fail=True, alert_on_failure=True)
        Monitor(runtime).tick()
        run_job(supervisor, clock, fail=False, alert_on_failure=True)
        run_job(supervisor, clock, fail=False)
        Monitor(runtime).tick()
        statuses = [(a["alert_status"], a["key"]) for a in failed_alerts(runtime)]
        assert statuses == [("firing", JOB), ("resolved", JOB)]
        assert runtime.store.get(_keys.failure_key(JOB)) is None

    def test_failed_runs_in_a_row_are_one_incident(
        self, runtime: Chaperone, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """Three failed runs in a row raise one JobFailed, the first run's, and one alert."""
        events = []
        for _ in range(3):
            run_job(supervisor, clock, fail=True, alert_on_failure=True)
            events += [report.event for report in Monitor(runtime).tick()]
            clock.advance(timedelta(hours=1))  # past any rate limit: a second alert would show
        [event] = events
        assert isinstance(event, JobFailed)
        [alert] = failed_alerts(runtime)
        assert (alert["alert_status"], alert["fields"]["Supervision ID"]) == (
            "firing",
            event.supervision_id,
        )

    def test_without_alert_on_failure_nothing_is_raised(
        self, runtime: Chaperone, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """A raising run that did not ask for it raises no job_failed and queues nothing,
        though its record says it failed."""
        run_job(supervisor, clock, fail=True)
        assert runtime.store.pop(_keys.EVENTS_QUEUE, 10) == []
        Monitor(runtime).tick()
        assert failed_alerts(runtime) == []
        assert runtime.store.get(_keys.failure_key(JOB)) is None

    @pytest.mark.parametrize(("options", "alerts"), [({}, 1), ({"alert_on_failure": False}, 0)])
    def test_a_scheduled_job_alerts_by_default(
        self,
        runtime: Chaperone,
        supervisor: Supervisor,
        clock: ManualClock,
        options: dict[str, Any],
        alerts: int,
    ) -> None:
        """A job with a schedule raises job_failed without being asked; told not to, it
        does not."""
        run_job(supervisor, clock, fail=True, schedule="@daily", **options)
        Monitor(runtime).tick()
        assert len(failed_alerts(runtime)) == alerts

    def test_the_context_manager_raises_it_too(
        self, runtime: Chaperone, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """An exception leaving ``with supervise(..., alert_on_failure=True)`` raises
        job_failed as the decorator's does."""
        with (
            pytest.raises(KeyError),
            supervise("imports.feed", supervisor=supervisor, alert_on_failure=True),
        ):
            raise KeyError("customer 42")
        Monitor(runtime).tick()
        [alert] = failed_alerts(runtime)
        assert (alert["key"], alert["fields"]["Error"]) == (
            "imports.feed",
            "KeyError: 'customer 42'",
        )

    def test_the_job_never_waits_for_the_report(self, clock: ManualClock, tmp_path: Path) -> None:
        """With a background supervisor the job's end returns before its failure is
        reported; the writer queues it after."""
        store = sqlite_store(tmp_path / "c.db", clock)
        supervisor = Supervisor(store, clock, background=True)
        try:
            run_job(supervisor, clock, fail=True, alert_on_failure=True)
            assert supervisor.flush(10)
            [queued] = store.pop(_keys.EVENTS_QUEUE, 10)
        finally:
            store.close()
        assert '"JobFailed"' in queued


class TestOnce:
    """Each opening and each resolution is reported once across processes and monitors."""

    def test_two_monitors_report_once(self, clock: ManualClock, tmp_path: Path) -> None:
        """Two monitors on one SQLite file, each ticking after every run, deliver one
        firing and one resolved job_failed between them."""
        path = tmp_path / "c.db"
        supervisor = Supervisor(sqlite_store(path, clock), clock)
        monitors = [
            make_runtime(
                store=sqlite_store(path, clock),
                clock=clock,
                channels=("database",),
                grouping=GROUPING_OFF,
            )
            for _ in range(2)
        ]
        try:
            for fail in (True, True, False, False):
                run_job(supervisor, clock, fail=fail, alert_on_failure=True)
                for runtime in monitors:
                    Monitor(runtime).tick()
            statuses = [a["alert_status"] for a in failed_alerts(monitors[0])]
        finally:
            for runtime in monitors:
                runtime.close()
            supervisor.store.close()
        assert statuses == ["firing", "resolved"]

    @pytest.mark.parametrize("backend", ["sqlite", "redis"])
    def test_the_claims_are_won_once(
        self, backend: str, clock: ManualClock, request: pytest.FixtureRequest
    ) -> None:
        """Of eight processes ending failed runs of one job at once, one reports it; of
        eight ending successful runs after, one resolves it."""
        connections = [connect(backend, request, clock) for _ in range(8)]
        failed = [
            JobRecord(
                supervision_id=f"run-{index}",
                name=JOB,
                started_at=clock.timestamp(),
                state=JobState.FAILED,
                finished_at=clock.timestamp() + 5,
                error="exit status 3",
                alert_on_failure=True,
            )
            for index in range(8)
        ]
        now = clock.timestamp() + 5
        barrier = threading.Barrier(8)

        def end_failed(store: Store, record: JobRecord) -> JobFailed | None:
            barrier.wait(timeout=30)
            return report_failure(store, record, now, clock.now())

        def end_succeeded(store: Store) -> IncidentRef | None:
            barrier.wait(timeout=30)
            return close_failure(store, JOB)

        try:
            with ThreadPoolExecutor(8) as pool:
                reports = list(pool.map(end_failed, connections, failed))
                closes = list(pool.map(end_succeeded, connections))
        finally:
            for store in connections:
                store.close()
        [reported] = [report for report in reports if report is not None]
        assert reported.error == "exit status 3"
        assert reported.duration == timedelta(seconds=5)
        assert [ref.key for ref in closes if ref is not None] == [JOB]


class TestAlert:
    """The alert built from JobFailed."""

    def test_it_is_a_built_in_alert_type(self) -> None:
        """job_failed is listed among the built-in alert types."""
        assert "job_failed" in ALERT_TYPES

    @settings(
        max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        before=st.text(max_size=800),
        password=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=20),
        after=st.text(max_size=800),
    )
    def test_any_error_text_renders_bounded_and_masked(
        self, runtime: Chaperone, before: str, password: str, after: str
    ) -> None:
        """Whatever the error says, its alert field is at most ERROR_LIMIT characters, and
        a URL's password in it never reaches the alert."""
        assume(password not in before and password not in after)
        error = f"{before} https://deploy:{password}@db.internal/x {after}"
        event = JobFailed(
            supervision_id="run-1",
            job_class=JOB,
            error=error,
            duration=timedelta(seconds=3),
            occurred_at=START,
        )
        [alert] = build_alerts(event, runtime)
        shown = dict(alert.fields)["Error"]
        assert len(shown) <= ERROR_LIMIT
        assert password not in shown
        assert password not in alert.summary + alert.title + alert.explanation
        if len(before) < 100 and (before + after).isprintable():  # no escape sequence hides it
            assert MASK in shown

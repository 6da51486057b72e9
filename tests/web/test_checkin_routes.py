"""The check-in routes of a real ``chaperone serve`` (a subprocess on 127.0.0.1): who may
check in (a job's own key, the global key, the serve token; in the header or as
``?key=``), what is refused and how it says so, the records start, success, fail and
heartbeat write, and the real ``chaperone monitor --once`` finding a check-in run stuck
or timed out, and delivering the job_failed of a failure check-in that asked for it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chaperone.web._checkins import MAX_ERROR_BODY
from helpers.checkin_serve import (
    BACKUP_KEY,
    PING_KEY,
    SCHEDULED,
    TOKEN,
    CheckinServer,
    checkin_server,
    read_record,
)
from helpers.cli import run_cli, stored_history, stored_jobs

KEY_HEADER = "X-Chaperone-Ping-Key"
MONITOR_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CheckinServer]:
    """One serve for the module's tests (each test checks in jobs of its own names)."""
    with checkin_server(tmp_path_factory.mktemp("checkins")) as running:
        yield running


def post(server: CheckinServer, path: str, **kwargs: Any) -> httpx.Response:
    """POST ``{prefix}/ping/{path}`` to the server."""
    return httpx.post(f"{server.ping}/{path}", timeout=10, **kwargs)


def jobs_named(server: CheckinServer, name: str) -> list[dict[str, Any]]:
    """The job records of ``name``, as ``chaperone jobs --json`` lists them, newest first."""
    return [job for job in stored_jobs(server.folder) if job["name"] == name]


class TestKeys:
    """A check-in needs a key for its job; a refusal is 401 and writes nothing."""

    @pytest.mark.parametrize(
        ("job", "headers", "params"),
        [
            ("backup", {}, {}),
            ("backup", {KEY_HEADER: "wrong-key-000"}, {}),
            ("backup", {}, {"key": "wrong-key-000"}),
            ("backup", {"Authorization": "Bearer wrong-token"}, {}),
            ("keys.other", {KEY_HEADER: BACKUP_KEY}, {}),
            ("keys.other", {}, {"key": BACKUP_KEY}),
        ],
        ids=["none", "wrong-header", "wrong-query", "wrong-token", "other-job-header", "other-q"],
    )
    def test_refused_without_the_right_key(
        self, server: CheckinServer, job: str, headers: dict[str, str], params: dict[str, str]
    ) -> None:
        """No key, a wrong one, or another job's own key: 401 with a challenge, no key
        in the answer, no record.
        """
        before = len(stored_jobs(server.folder))
        answer = post(server, f"{job}/start", headers=headers, params=params)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        for secret in (BACKUP_KEY, PING_KEY, TOKEN):
            assert secret not in answer.text
        assert len(stored_jobs(server.folder)) == before

    @pytest.mark.parametrize(
        ("job", "headers", "params"),
        [
            ("backup", {KEY_HEADER: BACKUP_KEY}, {}),
            ("backup", {}, {"key": BACKUP_KEY}),
            ("keys.global", {KEY_HEADER: PING_KEY}, {}),
            ("keys.global", {}, {"key": PING_KEY}),
            ("keys.token", {"Authorization": f"Bearer {TOKEN}"}, {}),
            ("keys.token", {KEY_HEADER: TOKEN}, {}),
        ],
        ids=["own-header", "own-query", "global-header", "global-query", "bearer", "token-key"],
    )
    def test_accepted_with_a_key_for_the_job(
        self, server: CheckinServer, job: str, headers: dict[str, str], params: dict[str, str]
    ) -> None:
        """The job's own key, the global key or the serve token, in the header or the
        query: 200, and the run it started is in the store under its job's name.
        """
        answer = post(server, f"{job}/start", headers=headers, params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["ok"], body["job"], body["state"]) == (True, job, "running")
        assert body["url"] == f"/chaperone/jobs/{body['supervision_id']}"
        assert body["supervision_id"] in [j["supervision_id"] for j in jobs_named(server, job)]


class TestFields:
    """A bad field is 400 naming it, and nothing is written."""

    @pytest.mark.parametrize(
        ("job", "params", "field"),
        [
            ("fields.a", {"timeout": "x"}, "timeout"),
            ("fields.a", {"heartbeat_interval": "soon"}, "heartbeat_interval"),
            ("fields.a", {"heartbeat_interval": "0"}, "heartbeat_interval"),
            ("fields.a", {"missed_heartbeats": "many"}, "missed_heartbeats"),
            ("fields.a", {"missed_heartbeats": "0"}, "missed_heartbeats"),
            ("fields.a", {"run": "no spaces"}, "run"),
            ("fields.a", {"alert_on_failure": "maybe"}, "alert_on_failure"),
            ("-starts-with-a-dash", {}, "job"),
            ("bad%20name", {}, "job"),
            ("x" * 101, {}, "job"),
        ],
    )
    def test_bad_field_is_400(
        self, server: CheckinServer, job: str, params: dict[str, str], field: str
    ) -> None:
        """400 with ``field`` naming the bad one and an error that starts with it."""
        before = len(stored_jobs(server.folder))
        answer = post(server, f"{job}/start", params={**params, "key": PING_KEY})
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body["ok"] is False
        assert body["field"] == field
        assert body["error"].startswith(f"{field}: ")
        assert len(stored_jobs(server.folder)) == before

    def test_a_failure_body_over_the_limit_is_413(self, server: CheckinServer) -> None:
        """A failure body one byte over the limit: 413 naming the body; the run still
        runs. One at the limit is taken.
        """
        started = post(server, "body.limit/start", params={"key": PING_KEY}).json()
        over = post(
            server, "body.limit/fail", params={"key": PING_KEY}, content=b"x" * (MAX_ERROR_BODY + 1)
        )
        assert over.status_code == 413
        assert over.json()["field"] == "body"
        [job] = jobs_named(server, "body.limit")
        assert (job["supervision_id"], job["state"]) == (started["supervision_id"], "running")
        at_limit = post(
            server, "body.limit/fail", params={"key": PING_KEY}, content=b"y" * MAX_ERROR_BODY
        )
        assert at_limit.status_code == 200, at_limit.text
        assert at_limit.json()["state"] == "failed"


class TestRecords:
    """Each kind of check-in writes what ``chaperone run`` would."""

    def test_start_heartbeat_success(self, server: CheckinServer) -> None:
        """start (with its limits), heartbeat, success: one run, completed, with the
        limits the start gave and a last heartbeat.
        """
        params = {"key": PING_KEY, "timeout": "1h", "heartbeat_interval": "5m"}
        started = post(server, "records.ok/start", params=params).json()
        beat = post(server, "records.ok/heartbeat", params={"key": PING_KEY}).json()
        done = post(server, "records.ok", params={"key": PING_KEY}).json()
        assert started["supervision_id"] == beat["supervision_id"] == done["supervision_id"]
        assert (beat["state"], done["state"]) == ("running", "completed")
        [job] = jobs_named(server, "records.ok")
        assert job["state"] == "completed"
        assert (job["timeout"], job["heartbeat_interval"]) == (3600.0, 300.0)
        assert job["last_heartbeat"] is not None
        assert job["finished_at"] is not None
        assert job["supervisor"] == "HTTP check-in"

    def test_fail_keeps_the_body_as_the_error_masked(self, server: CheckinServer) -> None:
        """A failure's body becomes the run's error, with the keys and a bearer token in
        it masked.
        """
        post(server, "records.bad/start", params={"key": PING_KEY})
        body = (
            "pg_dump: error: connection refused\n"
            f"curl -H 'Authorization: Bearer abcdef0123456789xyz' ?key={PING_KEY}\n"
            f"backup key {BACKUP_KEY}\n"
        )
        answer = post(server, "records.bad/fail", params={"key": PING_KEY}, content=body)
        assert answer.status_code == 200, answer.text
        [job] = jobs_named(server, "records.bad")
        assert job["state"] == "failed"
        assert job["error"].startswith("pg_dump: error: connection refused")
        for secret in ("abcdef0123456789xyz", PING_KEY, BACKUP_KEY):
            assert secret not in job["error"]
        assert "********" in job["error"]

    def test_fail_without_a_body_and_success_without_a_start(self, server: CheckinServer) -> None:
        """A failure with no body says the job checked one in; a success with no run
        running records a run that started and ended now.
        """
        failed = post(server, "records.bare/fail", params={"key": PING_KEY}).json()
        succeeded = post(server, "records.bare", params={"key": PING_KEY}).json()
        assert failed["supervision_id"] != succeeded["supervision_id"]
        jobs = {j["supervision_id"]: j for j in jobs_named(server, "records.bare")}
        assert jobs[failed["supervision_id"]]["error"] == "the job checked in a failure"
        assert jobs[succeeded["supervision_id"]]["state"] == "completed"


class TestMonitorFindsThem:
    """The real monitor treats a check-in run as it treats a supervised job."""

    def test_stuck_and_timed_out(self, server: CheckinServer) -> None:
        """A run started with a 1s heartbeat interval (one missed is stuck) and one with a
        1s timeout: once their deadlines pass, ``monitor --once`` delivers job_stuck and
        job_timeout for exactly those runs.
        """
        run = uuid.uuid4().hex[:8]
        stuck = post(
            server,
            "monitor.stuck/start",
            params={"key": PING_KEY, "heartbeat_interval": "1", "missed_heartbeats": "1"},
        ).json()["supervision_id"]
        slow = post(
            server, "monitor.slow/start", params={"key": PING_KEY, "timeout": "1s", "run": run}
        ).json()["supervision_id"]
        deadlines = []
        for supervision_id in (stuck, slow):
            record = read_record(server.folder, supervision_id)
            assert record is not None
            deadlines.append(record.stuck_deadline or record.timeout_deadline or 0.0)
        time.sleep(max(0.0, max(deadlines) - time.time()) + 0.2)  # a real process's deadline
        found = run_cli("monitor", "--once", cwd=server.folder, env=server.env, timeout=60)
        assert found.returncode == 0, str(found)
        history = stored_history(server.folder)
        firing = {
            (r["type"], r["key"])
            for r in history
            if r["alert_status"] == "firing" and r["channel"] == "database"
        }
        assert ("job_stuck", stuck) in firing
        assert ("job_timeout", slow) in firing
        states = {j["supervision_id"]: j["state"] for j in stored_jobs(server.folder)}
        assert (states[stuck], states[slow]) == ("stuck", "timed_out")

    def test_a_failure_check_in_raises_job_failed_and_a_success_resolves_it(
        self, server: CheckinServer
    ) -> None:
        """A run started with ``alert_on_failure=1`` that checks in a failure gives one
        job_failed keyed by the job's name, carrying the failure's body; a run that
        fails without asking gives none; the next success resolves it.
        """

        def failed_alerts(job: str) -> list[tuple[str, str, str | None]]:
            found = run_cli("monitor", "--once", cwd=server.folder, env=server.env, timeout=60)
            assert found.returncode == 0, str(found)
            return [
                (r["alert_status"], r["key"], r["fields"].get("Error"))
                for r in reversed(stored_history(server.folder))
                if r["type"] == "job_failed" and r["key"] == job and r["channel"] == "database"
            ]

        params = {"key": PING_KEY}
        post(server, "failing.quiet/fail", params=params, content="disk full")
        assert failed_alerts("failing.quiet") == []

        post(server, "failing.loud/start", params={**params, "alert_on_failure": "1"})
        post(server, "failing.loud/fail", params=params, content="pg_dump: disk full")
        assert failed_alerts("failing.loud") == [("firing", "failing.loud", "pg_dump: disk full")]

        post(server, "failing.loud", params=params)
        assert failed_alerts("failing.loud") == [
            ("firing", "failing.loud", "pg_dump: disk full"),
            ("resolved", "failing.loud", None),
        ]

    def test_the_option_on_the_failure_check_in_alone(self, server: CheckinServer) -> None:
        """``alert_on_failure=1`` on the fail check-in, with no start, raises job_failed
        with the message for a failure without a body."""
        answer = post(
            server, "failing.bare/fail", params={"key": PING_KEY, "alert_on_failure": "yes"}
        )
        assert answer.status_code == 200, answer.text
        found = run_cli("monitor", "--once", cwd=server.folder, env=server.env, timeout=60)
        assert found.returncode == 0, str(found)
        [alert] = [
            r
            for r in stored_history(server.folder)
            if r["type"] == "job_failed"
            and r["key"] == "failing.bare"
            and r["channel"] == "database"
        ]
        assert alert["fields"]["Error"] == "the job checked in a failure"


class TestScheduledJobs:
    def test_a_scheduled_jobs_check_ins_take_its_schedules_defaults(
        self, server: CheckinServer
    ) -> None:
        """A job with a [[schedules]] entry needs no options: its start times out after
        the entry's max_runtime, and its failure raises job_failed, as a scheduled job's
        does by default."""
        params = {"key": PING_KEY}
        started = post(server, f"{SCHEDULED}/start", params=params)
        assert started.status_code == 200, started.text
        record = read_record(server.folder, started.json()["supervision_id"])
        assert record is not None
        assert (record.timeout, record.alert_on_failure) == (7200.0, True)
        post(server, f"{SCHEDULED}/fail", params=params, content="no space left on device")
        found = run_cli("monitor", "--once", cwd=server.folder, env=server.env, timeout=60)
        assert found.returncode == 0, str(found)
        [alert] = [
            r
            for r in stored_history(server.folder)
            if r["type"] == "job_failed" and r["key"] == SCHEDULED and r["channel"] == "database"
        ]
        assert alert["fields"]["Error"] == "no space left on device"

"""HTTP check-ins (``chaperone.supervision.checkins``): the records they write are those
of ``chaperone run``, so the real detector finds a check-in job stuck or timed out,
``chaperone jobs`` lists its state, and its end is counted and resolves its incidents.

Every test runs on a memory store, a SQLite file and the real Redis server, on a
ManualClock. The property drives random sequences of check-ins; the concurrency tests
send check-ins of one job from several threads at once.
"""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone import (
    Chaperone,
    JobCompleted,
    JobRecovered,
    JobStuck,
    JobTimeout,
    ManualClock,
    PluginHost,
    Settings,
)
from chaperone._event_codec import decode_event
from chaperone._events import Event
from chaperone._exceptions import StoreError
from chaperone._monitor import Monitor
from chaperone._secrets import MASK, MASKER
from chaperone.builtin import job_detector as detector
from chaperone.builtin.database_channel import read_history
from chaperone.store import MemoryStore, SQLiteStore, Store
from chaperone.supervision import JobRecord, JobState, _keys, checkins
from chaperone.supervision._listing import list_jobs
from chaperone.supervision._records import flush_interval
from chaperone.supervision._stats import read_stats
from chaperone.supervision.checkins import (
    ERROR_LIMIT,
    JOB_NAME_LIMIT,
    LOCK_TTL,
    MAX_RUNNING_RUNS,
    SUPERVISOR,
    CheckInBusyError,
    CheckInKind,
    CheckInOptions,
    InvalidCheckInError,
    check_in,
)
from chaperone.testing.redis_server import RedisServer
from helpers.checkin_workers import run_checkins
from helpers.stores import SwitchedStore

START = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
T0 = START.timestamp()

START_, SUCCESS, FAIL, HEARTBEAT = (
    CheckInKind.START,
    CheckInKind.SUCCESS,
    CheckInKind.FAIL,
    CheckInKind.HEARTBEAT,
)

_redis_prefixes = iter(range(10**9))


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock at START."""
    return ManualClock(START)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, clock: ManualClock) -> Iterator[Store]:
    """A fresh store of each backend on the manual clock."""
    opened = (
        MemoryStore(clock)
        if request.param == "memory"
        else open_store(request.param, request, clock)
    )
    yield opened
    opened.close()


def records(store: Store) -> list[JobRecord]:
    """Every job record in the store, oldest first."""
    values = store.get_many(store.keys(_keys.JOB_PREFIX))
    return sorted((JobRecord.from_json(v) for v in values.values()), key=lambda r: r.started_at)


def tick(store: Store, clock: ManualClock) -> list[Event]:
    """One pass of the real detector at the clock's time."""
    return list(detector.check_due(store, clock.timestamp()))


def queued(store: Store) -> list[Event]:
    """Pop and decode every event queued for the monitor."""
    return [decode_event(text) for text in store.pop(_keys.EVENTS_QUEUE, 10_000)]


def public_states(store: Store, clock: ManualClock) -> dict[str, str]:
    """``chaperone jobs``' state of each job record, by supervision id."""
    return {
        str(row["supervision_id"]): str(row["state"]) for row in list_jobs(store, clock.timestamp())
    }


class TestARun:
    """A start, then a success or a failure: one job record, as ``chaperone run`` writes."""

    def test_start_writes_a_running_record_nobody_vouches_for(
        self, store: Store, clock: ManualClock
    ) -> None:
        """A start writes a running record under job:<id>, supervised by the check-ins,
        with no lease (never abandoned) and no abandon check scheduled."""
        record = check_in(store, clock, "backup", START_)
        assert records(store) == [record]
        assert record.state is JobState.RUNNING
        assert record.name == "backup"
        assert record.started_at == T0
        assert record.lease is None
        assert record.supervisor == SUPERVISOR
        assert store.get(_keys.alive_key(record.supervision_id)) is None
        assert store.due(_keys.DEADLINES, float("inf"), 10) == []

    def test_success_ends_the_run(self, store: Store, clock: ManualClock) -> None:
        """A success ends the running run as completed, counted once as finished."""
        started = check_in(store, clock, "backup", START_)
        clock.advance(42)
        ended = check_in(store, clock, "backup", SUCCESS)
        assert ended.supervision_id == started.supervision_id
        assert ended.state is JobState.COMPLETED
        assert ended.finished_at == T0 + 42
        assert ended.error is None
        assert public_states(store, clock) == {started.supervision_id: "completed"}
        stats = read_stats(store, job_class="backup", now=clock.timestamp(), window=3600)
        assert (stats.finished, stats.failed, stats.total_duration) == (1, 0, 42.0)

    def test_fail_ends_the_run_with_its_error(self, store: Store, clock: ManualClock) -> None:
        """A failure ends the run as failed with the error given, counted as failed."""
        started = check_in(store, clock, "backup", START_)
        ended = check_in(store, clock, "backup", FAIL, error="disk full\nexit 3")
        assert ended.supervision_id == started.supervision_id
        assert ended.state is JobState.FAILED
        assert ended.error == "disk full\nexit 3"
        assert public_states(store, clock) == {started.supervision_id: "failed"}
        stats = read_stats(store, job_class="backup", now=clock.timestamp(), window=3600)
        assert (stats.finished, stats.failed) == (1, 1)

    def test_a_failure_without_text_says_so(self, store: Store, clock: ManualClock) -> None:
        """A failure with no (or a blank) body still records an error to show."""
        assert check_in(store, clock, "backup", FAIL, error="  ").error
        assert check_in(store, clock, "backup", FAIL).error

    def test_the_error_is_masked_and_bounded(self, store: Store, clock: ManualClock) -> None:
        """A known secret in the error is masked, and the error is cut to ERROR_LIMIT."""
        secret = "s3cret-checkin-password-42"  # noqa: S105 - a made-up secret to mask
        MASKER.add(secret)
        ended = check_in(store, clock, "backup", FAIL, error=f"login {secret} refused " * 100)
        assert ended.error is not None
        assert secret not in ended.error
        assert ended.error.startswith(f"login {MASK} refused")
        assert len(ended.error) == ERROR_LIMIT
        assert secret not in "".join(store.get_many(store.keys(_keys.JOB_PREFIX)).values())

    def test_an_end_without_a_start_is_a_run_of_no_time(
        self, store: Store, clock: ManualClock
    ) -> None:
        """A success with no running run records a run that started and ended now."""
        ended = check_in(store, clock, "backup", SUCCESS)
        assert (ended.started_at, ended.finished_at) == (T0, T0)
        assert records(store) == [ended]
        assert ended.state is JobState.COMPLETED

    def test_a_second_end_is_another_run(self, store: Store, clock: ManualClock) -> None:
        """After a run ended, another success is a new (zero-length) run: never the old
        one ended twice."""
        first = check_in(store, clock, "backup", START_)
        check_in(store, clock, "backup", SUCCESS)
        clock.advance(5)
        second = check_in(store, clock, "backup", FAIL, error="late")
        assert second.supervision_id != first.supervision_id
        states = {r.supervision_id: r.state for r in records(store)}
        assert states == {
            first.supervision_id: JobState.COMPLETED,
            second.supervision_id: JobState.FAILED,
        }

    def test_jobs_are_kept_apart(self, store: Store, clock: ManualClock) -> None:
        """A success of one job does not end another job's run."""
        backup = check_in(store, clock, "backup", START_)
        check_in(store, clock, "report", SUCCESS)
        assert public_states(store, clock)[backup.supervision_id] == "running"

    def test_an_ended_record_expires_after_the_retention(
        self, store: Store, clock: ManualClock
    ) -> None:
        """An ended run's record is kept for the retention period, like any job's."""
        check_in(store, clock, "backup", START_)
        check_in(store, clock, "backup", SUCCESS)
        clock.advance(_keys.RETENTION + 1)
        assert records(store) == []


class TestDetection:
    """The real detector watches check-in runs as it watches ``chaperone run`` jobs."""

    def test_a_run_without_heartbeats_is_stuck(self, store: Store, clock: ManualClock) -> None:
        """A started run with a heartbeat interval and no heartbeat is reported stuck
        after interval x missed, and ``chaperone jobs`` shows it stuck."""
        options = CheckInOptions(heartbeat_interval=60, missed_heartbeats=2)
        record = check_in(store, clock, "sync", START_, options=options)
        stuck_after = 120 + flush_interval(60)
        clock.advance(stuck_after - 0.01)
        assert tick(store, clock) == []
        clock.advance(0.01)
        events = tick(store, clock)
        assert [type(e) for e in events] == [JobStuck]
        assert isinstance(events[0], JobStuck)
        assert events[0].supervision_id == record.supervision_id
        assert public_states(store, clock) == {record.supervision_id: "stuck"}

    def test_heartbeats_keep_a_run_alive_and_recover_it(
        self, store: Store, clock: ManualClock
    ) -> None:
        """Heartbeat check-ins push the stuck deadline on; after a stuck report, a
        heartbeat recovers the run."""
        options = CheckInOptions(heartbeat_interval=10, missed_heartbeats=1)
        check_in(store, clock, "sync", START_, options=options)
        for _ in range(20):
            clock.advance(9)
            beat = check_in(store, clock, "sync", HEARTBEAT)
            assert beat.last_heartbeat == clock.timestamp()
            assert tick(store, clock) == []
        clock.advance(11)
        assert [type(e) for e in tick(store, clock)] == [JobStuck]
        check_in(store, clock, "sync", HEARTBEAT)
        clock.advance(5)
        assert [type(e) for e in tick(store, clock)] == [JobRecovered]

    def test_a_run_past_its_timeout_times_out(self, store: Store, clock: ManualClock) -> None:
        """A started run past its timeout is reported timed out, and shown so."""
        record = check_in(store, clock, "etl", START_, options=CheckInOptions(timeout=300))
        clock.advance(299)
        assert tick(store, clock) == []
        clock.advance(1)
        assert [type(e) for e in tick(store, clock)] == [JobTimeout]
        assert public_states(store, clock) == {record.supervision_id: "timed_out"}

    def test_the_end_resolves_the_incident(self, store: Store, clock: ManualClock) -> None:
        """Ending a timed-out run closes its incident and queues the JobCompleted that
        resolves it, as a supervised job's end does; no check is left scheduled."""
        record = check_in(store, clock, "etl", START_, options=CheckInOptions(timeout=300))
        clock.advance(301)
        tick(store, clock)
        check_in(store, clock, "etl", FAIL, error="killed")
        events = queued(store)
        assert [type(e) for e in events] == [JobCompleted]
        completed = events[0]
        assert isinstance(completed, JobCompleted)
        assert completed.failed
        assert completed.error == "killed"
        assert [(i.type, i.key) for i in completed.resolves] == [
            ("job_timeout", record.supervision_id)
        ]
        assert store.keys(_keys.incident_prefix(record.supervision_id)) == []
        assert store.due(_keys.DEADLINES, float("inf"), 10) == []
        assert public_states(store, clock) == {record.supervision_id: "failed"}

    def test_an_end_without_incidents_queues_nothing(
        self, store: Store, clock: ManualClock
    ) -> None:
        """A run that ends with nothing open queues no event (the stats count it)."""
        check_in(store, clock, "etl", START_, options=CheckInOptions(timeout=300))
        check_in(store, clock, "etl", SUCCESS)
        assert queued(store) == []
        clock.advance(1000)
        assert tick(store, clock) == []


class TestStoreFailures:
    """A store that fails in the middle of a check-in leaves nothing running forever."""

    def test_a_start_cut_short_leaves_no_orphan(self, clock: ManualClock) -> None:
        """A start whose record write fails raises StoreError; once the store and the
        lock are back, the job has no running run and a success records one run."""
        switched = SwitchedStore(MemoryStore(clock))
        store = cast(Store, switched)
        switched.budget = 3  # the lock, reading the runs, listing the new run
        with pytest.raises(StoreError):
            check_in(store, clock, "backup", START_)
        switched.away = False
        assert records(store) == []
        clock.advance(LOCK_TTL + 1)
        ended = check_in(store, clock, "backup", SUCCESS)
        assert records(store) == [ended]
        assert ended.started_at == ended.finished_at
        assert store.get(_keys.checkin_runs_key("backup")) is None


class TestTheLock:
    """Check-ins of one job wait for each other, a bounded time."""

    def test_a_held_lock_makes_the_check_in_busy(
        self, store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """While another check-in holds the job's lock past LOCK_WAIT, a check-in raises
        CheckInBusyError (a StoreError) and writes nothing; other jobs go on."""
        monkeypatch.setattr(checkins, "LOCK_WAIT", 0.05)
        assert store.set_if_absent(_keys.checkin_lock_key("backup"), "another", LOCK_TTL)
        with pytest.raises(CheckInBusyError, match="backup"):
            check_in(store, clock, "backup", START_)
        assert records(store) == []
        assert check_in(store, clock, "report", START_).name == "report"

    def test_a_lock_left_behind_expires(self, store: Store, clock: ManualClock) -> None:
        """A lock whose holder died lets check-ins in again after LOCK_TTL."""
        store.set_if_absent(_keys.checkin_lock_key("backup"), "a dead process", LOCK_TTL)
        clock.advance(LOCK_TTL)
        assert check_in(store, clock, "backup", START_).state is JobState.RUNNING
        assert store.get(_keys.checkin_lock_key("backup")) is None


class TestThroughTheMonitor:
    """A whole monitor tick turns what it finds about a check-in job into alerts."""

    def test_stuck_then_failed_alerts(self, tmp_path: Path) -> None:
        """A silent check-in run gives a firing job_stuck alert keyed by its id; its
        failure check-in resolves it, with the error it sent."""
        clock = ManualClock(START)
        path = tmp_path / "pipeline.sqlite3"
        store = SQLiteStore(path, clock, f"sqlite:///{path}")
        settings = Settings(channels=("database",), store_url=store.url)
        with Chaperone(
            settings, clock=clock, store=store, plugins=PluginHost(entry_points=False)
        ) as runtime:
            monitor = Monitor(runtime)
            options = CheckInOptions(heartbeat_interval=30, missed_heartbeats=2)
            record = check_in(store, clock, "offsite-sync", START_, options=options)
            clock.advance(61 + flush_interval(30))
            monitor.tick()
            clock.advance(5)
            check_in(store, clock, "offsite-sync", FAIL, error="rsync: connection refused")
            monitor.tick()
            history = list(reversed(read_history(store, 100)))
        assert [(r["type"], r["alert_status"], r["key"]) for r in history] == [
            ("job_stuck", "firing", record.supervision_id),
            ("job_stuck", "resolved", record.supervision_id),
        ]
        assert history[0]["fields"]["Job Class"] == "offsite-sync"
        assert history[1]["fields"]["Error"] == "rsync: connection refused"


class TestOverlappingRuns:
    """Run ids tell overlapping runs apart; without one, a start supersedes."""

    def test_run_ids_pair_starts_and_ends(self, store: Store, clock: ManualClock) -> None:
        """Two runs started with different run ids end independently."""
        first = check_in(store, clock, "render", START_, run="r1")
        second = check_in(store, clock, "render", START_, run="r2")
        ended = check_in(store, clock, "render", SUCCESS, run="r1")
        assert ended.supervision_id == first.supervision_id
        assert public_states(store, clock) == {
            first.supervision_id: "completed",
            second.supervision_id: "running",
        }

    def test_a_retried_start_is_the_same_run(self, store: Store, clock: ManualClock) -> None:
        """A start sent again with the same run id returns the running run."""
        first = check_in(store, clock, "render", START_, run="r1")
        clock.advance(1)
        assert check_in(store, clock, "render", START_, run="r1") == first
        assert records(store) == [first]

    def test_an_end_without_run_id_ends_the_latest(self, store: Store, clock: ManualClock) -> None:
        """Without a run id, a success ends the latest running run."""
        check_in(store, clock, "render", START_, run="r1")
        clock.advance(1)
        latest = check_in(store, clock, "render", START_, run="r2")
        assert check_in(store, clock, "render", SUCCESS).supervision_id == latest.supervision_id

    def test_a_start_supersedes_the_running_run(self, store: Store, clock: ManualClock) -> None:
        """A start without run id ends the run started without one as abandoned (not
        counted as finished), leaving one running run."""
        first = check_in(store, clock, "nightly", START_, options=CheckInOptions(timeout=60))
        clock.advance(10)
        second = check_in(store, clock, "nightly", START_)
        assert public_states(store, clock) == {
            first.supervision_id: "abandoned",
            second.supervision_id: "running",
        }
        stats = read_stats(store, job_class="nightly", now=clock.timestamp(), window=3600)
        assert stats.finished == 0
        clock.advance(100)
        assert tick(store, clock) == []  # the first run's timeout went with it

    def test_running_runs_are_bounded(self, store: Store, clock: ManualClock) -> None:
        """Past MAX_RUNNING_RUNS running runs, a start supersedes the oldest."""
        for number in range(MAX_RUNNING_RUNS + 2):
            check_in(store, clock, "fanout", START_, run=f"r{number}")
            clock.advance(1)
        states = [r.state for r in records(store)]
        assert states.count(JobState.RUNNING) == MAX_RUNNING_RUNS
        assert states[:2] == [JobState.ABANDONED, JobState.ABANDONED]


class TestValidation:
    """Bad names are refused with an error naming the field; nothing is written."""

    @pytest.mark.parametrize(
        ("field", "job", "run"),
        [
            ("job", "", None),
            ("job", "x" * (JOB_NAME_LIMIT + 1), None),
            ("job", "../etc", None),
            ("job", "back up", None),
            ("job", "job/other", None),
            ("job", "naïve", None),
            ("run", "ok", ""),
            ("run", "ok", "a\nb"),
        ],
    )
    def test_refused(
        self, store: Store, clock: ManualClock, field: str, job: str, run: str | None
    ) -> None:
        """An empty, overlong or unsafe job name or run id raises InvalidCheckInError."""
        with pytest.raises(InvalidCheckInError) as raised:
            check_in(store, clock, job, START_, run=run)
        assert raised.value.field == field
        assert str(raised.value).startswith(f"{field}: ")
        assert records(store) == []

    def test_an_unknown_kind_is_refused(self, store: Store, clock: ManualClock) -> None:
        """A kind that is not start, success, fail or heartbeat names the field."""
        with pytest.raises(InvalidCheckInError) as raised:
            check_in(store, clock, "backup", "finish")  # type: ignore[arg-type]
        assert raised.value.field == "kind"
        assert records(store) == []

    def test_the_longest_safe_name_is_taken(self, store: Store, clock: ManualClock) -> None:
        """A name of JOB_NAME_LIMIT letters, digits, dots, dashes and underscores is fine."""
        name = ("db-backup_v2.nightly" * 10)[:JOB_NAME_LIMIT]
        assert check_in(store, clock, name, START_).name == name

    @pytest.mark.parametrize(
        "options",
        [
            {"timeout": 0},
            {"timeout": float("nan")},
            {"heartbeat_interval": -1},
            {"missed_heartbeats": 0},
        ],
    )
    def test_bad_options(self, options: dict[str, float]) -> None:
        """Non-positive limits are refused, naming the option."""
        with pytest.raises(InvalidCheckInError) as raised:
            CheckInOptions(**options)  # type: ignore[arg-type]
        assert raised.value.field == next(iter(options))


class TestConcurrency:
    """Check-ins of one job at once, from threads: no record is lost."""

    @pytest.mark.parametrize("backend", ["sqlite", "redis"])
    def test_concurrent_runs_all_end(self, backend: str, request: pytest.FixtureRequest) -> None:
        """Eight threads each start and end their run (by run id) at the same time:
        eight completed records, none running."""
        clock = ManualClock(START)
        store = open_store(backend, request, clock)
        barrier = threading.Barrier(8)
        failures: list[BaseException] = []

        def one(number: int) -> None:
            try:
                barrier.wait()
                check_in(store, clock, "shared", START_, run=f"r{number}")
                check_in(store, clock, "shared", HEARTBEAT, run=f"r{number}")
                check_in(store, clock, "shared", SUCCESS, run=f"r{number}")
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert failures == []
        ended = records(store)
        assert [r.state for r in ended] == [JobState.COMPLETED] * 8
        assert sorted(r.metadata["run"] for r in ended) == sorted(f"r{n}" for n in range(8))
        assert store.get(_keys.checkin_runs_key("shared")) is None
        store.close()

    @pytest.mark.parametrize("backend", ["sqlite", "redis"])
    def test_concurrent_starts_leave_one_run(
        self, backend: str, request: pytest.FixtureRequest
    ) -> None:
        """Six starts without run id at once leave exactly one running run and five
        superseded ones."""
        clock = ManualClock(START)
        store = open_store(backend, request, clock)
        barrier = threading.Barrier(6)

        def one() -> None:
            barrier.wait()
            check_in(store, clock, "shared", START_)

        threads = [threading.Thread(target=one) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        states = sorted(r.state.value for r in records(store))
        assert states == ["abandoned"] * 5 + ["running"]
        store.close()


class TestAcrossProcesses:
    """Check-ins of one job from several processes at once, on one SQLite file."""

    def test_no_run_is_lost(self, tmp_path: Path) -> None:
        """Four spawned processes each start, heartbeat and end five runs of one job at
        the same time: twenty ended records, each the one its process was told of."""
        path = tmp_path / "shared.sqlite3"
        url = f"sqlite:///{path}"
        SQLiteStore(path, ManualClock(START), url).close()  # created before the race
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(4, mp_context=spawn) as pool:
            futures = [pool.submit(run_checkins, url, worker, 5) for worker in range(4)]
            told = sorted(sid for future in futures for sid in future.result(timeout=120))
        store = SQLiteStore(path, ManualClock(), url)
        try:
            ended = records(store)
            assert sorted(r.supervision_id for r in ended) == told
            assert len(told) == 20
            assert sorted(r.state.value for r in ended) == ["completed"] * 12 + ["failed"] * 8
            assert store.get(_keys.checkin_runs_key("shared")) is None
        finally:
            store.close()


def open_store(backend: str, request: pytest.FixtureRequest, clock: ManualClock) -> Store:
    """A SQLite file in a fresh folder, or a fresh prefix on the session's Redis server
    (its keys deleted after the test)."""
    if backend == "sqlite":
        folder: Path = request.getfixturevalue("tmp_path")
        path = folder / "checkins.sqlite3"
        return SQLiteStore(path, clock, f"sqlite:///{path}")
    from chaperone.store._redis import RedisStore

    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = f"checkins{next(_redis_prefixes)}:"
    request.addfinalizer(lambda: server.clear(prefix))
    return RedisStore(server.url(prefix=prefix), clock)


_RUN_IDS = st.sampled_from([None, None, "a", "b"])
_STEPS = st.lists(
    st.tuples(st.sampled_from(list(CheckInKind)), _RUN_IDS, st.integers(0, 30)),
    max_size=25,
)


_RESULT_STATES = {
    START_: JobState.RUNNING,
    HEARTBEAT: JobState.RUNNING,
    SUCCESS: JobState.COMPLETED,
    FAIL: JobState.FAILED,
}


def check_sequence(
    store: Store, clock: ManualClock, steps: list[tuple[CheckInKind, str | None, int]]
) -> None:
    """Send ``steps`` (kind, run id, seconds before it) and check the invariants after
    each: the record returned is the one stored, in the state the kind says; never two
    running runs with the same run id (or both without one); every ended run has
    finished_at >= started_at; the job's list of running runs matches; and at the end
    the stats count every success and failure."""
    ends = 0
    for kind, run, seconds in steps:
        clock.advance(seconds)
        record = check_in(store, clock, "prop", kind, run=run, error="boom")
        ends += kind in (SUCCESS, FAIL)
        assert store.get(_keys.job_key(record.supervision_id)) == record.to_json()
        assert record.state is _RESULT_STATES[kind]
        if kind is HEARTBEAT:
            assert record.last_heartbeat == clock.timestamp()
        stored = records(store)
        running = [r.metadata.get("run") for r in stored if r.state is JobState.RUNNING]
        assert len(running) == len(set(running))
        for ended in (r for r in stored if r.state is not JobState.RUNNING):
            assert ended.finished_at is not None
            assert ended.finished_at >= ended.started_at
        listed = json.loads(store.get(_keys.checkin_runs_key("prop")) or "[]")
        assert sorted(str(entry["run"]) for entry in listed) == sorted(map(str, running))
    stats = read_stats(store, job_class="prop", now=clock.timestamp(), window=86400)
    assert stats.finished == ends


class TestProperties:
    """Any sequence of check-ins keeps the runs consistent, on every backend."""

    @given(steps=_STEPS, on_sqlite=st.booleans())
    def test_runs_stay_consistent(
        self, steps: list[tuple[CheckInKind, str | None, int]], on_sqlite: bool
    ) -> None:
        """The invariants of check_sequence hold on a memory store and a SQLite file."""
        clock = ManualClock(START)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "p.sqlite3"
            store = (
                SQLiteStore(path, clock, f"sqlite:///{path}") if on_sqlite else MemoryStore(clock)
            )
            try:
                check_sequence(store, clock, steps)
            finally:
                store.close()

    @settings(max_examples=25)  # each example costs hundreds of round trips
    @given(steps=_STEPS)
    def test_runs_stay_consistent_on_redis(
        self, steps: list[tuple[CheckInKind, str | None, int]], redis_server: RedisServer
    ) -> None:
        """The invariants of check_sequence hold on the real Redis server."""
        from chaperone.store._redis import RedisStore

        clock = ManualClock(START)
        prefix = f"checkins{next(_redis_prefixes)}:"
        store = RedisStore(redis_server.url(prefix=prefix), clock)
        try:
            check_sequence(store, clock, steps)
        finally:
            store.close()
            redis_server.clear(prefix)

"""The job side: ``supervise(...)`` as a context manager and a decorator, sync and async,
its handle's heartbeats and progress, and the records they leave in the store.

Time moves only through a ManualClock. Store writes are counted with a wrapping store;
a store whose every method raises stands for a store that is away.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone import IncidentRef, JobCompleted, ManualClock, StoreError
from chaperone import _sanitize as sanitize
from chaperone._event_codec import decode_event
from chaperone._secrets import MASKER
from chaperone.store import MemoryStore, SQLiteStore, Store
from chaperone.supervision import (
    JobRecord,
    JobState,
    Supervision,
    Supervisor,
    _keys,
    current_job,
    supervise,
)
from chaperone.supervision import _supervise as supervise_module
from chaperone.supervision._records import flush_interval
from chaperone.supervision._stats import read_stats
from chaperone.supervision._supervisor import RETENTION
from chaperone.testing import capture_all_logs

# -------------------------------------------------------------------------------------
# Helpers
# -------------------------------------------------------------------------------------


class CountingStore:
    """Wraps a store and counts every call by method name (and job-record writes)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.calls: Counter[str] = Counter()
        self.record_writes = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if name == "set" and str(args[0]).startswith(_keys.JOB_PREFIX):
                self.record_writes += 1
            return method(*args, **kwargs)

        return counted


class BrokenStore:
    """A store that is away: every operation raises StoreError, and counts the attempt."""

    url = "sqlite:///unreachable.db"

    def __init__(self) -> None:
        self.attempts = 0
        self.broken = True
        self.inner = MemoryStore(ManualClock())

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        def fail(*args: Any, **kwargs: Any) -> Any:
            self.attempts += 1
            if self.broken:
                raise StoreError(f"the store is away ({name})")
            return method(*args, **kwargs)

        return fail


def stored(store: Store, supervision_id: str) -> JobRecord:
    """The job record in ``store`` (a test failure when there is none)."""
    text = store.get(_keys.job_key(supervision_id))
    assert text is not None, f"no record for job {supervision_id}"
    return JobRecord.from_json(text)


def scheduled(store: Store) -> dict[str, float]:
    """Every member of the deadline index with its time."""
    return dict(store.due(_keys.DEADLINES, math.inf, 10_000))


def queued(store: Store) -> list[Any]:
    """Pop and decode every event waiting in the store's queue."""
    return [decode_event(text) for text in store.pop(_keys.EVENTS_QUEUE, 10_000)]


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when told."""
    return ManualClock()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path) -> Iterator[Store]:
    """A memory store and a SQLite file, each judged by the manual clock."""
    if request.param == "memory":
        made: Store = MemoryStore(clock)
    else:
        path = tmp_path / "c.db"
        made = SQLiteStore(path, clock, f"sqlite:///{path}")
    yield made
    made.close()


@pytest.fixture
def supervisor(store: Store, clock: ManualClock) -> Supervisor:
    """A supervisor writing to the store on the manual clock."""
    return Supervisor(store, clock)


# -------------------------------------------------------------------------------------
# Start, completion, failure
# -------------------------------------------------------------------------------------


class TestRecords:
    """What a supervised block writes: its start, its end, its failure."""

    def test_start_is_recorded_with_the_jobs_settings(
        self, supervisor: Supervisor, store: Store, clock: ManualClock
    ) -> None:
        """Inside the block the job is running, with its settings, and both checks are
        scheduled at their deadlines (the stuck one a flush interval after interval x
        missed)."""
        start = clock.timestamp()
        with supervise(
            "reports.nightly",
            timeout=120,
            heartbeat_interval="10s",
            missed_heartbeats=4,
            metadata={"tenant": "acme"},
            supervisor=supervisor,
        ) as job:
            record = stored(store, job.supervision_id)
            deadlines = scheduled(store)
        assert record.state is JobState.RUNNING
        assert record.name == "reports.nightly"
        assert record.started_at == start
        assert (record.timeout, record.heartbeat_interval, record.missed_heartbeats) == (
            120,
            10,
            4,
        )
        assert record.metadata == {"tenant": "acme"}
        assert record.pid is not None
        assert record.host
        assert deadlines == {
            _keys.member(job.supervision_id, "stuck"): start + 10 * 4 + flush_interval(10),
            _keys.member(job.supervision_id, "timeout"): start + 120,
        }

    def test_completion_is_recorded_and_the_checks_dropped(
        self, supervisor: Supervisor, store: Store, clock: ManualClock
    ) -> None:
        """After the block the job is completed, with its end time; nothing stays
        scheduled and nothing is queued when no incident was open."""
        with supervise("j", timeout=60, heartbeat_interval=5, supervisor=supervisor) as job:
            clock.advance(7)
        record = stored(store, job.supervision_id)
        assert record.state is JobState.COMPLETED
        assert record.finished_at == clock.timestamp()
        assert record.duration(clock.timestamp() + 100) == 7
        assert record.error is None
        assert scheduled(store) == {}
        assert queued(store) == []

    def test_finished_records_are_kept_a_day(
        self, supervisor: Supervisor, store: Store, clock: ManualClock
    ) -> None:
        """A finished job's record expires after the retention period."""
        with supervise("j", supervisor=supervisor) as job:
            pass
        clock.advance(RETENTION - 1)
        assert store.get(_keys.job_key(job.supervision_id)) is not None
        clock.advance(1)
        assert store.get(_keys.job_key(job.supervision_id)) is None

    def test_failure_records_the_exception_and_reraises_it(
        self, supervisor: Supervisor, store: Store
    ) -> None:
        """An exception leaving the block marks the job failed with the exception's
        text, and is re-raised unchanged."""
        boom = ValueError("disk full on /var")
        with (
            pytest.raises(ValueError, match="disk full") as raised,
            supervise("j", supervisor=supervisor) as job,
        ):
            raise boom
        assert raised.value is boom
        record = stored(store, job.supervision_id)
        assert record.state is JobState.FAILED
        assert record.error == "ValueError: disk full on /var"

    def test_a_known_secret_in_the_error_is_masked(
        self, supervisor: Supervisor, store: Store
    ) -> None:
        """A secret Chaperone knows (a webhook URL) in the job's exception is stored masked:
        the error reaches alerts and the history."""
        secret = f"https://hooks.slack.com/services/T0/B0/{uuid.uuid4().hex}"
        MASKER.add(secret)
        with pytest.raises(ConnectionError), supervise("j", supervisor=supervisor) as job:
            raise ConnectionError(f"could not post to {secret}")
        error = stored(store, job.supervision_id).error
        assert error is not None
        assert error.startswith("ConnectionError: could not post to ")
        assert secret not in error

    def test_a_long_error_text_is_cut(self, supervisor: Supervisor, store: Store) -> None:
        """An enormous exception message is stored cut to a bounded length."""
        with pytest.raises(RuntimeError), supervise("j", supervisor=supervisor) as job:
            raise RuntimeError("x" * 100_000)
        error = stored(store, job.supervision_id).error
        assert error is not None
        assert error.startswith("RuntimeError: xxx")
        assert len(error) <= 500

    def test_each_use_gets_a_new_uuid4(self, supervisor: Supervisor) -> None:
        """The supervision id is a version-4 UUID, new for each use of one supervise."""
        guard = supervise("j", supervisor=supervisor)
        ids = []
        for _ in range(3):
            with guard as job:
                ids.append(job.supervision_id)
        assert len(set(ids)) == 3
        assert all(uuid.UUID(value).version == 4 for value in ids)

    def test_finished_jobs_are_counted_for_the_thresholds(
        self, supervisor: Supervisor, store: Store, clock: ManualClock
    ) -> None:
        """Each finished job adds to its class's counters, failures apart."""
        with supervise("etl", supervisor=supervisor):
            clock.advance(2)
        with pytest.raises(KeyError), supervise("etl", supervisor=supervisor):
            raise KeyError("x")
        stats = read_stats(store, job_class="etl", now=clock.timestamp(), window=300)
        assert (stats.finished, stats.failed) == (2, 1)

    def test_heartbeats_from_another_process_survive_the_end(
        self, supervisor: Supervisor, store: Store, clock: ManualClock
    ) -> None:
        """Heartbeats and progress written by someone else for this job (`chaperone
        heartbeat` from a helper script) are not overwritten when the job ends."""
        other = Supervisor(store, clock)
        with supervise("j", heartbeat_interval=10, supervisor=supervisor) as job:
            clock.advance(3)
            other.heartbeat(job.supervision_id, progress=(4, 9), metadata={"step": "load"})
            beat_at = clock.timestamp()
            clock.advance(1)
        record = stored(store, job.supervision_id)
        assert record.state is JobState.COMPLETED
        assert record.last_heartbeat == beat_at
        assert (record.progress_current, record.progress_total) == (4, 9)
        assert record.metadata == {"step": "load"}

    def test_a_heartbeat_for_a_finished_job_changes_nothing(
        self, supervisor: Supervisor, store: Store, clock: ManualClock
    ) -> None:
        """A late `chaperone heartbeat` for a job that ended leaves its record as it was,
        and the record still expires after the retention period."""
        with supervise("j", heartbeat_interval=1, supervisor=supervisor) as job:
            pass
        clock.advance(10)
        returned = Supervisor(store, clock).heartbeat(job.supervision_id, progress=(1, 2))
        assert returned == stored(store, job.supervision_id)
        assert returned.last_heartbeat is None
        assert returned.progress_current is None
        assert scheduled(store) == {}
        clock.advance(RETENTION - 10)
        assert store.get(_keys.job_key(job.supervision_id)) is None

    def test_invalid_settings_are_refused(self) -> None:
        """Non-positive durations and limits, and fewer than one missed heartbeat, are
        the caller's mistakes: ValueError before anything runs."""
        for bad in (
            {"timeout": 0},
            {"timeout": -1},
            {"heartbeat_interval": "-5s"},
            {"missed_heartbeats": 0},
            {"memory_limit_mb": 0},
            {"cpu_limit_percent": -3},
        ):
            with pytest.raises(ValueError, match=r"must be|expected a"):
                supervise("j", **bad)


# -------------------------------------------------------------------------------------
# Heartbeats, progress, metadata
# -------------------------------------------------------------------------------------

_metadata_values = st.one_of(st.integers(), st.text(max_size=10), st.booleans(), st.none())
_calls = st.lists(
    st.tuples(
        st.sampled_from(["heartbeat", "progress"]),
        st.dictionaries(st.sampled_from(["a", "b", "tenant", "step"]), _metadata_values),
        st.integers(min_value=0, max_value=100),
        st.one_of(st.none(), st.integers(min_value=1, max_value=100)),
        st.sampled_from([0.0, 0.1, 0.3, 1.0, 2.5]),
    ),
    max_size=25,
)


class TestHeartbeats:
    """Heartbeats and progress: merged into the record, settings untouched."""

    @settings(max_examples=60)
    @given(calls=_calls)
    def test_settings_survive_and_metadata_merges(
        self, calls: list[tuple[str, dict[str, Any], int, int | None, float]]
    ) -> None:
        """Whatever heartbeats and progress reports a job sends, its settings stay as
        given, its metadata is the given metadata updated by each call in order (its text
        made safe), and its progress is the last reported."""
        clock = ManualClock()
        store = MemoryStore(clock)
        initial = {"tenant": "acme", "owner": "ops"}
        expected = dict(initial)
        progress: tuple[int, int | None] | None = None
        with supervise(
            "j",
            timeout=3600,
            heartbeat_interval=2,
            missed_heartbeats=5,
            memory_limit_mb=1e9,
            cpu_limit_percent=1e6,
            resource_interval=3600,
            metadata=initial,
            supervisor=Supervisor(store, clock),
        ) as job:
            for kind, metadata, current, total, pause in calls:
                clock.advance(pause)
                if kind == "heartbeat":
                    job.heartbeat(**metadata)
                else:
                    job.progress(current, total, **metadata)
                    progress = (current, total)
                expected.update(metadata)
        record = stored(store, job.supervision_id)
        store.close()
        assert (record.timeout, record.heartbeat_interval, record.missed_heartbeats) == (
            3600,
            2,
            5,
        )
        assert (record.memory_limit_mb, record.cpu_limit_percent) == (1e9, 1e6)
        assert record.name == "j"
        assert record.metadata == sanitize.data(expected)  # the drawn text holds controls
        assert initial == {"tenant": "acme", "owner": "ops"}
        if progress is not None:
            assert (record.progress_current, record.progress_total) == progress
        else:
            assert record.progress_current is None

    def test_heartbeat_moves_the_stuck_deadline(
        self, supervisor: Supervisor, store: Store, clock: ManualClock
    ) -> None:
        """A heartbeat pushes the stuck check back; the timeout check stays put."""
        start = clock.timestamp()
        with supervise("j", timeout=100, heartbeat_interval=10, supervisor=supervisor) as job:
            clock.advance(12)
            job.heartbeat()
            deadlines = scheduled(store)
        stuck_deadline = start + 12 + 10 * 3 + flush_interval(10)
        assert deadlines[_keys.member(job.supervision_id, "stuck")] == stuck_deadline
        assert deadlines[_keys.member(job.supervision_id, "timeout")] == start + 100

    def test_progress_counts_as_a_heartbeat(
        self, supervisor: Supervisor, store: Store, clock: ManualClock
    ) -> None:
        """``progress`` records the time as the last heartbeat too."""
        with supervise("j", heartbeat_interval=10, supervisor=supervisor) as job:
            clock.advance(5)
            job.progress(3, 10, stage="extract")
            record = stored(store, job.supervision_id)
        assert record.last_heartbeat == clock.timestamp()
        assert (record.progress_current, record.progress_total) == (3, 10)
        assert record.metadata == {"stage": "extract"}

    def test_the_handle_shows_id_name_and_record(self, supervisor: Supervisor) -> None:
        """The handle gives the job's id, name and the record as last written."""
        with supervise("named", supervisor=supervisor) as job:
            job.heartbeat(x=1)
            assert job.name == "named"
            assert job.record.supervision_id == job.supervision_id
            assert job.record.metadata == {"x": 1}


# -------------------------------------------------------------------------------------
# Coalescing
# -------------------------------------------------------------------------------------


class TestCoalescing:
    """A heartbeat in a hot loop is cheap: heartbeats coalesce into few writes."""

    def test_ten_thousand_heartbeats_in_one_flush_interval_write_at_most_twice(
        self, clock: ManualClock
    ) -> None:
        """10,000 heartbeats within one flush interval write the record at most twice
        (the first at once, the latest at the end) and cost little time."""
        store = CountingStore(MemoryStore(clock))
        with supervise("hot", heartbeat_interval=10, supervisor=Supervisor(store, clock)) as job:
            before = store.record_writes
            began = time.perf_counter()
            for index in range(10_000):
                job.heartbeat(index=index)
                clock.advance(0.000_01)
            took = time.perf_counter() - began
            during = store.record_writes - before
        assert during <= 2
        assert took < 2.0, f"10,000 heartbeats took {took:.2f}s"
        record = stored(store.inner, job.supervision_id)
        assert record.metadata == {"index": 9_999}
        assert record.last_heartbeat == pytest.approx(clock.timestamp() - 0.000_01, abs=1e-5)

    def test_the_latest_pending_heartbeat_is_written_at_the_end(
        self, supervisor: Supervisor, store: Store, clock: ManualClock
    ) -> None:
        """A heartbeat held back by coalescing reaches the store when the job ends."""
        with supervise("j", heartbeat_interval=4, supervisor=supervisor) as job:
            job.heartbeat(step=1)
            clock.advance(0.5)
            job.progress(7, 8, step=2)
            pending_at = clock.timestamp()
            held = stored(store, job.supervision_id)
            clock.advance(0.1)
        assert held.metadata == {"step": 1}
        record = stored(store, job.supervision_id)
        assert record.last_heartbeat == pending_at
        assert record.metadata == {"step": 2}
        assert (record.progress_current, record.progress_total) == (7, 8)

    @settings(max_examples=80)
    @given(
        interval=st.sampled_from([0.2, 1.0, 4.0, 30.0]),
        gaps=st.lists(st.floats(min_value=0, max_value=3, allow_nan=False), max_size=60),
    )
    def test_the_store_lags_a_heartbeat_by_less_than_a_flush_interval(
        self, interval: float, gaps: list[float]
    ) -> None:
        """For any rhythm of heartbeats: after each one, the stored heartbeat is less
        than one flush interval (a quarter of the heartbeat interval, at most a second)
        older, and two writes are at least a flush interval apart."""
        clock = ManualClock()
        store = CountingStore(MemoryStore(clock))
        flush = min(1.0, interval / 4)
        writes_at: list[float] = []
        with supervise(
            "j",
            heartbeat_interval=interval,
            supervisor=Supervisor(store, clock),
        ) as job:
            for gap in gaps:
                clock.advance(gap)
                before = store.record_writes
                job.heartbeat()
                now = clock.timestamp()
                if store.record_writes > before:
                    writes_at.append(now)
                last = stored(store.inner, job.supervision_id).last_heartbeat
                assert last is not None
                assert now - last < flush + 1e-6
        store.inner.close()
        for earlier, later in itertools.pairwise(writes_at):
            assert later - earlier >= flush - 1e-6


# -------------------------------------------------------------------------------------
# Decorator, async, nesting
# -------------------------------------------------------------------------------------


class TestDecorator:
    """``@supervise(...)`` on sync and async functions."""

    def test_sync_function(self, supervisor: Supervisor, store: Store) -> None:
        """Each call runs as a new job that sees itself as the current job, returns the
        function's value, and keeps the function's name and docstring."""
        seen: list[Supervision] = []

        @supervise("sync.job", heartbeat_interval=5, supervisor=supervisor)
        def work(a: int, *, b: int) -> int:
            """Add."""
            job = current_job()
            assert job is not None
            job.heartbeat(a=a)
            seen.append(job)
            return a + b

        assert work(1, b=2) == 3
        assert work(5, b=5) == 10
        assert work.__name__ == "work"
        assert work.__doc__ == "Add."
        assert current_job() is None
        assert len({job.supervision_id for job in seen}) == 2
        records = [stored(store, job.supervision_id) for job in seen]
        assert [record.state for record in records] == [JobState.COMPLETED] * 2
        assert [record.metadata for record in records] == [{"a": 1}, {"a": 5}]

    def test_sync_function_failure(self, supervisor: Supervisor, store: Store) -> None:
        """A raising call is recorded failed and the exception reaches the caller."""
        ids: list[str] = []

        @supervise("sync.fail", supervisor=supervisor)
        def work() -> None:
            job = current_job()
            assert job is not None
            ids.append(job.supervision_id)
            raise LookupError("no such row")

        with pytest.raises(LookupError, match="no such row"):
            work()
        record = stored(store, ids[0])
        assert record.state is JobState.FAILED
        assert record.error == "LookupError: no such row"

    def test_async_function(self, supervisor: Supervisor, store: Store) -> None:
        """An async function stays a coroutine function; concurrent calls are separate
        jobs, each seeing its own current job."""
        seen: dict[int, str] = {}

        @supervise("async.job", supervisor=supervisor)
        async def work(n: int) -> int:
            job = current_job()
            assert job is not None
            seen[n] = job.supervision_id
            await asyncio.sleep(0)
            again = current_job()
            assert again is job
            job.progress(n, 3)
            return n * 2

        assert inspect.iscoroutinefunction(work)

        async def main() -> list[int]:
            return list(await asyncio.gather(work(1), work(2), work(3)))

        assert asyncio.run(main()) == [2, 4, 6]
        assert len(set(seen.values())) == 3
        for n, supervision_id in seen.items():
            record = stored(store, supervision_id)
            assert record.state is JobState.COMPLETED
            assert record.progress_current == n

    def test_async_function_failure(self, supervisor: Supervisor, store: Store) -> None:
        """A raising coroutine is recorded failed and the exception propagates."""
        ids: list[str] = []

        @supervise("async.fail", supervisor=supervisor)
        async def work() -> None:
            job = current_job()
            assert job is not None
            ids.append(job.supervision_id)
            raise TimeoutError("upstream slow")

        with pytest.raises(TimeoutError):
            asyncio.run(work())
        assert stored(store, ids[0]).error == "TimeoutError: upstream slow"

    def test_async_context_manager(self, supervisor: Supervisor, store: Store) -> None:
        """``async with supervise(...)`` records start and end like the sync form."""

        async def main() -> str:
            async with supervise("async.block", supervisor=supervisor) as job:
                assert current_job() is job
                assert stored(store, job.supervision_id).state is JobState.RUNNING
                return job.supervision_id

        supervision_id = asyncio.run(main())
        assert stored(store, supervision_id).state is JobState.COMPLETED


class TestNesting:
    """Jobs inside jobs, and one supervise object used several times at once."""

    def test_nested_blocks_are_separate_jobs(self, supervisor: Supervisor, store: Store) -> None:
        """An inner job is the current one inside it; the outer one is again after."""
        with supervise("outer", supervisor=supervisor) as outer:
            assert current_job() is outer
            with supervise("inner", supervisor=supervisor) as inner:
                assert current_job() is inner
                assert stored(store, outer.supervision_id).state is JobState.RUNNING
            assert current_job() is outer
            assert stored(store, inner.supervision_id).state is JobState.COMPLETED
        assert current_job() is None
        assert outer.supervision_id != inner.supervision_id
        assert stored(store, outer.supervision_id).state is JobState.COMPLETED

    def test_an_inner_failure_fails_both(self, supervisor: Supervisor, store: Store) -> None:
        """An exception out of an inner block fails the inner job, then the outer."""
        with (
            pytest.raises(OSError, match="gone"),
            supervise("outer", supervisor=supervisor) as outer,
            supervise("inner", supervisor=supervisor) as inner,
        ):
            raise OSError("gone")
        assert stored(store, inner.supervision_id).state is JobState.FAILED
        assert stored(store, outer.supervision_id).state is JobState.FAILED

    def test_one_object_reentered(self, supervisor: Supervisor, store: Store) -> None:
        """The same supervise object entered inside itself runs two jobs, ended in turn."""
        guard = supervise("again", supervisor=supervisor)
        with guard as outer:
            with guard as inner:
                assert current_job() is inner
            assert current_job() is outer
            assert stored(store, inner.supervision_id).state is JobState.COMPLETED
            assert stored(store, outer.supervision_id).state is JobState.RUNNING
        assert stored(store, outer.supervision_id).state is JobState.COMPLETED

    def test_one_object_shared_by_concurrent_tasks(
        self, supervisor: Supervisor, store: Store
    ) -> None:
        """A module-level supervise object used by overlapping async tasks ends each
        task's own job, whatever order they finish in."""
        guard = supervise("shared", supervisor=supervisor)
        first_in = asyncio.Event

        async def task(name: str, entered: asyncio.Event, release: asyncio.Event) -> str:
            async with guard as job:
                job.heartbeat(task=name)
                entered.set()
                await release.wait()
                assert current_job() is job
                return job.supervision_id

        async def main() -> tuple[str, str]:
            a_in, b_in, a_go, b_go = first_in(), first_in(), first_in(), first_in()
            a = asyncio.create_task(task("a", a_in, a_go))
            await a_in.wait()
            b = asyncio.create_task(task("b", b_in, b_go))
            await b_in.wait()
            a_go.set()  # a, entered first, leaves first
            a_id = await a
            b_go.set()
            return a_id, await b

        a_id, b_id = asyncio.run(main())
        for supervision_id, name in ((a_id, "a"), (b_id, "b")):
            record = stored(store, supervision_id)
            assert record.state is JobState.COMPLETED
            assert record.metadata == {"task": name}

    def test_one_object_shared_by_threads(self, supervisor: Supervisor, store: Store) -> None:
        """Threads sharing one supervise object each end their own job."""
        guard = supervise("threads", supervisor=supervisor)
        barrier = threading.Barrier(4)
        ids: list[str] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with guard as job:
                    barrier.wait(timeout=10)
                    assert current_job() is job
                    ids.append(job.supervision_id)
                    barrier.wait(timeout=10)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        assert len(set(ids)) == 4
        assert {stored(store, i).state for i in ids} == {JobState.COMPLETED}


# -------------------------------------------------------------------------------------
# The store away
# -------------------------------------------------------------------------------------


class TestStoreAway:
    """A store that fails never fails the job."""

    def test_every_call_survives_a_failing_store(self) -> None:
        """Start, heartbeats, progress and the end all go through although each store
        call raises; the block's value is the job's, and the failure is logged, not
        raised, at most once a minute."""
        clock = ManualClock()
        store = BrokenStore()
        with (
            capture_all_logs() as logs,
            supervise(
                "j",
                timeout=5,
                heartbeat_interval=1,
                supervisor=Supervisor(store, clock),
            ) as job,
        ):
            for index in range(50):
                job.heartbeat(i=index)
                job.progress(index, 50)
                clock.advance(0.5)
            result = "done"
        assert result == "done"
        assert store.attempts >= 5  # t = 0, 1, 3, 7, 15: the retry delay doubles
        warnings = [entry for entry in logs if entry["log_level"] == "warning"]
        assert 1 <= len(warnings) <= 1 + 25 // 60 + 1
        assert all("StoreError" in entry["error"] for entry in warnings)

    def test_the_jobs_own_exception_is_what_propagates(self) -> None:
        """With the store failing, the job's exception still reaches the caller,
        unchanged, and not a store error."""
        store = BrokenStore()
        mine = ZeroDivisionError("mine")
        with (
            pytest.raises(ZeroDivisionError) as raised,
            supervise("j", supervisor=Supervisor(store)),
        ):
            raise mine
        assert raised.value is mine

    def test_decorated_functions_survive_a_failing_store(self) -> None:
        """Sync and async decorated functions return their values with the store away."""
        supervisor = Supervisor(BrokenStore())

        @supervise("sync", heartbeat_interval=1, supervisor=supervisor)
        def work() -> int:
            job = current_job()
            assert job is not None
            job.heartbeat()
            return 1

        @supervise("async", heartbeat_interval=1, supervisor=supervisor)
        async def awork() -> int:
            job = current_job()
            assert job is not None
            job.progress(1, 2)
            return 2

        assert work() == 1
        assert asyncio.run(awork()) == 2

    def test_heartbeats_reach_the_store_once_it_is_back(self) -> None:
        """What could not be written while the store was away (progress, metadata) is
        written with the next heartbeat after it came back."""
        clock = ManualClock()
        store = BrokenStore()
        with supervise(
            "j",
            heartbeat_interval=4,
            supervisor=Supervisor(store, clock),
        ) as job:
            job.progress(3, 10, phase="extract")
            clock.advance(2)
            store.broken = False
            job.heartbeat()
            record = stored(store.inner, job.supervision_id)
        assert record.last_heartbeat == clock.timestamp()
        assert (record.progress_current, record.progress_total) == (3, 10)
        assert record.metadata == {"phase": "extract"}

    def test_an_unopenable_configured_store_does_not_fail_the_job(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """With no supervisor given and the configured SQLite file impossible to open,
        the job runs anyway (its facts are lost, and a warning says so)."""
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        monkeypatch.setenv("CHAPERONE_STORE", f"sqlite:///{blocker / 'sub' / 'c.db'}")
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(supervise_module, "_default_supervisor", None)
        with capture_all_logs() as logs:
            with supervise("j", heartbeat_interval=1) as job:
                job.heartbeat()
                job.progress(1, 2)
            ran = True

            @supervise("k")
            def work() -> int:
                return 7

            assert work() == 7
        assert ran
        assert any(entry["log_level"] == "warning" for entry in logs)


# -------------------------------------------------------------------------------------
# Incidents closed at the end
# -------------------------------------------------------------------------------------


class TestEnd:
    """The end of a job resolves what it had open, once."""

    def test_open_incidents_are_resolved_by_one_job_completed(
        self, supervisor: Supervisor, store: Store, clock: ManualClock
    ) -> None:
        """A job ending with a stuck and a timeout incident open queues one
        JobCompleted naming both, and closes them."""
        guard = supervise("j", timeout=1, heartbeat_interval=1, supervisor=supervisor)
        job = guard.__enter__()
        for alert_type in ("job_stuck", "job_timeout"):
            store.set(
                _keys.incident_key(job.supervision_id, alert_type),
                json.dumps({"type": alert_type, "key": job.supervision_id}),
            )
        clock.advance(9)
        late = RuntimeError("late")
        guard.__exit__(RuntimeError, late, None)
        events = queued(store)
        assert len(events) == 1
        completed = events[0]
        assert isinstance(completed, JobCompleted)
        assert completed.supervision_id == job.supervision_id
        assert completed.failed
        assert completed.error == "RuntimeError: late"
        assert completed.duration.total_seconds() == 9
        assert set(completed.resolves) == {
            IncidentRef(type="job_stuck", key=job.supervision_id),
            IncidentRef(type="job_timeout", key=job.supervision_id),
        }
        assert store.keys(_keys.incident_prefix(job.supervision_id)) == []

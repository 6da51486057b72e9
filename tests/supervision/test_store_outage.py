"""Supervised jobs while alerting's store is away: heartbeats are kept and written later.

The job side keeps the latest unwritten record of each job (one per job, the newest wins)
and writes it once the store answers again; after a failed call it only buffers until a
retry delay has passed. Unit tests use a store that fails on demand and a ManualClock; one
test restarts a real Redis while a job heartbeats (its waits are real: how long a server
is down, not windows of Chaperone's clock).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone import ManualClock, StoreError
from chaperone.store import MemoryStore, Store
from chaperone.store._redis import RedisStore
from chaperone.supervision import JobRecord, JobState, Supervisor, _keys, supervise
from chaperone.supervision import _supervisor as supervisor_module
from chaperone.testing.redis_server import RedisServer, redis_server_or_skip
from helpers.report import report


class SwitchableStore:
    """A memory store that raises StoreError on every call while ``away`` is set, and
    counts the calls made while away."""

    url = "memory://switchable"

    def __init__(self, clock: ManualClock) -> None:
        self.inner = MemoryStore(clock)
        self.away = False
        self.failed_calls = 0

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.away:
                self.failed_calls += 1
                raise StoreError(f"the store is away ({name})")
            return method(*args, **kwargs)

        return call


def stored(store: Store, supervision_id: str) -> JobRecord | None:
    """The job's record in ``store``, or None."""
    text = store.get(_keys.job_key(supervision_id))
    return None if text is None else JobRecord.from_json(text)


def deadlines(store: Store) -> dict[str, float]:
    """Every member of the deadline index with its time."""
    return dict(store.due(_keys.DEADLINES, math.inf, 10_000))


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when told."""
    return ManualClock()


@pytest.fixture
def store(clock: ManualClock) -> Iterator[SwitchableStore]:
    """A store that can be sent away and brought back."""
    made = SwitchableStore(clock)
    yield made
    made.inner.close()


@pytest.fixture
def supervisor(store: SwitchableStore, clock: ManualClock) -> Supervisor:
    """A supervisor on the switchable store whose retries the test drives."""
    return Supervisor(store, clock, retry_in_background=False)  # type: ignore[arg-type]


class TestBuffered:
    """Facts the store refused are kept, the latest per job, and written when it is back."""

    def test_heartbeats_during_an_outage_keep_only_the_latest(
        self, supervisor: Supervisor, store: SwitchableStore, clock: ManualClock
    ) -> None:
        """Many heartbeats with the store away leave one kept record for the job, the one
        folded last (heartbeats coalesce over a flush interval, here 1 s); once the store is
        back the next heartbeat writes the newest progress and metadata. The job body sees
        no exception."""
        with supervise("j", heartbeat_interval=4, supervisor=supervisor) as job:
            store.away = True
            for index in range(200):
                job.progress(index, 200, phase=f"p{index}")
                clock.advance(0.1)
            kept = supervisor.pending
            assert list(kept) == [job.supervision_id]
            record = kept[job.supervision_id]
            assert record.progress_total == 200
            assert record.progress_current is not None
            assert 189 <= record.progress_current <= 199  # within a flush interval
            assert record.metadata == {"phase": f"p{record.progress_current}"}
            store.away = False
            clock.advance(60)
            job.heartbeat()
            assert supervisor.pending == {}
            written = stored(store.inner, job.supervision_id)
            assert written is not None
            assert written.progress_current == 199
            assert written.metadata == {"phase": "p199"}
            assert written.last_heartbeat == clock.timestamp()

    def test_the_job_does_not_call_the_store_within_the_retry_delay(
        self, supervisor: Supervisor, store: SwitchableStore, clock: ManualClock
    ) -> None:
        """After a failed call the job's heartbeats only buffer until the retry delay has
        passed; the delay doubles (1, 2, 4, 8 s, ...) while the store stays away."""
        tried_at: list[float] = []
        origin = clock.timestamp()
        with supervise("j", heartbeat_interval=1, supervisor=supervisor) as job:
            store.away = True
            for _ in range(160):  # 16 s, a heartbeat every 0.1 s
                before = store.failed_calls
                job.heartbeat()
                if store.failed_calls > before:
                    tried_at.append(round(clock.timestamp() - origin, 1))
                clock.advance(0.1)
            store.away = False
        gaps = [later - earlier for earlier, later in itertools.pairwise(tried_at)]
        assert len(gaps) == 4, tried_at
        for gap, delay in zip(gaps, [1, 2, 4, 8], strict=True):  # the first flush after it
            assert delay <= gap < delay + 0.5, tried_at

    def test_the_end_of_a_job_is_written_once_the_store_is_back(
        self, supervisor: Supervisor, store: SwitchableStore, clock: ManualClock
    ) -> None:
        """A job that starts and ends with the store away costs the store one call; its
        completed record is kept and ``retry_pending`` writes it, checks unscheduled."""
        store.away = True
        with supervise("j", timeout=60, heartbeat_interval=5, supervisor=supervisor) as job:
            job.progress(1, 1)
            clock.advance(0.5)
        assert store.failed_calls == 1
        assert supervisor.pending[job.supervision_id].state is JobState.COMPLETED
        assert supervisor.retry_pending() == 0  # still away: kept
        store.away = False
        assert supervisor.retry_pending() == 1
        written = stored(store.inner, job.supervision_id)
        assert written is not None
        assert written.state is JobState.COMPLETED
        assert written.progress_current == 1
        assert deadlines(store.inner) == {}
        assert supervisor.pending == {}

    def test_any_successful_call_writes_what_other_jobs_kept(
        self, supervisor: Supervisor, store: SwitchableStore, clock: ManualClock
    ) -> None:
        """A job that ended during the outage is written by the next job's first store
        call after the store came back."""
        store.away = True
        with supervise("early", supervisor=supervisor) as early:
            pass
        store.away = False
        clock.advance(5)
        with supervise("late", supervisor=supervisor) as late:
            for_early = stored(store.inner, early.supervision_id)
            assert for_early is not None
            assert for_early.state is JobState.COMPLETED
        finished = stored(store.inner, late.supervision_id)
        assert finished is not None
        assert finished.state is JobState.COMPLETED

    def test_kept_records_are_bounded(
        self,
        supervisor: Supervisor,
        store: SwitchableStore,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Beyond the limit of kept records, the oldest job's is dropped."""
        monkeypatch.setattr(supervisor_module, "PENDING_LIMIT", 3)
        store.away = True
        names = [f"j{index}" for index in range(5)]
        for name in names:
            with supervise(name, supervisor=supervisor):
                pass
        assert [record.name for record in supervisor.pending.values()] == names[2:]

    def test_a_background_timer_writes_without_further_calls(
        self, store: SwitchableStore, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With background retries, a job that ended during the outage reaches the store
        without any further call of the job's (a short retry delay here)."""
        monkeypatch.setattr(supervisor_module, "RETRY_FIRST", 0.05)
        supervisor = Supervisor(store, clock, retry_in_background=True)  # type: ignore[arg-type]
        store.away = True
        with supervise("j", supervisor=supervisor) as job:
            pass
        store.away = False
        deadline = time.monotonic() + 10
        while supervisor.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        written = stored(store.inner, job.supervision_id)
        assert written is not None
        assert written.state is JobState.COMPLETED


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("progress"), st.integers(0, 1000)),
            st.tuples(st.just("away"), st.booleans()),
            st.tuples(st.just("advance"), st.floats(0.01, 40)),
        ),
        max_size=60,
    )
)
def test_the_store_ends_with_the_latest_progress(steps: list[tuple[str, Any]]) -> None:
    """Whatever the outages, once the store is back and the kept records are retried, the
    stored record holds the job's latest progress: nothing older overwrites it."""
    clock = ManualClock()
    store = SwitchableStore(clock)
    supervisor = Supervisor(store, clock, retry_in_background=False)  # type: ignore[arg-type]
    latest = None
    try:
        with supervise("j", heartbeat_interval=1, supervisor=supervisor) as job:
            for kind, value in steps:
                if kind == "progress":
                    job.progress(value)
                    latest = value
                elif kind == "away":
                    store.away = value
                else:
                    clock.advance(value)
            store.away = False
        supervisor.retry_pending()
        written = stored(store.inner, job.supervision_id)
        assert written is not None
        assert written.state is JobState.COMPLETED
        assert written.progress_current == latest
        assert supervisor.pending == {}
    finally:
        store.inner.close()


class TestRedisRestarted:
    """A real Redis restarted while a job heartbeats."""

    def test_heartbeats_survive_a_redis_restart(self, tmp_path: Path) -> None:
        """While Redis is down the job's heartbeats are buffered and each returns at once
        (no exception, no retry budget waited out); after the restart the monitor's view
        of the store shows the latest heartbeat the job handed over, and no stuck check
        due. This Redis has no persistence: the kept record recreates the job's."""
        folder = tmp_path / "redis"
        folder.mkdir()
        with RedisServer(redis_server_or_skip(), folder) as server:
            # One retry (0.2 s) rather than five: the first failing call waits it out.
            job_store = RedisStore(server.url(prefix="outage:", retries="1"), ManualClock())
            monitor_store = RedisStore(server.url(prefix="outage:"), ManualClock())
            supervisor = Supervisor(job_store)  # the real clock: background retries
            slowest = 0.0
            errors: list[BaseException] = []
            try:
                with supervise("j", heartbeat_interval=0.4, supervisor=supervisor) as job:
                    job.progress(0, 100)
                    server.stop()
                    for index in range(1, 41):  # about 0.8 s of work with Redis down
                        started = time.monotonic()
                        try:
                            job.progress(index, 100)
                        except BaseException as exc:  # the test's point: never
                            errors.append(exc)
                        if index > 1:  # the first call may wait out the retry budget
                            slowest = max(slowest, time.monotonic() - started)
                        time.sleep(0.02)
                    kept = supervisor.pending[job.supervision_id]
                    assert kept.progress_current is not None
                    assert kept.progress_current >= 36  # within a flush interval (0.1 s)
                    server.start()
                    deadline = time.monotonic() + 15
                    seen = None
                    while time.monotonic() < deadline:
                        seen = stored(monitor_store, job.supervision_id)
                        if seen is not None and seen.progress_current == kept.progress_current:
                            break
                        time.sleep(0.05)
                    assert seen is not None, "the monitor never saw the job"
                    assert seen.last_heartbeat == kept.last_heartbeat
                    assert seen.state is JobState.RUNNING
                    due = monitor_store.due(_keys.DEADLINES, time.time(), 100)
                    assert _keys.member(job.supervision_id, "stuck") not in dict(due)
            finally:
                job_store.close()
                monitor_store.close()
        report(f"heartbeats during the Redis restart: 40, slowest {slowest * 1000:.1f} ms")
        assert errors == []
        assert slowest < 0.2, slowest

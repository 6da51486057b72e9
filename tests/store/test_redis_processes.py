"""The Redis store shared by processes: the twin of test_sqlite_processes.py's race.

Eight spawned processes open the store by URL on their own system clocks and race for
the same keys, counter and queue on one real Redis server.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from typing import Any

import attrs
import pytest

from chaperone._clock import SystemClock
from chaperone.store import open_store
from helpers.redis_server import RedisServer

PROCESSES = 8
KEYS = 200
KEYS_PER_ROUND = 20
"""Keys the workers race for between two meetings at the barrier (meeting per key, as
the SQLite twin does, costs seconds on two cores; Redis answers faster than that)."""
APPENDS = 60
STREAM_MAX_LEN = 100
INCRS = 200
PUSHES = 250
TIMEOUT_S = 60.0
PREFIX = "procs:"


@attrs.frozen
class Report:
    """What one worker saw: the keys it won, the totals incr gave it, the records it popped."""

    won: list[int]
    totals: list[int]
    popped: list[str]


def _worker(url: str, worker: int, barrier: Barrier, results: Any) -> None:
    """Run in a spawned process: race the others for each key, then append to one stream,
    add to one counter and push to one queue, and last drain that queue.

    The workers meet at the barrier before every round of keys, then race for them in
    the same order; popping starts once every worker has pushed, so an empty pop means
    the queue is drained.
    """
    try:
        store = open_store(url, SystemClock())
        try:
            won = []
            for index in range(KEYS):
                if index % KEYS_PER_ROUND == 0:
                    barrier.wait(timeout=TIMEOUT_S)
                if store.set_if_absent(f"race:{index}", f"worker-{worker}", ttl=3600):
                    won.append(index)
            barrier.wait(timeout=TIMEOUT_S)
            for index in range(APPENDS):
                store.append("shared", f"{worker}:{index}", max_len=STREAM_MAX_LEN)
            barrier.wait(timeout=TIMEOUT_S)
            totals = [store.incr("hits") for _ in range(INCRS)]
            for index in range(PUSHES):
                store.push("work", f"{worker}:{index:03d}")
            barrier.wait(timeout=TIMEOUT_S)
            popped: list[str] = []
            for attempt in range(PROCESSES * PUSHES + 1):
                batch = store.pop("work", 1 + (worker + attempt) % 5)
                if not batch:
                    break
                popped.extend(batch)
        finally:
            store.close()
        results.put((worker, Report(won, totals, popped), None))
    except BaseException:
        barrier.abort()
        results.put((worker, None, traceback.format_exc()))


def _run_workers(url: str) -> dict[int, Report]:
    """Run the workers on ``url``; fail with their tracebacks if any of them failed."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(url, worker, barrier, results))
        for worker in range(PROCESSES)
    ]
    reports: dict[int, Report] = {}
    errors: list[str] = []
    try:
        for process in processes:
            process.start()
        deadline = time.monotonic() + TIMEOUT_S
        while len(reports) + len(errors) < PROCESSES and time.monotonic() < deadline:
            try:
                worker, report, error = results.get(timeout=0.2)
            except queue.Empty:
                crashed = [p for p in processes if p.exitcode not in (None, 0)]
                if crashed:  # died without reporting: free the others from the barrier
                    barrier.abort()
                if all(p.exitcode is not None for p in processes) and results.empty():
                    errors.extend(f"{p.name} exited with {p.exitcode}" for p in crashed)
                    break
                continue
            if error is None:
                reports[worker] = report
            else:
                errors.append(error)
        for process in processes:
            process.join(timeout=TIMEOUT_S)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        results.close()
        results.join_thread()
    assert not errors, "\n".join(errors)
    assert sorted(reports) == list(range(PROCESSES)), "every worker reports"
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    return reports


@attrs.frozen
class Outcome:
    """What the workers did on one Redis prefix: the URL and each worker's report."""

    url: str
    reports: dict[int, Report]


@pytest.fixture(scope="module")
def outcome(redis_server: RedisServer) -> Iterator[Outcome]:
    """One run of the workers, shared by the tests that check what it left behind."""
    redis_server.clear(PREFIX)
    url = redis_server.url(prefix=PREFIX)
    yield Outcome(url, _run_workers(url))
    redis_server.clear(PREFIX)


class TestAcrossProcesses:
    def test_exactly_one_winner_per_key(self, outcome: Outcome) -> None:
        """Eight processes racing for each of 200 keys yield exactly one winner per key,
        and the value left is the winner's."""
        winners: dict[int, list[int]] = {index: [] for index in range(KEYS)}
        for worker, report in outcome.reports.items():
            for index in report.won:
                winners[index].append(worker)
        assert {index: len(ws) for index, ws in winners.items()} == dict.fromkeys(range(KEYS), 1)
        store = open_store(outcome.url, SystemClock())
        try:
            stored = store.get_many([f"race:{index}" for index in range(KEYS)])
        finally:
            store.close()
        assert stored == {f"race:{index}": f"worker-{ws[0]}" for index, ws in winners.items()}

    def test_concurrent_appends_keep_max_len(self, outcome: Outcome) -> None:
        """Processes appending at once leave exactly the newest max_len records, in order."""
        store = open_store(outcome.url, SystemClock())
        try:
            records = store.tail("shared", 10 * STREAM_MAX_LEN)
        finally:
            store.close()
        assert len(records) == len(set(records)) == STREAM_MAX_LEN
        for worker in range(PROCESSES):
            own = [int(r.split(":")[1]) for r in records if r.startswith(f"{worker}:")]
            if own:  # a record kept means every later one by the same worker is kept too
                assert own == list(range(APPENDS - 1, APPENDS - 1 - len(own), -1))

    def test_counter_ends_at_the_number_of_calls(self, outcome: Outcome) -> None:
        """Eight processes each adding 200 times leave exactly 1600, each total seen once."""
        store = open_store(outcome.url, SystemClock())
        try:
            assert store.get("hits") == str(PROCESSES * INCRS)
        finally:
            store.close()
        returned = [total for report in outcome.reports.values() for total in report.totals]
        assert sorted(returned) == list(range(1, PROCESSES * INCRS + 1))
        assert all(r.totals == sorted(r.totals) for r in outcome.reports.values())

    def test_every_record_is_popped_exactly_once(self, outcome: Outcome) -> None:
        """Eight processes draining a queue of 2000 records get each exactly once, each
        process in the order its pusher pushed them."""
        popped = [record for report in outcome.reports.values() for record in report.popped]
        pushed = [f"{worker}:{index:03d}" for worker in range(PROCESSES) for index in range(PUSHES)]
        assert len(popped) == len(pushed) == 2000
        assert sorted(popped) == sorted(pushed)
        for report in outcome.reports.values():
            for pusher in range(PROCESSES):
                own = [r for r in report.popped if r.startswith(f"{pusher}:")]
                assert own == sorted(own)
        store = open_store(outcome.url, SystemClock())
        try:
            assert store.pop("work", 10) == []
        finally:
            store.close()


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield
    assert multiprocessing.active_children() == []

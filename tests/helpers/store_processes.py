"""Processes sharing one store (tests/store/test_*_processes.py): eight spawned workers open
the store by URL on their own system clocks and race for the same keys, stream, counter
and queue; :class:`AcrossProcessesChecks` judges what they saw and left behind.

A backend's test module runs the workers once in a module-scoped ``outcome`` fixture and
subclasses the checks::

    @pytest.fixture(scope="module")
    def outcome(...) -> Outcome:
        return run_workers(url, keys_per_round=...)

    class TestAcrossProcesses(AcrossProcessesChecks):
        pass
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from multiprocessing.synchronize import Barrier
from typing import Any

import attrs

from chaperone._clock import SystemClock
from chaperone.store import Store, open_store

__all__ = [
    "APPENDS",
    "INCRS",
    "KEYS",
    "PROCESSES",
    "PUSHES",
    "STREAM_MAX_LEN",
    "AcrossProcessesChecks",
    "Outcome",
    "Report",
    "run_workers",
]

PROCESSES = 8
KEYS = 200
APPENDS = 60
STREAM_MAX_LEN = 100
INCRS = 200
PUSHES = 250
TIMEOUT_S = 60.0


@attrs.frozen
class Report:
    """What one worker saw: the keys it won, the totals incr gave it, the records it popped."""

    won: list[int]
    totals: list[int]
    popped: list[str]


def _worker(url: str, worker: int, keys_per_round: int, barrier: Barrier, results: Any) -> None:
    """Run in a spawned process: race the others for each key, then append to one stream,
    add to one counter and push to one queue, and last drain that queue.

    The workers meet at the barrier before every round of ``keys_per_round`` keys, then
    race for them in the same order; popping starts once every worker has pushed, so an
    empty pop means the queue is drained. Every worker opens the store at once, so
    creating a SQLite file's schema races too.
    """
    try:
        store = open_store(url, SystemClock())
        try:
            won = []
            for index in range(KEYS):
                if index % keys_per_round == 0:
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


@attrs.frozen
class Outcome:
    """What the workers did to one store: its URL and what each worker reported."""

    url: str
    reports: dict[int, Report]

    @property
    def won_by(self) -> dict[int, list[int]]:
        """The keys each worker won."""
        return {worker: report.won for worker, report in self.reports.items()}

    def open(self) -> Store:
        """Open the store the workers shared, on the system clock."""
        return open_store(self.url, SystemClock())


def run_workers(url: str, *, keys_per_round: int = 1) -> Outcome:
    """Run the workers on the store ``url``, meeting before every ``keys_per_round`` keys;
    fail with their tracebacks if any of them failed.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(url, worker, keys_per_round, barrier, results))
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
    return Outcome(url, reports)


class AcrossProcessesChecks:
    """What the workers saw and left behind; a ``Test...`` subclass in a backend's module
    runs these against that module's ``outcome`` fixture.
    """

    def test_exactly_one_winner_per_key(self, outcome: Outcome) -> None:
        """Eight processes racing for each of 200 keys on one store yield exactly one
        winner per key."""
        winners: dict[int, list[int]] = {index: [] for index in range(KEYS)}
        for worker, indices in outcome.won_by.items():
            for index in indices:
                winners[index].append(worker)
        assert {index: len(ws) for index, ws in winners.items()} == dict.fromkeys(range(KEYS), 1)

    def test_winners_value_is_stored(self, outcome: Outcome) -> None:
        """The value left under each key is the one its winner wrote, read one by one and
        all at once."""
        expected = {
            f"race:{index}": f"worker-{worker}"
            for worker, indices in outcome.won_by.items()
            for index in indices
        }
        store = outcome.open()
        try:
            one_by_one = {f"race:{index}": store.get(f"race:{index}") for index in range(KEYS)}
            all_at_once = store.get_many([f"race:{index}" for index in range(KEYS)])
        finally:
            store.close()
        assert one_by_one == expected
        assert all_at_once == expected

    def test_concurrent_appends_keep_max_len(self, outcome: Outcome) -> None:
        """Processes appending at once leave exactly the newest max_len records, in order."""
        store = outcome.open()
        try:
            records = store.tail("shared", 10 * STREAM_MAX_LEN)
        finally:
            store.close()
        assert len(records) == STREAM_MAX_LEN
        assert len(set(records)) == STREAM_MAX_LEN
        for worker in range(PROCESSES):
            own = [int(r.split(":")[1]) for r in records if r.startswith(f"{worker}:")]
            assert own == sorted(own, reverse=True)
            if own:  # a record kept means every later one by the same worker is kept too
                assert own == list(range(APPENDS - 1, APPENDS - 1 - len(own), -1))

    def test_counter_ends_at_the_number_of_calls(self, outcome: Outcome) -> None:
        """Eight processes each adding 200 times to one key leave exactly 1600."""
        store = outcome.open()
        try:
            assert store.get("hits") == str(PROCESSES * INCRS)
        finally:
            store.close()

    def test_every_counter_total_goes_to_one_caller(self, outcome: Outcome) -> None:
        """The totals incr returned across processes are 1..1600, each to exactly one call."""
        returned = [total for report in outcome.reports.values() for total in report.totals]
        assert sorted(returned) == list(range(1, PROCESSES * INCRS + 1))
        assert all(r.totals == sorted(r.totals) for r in outcome.reports.values())

    def test_every_record_is_popped_exactly_once(self, outcome: Outcome) -> None:
        """Eight processes draining a queue of 2000 pushed records get each exactly once."""
        popped = [record for report in outcome.reports.values() for record in report.popped]
        pushed = [f"{worker}:{index:03d}" for worker in range(PROCESSES) for index in range(PUSHES)]
        assert len(popped) == len(pushed) == 2000
        assert sorted(popped) == sorted(pushed)
        store = outcome.open()
        try:
            assert store.pop("work", 10) == []
        finally:
            store.close()

    def test_each_process_pops_in_fifo_order(self, outcome: Outcome) -> None:
        """Of one pusher's records, each popping process gets them in the order pushed."""
        for report in outcome.reports.values():
            for pusher in range(PROCESSES):
                own = [r for r in report.popped if r.startswith(f"{pusher}:")]
                assert own == sorted(own)

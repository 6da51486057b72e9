"""Detection tick at 10^4, 10^5 and 10^6 supervised jobs, beside 10^5 schedules, none due
and 1 % due, on the memory, SQLite and Redis stores.

Run with ``nox -s bench`` or ``python bench/bench_detection_tick.py [--quick]``.

Each size gets a fresh store holding ``n`` jobs, each with a stuck check in the deadline
index. The 99 % that stay healthy are loaded straight into the index (one entry each, due
an hour on: setting up a million jobs through the public API would take minutes and
measure nothing of interest, and a tick never reads a job that is not due). Of the 1 %
that go stuck, the first 1,000 (all of them below 10^5 jobs) are real jobs written with
``Supervisor.write`` (record and deadline; last heartbeat now, 10 s interval, 3 missed
heartbeats: due 31 s on); the others (9,000 at 10^6) are index entries due a few seconds
after those, which only the ticks after the timed one would read.

Beside the jobs, every store holds :data:`SCHEDULES` (10^5) schedules in the schedules'
deadline index (``chaperone.schedules._watch``), loaded the same way, each due from an
hour on: the schedule detector reads that index on every tick.

- None due: the clock stands at now and nothing is due. Timed: the whole
  ``Monitor.tick()`` a monitor runs (mark the store, every built-in detector, dispatch the
  empty batch, drain the outbox), and the jobs detector alone
  (``chaperone.builtin.job_detector.check_due``): the part that reads the deadline index, whose
  cost could grow with ``n``; and the schedule detector alone
  (``chaperone.schedules._watch.check_schedules``), over its 10^5 schedules. Medians of
  many ticks.
- 1 % due: the clock moves 100 s on, so all of the 1 % are due.
  Timed: the first ``Monitor.detect()`` (the detection half of a tick: read each due
  job's record, claim its incident, reschedule its check), once. A tick handles at most
  ``MAX_DUE_PER_TICK`` (1,000) checks, the earliest due first, so at 10^5 and 10^6 jobs
  the first tick reports 1,000 and the rest (9,000 at 10^6) are reported by the next
  ticks, 10 in all at 10^6, each costing the same per job. Dispatching what was found is
  the alert-storm benchmark's work, not timed here.

On Redis, a tick's cost is round trips: the script counts them (one extra, untimed tick
through a counting wrapper of redis-py's connection) and times a bare PING in the same
rounds as the ticks, as the floor.

Targets (issue 7): the tick with none due under 1 ms at 10^6 jobs, growing no faster
than log n: the summary gives tick(10^6)/tick(10^4) next to log(10^6)/log(10^4) = 1.5.
Issue 16: with 10^5 schedules beside them, the tick with nothing due stays under 1 ms.
"""

from __future__ import annotations

import argparse
import math
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from _redis import loopback_redis
from _summary import machine, summary

from chaperone import Chaperone, JobStuck, ManualClock, Monitor, PluginHost, Settings
from chaperone.builtin.job_detector import MAX_DUE_PER_TICK, check_due
from chaperone.schedules import _keys as schedule_keys
from chaperone.schedules._watch import check_schedules
from chaperone.store import MemoryStore, SQLiteStore, Store, open_store
from chaperone.supervision import JobRecord, Supervisor, _keys

NOW = 1_700_000_000.0
STUCK_AFTER = 100.0
"""Seconds the clock moves for the 1 % to be due (their deadline is 31 s after now)."""
TARGET_MS = 1.0
FILL_BATCH = 10_000
SCHEDULES = 100_000
"""Schedules in the schedules' deadline index beside the jobs, none due."""

Fill = Callable[[Store, int], None]


def index_member(index: int) -> str:
    """The stuck check of an index-only job, its id shaped like a real one (a uuid4)."""
    return _keys.member(f"00000000-0000-4000-8000-{index:012d}", "stuck")


def real_jobs(size: int) -> int:
    """How many of the due jobs are real: as many as the timed tick handles."""
    return min(size // 100, MAX_DUE_PER_TICK)


def index_rows(size: int) -> Iterator[tuple[str, float]]:
    """Members and deadlines of the jobs loaded straight into the index: the due ones
    after the real ones (due 40 s on), then the healthy ones (due from an hour on).
    """
    due = size // 100
    for index in range(due - real_jobs(size)):
        yield index_member(index), NOW + 40 + index * 1e-4
    for index in range(due - real_jobs(size), size - real_jobs(size)):
        yield index_member(index), NOW + 3600 + index * 1e-3


def schedule_rows() -> Iterator[tuple[str, float]]:
    """Jobs and deadlines of the schedules, due from an hour on (one every 10 ms)."""
    for index in range(SCHEDULES):
        yield f"bench.scheduled.{index:06d}", NOW + 3600 + index * 1e-2


def all_rows(size: int) -> Iterator[tuple[str, str, float]]:
    """Every index entry to load: (index, member, time)."""
    for member, at in index_rows(size):
        yield _keys.DEADLINES, member, at
    for job, at in schedule_rows():
        yield schedule_keys.DEADLINES, job, at


def fill_memory(store: Store, size: int) -> None:
    """Load the index-only jobs and the schedules through the store's own ``schedule``."""
    for index, member, at in all_rows(size):
        store.schedule(index, member, at)


def fill_sqlite(store: Store, size: int) -> None:
    """Load the index-only jobs and the schedules with one bulk insert into the store's
    deadline table.
    """
    assert isinstance(store, SQLiteStore)
    connection = sqlite3.connect(store.path)
    try:
        with connection:
            connection.executemany(
                "INSERT INTO deadlines (idx, member, at) VALUES (?, ?, ?)", all_rows(size)
            )
    finally:
        connection.close()


def redis_filler(server_url: str) -> Fill:
    """Load the index-only jobs and the schedules with pipelined ZADDs into the store's
    deadline indexes (``P d:INDEX``, sorted sets, as ``chaperone.store._redis`` lays them
    out).
    """

    def fill(store: Store, size: int) -> None:
        import redis

        client = redis.Redis.from_url(server_url)
        prefix = store.prefix  # type: ignore[attr-defined]
        try:
            for index, rows in (
                (_keys.DEADLINES, index_rows(size)),
                (schedule_keys.DEADLINES, schedule_rows()),
            ):
                key = f"{prefix}d:{index}"
                while batch := dict(row for row, _ in zip(rows, range(FILL_BATCH), strict=False)):
                    client.zadd(key, batch)
        finally:
            client.close()

    return fill


def stuck_jobs(supervisor: Supervisor, count: int) -> None:
    """Write ``count`` real jobs whose last heartbeat is now: stuck 31 s on."""
    for _ in range(count):
        supervisor.write(
            JobRecord(
                supervision_id=str(uuid.uuid4()),
                name="bench.Job",
                started_at=NOW - 60,
                last_heartbeat=NOW,
                heartbeat_interval=10.0,
                missed_heartbeats=3,
            )
        )


@attrs.define
class Setup:
    """One backend at one size: the store filled, its clock, runtime and monitor."""

    size: int
    store: Store
    clock: ManualClock
    runtime: Chaperone
    monitor: Monitor

    @property
    def due(self) -> int:
        """How many jobs go stuck."""
        return self.size // 100

    def jobs_detector(self) -> None:
        """The jobs detector's tick alone."""
        list(check_due(self.store, self.clock.timestamp()))

    def schedule_detector(self) -> None:
        """The schedule detector's look at its deadline index alone (nothing due)."""
        list(check_schedules(self.store, lambda job: None, self.clock.now()))


@attrs.frozen
class Row:
    """One backend at one size; times in seconds."""

    tick: float
    tick_p10: float
    jobs_detector: float
    schedule_detector: float
    due: int
    handled: int
    due_tick: float

    @property
    def ticks_to_report(self) -> int:
        """Ticks until every due job is reported (a tick handles at most 1,000 checks)."""
        return math.ceil(self.due / MAX_DUE_PER_TICK)


OpenStore = Callable[[ManualClock, int], Store]


@attrs.frozen
class Backend:
    """How to open a fresh store per size and fill it; the Redis server's URL if any."""

    name: str
    open: OpenStore
    fill: Fill
    server: str | None = None


@contextmanager
def backends(folder: Path, with_redis: bool) -> Iterator[list[Backend]]:
    """The backends to measure."""

    def memory(clock: ManualClock, size: int) -> Store:
        return MemoryStore(clock)

    def sqlite(clock: ManualClock, size: int) -> Store:
        return open_store(f"sqlite:///{folder / f'tick-{size}.sqlite3'}", clock)

    found = [Backend("memory", memory, fill_memory), Backend("sqlite", sqlite, fill_sqlite)]
    if not with_redis:
        yield found
        return
    with loopback_redis() as url:

        def redis(clock: ManualClock, size: int) -> Store:
            return open_store(f"{url}?prefix=bench-tick-{size}:", clock)

        yield [*found, Backend("redis", redis, redis_filler(url), url)]


def prepare(stack: ExitStack, backend: Backend, size: int) -> Setup:
    """A fresh store with ``size`` jobs and a monitor on it."""
    clock = ManualClock(datetime.fromtimestamp(NOW, UTC))
    store = backend.open(clock, size)
    stack.callback(store.close)
    backend.fill(store, size)
    stuck_jobs(Supervisor(store, clock), real_jobs(size))
    runtime = stack.enter_context(
        Chaperone(
            Settings(channels=("log",)),
            clock=clock,
            store=store,
            plugins=PluginHost(entry_points=False),
        )
    )
    monitor = Monitor(runtime)
    for _ in range(2):  # warm up; nothing may be due yet
        if monitor.tick():
            raise SystemExit(f"n={size:,}: something was due before the clock moved")
    return Setup(size, store, clock, runtime, monitor)


def interleaved(actions: list[Callable[[], object]], rounds: int) -> list[list[float]]:
    """Wall seconds of each run of each action, run once a round in a rotating order so
    that a burst of load on the shared machine hits every action alike.
    """
    samples: list[list[float]] = [[] for _ in actions]
    indexed = list(enumerate(actions))
    for round_ in range(rounds):
        shift = round_ % len(actions)
        for index, action in indexed[shift:] + indexed[:shift]:
            start = time.perf_counter()
            action()
            samples[index].append(time.perf_counter() - start)
    return samples


def first_due_tick(setup: Setup) -> tuple[int, float]:
    """Move the clock past the 1 %'s deadline and detect once: how many jobs that tick
    reported stuck (at most ``MAX_DUE_PER_TICK``; the rest wait for the next ticks), and
    its seconds.
    """
    setup.clock.advance(STUCK_AFTER)
    start = time.perf_counter()
    events = setup.monitor.detect()
    elapsed = time.perf_counter() - start
    reported = sum(isinstance(event, JobStuck) for event in events)
    expected = min(setup.due, MAX_DUE_PER_TICK)
    if reported != expected:
        raise SystemExit(f"n={setup.size:,}: {expected} stuck jobs due, {reported} reported")
    return reported, elapsed


def measure(
    setups: list[Setup], rounds: int, floor: Callable[[], object] | None
) -> tuple[list[Row], float | None]:
    """None due, every size (and ``floor``, if any) in the same rounds; then the first
    tick of 1 % due, size by size. Returns the rows and the floor's median seconds.
    """
    actions: list[Callable[[], object]] = [setup.monitor.tick for setup in setups]
    ticks = interleaved(actions if floor is None else [*actions, floor], rounds)
    detectors = interleaved([setup.jobs_detector for setup in setups], rounds)
    watchers = interleaved([setup.schedule_detector for setup in setups], rounds)
    rows = []
    for setup, tick, detector, watcher in zip(setups, ticks, detectors, watchers, strict=False):
        handled, elapsed = first_due_tick(setup)
        p10 = statistics.quantiles(tick, n=10)[0]
        median = statistics.median
        rows.append(
            Row(
                median(tick),
                p10,
                median(detector),
                median(watcher),
                setup.due,
                handled,
                elapsed,
            )
        )
    return rows, None if floor is None else statistics.median(ticks[-1])


def round_trips(action: Callable[[], object]) -> int:
    """How many times ``action`` sends to Redis (a pipeline or a transaction counts once):
    redis-py's connection is wrapped to count, for one run outside any timing.
    """
    from redis.connection import AbstractConnection

    original = AbstractConnection.send_packed_command
    sent = 0

    def counting(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        nonlocal sent
        sent += 1
        original(self, *args, **kwargs)  # type: ignore[no-untyped-call]

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        action()
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
    return sent


@contextmanager
def pinging(server_url: str) -> Iterator[Callable[[], object]]:
    """A bare redis-py PING to the server: the floor of one round trip."""
    import redis

    client = redis.Redis.from_url(server_url)
    try:
        client.ping()
        yield client.ping
    finally:
        client.close()


def run_backend(backend: Backend, sizes: list[int], rounds: int) -> tuple[list[Row], str]:
    """Every size of one backend; the rows, and what bounds a tick (Redis: round trips)."""
    with ExitStack() as stack:
        start = time.perf_counter()
        setups = [prepare(stack, backend, size) for size in sizes]
        print(
            f"{backend.name:<7} filled {sum(sizes):,} jobs and {len(sizes)} x {SCHEDULES:,} "
            f"schedules in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        if backend.server is None:
            return measure(setups, rounds, None)[0], ""
        trips = round_trips(setups[-1].monitor.tick)
        ping = stack.enter_context(pinging(backend.server))
        rows, floor = measure(setups, rounds, ping)
        assert floor is not None
        bound = (
            f"{trips} round trips a tick x a bare PING's {floor * 1e6:.0f} µs "
            f"= {trips * floor * 1e3:.2f} ms"
        )
        return rows, bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10^3 and 10^4 jobs, seconds")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis backend")
    args = parser.parse_args()
    sizes, rounds = ([1_000, 10_000], 50) if args.quick else ([10_000, 100_000, 1_000_000], 300)
    small, large = sizes[0], sizes[-1]
    print(f"detection tick on {machine()}")
    rows: dict[tuple[str, int], Row] = {}
    bounds: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp, backends(Path(tmp), not args.no_redis) as found:
        for backend in found:
            measured, bound = run_backend(backend, sizes, rounds)
            for size, row in zip(sizes, measured, strict=True):
                rows[(backend.name, size)] = row
                print(
                    f"{backend.name:<7} n={size:>9,}  none due: tick {row.tick * 1e6:>5.0f} µs "
                    f"(p10 {row.tick_p10 * 1e6:>5.0f}), "
                    f"jobs detector {row.jobs_detector * 1e6:>5.1f} µs, schedule detector "
                    f"{row.schedule_detector * 1e6:>5.1f} µs;  1 % due "
                    f"({row.due:,}): first tick {row.handled:,} in "
                    f"{row.due_tick * 1e3:>6.1f} ms = {row.due_tick / row.handled * 1e6:.0f} "
                    f"µs/job, {row.ticks_to_report} tick(s) for all",
                    flush=True,
                )
            if bound:
                bounds[backend.name] = bound
                print(f"{backend.name:<7} bound: {bound}", flush=True)
    names = list(dict.fromkeys(name for name, _ in rows))
    log_growth = math.log(large) / math.log(small)
    growth = {name: rows[(name, large)].tick / rows[(name, small)].tick for name in names}
    detector_growth = {
        name: rows[(name, large)].jobs_detector / rows[(name, small)].jobs_detector
        for name in names
    }
    over = [name for name in names if rows[(name, large)].tick * 1e3 >= TARGET_MS]
    too_fast = [name for name in names if max(growth[name], detector_growth[name]) > log_growth]
    per_job = {name: rows[(name, large)].due_tick / rows[(name, large)].handled for name in names}
    exponent, small_exponent = round(math.log10(large)), round(math.log10(small))
    misses = [
        f"{name} {rows[(name, large)].tick * 1e3 - TARGET_MS:.2f} ms over"
        + (f": {bounds[name]}" if name in bounds else "")
        for name in over
    ] + [
        f"{name} grew {max(growth[name], detector_growth[name]):.2f}x, log n {log_growth:.2f}x"
        for name in too_fast
    ]
    large_row = rows[(names[0], large)]
    summary(
        "detection-tick",
        figure=(
            f"none due at 10^{exponent} jobs and {SCHEDULES:,} schedules: "
            + ", ".join(f"{name} {rows[(name, large)].tick * 1e3:.2f} ms" for name in names)
            + f" per tick; 1 % due ({large_row.due:,} jobs, {large_row.ticks_to_report} "
            f"tick(s) of ≤ {MAX_DUE_PER_TICK:,}): "
            + ", ".join(f"{name} {per_job[name] * 1e6:.0f} µs/job" for name in names)
        ),
        ratio=(
            f"tick(10^{exponent})/tick(10^{small_exponent}) = "
            + ", ".join(
                f"{name} {growth[name]:.2f}x (jobs detector {detector_growth[name]:.2f}x)"
                for name in names
            )
            + f"; log n grew {log_growth:.2f}x"
        ),
        target=f"none due < {TARGET_MS:g} ms at 10^{exponent}, growing ≤ log n",
        met=not misses,
        miss="; ".join(misses),
    )


if __name__ == "__main__":
    main()

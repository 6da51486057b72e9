"""Detection tick at 10^4, 10^5 and 10^6 supervised jobs, none due and 1 % due.

Run with ``nox -s bench`` (or ``python bench/bench_detection_tick.py [--sizes ...]``).
The jobs' deadlines are loaded straight into the store's tables (setting up a million
jobs through the public API would take minutes and measure nothing of interest); the
tick itself is the real one: ``chaperone.detectors.jobs.check_due`` on the real store.

Prints one line per backend and size, then a summary line with the ratio of the tick at
the largest size to the tick at the smallest: the target is a small constant factor
(the deadline index makes a tick O(log n), not a scan).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from chaperone import ManualClock
from chaperone.detectors.jobs import check_due
from chaperone.store import MemoryStore, SQLiteStore, Store
from chaperone.supervision import JobRecord, Supervisor, _keys

NOW = 1_700_000_000.0


def _records(count: int) -> list[JobRecord]:
    return [
        JobRecord(
            supervision_id=str(uuid.uuid4()),
            name="bench.Job",
            started_at=NOW - 120,
            last_heartbeat=NOW - 120,
            heartbeat_interval=10.0,
            missed_heartbeats=3,
        )
        for _ in range(count)
    ]


def _fill_memory(store: MemoryStore, size: int, due: int) -> None:
    for index in range(size - due):
        store.schedule(_keys.DEADLINES, f"idle-{index}|stuck", NOW + 3600 + index)
    supervisor = Supervisor(store, ManualClock())
    for record in _records(due):
        supervisor.write(record)


def _fill_sqlite(store: SQLiteStore, size: int, due: int) -> None:
    with sqlite3.connect(store.path) as connection:
        connection.executemany(
            "INSERT INTO deadlines (idx, member, at) VALUES (?, ?, ?)",
            (
                (_keys.DEADLINES, f"idle-{index}|stuck", NOW + 3600 + index)
                for index in range(size - due)
            ),
        )
    connection.close()
    supervisor = Supervisor(store, ManualClock())
    for record in _records(due):
        supervisor.write(record)


def _time_tick(store: Store, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        list(check_due(store, NOW))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _run(
    backend: str,
    make: Callable[[Path], Store],
    fill: Callable[[Store, int, int], None],
    sizes: list[int],
    folder: Path,
) -> dict[tuple[int, str], float]:
    results: dict[tuple[int, str], float] = {}
    for size in sizes:
        for label, due in (("none due", 0), ("1% due", size // 100)):
            store = make(folder / f"{backend}-{size}-{due}.sqlite3")
            fill(store, size, due)
            # With jobs due, the first tick does the work (reports them, reschedules):
            # time that one; with none due, every tick is the same: take the median.
            seconds = _time_tick(store, 1 if due else 200)
            results[(size, label)] = seconds
            print(f"{backend:<7} n={size:>9,} {label:<9} tick {seconds * 1e6:12.1f} µs")
            store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    clock = ManualClock()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        memory = _run("memory", lambda _p: MemoryStore(clock), _fill_memory, sizes, folder)  # type: ignore[arg-type]
        sqlite = _run(
            "sqlite", lambda p: SQLiteStore(p, clock, f"sqlite:///{p}"), _fill_sqlite, sizes, folder
        )  # type: ignore[arg-type]
    small, large = sizes[0], sizes[-1]
    for backend, results in (("memory", memory), ("sqlite", sqlite)):
        ratio = results[(large, "none due")] / results[(small, "none due")]
        print(
            f"SUMMARY detection-tick {backend}: none due at n={large:,} "
            f"{results[(large, 'none due')] * 1e6:.1f} µs = {ratio:.2f}x the tick at "
            f"n={small:,} (target: a small constant factor, and < 1 ms)"
        )


if __name__ == "__main__":
    main()

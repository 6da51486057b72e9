"""History append cost: ``SQLiteStore.append()`` on a full stream, against a bare INSERT
measured in the same run.

Run with ``nox -s bench`` or ``python bench/bench_history_append.py [--quick]``.

Every alert the ``database`` channel delivers appends one record to the history stream
and trims it to ``history_limit`` (10,000 by default), so a long-lived store appends to
a full stream: each append inserts one record and deletes the oldest. The stream is
filled to the cap through ``append()`` itself, then appends of a ~400-byte JSON record
(the shape of a history record) are timed in chunks, interleaved with chunks of the
floor: one ``INSERT`` of the same record in autocommit mode into a table of the same
shape, on a plain ``sqlite3`` connection to a second file in the same directory with
the same settings (WAL, ``synchronous=NORMAL``), which grows and is never trimmed. The
figure is the median per append over the chunks (wall clock, ``perf_counter``).

``--cap N`` sets the cap: the figure should not grow with it (a trim that walks the
stream, as the ``OFFSET :max_len`` the store used before schema 3 did, grows linearly).

Target: an append to a full stream costs at most 3x the bare INSERT, whatever the cap.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _summary import machine, summary

from chaperone import SystemClock
from chaperone.store import SQLiteStore

TARGET_RATIO = 3.0
CAP = 10_000
QUICK_CAP = 2_000
CHUNK = 200
CHUNKS = 15
QUICK_CHUNKS = 5
STREAM = "history"

RECORD = json.dumps(
    {
        "occurred_at": "2024-05-01T12:00:00+00:00",
        "type": "job_failed",
        "key": "nightly-backup",
        "channel": "slack",
        "status": "sent",
        "title": "Job failed: nightly-backup (exit code 2)",
        "detail": "rsync: connection unexpectedly closed (0 bytes received so far) " * 3,
        "fallback_of": None,
    }
)


def bare_inserts(path: Path) -> tuple[Callable[[int], None], Callable[[], None]]:
    """The floor: ``count`` autocommit INSERTs on a plain connection; and how to close it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE streams (id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL,"
        " record TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX streams_stream_id ON streams (stream, id)")

    def run(count: int) -> None:
        for _ in range(count):
            conn.execute(
                "INSERT INTO streams (stream, record) VALUES (:stream, :record)",
                {"stream": STREAM, "record": RECORD},
            )

    return run, conn.close


def appends(store: SQLiteStore, cap: int) -> Callable[[int], None]:
    """``count`` appends to the history stream, trimmed to ``cap``."""

    def run(count: int) -> None:
        for _ in range(count):
            store.append(STREAM, RECORD, cap)

    return run


def per_call_ms(run: Callable[[int], None], count: int) -> float:
    """Milliseconds per call of one chunk of ``count`` calls."""
    start = time.perf_counter()
    run(count)
    return (time.perf_counter() - start) * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller cap, fewer chunks")
    parser.add_argument("--cap", type=int, help=f"records in the full stream ({CAP:,})")
    args = parser.parse_args()
    cap = args.cap or (QUICK_CAP if args.quick else CAP)
    chunks = QUICK_CHUNKS if args.quick else CHUNKS
    print(f"measured on {machine()}; cap {cap:,} records, {chunks} chunks of {CHUNK}")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "store.sqlite3"
        store = SQLiteStore(path, SystemClock(), f"sqlite:///{path}")
        floor, close_floor = bare_inserts(Path(folder) / "floor.sqlite3")
        try:
            full = appends(store, cap)
            full(cap)  # fill the stream to the cap through append() itself
            append_ms: list[float] = []
            floor_ms: list[float] = []
            for _ in range(chunks):
                append_ms.append(per_call_ms(full, CHUNK))
                floor_ms.append(per_call_ms(floor, CHUNK))
            assert len(store.tail(STREAM, cap + 1)) == cap
        finally:
            store.close()
            close_floor()

    append = statistics.median(append_ms)
    bare = statistics.median(floor_ms)
    ratio = append / bare
    print(f"append to a full stream: {append:.3f} ms (min {min(append_ms):.3f})")
    print(f"bare INSERT:             {bare:.3f} ms (min {min(floor_ms):.3f})")
    summary(
        "history append",
        figure=f"{append * 1000:.0f} µs/append at {cap:,} records",
        ratio=f"{ratio:.1f}x a bare INSERT ({bare * 1000:.0f} µs)",
        target=f"<= {TARGET_RATIO:g}x a bare INSERT",
        met=ratio <= TARGET_RATIO,
        miss=f"{ratio:.1f}x: the trim costs more than the insert it follows",
    )


if __name__ == "__main__":
    main()

"""Heartbeat cost: ``Supervision.heartbeat()`` in a hot loop on each backend, and how much
a heartbeat per item slows a realistic job, against a bare dict update measured in the
same run.

Run with ``nox -s bench`` or ``python bench/bench_heartbeat.py [--quick]``.

The job is started the way a user starts one: ``chaperone.supervise(name,
heartbeat_interval=1, supervisor=Supervisor(store))`` on the real clock, so each
heartbeat pays its real clock read and lock, and the latest heartbeat is written to the
store every flush interval (a quarter of the heartbeat interval: 4 writes a second; a
job with a longer interval writes once a second at most, so this is the costlier case).
The stores are memory://, a SQLite file in a temporary directory, and a loopback Redis.

1. Hot loop: chunks of ``job.heartbeat()`` back to back, interleaved with chunks of the
   floor (a bare dict update, ``state["beat"] = i``, in the same loop shape) and of
   ``job.progress(i, n)``; µs per call is the median over the chunks.
2. Job slowed: a job that handles orders one by one (decode a ~1.3 KB JSON order of 20
   lines, total it, re-encode it and hash it: about 50-150 µs an item here), in chunks
   of a few ms run without and with a heartbeat per item, in alternating order; the
   in-loop slowdown is the median of the paired ratios.

Chunks are timed with the thread's CPU clock (``time.thread_time``) as well as
``time.perf_counter``: on a shared 2-core machine other processes stretch wall-clock
chunks by up to 3x at random, which the CPU clock does not see. What the CPU clock would
miss, the store's I/O wait in a flush, is measured apart (median wall time of a record
write, ``Supervisor.write``) and added back at 4 flushes a second: amortised µs =
in-loop µs / (1 - 4 x flush seconds), and the job's slowdown likewise.

Targets (issue 7): at most 2 µs per heartbeat amortised, and at most 5 % slower.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import attrs
from _redis import loopback_redis
from _summary import machine, summary

import chaperone
from chaperone import Supervision, Supervisor, SystemClock
from chaperone.store import open_store

TARGET_US = 2.0
TARGET_SLOWDOWN = 0.05
HEARTBEAT_INTERVAL = 1.0
FLUSHES_PER_SECOND = 1 / min(1.0, HEARTBEAT_INTERVAL / 4)
"""A job writes its latest heartbeat every quarter of its interval, at most each second."""
FLOOR_CHUNK = 20_000
HEARTBEAT_CHUNK = 2_000
JOB_CHUNK_SECONDS = 0.0025

ORDER = json.dumps(
    {
        "id": 0,
        "customer": "acme-corp",
        "currency": "EUR",
        "lines": [
            {"sku": f"SKU-{line:05d}", "qty": line % 7 + 1, "price": 9.99 + line}
            for line in range(20)
        ],
        "note": "deliver to the back door, ring twice" * 4,
    }
)

Run = Callable[[int], None]


def handle_order(number: int) -> str:
    """One item of the job: decode an order, total it, re-encode and hash it."""
    order: dict[str, Any] = json.loads(ORDER)
    order["id"] = number
    order["total"] = round(sum(line["qty"] * line["price"] for line in order["lines"]), 2)
    return hashlib.sha256(json.dumps(order, sort_keys=True).encode()).hexdigest()


def dict_updates(count: int) -> None:
    """The floor: ``count`` bare dict updates in the hot loop's shape."""
    state: dict[str, int] = {}
    for number in range(count):
        state["beat"] = number


def heartbeats(job: Supervision) -> Run:
    """``count`` heartbeats, called as a user writes them."""

    def run(count: int) -> None:
        for _ in range(count):
            job.heartbeat()

    return run


def progress_calls(job: Supervision) -> Run:
    """``count`` progress reports (each counts as a heartbeat)."""

    def run(count: int) -> None:
        for number in range(count):
            job.progress(number, count)

    return run


def orders(job: Supervision | None) -> Run:
    """``count`` orders handled, with a heartbeat after each when ``job``."""

    def bare(count: int) -> None:
        for number in range(count):
            handle_order(number)

    def beating(count: int) -> None:
        for number in range(count):
            handle_order(number)
            job.heartbeat()  # type: ignore[union-attr]

    return bare if job is None else beating


def timed(run: Run, count: int) -> tuple[float, float]:
    """Thread CPU seconds and wall seconds of ``run(count)``."""
    cpu, wall = time.thread_time(), time.perf_counter()
    run(count)
    return time.thread_time() - cpu, time.perf_counter() - wall


def interleaved(runs: list[tuple[Run, int]], rounds: int) -> list[tuple[list[float], list[float]]]:
    """Run each ``(run, count)`` once a round for ``rounds`` rounds, starting each round
    at the next run, every other cycle backwards, so that no run keeps a position; per
    run, the CPU and the wall seconds per call of each of its chunks.
    """
    for run, count in runs:
        run(count)  # warm up
    results: list[tuple[list[float], list[float]]] = [([], []) for _ in runs]
    indexed = list(enumerate(runs))
    for round_ in range(rounds):
        shift = round_ % len(runs)
        order = indexed[shift:] + indexed[:shift]
        if (round_ // len(runs)) % 2:
            order.reverse()
        for index, (run, count) in order:
            cpu, wall = timed(run, count)
            results[index][0].append(cpu / count)
            results[index][1].append(wall / count)
    return results


def median_ratio(numerators: list[float], denominators: list[float]) -> float:
    """Median of the ratios of chunks of the same rounds."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def flush_seconds(supervisor: Supervisor, job: Supervision, repeat: int) -> float:
    """Median wall seconds of one write of the job's record: what a flush costs."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        supervisor.write(job.record)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def calibrate(seconds: float) -> tuple[int, float]:
    """How many orders take about ``seconds`` of CPU, and µs per order."""
    run = orders(None)
    run(200)
    per_item = statistics.median(timed(run, 200)[0] / 200 for _ in range(5))
    return max(5, round(seconds / per_item)), per_item * 1e6


@contextmanager
def backends(with_redis: bool) -> Iterator[dict[str, str]]:
    """The URL of each store to measure on, by name."""
    with tempfile.TemporaryDirectory() as folder:
        stores = {
            "memory": "memory://",
            "sqlite": f"sqlite:///{Path(folder) / 'heartbeat.sqlite3'}",
        }
        if not with_redis:
            yield stores
            return
        with loopback_redis() as url:
            yield {**stores, "redis": f"{url}?prefix=bench-heartbeat:"}


@contextmanager
def supervised(urls: dict[str, str]) -> Iterator[dict[str, tuple[Supervisor, Supervision]]]:
    """One supervised job on each store, started as a user starts one; finished and the
    stores closed on leaving.
    """
    clock = SystemClock()
    with ExitStack() as stack:
        jobs = {}
        for name, url in urls.items():
            store = open_store(url, clock)
            stack.callback(store.close)
            supervisor = Supervisor(store, clock)
            job = stack.enter_context(
                chaperone.supervise(
                    f"bench.Heartbeat.{name}",
                    heartbeat_interval=HEARTBEAT_INTERVAL,
                    supervisor=supervisor,
                )
            )
            jobs[name] = (supervisor, job)
        yield jobs


@attrs.frozen
class Result:
    """One backend's figures; times in seconds."""

    floor: float
    heartbeat: float
    heartbeat_wall: float
    progress: float
    flush: float
    in_loop_ratio: float
    in_loop_ratio_wall: float

    @property
    def flush_share(self) -> float:
        """The fraction of a heartbeating job's time spent writing to the store."""
        return FLUSHES_PER_SECOND * self.flush

    @property
    def amortised(self) -> float:
        """Seconds per heartbeat, the flushes included."""
        return self.heartbeat / (1 - self.flush_share)

    @property
    def slowdown(self) -> float:
        """How much longer the job takes with a heartbeat per item, the flushes included."""
        return self.in_loop_ratio / (1 - self.flush_share) - 1


def measure(
    jobs: dict[str, tuple[Supervisor, Supervision]], rounds: int, job_items: int
) -> dict[str, Result]:
    """Hot-loop and job figures on every store, all measured in the same rounds."""
    names = list(jobs)
    hot = interleaved(
        [
            (dict_updates, FLOOR_CHUNK),
            *((heartbeats(job), HEARTBEAT_CHUNK) for _, job in jobs.values()),
            *((progress_calls(job), HEARTBEAT_CHUNK) for _, job in jobs.values()),
        ],
        rounds,
    )
    floor = statistics.median(hot[0][0])
    flushes = {name: flush_seconds(supervisor, job, 21) for name, (supervisor, job) in jobs.items()}
    job_runs = interleaved(
        [(orders(None), job_items), *((orders(job), job_items) for _, job in jobs.values())],
        rounds,
    )
    bare_cpu, bare_wall = job_runs[0]
    results = {}
    for index, name in enumerate(names):
        beat_cpu, beat_wall = hot[1 + index]
        with_cpu, with_wall = job_runs[1 + index]
        results[name] = Result(
            floor=floor,
            heartbeat=statistics.median(beat_cpu),
            heartbeat_wall=statistics.median(beat_wall),
            progress=statistics.median(hot[1 + len(names) + index][0]),
            flush=flushes[name],
            in_loop_ratio=median_ratio(with_cpu, bare_cpu),
            in_loop_ratio_wall=median_ratio(with_wall, bare_wall),
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run, a few seconds")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis backend")
    args = parser.parse_args()
    rounds = 40 if args.quick else 500
    job_items, per_item = calibrate(JOB_CHUNK_SECONDS)
    print(f"heartbeat cost on {machine()}")
    print(
        f"job item {per_item:.0f} µs CPU (decode, total, re-encode and hash a JSON order); "
        f"{rounds} rounds of chunks of {job_items} items; heartbeat interval "
        f"{HEARTBEAT_INTERVAL:g} s, {FLUSHES_PER_SECOND:g} flushes a second"
    )
    with backends(not args.no_redis) as urls, supervised(urls) as jobs:
        results = measure(jobs, rounds, job_items)
    floor = next(iter(results.values())).floor
    print(f"floor   dict update {floor * 1e6:.3f} µs")
    for name, result in results.items():
        print(
            f"{name:<7} heartbeat {result.amortised * 1e6:.3f} µs amortised "
            f"({result.heartbeat * 1e6:.3f} in the loop, "
            f"wall {result.heartbeat_wall * 1e6:.3f}; "
            f"flush {result.flush * 1e6:.0f} µs x {FLUSHES_PER_SECOND:g}/s), "
            f"{result.amortised / floor:.1f}x dict; "
            f"progress {result.progress * 1e6:.3f} µs; job slowed "
            f"{result.slowdown * 100:+.1f} % (wall-clock pairs "
            f"{(result.in_loop_ratio_wall - 1) * 100:+.1f} % in the loop)"
        )
    worst = max(results, key=lambda name: results[name].amortised)
    worst_us = results[worst].amortised * 1e6
    slowest = max(results, key=lambda name: results[name].slowdown)
    worst_slowdown = results[slowest].slowdown
    misses = []
    if worst_us > TARGET_US:
        misses.append(f"{worst_us - TARGET_US:.2f} µs over on {worst}")
    if worst_slowdown > TARGET_SLOWDOWN:
        points = (worst_slowdown - TARGET_SLOWDOWN) * 100
        misses.append(f"{points:.1f} points over on {slowest}")
    summary(
        "heartbeat",
        figure=(
            f"{worst_us:.2f} µs/heartbeat ({worst}, worst), job slowed "
            f"{worst_slowdown * 100:.1f} % ({slowest}, worst; {per_item:.0f} µs items)"
        ),
        ratio=f"{worst_us / (floor * 1e6):.1f}x a dict update ({floor * 1e6:.3f} µs)",
        target=f"≤ {TARGET_US:g} µs and ≤ {TARGET_SLOWDOWN * 100:g} % slower",
        met=not misses,
        miss="; ".join(misses),
    )


if __name__ == "__main__":
    main()

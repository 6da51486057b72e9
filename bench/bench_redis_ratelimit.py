"""Redis rate-limit decisions from 8 processes on one key space: decisions per second, and
duplicates (more than one process winning the same key's window: must be 0).

Run with ``nox -s bench`` (or ``python bench/bench_redis_ratelimit.py [--quick]``).

Eight processes (forked before any connection is made) each build a real
:class:`~chaperone.Chaperone` on one loopback Redis server (``redis://…?prefix=…``, the
store a user configures) and, once all are released together, ask the built-in rate-limit filter
(``chaperone.builtin.ratelimit_filter.chaperone_filter_alert``, the hook the pipeline calls)
about a firing ``job_stuck`` alert for every one of the same 4,000 keys, each process
in its own shuffled order. The filter decides with one atomic ``set_if_absent`` per
alert (a Lua script on the server); the alert it lets through is the window's one
delivery. Each process reports the keys it won; the parent counts winners per key.

The floor, in the same run on the same server, is the same work done with redis-py's
bare ``SET key 1 NX PX 600000`` from eight processes: one plain command per decision,
nothing else. Both are timed from the release to the last process's last decision.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from typing import Any

import attrs
import redis
from _redis import loopback_redis
from _summary import machine, summary

from chaperone import Alert, Chaperone, PluginHost, Settings
from chaperone.builtin import ratelimit_filter as ratelimit

PROCESSES = 8
KEYS = 4_000
WINDOW_MS = 600_000
"""The rate-limit window (the default five minutes would do; ten leaves no doubt that
no window ends during the run)."""
REPEATS = 2
"""Rounds of each kind, alternating, so both see the same machine."""
JOIN_TIMEOUT_S = 120.0


@attrs.frozen
class Outcome:
    """One process's run: when it started and ended (monotonic), and the keys it won."""

    started: float
    ended: float
    won: list[str]


def _alerts(keys: list[str]) -> list[Alert]:
    now = datetime.now(UTC)
    return [
        Alert(
            type="job_stuck",
            key=key,
            headline="Job Stuck",
            title=f"Job Stuck: {key}",
            summary="No heartbeat.",
            occurred_at=now,
        )
        for key in keys
    ]


def _filter_worker(url: str, keys: list[str], seed: int) -> Callable[[], list[str]]:
    """The rate-limit filter of a real runtime on the Redis store, ready to decide."""
    settings = Settings(channels=("database",), store_url=url, log_level="warning")
    runtime = Chaperone(settings, plugins=PluginHost(entry_points=False))
    alerts = _alerts(keys)
    random.Random(seed).shuffle(alerts)
    runtime.store.get("warm-up")  # connect and load the scripts before the release
    decide = ratelimit.chaperone_filter_alert

    def run() -> list[str]:
        try:
            return [alert.key for alert in alerts if decide(alert, runtime, False) is None]
        finally:
            runtime.close()

    return run


def _bare_worker(url: str, keys: list[str], seed: int) -> Callable[[], list[str]]:
    """redis-py's ``SET NX PX`` on a client of its own, ready to decide."""
    client = redis.Redis.from_url(url)
    order = list(keys)
    random.Random(seed).shuffle(order)
    client.ping()

    def run() -> list[str]:
        try:
            return [key for key in order if client.set(key, "1", nx=True, px=WINDOW_MS)]
        finally:
            client.close()

    return run


WORKERS = {"filter": _filter_worker, "bare": _bare_worker}


def worker(kind: str, url: str, keys: list[str], seed: int, barrier: Barrier, results: Any) -> None:
    """One process: get ready, wait for the others, decide every key, report."""
    run = WORKERS[kind](url, keys, seed)
    barrier.wait(timeout=JOIN_TIMEOUT_S)
    started = time.monotonic()
    won = run()
    results.put(Outcome(started=started, ended=time.monotonic(), won=won))


@attrs.frozen
class Round:
    """Eight processes' decisions on one key space, and the server's share of the work."""

    decisions: int
    seconds: float
    winners: Counter[str]
    server_cpu: float
    """CPU seconds the Redis server used during the round."""
    server_us: dict[str, float]
    """Microseconds of server time per call, by command."""

    @property
    def rate(self) -> float:
        return self.decisions / self.seconds

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in self.winners.values() if count > 1)


def _server_cpu(url: str, *, reset: bool = False) -> tuple[float, dict[str, float]]:
    """The server's CPU seconds so far, and its microseconds per call by command (reset
    first when asked). A short-lived client: none is open when the workers fork.
    """
    client = redis.Redis.from_url(url.partition("?")[0])  # the store's own options off
    try:
        if reset:
            client.config_resetstat()
        cpu = client.info("cpu")
        stats = client.info("commandstats")
    finally:
        client.close()
    per_call = {
        name.removeprefix("cmdstat_"): float(values["usec_per_call"])
        for name, values in stats.items()
        if isinstance(values, dict)
    }
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), per_call


def run_round(kind: str, url: str, keys: list[str]) -> Round:
    """Start the processes, release them together, gather what each won."""
    cpu_before, _ = _server_cpu(url, reset=True)
    # fork: the children start in milliseconds with everything imported; the parent has
    # no thread and no connection yet, and each child opens its own.
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=worker, args=(kind, url, keys, seed, barrier, results))
        for seed in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        outcomes: list[Outcome] = [results.get(timeout=JOIN_TIMEOUT_S) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=JOIN_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join()
    if any(process.exitcode != 0 for process in processes):
        raise SystemExit(f"a {kind} worker failed: {[p.exitcode for p in processes]}")
    seconds = max(o.ended for o in outcomes) - min(o.started for o in outcomes)
    winners = Counter(key for outcome in outcomes for key in outcome.won)
    cpu_after, per_call = _server_cpu(url)
    return Round(
        decisions=len(keys) * PROCESSES,
        seconds=seconds,
        winners=winners,
        server_cpu=cpu_after - cpu_before,
        server_us=per_call,
    )


def describe(name: str, keys: list[str], result: Round, command: str) -> None:
    missing = sum(1 for key in keys if result.winners[key] == 0)
    print(
        f"  {name:32} {result.decisions:,} decisions in {result.seconds:.2f} s: "
        f"{result.rate:,.0f}/s; winners {sum(result.winners.values()):,} for {len(keys):,} "
        f"keys, duplicates {result.duplicates}, keys nobody won {missing}"
    )
    print(
        f"  {'':32} server: {result.server_us.get(command, 0.0):.1f} µs per {command.upper()}, "
        f"{result.server_cpu:.2f} CPU s ({result.server_cpu / result.seconds:.0%} of a core)"
    )


def _marks(base: str, run: str) -> int:
    """How many rate-limit marks the store holds under the round's prefix."""
    probe = redis.Redis.from_url(base)
    try:
        return len(probe.keys(f"bench:{run}:k:{ratelimit.PREFIX}*"))
    finally:
        probe.close()


def _total_rate(rounds: list[Round]) -> float:
    return sum(r.decisions for r in rounds) / sum(r.seconds for r in rounds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 keys, one round")
    parser.add_argument("--keys", type=int, default=KEYS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args(argv)
    count, repeats = (500, 1) if args.quick else (args.keys, args.repeats)
    keys = [f"job-{index:05d}" for index in range(count)]
    print(
        f"redis rate limit: {PROCESSES} processes, {count:,} keys, each process every key "
        f"in its own order, {repeats} round(s) each, alternating; {machine()}"
    )
    filtered: list[Round] = []
    bare: list[Round] = []
    problems: list[str] = []
    with loopback_redis() as base:
        for _ in range(repeats):
            run = uuid.uuid4().hex[:8]  # fresh keys: the filter under a prefix of its own
            result = run_round("filter", f"{base}?prefix=bench:{run}:", keys)
            describe("rate-limit filter (RedisStore)", keys, result, "evalsha")
            marks = _marks(base, run)
            missing = sum(1 for key in keys if result.winners[key] == 0)
            if result.duplicates:
                problems.append(f"{result.duplicates} duplicate winners")
            if missing:
                problems.append(f"{missing} keys nobody won")
            if marks != len(keys):
                problems.append(f"{marks} rate-limit marks for {len(keys)} keys")
            filtered.append(result)
            floor_keys = [f"bare:{run}:{key}" for key in keys]
            floor = run_round("bare", base, floor_keys)
            describe("floor: redis-py SET NX PX", floor_keys, floor, "set")
            bare.append(floor)
    rate, floor_rate = _total_rate(filtered), _total_rate(bare)
    duplicates = sum(r.duplicates for r in filtered)
    decisions = sum(r.decisions for r in filtered)
    summary(
        "redis rate limit",
        figure=(
            f"{rate:,.0f} decisions/s from {PROCESSES} processes, "
            f"{duplicates} duplicates in {decisions:,} decisions"
        ),
        ratio=f"{rate / floor_rate:.2f}x bare SET NX PX ({floor_rate:,.0f}/s)",
        target="0 duplicates",
        met=not problems,
        miss="; ".join(problems),
    )


if __name__ == "__main__":
    main()

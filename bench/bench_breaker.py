"""Circuit breaker overhead per successful call: Chaperone vs pybreaker vs the bare call.

Run with ``nox -s bench`` (or ``python bench/bench_breaker.py [--quick]``).

Every variant calls the same trivial function (sync ``def`` and ``async def``) in a
loop, the breaker closed and every call succeeding: what a healthy service costs. The
overhead is the median time per call of a variant minus the median of the bare call,
over interleaved repeats in the same run; both wall-clock time (``perf_counter``, the
figure reported) and this thread's CPU time (which other processes on a busy machine
hardly change) are shown.

Chaperone's breaker is ``chaperone.circuit_breaker("payments")`` as a user gets it with
nothing configured: its state lives in the default store (a SQLite file in the user's
state directory, here pointed at a temporary one with ``XDG_STATE_HOME``) so that every
process shares one breaker; a closed breaker reads the store at most once per
``state_refresh`` (1 s by default), reuses that reading in between, and writes nothing on
success. It is also measured on an in-memory store (``Supervisor(MemoryStore)``,
one process only) to show what the shared state costs. Both the ``breaker.call(f)`` /
``await breaker.acall(f)`` and the decorator forms are timed; the decorator is reported.

pybreaker's ``CircuitBreaker`` keeps its state in memory. Its async support
(``call_async``) needs Tornado; without it, the async comparison is against pybreaker's
sync overhead, the least a pybreaker call costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _summary import machine, summary

REPEATS = 51
QUICK_REPEATS = 5
TARGET_SECONDS = 0.005
"""Each timed loop runs about this long."""


def work() -> int:
    return 1


async def awork() -> int:
    return 1


# -- timing -----------------------------------------------------------------------------

Loop = Callable[[int], tuple[float, float]]
"""Runs n calls; returns the seconds they took on the wall clock and in this thread's CPU."""


def sync_loop(call: Callable[[], Any]) -> Loop:
    def run(n: int) -> tuple[float, float]:
        cpu, wall = time.thread_time(), time.perf_counter()
        for _ in range(n):
            call()
        return time.perf_counter() - wall, time.thread_time() - cpu

    return run


def async_loop(call: Callable[[], Awaitable[Any]], loop: asyncio.AbstractEventLoop) -> Loop:
    async def body(n: int) -> tuple[float, float]:
        cpu, wall = time.thread_time(), time.perf_counter()
        for _ in range(n):
            await call()
        return time.perf_counter() - wall, time.thread_time() - cpu

    def run(n: int) -> tuple[float, float]:
        return loop.run_until_complete(body(n))

    return run


def calibrate(run: Loop) -> int:
    """Iterations for about TARGET_SECONDS (after a warm-up)."""
    n = 100
    while True:
        took, _cpu = run(n)
        if took >= TARGET_SECONDS / 4 or n >= 10_000_000:
            return max(100, int(n * TARGET_SECONDS / max(took, 1e-9)))
        n *= 4


def measure(variants: dict[str, Loop], repeats: int) -> dict[str, tuple[float, float]]:
    """Median seconds per call of each variant (wall clock, thread CPU), the variants
    interleaved in each repeat so that they share the machine's noise.
    """
    sizes = {name: calibrate(run) for name, run in variants.items()}
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            wall, cpu = run(sizes[name])
            walls[name].append(wall / sizes[name])
            cpus[name].append(cpu / sizes[name])
    return {
        name: (statistics.median(walls[name]), statistics.median(cpus[name])) for name in variants
    }


# -- the breakers -----------------------------------------------------------------------


def default_environment(state_home: Path) -> None:
    """Nothing configured: no CHAPERONE_* variable, no config file in the working
    directory, the default store's directory pointed at ``state_home``.
    """
    for name in list(os.environ):
        if name.startswith("CHAPERONE_"):
            del os.environ[name]
    os.environ["XDG_STATE_HOME"] = str(state_home)
    os.chdir(state_home)


def variants(loop: asyncio.AbstractEventLoop) -> tuple[dict[str, Loop], str]:
    """Every variant, and a description of the default breaker's store."""
    import pybreaker

    import chaperone
    from chaperone.store import MemoryStore
    from chaperone.supervision import Supervisor, default_supervisor

    py = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
    py_work = py(work)

    ours = chaperone.circuit_breaker("payments")  # the default store, as a user gets it
    ours_work = ours(work)
    ours_awork = ours(awork)

    memory_supervisor = Supervisor(MemoryStore(chaperone.SystemClock()))
    mem = chaperone.circuit_breaker("payments", supervisor=memory_supervisor)
    mem_work = mem(work)
    mem_awork = mem(awork)

    found: dict[str, Loop] = {
        "bare": sync_loop(work),
        "pybreaker decorator": sync_loop(py_work),
        "pybreaker call(f)": sync_loop(lambda: py.call(work)),
        "chaperone decorator": sync_loop(ours_work),
        "chaperone call(f)": sync_loop(lambda: ours.call(work)),
        "chaperone memory decorator": sync_loop(mem_work),
        "async bare": async_loop(awork, loop),
        "async chaperone decorator": async_loop(ours_awork, loop),
        "async chaperone acall(f)": async_loop(lambda: ours.acall(awork), loop),
        "async chaperone memory decorator": async_loop(mem_awork, loop),
    }
    if pybreaker.HAS_TORNADO_SUPPORT:  # pragma: no cover - Tornado is not installed here
        found["async pybreaker call_async"] = async_loop(lambda: py.call_async(awork), loop)
    ours.call(work)  # opens the default store
    return found, default_supervisor().store.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, to smoke-test")
    args = parser.parse_args()
    repeats = QUICK_REPEATS if args.quick else REPEATS
    started = time.perf_counter()
    print("breaker: overhead per successful call, breaker closed")
    print(f"  machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        here = Path.cwd()
        default_environment(Path(tmp))
        loop = asyncio.new_event_loop()
        try:
            found, store = variants(loop)
            print(f"  Chaperone's default breaker store: {store}")
            medians = measure(found, repeats)
        finally:
            loop.close()
            from chaperone.supervision import default_supervisor

            default_supervisor().store.close()
            os.chdir(here)
    wall = {name: value[0] for name, value in medians.items()}
    cpu = {name: value[1] for name, value in medians.items()}

    def overhead(table: dict[str, float], name: str) -> float:
        return table[name] - table["async bare" if name.startswith("async") else "bare"]

    print(f"  {'':<34} {'wall ns/call':>12} {'overhead':>9} {'(thread CPU':>12} {'overhead)':>9}")
    for name in medians:
        if name in {"bare", "async bare"}:
            print(f"  {name:<34} {wall[name] * 1e9:12.0f} {'':>9} {cpu[name] * 1e9:12.0f}")
            continue
        print(
            f"  {name:<34} {wall[name] * 1e9:12.0f} {overhead(wall, name) * 1e9:9.0f} "
            f"{cpu[name] * 1e9:12.0f} {overhead(cpu, name) * 1e9:9.0f}"
        )
    sync_ours = overhead(wall, "chaperone decorator")
    async_ours = overhead(wall, "async chaperone decorator")
    sync_peer = overhead(wall, "pybreaker decorator")
    if "async pybreaker call_async" in medians:  # pragma: no cover
        async_peer, async_peer_name = overhead(wall, "async pybreaker call_async"), "call_async"
    else:
        async_peer, async_peer_name = sync_peer, "sync overhead (call_async needs Tornado)"
    mem_sync = overhead(wall, "chaperone memory decorator")
    print(
        f"  on a memory store (one process, not shared) Chaperone's overhead is "
        f"{mem_sync * 1e9:.0f} ns sync, "
        f"{overhead(wall, 'async chaperone memory decorator') * 1e9:.0f} ns async"
    )
    print(f"  wall time: {time.perf_counter() - started:.1f} s")
    sync_ratio, async_ratio = sync_ours / sync_peer, async_ours / async_peer
    met = sync_ours <= sync_peer and async_ours <= async_peer
    summary(
        "breaker",
        figure=(
            f"{sync_ours * 1e9:.0f} ns sync / {async_ours * 1e9:.0f} ns async overhead per call "
            f"(default SQLite store)"
        ),
        ratio=(
            f"{sync_ratio:.1f}x / {async_ratio:.1f}x pybreaker ({sync_peer * 1e9:.0f} ns sync; "
            f"async vs its {async_peer_name})"
        ),
        target="no slower than pybreaker, sync and async",
        met=met,
        miss=""
        if met
        else (
            f"{sync_ratio:.1f}x sync, {async_ratio:.1f}x async; the closed breaker's path: "
            f"a clock read and a comparison per call (memory store: {mem_sync * 1e9:.0f} ns)"
        ),
    )


if __name__ == "__main__":
    sys.exit(main())

"""The fault matrix: a runtime with its monitor delivering ten alerts to a real webhook on
loopback that misbehaves as scripted (5xx bursts, 429 with Retry-After, read timeouts,
refused connections, a response that is not HTTP, a permanent refusal with a fallback).
In each case every alert is delivered exactly once in the end, to the webhook or to its
fallback, and the counts of the real ``chaperone health --json`` on the same store agree
with what the servers answered. SIGKILL of the delivering process is in
test_outbox_processes.py.

The row "Redis restarted mid-run" runs on a Redis store whose server is restarted while
the outbox holds the alerts (the webhook only listens 3 s in). That server keeps an
append-only file (``--appendonly yes``), so the outbox survives the restart: a Redis
without persistence comes back empty and loses what the outbox held, which is the
operator's setting to choose (the README says to turn AOF on).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from chaperone import JobStuck, Monitor, SystemClock
from chaperone.metrics import read_delivery_stats
from chaperone.store import SQLiteStore, Store
from chaperone.store._redis import RedisStore
from chaperone.testing.redis_server import RedisServer, redis_server_or_skip
from chaperone.testing.servers import unused_port
from helpers.cli import clean_environ, run_cli
from helpers.delivery import (
    AfterDelivery,
    Channels,
    Fault,
    SlowWebhook,
    http_channel,
)
from helpers.report import report
from helpers.runtime import GROUPING_OFF, make_runtime

ALERTS = 10
KEYS = [f"job-{number}" for number in range(ALERTS)]


@attrs.frozen
class Scenario:
    """One row of the matrix: how the primary webhook misbehaves."""

    name: str
    faults: tuple[Fault, ...] = ()
    start_after: float = 0.0
    fallback: bool = False
    """Whether the primary refuses for good and a second webhook is its fallback."""
    redis_restart: bool = False
    """Whether the store is a (persistent) Redis, restarted while the alerts are pending."""
    timeout: float = 5.0
    """The delivery timeout: long enough that a loaded machine never times out a send the
    webhook answered (which would send it twice), but for the row that tests timeouts."""


SCENARIOS = (
    Scenario("5xx burst", faults=(Fault(status=503),) * 8),
    Scenario("429 with Retry-After", faults=(Fault(status=429, headers={"Retry-After": "3"}),)),
    Scenario("read timeouts", faults=(Fault(hang=3.0),) * 3, timeout=1.0),
    Scenario("connection refused", start_after=1.5),
    Scenario("not HTTP at all", faults=(Fault(garbage=True),) * 3),
    Scenario("permanent failure, fallback", faults=(Fault(status=400),) * ALERTS, fallback=True),
    Scenario("Redis restarted mid-run", start_after=3.0, redis_restart=True),
)


@attrs.frozen
class Ending:
    """What one scenario ended with."""

    scenario: Scenario
    primary: SlowWebhook
    backup: SlowWebhook
    hooks: AfterDelivery
    sent: int
    failed: int
    finished: bool
    health: dict[str, Any]
    """What ``chaperone health --json`` printed for the store afterwards."""
    restarted: bool
    """Whether the Redis server was restarted with the alerts still pending."""


def run(scenario: Scenario, folder: Path) -> Ending:
    """Run one scenario, on a SQLite file or, for the Redis row, a persistent Redis."""
    folder.mkdir()
    if not scenario.redis_restart:
        path = folder / "c.db"
        url = f"sqlite:///{path}"
        return deliver(scenario, folder, SQLiteStore(path, SystemClock(), url), url, None)
    data = folder / "redis"
    data.mkdir()
    with RedisServer(redis_server_or_skip(), data, appendonly=True) as server:
        url = server.url(prefix="matrix:")
        return deliver(scenario, folder, RedisStore(url, SystemClock()), url, server)


def deliver(
    scenario: Scenario, folder: Path, store: Store, url: str, server: RedisServer | None
) -> Ending:
    """Send ten alerts in one batch with a monitor draining the outbox beside, until the
    right webhook answered all ten (at most 20 s); restart ``server`` (if any) while they
    are pending. Then ask ``chaperone health --json`` on the same store.
    """
    port = unused_port() if scenario.start_after else 0
    primary = SlowWebhook(faults=scenario.faults, port=port, start_after=scenario.start_after)
    backup = SlowWebhook()
    hooks = AfterDelivery()
    clock = SystemClock()
    sections: dict[str, dict[str, Any]] = {
        "hook": {"url": primary.url},
        "backup": {"url": backup.url},
    }
    if scenario.fallback:
        sections["hook"]["fallback"] = "backup"
    receiver = backup if scenario.fallback else primary
    with (
        primary,
        backup,
        make_runtime(
            Channels(http_channel("hook"), http_channel("backup")),
            hooks,
            clock=clock,
            store=store,
            channels=("hook",),
            channel_sections=sections,
            timeout=scenario.timeout,
            max_attempts=5,
            max_backoff=1.0,
            grouping=GROUPING_OFF,
        ) as runtime,
    ):
        stop = threading.Event()
        monitor = threading.Thread(
            target=Monitor(runtime, vouch_for=None).run, args=(0.1, stop), daemon=True
        )
        monitor.start()
        restarts: list[bool] = []  # whether nothing had arrived yet when Redis restarted

        def restart(server: RedisServer) -> None:
            restarts.append(primary.arrived() == 0)
            server.restart()

        # Mid-run: 1 s in, the alerts are in the outbox, their first attempts refused (the
        # webhook listens from 3 s on).
        restarter = None if server is None else threading.Timer(1.0, restart, args=(server,))
        if restarter is not None:
            restarter.start()
        try:
            runtime.dispatch_all(
                [
                    JobStuck(
                        supervision_id=key,
                        job_class="App\\Jobs\\Import",
                        stuck_duration=timedelta(minutes=5),
                        last_heartbeat=None,
                    )
                    for key in KEYS
                ],
                drain=False,
            )
            finished = receiver.wait_for(lambda: len(receiver.answered()) >= ALERTS, timeout=20)
            receiver.wait_for(lambda: False, timeout=0.3)  # a duplicate would arrive now
        finally:
            if restarter is not None:
                restarter.join(timeout=30)
            stop.set()
            monitor.join(timeout=10)
        restarted = restarts == [True]
        stats = read_delivery_stats(
            runtime.store,
            now=clock.timestamp(),
            window=timedelta(hours=1),
            threshold=5.0,
        )
        health = run_cli(
            "health", "--json", cwd=folder, env=clean_environ(folder, CHAPERONE_STORE=url)
        )
    return Ending(
        scenario=scenario,
        primary=primary,
        backup=backup,
        hooks=hooks,
        sent=stats.totals.sent,
        failed=stats.totals.failed,
        finished=finished,
        health=health.json(),
        restarted=restarted,
    )


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ending]:
    """Every scenario, run at once (each its own servers, store and runtime)."""
    base = tmp_path_factory.mktemp("faults")
    with ThreadPoolExecutor(max_workers=len(SCENARIOS)) as pool:
        futures = {
            scenario.name: pool.submit(run, scenario, base / f"s{number}")
            for number, scenario in enumerate(SCENARIOS)
        }
        results = {name: future.result(timeout=60) for name, future in futures.items()}
    for outcome in results.values():
        receiver = outcome.backup if outcome.scenario.fallback else outcome.primary
        report(
            f"{outcome.scenario.name:<28} alerts sent {ALERTS}; requests received "
            f"{len(outcome.primary.received) + len(outcome.backup.received)}; delivered "
            f"{sum(receiver.answered().values())}; counted sent {outcome.sent}, "
            f"failed {outcome.failed}; chaperone health: "
            f"{outcome.health['stats']['by_channel']}"
        )
    return results


@pytest.mark.parametrize("name", [scenario.name for scenario in SCENARIOS])
class TestFaultMatrix:
    """Whatever the webhook does, each alert arrives once in the end, and is counted."""

    def test_every_alert_delivered_exactly_once(
        self, outcomes: dict[str, Ending], name: str
    ) -> None:
        """The webhook that should have them (the primary, or the fallback after a
        permanent refusal) answered each of the ten alerts once; the other none.
        """
        outcome = outcomes[name]
        receiver, other = (
            (outcome.backup, outcome.primary)
            if outcome.scenario.fallback
            else (outcome.primary, outcome.backup)
        )
        assert outcome.finished, f"{name}: {len(receiver.answered())} of {ALERTS} delivered"
        assert sorted(receiver.answered()) == KEYS
        assert set(receiver.answered().values()) == {1}
        assert other.answered() == {}

    def test_counts_match_what_the_servers_answered(
        self, outcomes: dict[str, Ending], name: str
    ) -> None:
        """The delivery counters (what ``chaperone health`` reads) and the hooks say
        ten sent, and ten failed exactly when the primary refused for good.
        """
        outcome = outcomes[name]
        failed = ALERTS if outcome.scenario.fallback else 0
        assert (outcome.sent, outcome.failed) == (ALERTS, failed)
        assert len(outcome.hooks.delivered) == ALERTS
        assert len(outcome.hooks.failed) == failed
        if outcome.scenario.fallback:
            assert {d.fallback_of for _, d, _ in outcome.hooks.delivered} == {"hook"}

    def test_chaperone_health_counts_what_the_servers_received(
        self, outcomes: dict[str, Ending], name: str
    ) -> None:
        """``chaperone health --json`` on the same store counts, per channel, one sent for
        each alert the webhook answered with success, and one failed for each alert the
        primary refused for good.
        """
        outcome = outcomes[name]
        by_channel = outcome.health["stats"]["by_channel"]
        expected = {
            "hook": {
                "sent": sum(outcome.primary.answered().values()),
                "failed": ALERTS if outcome.scenario.fallback else 0,
            },
        }
        if outcome.scenario.fallback:
            expected["backup"] = {"sent": sum(outcome.backup.answered().values()), "failed": 0}
        assert by_channel == expected
        assert outcome.health["stats"]["total_sent"] == ALERTS
        if outcome.scenario.redis_restart:
            assert outcome.restarted, "the alerts were delivered before the restart"

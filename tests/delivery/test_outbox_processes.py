"""The outbox across real processes: workers on one SQLite file never claim an entry
twice, even while the others hold leases, and ``chaperone monitor`` killed with SIGKILL
mid-delivery leaves its alerts in the outbox, which two restarted monitors on the same
store (SQLite, or Redis) deliver, each alert once."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from chaperone import Destination, JobStuck, SystemClock
from chaperone._event_codec import encode_event
from chaperone._outbox import Outbox
from chaperone.store import SQLiteStore, open_store
from chaperone.supervision import _keys
from chaperone.testing.redis_server import RedisServer
from helpers.cli import clean_environ, finish_cli, require_fixture_plugins, start_cli
from helpers.delivery import SlowWebhook, make_alert
from helpers.report import report

ENTRIES = 120
WORKERS = 4
PER_CLAIM = 7
FULL_ROUNDS = ENTRIES // (WORKERS * PER_CLAIM)
"""Rounds in which every worker can hold a full claim at once (120 entries: 4 rounds)."""

CLAIMER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from chaperone import SystemClock
    from chaperone._outbox import Outbox
    from chaperone.store import SQLiteStore

    path, flags = Path(sys.argv[1]), Path(sys.argv[2])
    workers, per_claim, me = map(int, sys.argv[3:])
    store = SQLiteStore(path, SystemClock(), f"sqlite:///{path}")
    outbox = Outbox(store, SystemClock())
    deadline = time.monotonic() + 30

    def meet(name):
        # Wait until every worker has reached ``name``.
        (flags / f"{name}-{me}").touch()
        while not all((flags / f"{name}-{other}").exists() for other in range(workers)):
            if time.monotonic() > deadline:
                sys.exit(f"worker {me}: the others never reached {name}")
            time.sleep(0.001)

    meet("ready")
    round_number = 0
    while left := len(outbox.entries()):
        # Every lease of the last round was let go: all ``left`` entries are due.
        round_number += 1
        full = left >= workers * per_claim
        claims = outbox.claim_due(per_claim, lease=60)
        short = 0
        while full and len(claims) < per_claim:
            # Lost a race to another worker; there are enough entries for all. The oldest
            # are the winner's until it moves their due time: let it run.
            short += 1
            if time.monotonic() > deadline:
                sys.exit(f"worker {me}: no entry to claim in round {round_number}")
            time.sleep(0.001)
            claims += outbox.claim_due(per_claim - len(claims), lease=60)
        print("short", round_number, short, flush=True)
        for claim in claims:
            print("claimed", round_number, claim.entry.alert.key, flush=True)
        meet(f"held-{round_number}")  # nobody acknowledges before all have claimed
        for claim in claims:
            outbox.ack(claim)
        meet(f"acked-{round_number}")  # nobody counts what is left before all have acked
    store.close()
    """
)


def sqlite(path: Path) -> SQLiteStore:
    """A connection to the SQLite file ``path`` on the real clock."""
    return SQLiteStore(path, SystemClock(), f"sqlite:///{path}")


class TestClaimsAcrossProcesses:
    """Processes draining one SQLite outbox at once."""

    def test_no_entry_is_claimed_twice(self, tmp_path: Path) -> None:
        """Four processes drain 120 due entries in rounds, seven at a time, each holding its
        leases until all have claimed in the round: every entry is claimed by exactly one.

        The rounds make the contention certain rather than a matter of scheduling: while
        enough are left, every worker claims seven while the others hold theirs
        unacknowledged (and would claim theirs again if a lease did not keep them out), and
        all start a round together, racing for the same due entries.
        """
        path, flags = tmp_path / "c.db", tmp_path / "flags"
        flags.mkdir()
        store = sqlite(path)
        outbox = Outbox(store, SystemClock())
        for number in range(ENTRIES):
            claim = outbox.enqueue(make_alert(f"k{number}"), Destination(channel="x"), lease=60)
            outbox.reschedule(claim, claim.entry, 0.0)
        store.close()
        arguments = [str(path), str(flags), str(WORKERS), str(PER_CLAIM)]
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", CLAIMER, *arguments, str(number)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for number in range(WORKERS)
        ]
        claimed: Counter[str] = Counter()
        per_round: Counter[tuple[int, int]] = Counter()
        short = 0
        for number, worker in enumerate(workers):
            out, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err
            for kind, round_number, value in (line.split() for line in out.splitlines()):
                if kind == "short":
                    short += int(value)
                else:
                    claimed[value] += 1
                    per_round[int(round_number), number] += 1
        rounds = max(round_number for round_number, _ in per_round)
        report(
            f"outbox claims: {WORKERS} processes, {rounds} rounds, {short} calls to claim_due "
            "came back short after losing a race"
        )
        assert set(claimed) == {f"k{number}" for number in range(ENTRIES)}
        assert [key for key, count in claimed.items() if count > 1] == []
        held_together = {
            (round_number, number): PER_CLAIM
            for round_number in range(1, FULL_ROUNDS + 1)
            for number in range(WORKERS)
        }
        assert {slot: per_round[slot] for slot in held_together} == held_together


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store shared by the monitors: a SQLite file, or a key prefix
    of its own on the session's Redis server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chaperone.db'}"
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = f"killed{next(_prefixes)}:"
    yield str(server.url(prefix=prefix))
    server.clear(prefix)


_prefixes = itertools.count()


class TestKilledMonitor:
    """``chaperone monitor`` killed with SIGKILL mid-delivery, then restarted: on SQLite,
    and on Redis (monitors on many machines)."""

    def test_fifty_alerts_delivered_once_after_a_kill(self, tmp_path: Path, store_url: str) -> None:
        """Fifty alerts reach a monitor's outbox in one tick; the monitor is killed while
        the slow webhook holds its first requests; two monitors started on the same store
        then deliver every alert: the webhook answers each of the fifty exactly once.

        The requests in flight at the kill reached the webhook, but the killed sender
        never read an answer, so it cannot know they were delivered: they are sent again
        (at least once), and the webhook, which acts only on requests it could answer,
        counts each alert once.
        """
        require_fixture_plugins()
        store = open_store(store_url, SystemClock())
        keys = [f"job-{number:02d}" for number in range(50)]
        for key in keys:
            event = JobStuck(
                supervision_id=key,
                job_class="App\\Jobs\\Import",
                stuck_duration=timedelta(minutes=5),
                last_heartbeat=None,
            )
            store.push(_keys.EVENTS_QUEUE, encode_event(event))
        store.close()
        with SlowWebhook(hang=0.5) as webhook:
            env = clean_environ(
                tmp_path,
                CHAPERONE_STORE=store_url,
                CHAPERONE_ALERT_CHANNELS="webhook",
                CHAPERONE_WEBHOOK_URL=webhook.url,
                CHAPERONE_ALERT_GROUPING="false",
                CHAPERONE_DELIVERY_TIMEOUT="2",
                CHAPERONE_LOG_LEVEL="error",
            )
            args = ("monitor", "--interval", "0.2")
            first = start_cli(args, cwd=tmp_path, env=env)
            try:
                assert webhook.wait_for(lambda: webhook.arrived() >= 10, timeout=30), (
                    "the monitor sent nothing"
                )
            finally:
                os.kill(first.pid, signal.SIGKILL)
                first.communicate(timeout=10)
            assert first.returncode == -signal.SIGKILL
            store = open_store(store_url, SystemClock())
            left = len(Outbox(store, SystemClock()).entries())
            store.close()
            answered_before = sum(webhook.answered().values())
            restarted = [start_cli(args, cwd=tmp_path, env=env) for _ in range(2)]
            try:
                done = webhook.wait_for(lambda: len(webhook.answered()) >= 50, timeout=40)
                time.sleep(0.5)  # anything sent twice would arrive now
            finally:
                for process in restarted:
                    process.send_signal(signal.SIGTERM)
                results = [finish_cli(process, args) for process in restarted]
            received = webhook.received
        answered = webhook.answered()
        abandoned = [item.key for item in received if not item.answered]
        report(
            f"{store_url.split(':')[0]}: alerts: 50 sent; left in the outbox at the kill: "
            f"{left}; requests received: {len(received)} ({len(abandoned)} in flight at the "
            f"kill); answered: {sum(answered.values())} for {len(answered)} alerts"
        )
        assert done, f"only {len(answered)} of 50 alerts delivered"
        assert all(result.returncode == 0 for result in results), results
        assert answered_before < 50
        assert left >= 50 - answered_before
        assert sorted(answered) == keys
        assert [key for key, count in answered.items() if count > 1] == []
        # Sent twice only what was in flight when the monitor died.
        sent = Counter(item.key for item in received)
        assert {key for key, count in sent.items() if count > 1} <= set(abandoned)
        store = open_store(store_url, SystemClock())
        try:
            assert Outbox(store, SystemClock()).entries() == []
        finally:
            store.close()

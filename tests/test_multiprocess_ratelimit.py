"""The rate limit across processes: job processes sharing one store (a SQLite file, or
the session's Redis server under a fresh key prefix), released at the same moment, each
having built ``Chaperone.from_environment()`` and raising the same JobStuck, yield exactly
one delivery, counted at the webhook server and in the history.

Needs the fixture plugin chaperone-testwebhook installed (see ``helpers.cli.INSTALL_LINE``).
"""

from __future__ import annotations

import re
import sys
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:  # until pytest's configuration says pythonpath = ["tests"]
    sys.path.insert(0, _TESTS)

from chaperone import SystemClock  # noqa: E402
from chaperone.builtin.database_channel import read_history  # noqa: E402
from chaperone.store import open_store  # noqa: E402
from chaperone.testing.redis_server import RedisServer  # noqa: E402
from chaperone.testing.servers import RecordedRequest, RecordingServer  # noqa: E402
from helpers.cli import (  # noqa: E402
    clean_environ,
    require_fixture_plugins,
    run_cli,
)
from helpers.processes import WorkerPool  # noqa: E402

PROCESSES = 8
DISTINCT_ALERTS = 4


@attrs.frozen
class Setup:
    """Job processes waiting on one store, the webhook server they send to."""

    folder: Path
    env: dict[str, str]
    server: RecordingServer
    workers: WorkerPool


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    """Eight job processes, each with ``Chaperone.from_environment()`` built on one store (a
    SQLite file, or Redis under a prefix of its own) and sending to the webhook and
    database channels, waiting to be released.
    """
    require_fixture_plugins()
    folder = tmp_path_factory.mktemp("processes")
    store: dict[str, str] = {}
    if request.param == "redis":
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        prefix = f"ratelimit{uuid.uuid4().hex[:12]}:"
        store["CHAPERONE_STORE"] = redis_server.url(prefix=prefix)
    with RecordingServer() as server:
        env = clean_environ(
            folder,
            **store,
            CHAPERONE_ALERT_CHANNELS="webhook,database",
            CHAPERONE_WEBHOOK_URL=server.url_for("/hook"),
            CHAPERONE_LOG_LEVEL="warning",
        )
        with WorkerPool(PROCESSES, cwd=folder, env=env) as workers:
            yield Setup(folder, env, server, workers)


def _history(setup: Setup) -> list[dict[str, Any]]:
    """The history in the processes' store, read in this process."""
    store = open_store(setup.env["CHAPERONE_STORE"], SystemClock())
    try:
        return read_history(store, 100_000)
    finally:
        store.close()


def _deliveries(setup: Setup, channel: str, keys: Iterable[str]) -> Counter[str]:
    """How many delivered records each of ``keys`` has in history for ``channel``."""
    wanted = set(keys)
    return Counter(
        record["key"]
        for record in _history(setup)
        if record["channel"] == channel
        and record["status"] == "delivered"
        and record["key"] in wanted
    )


def _received(requests: list[RecordedRequest], keys: Iterable[str]) -> Counter[str]:
    """How many requests the webhook server received for each of ``keys``."""
    wanted = set(keys)
    received: Counter[str] = Counter()
    for request in requests:
        body: Any = request.json()
        if body["alert"]["key"] in wanted:
            received[body["alert"]["key"]] += 1
    return received


class TestSameAlertFromManyProcesses:
    """Eight processes raise the same alert at once; one delivery goes out."""

    def test_exactly_one_delivery_then_clear_lets_one_more_through(self, setup: Setup) -> None:
        """One process sends and seven are rate limited: one webhook request, one database
        record; after ``chaperone ratelimit clear --all`` the next one is delivered.
        """
        supervision_id = str(uuid.uuid4())
        ids = [supervision_id]

        reports = setup.workers.release([supervision_id] * PROCESSES)

        alerts = [report["alerts"][0] for report in reports]
        verdicts = Counter(alert["verdict"] for alert in alerts)
        assert verdicts == {"send": 1, "suppress": PROCESSES - 1}
        (sent,) = [alert for alert in alerts if alert["verdict"] == "send"]
        assert {d["channel"]: d["ok"] for d in sent["deliveries"]} == {
            "webhook": True,
            "database": True,
        }
        assert all(
            alert["reason"].startswith("rate limited")
            for alert in alerts
            if alert["verdict"] == "suppress"
        )
        assert _received(setup.server.requests, ids) == {supervision_id: 1}
        assert _deliveries(setup, "database", ids) == {supervision_id: 1}
        assert _deliveries(setup, "webhook", ids) == {supervision_id: 1}

        cleared = run_cli("ratelimit", "clear", "--all", cwd=setup.folder, env=setup.env)
        assert cleared.returncode == 0, str(cleared)
        assert re.fullmatch(r"cleared [1-9]\d* rate limit\(s\)", cleared.stdout.strip())

        (again,) = setup.workers.release([supervision_id])
        assert again["alerts"][0]["verdict"] == "send"
        assert all(d["ok"] for d in again["alerts"][0]["deliveries"])
        assert _received(setup.server.requests, ids) == {supervision_id: 2}
        assert _deliveries(setup, "database", ids) == {supervision_id: 2}


class TestDistinctAlertsFromManyProcesses:
    """Processes raising different alerts at once do not hold each other back."""

    def test_each_gets_one_delivery(self, setup: Setup) -> None:
        """Four processes, four supervision ids: four deliveries, one each."""
        ids = [str(uuid.uuid4()) for _ in range(DISTINCT_ALERTS)]

        reports = setup.workers.release(ids)

        assert [report["alerts"][0]["verdict"] for report in reports] == ["send"] * len(ids)
        expected = dict.fromkeys(ids, 1)
        assert _received(setup.server.requests, ids) == expected
        assert _deliveries(setup, "database", ids) == expected
        assert _deliveries(setup, "webhook", ids) == expected

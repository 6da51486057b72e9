"""Escalation across processes: job processes configured by ``chaperone.toml``
(``[alerting.escalation] job_stuck = [...]``), sharing one SQLite file and released at the
same moment with the same JobStuck, deliver it exactly once; the repeat is held back in
every process; ``chaperone ratelimit clear`` lets exactly one more through.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from helpers.cli import clean_environ, run_cli, stored_history
from helpers.processes import WorkerPool

PROCESSES = 4
CONFIG = """\
[alerting]
channels = ["database"]

[alerting.escalation]
job_stuck = ["0s", "5m", "15m", "30m", "1h"]
"""


@attrs.frozen
class Setup:
    """Job processes waiting on one SQLite file, and how to run the CLI beside them."""

    folder: Path
    env: dict[str, str]
    workers: WorkerPool


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """Four job processes, each with ``Chaperone.from_environment()`` built from the
    ``chaperone.toml`` in their working directory, waiting to be released.
    """
    folder = tmp_path_factory.mktemp("escalation-processes")
    (folder / "chaperone.toml").write_text(CONFIG, encoding="utf-8")
    env = clean_environ(folder, CHAPERONE_LOG_LEVEL="warning")
    with WorkerPool(PROCESSES, cwd=folder, env=env) as workers:
        yield Setup(folder, env, workers)


def delivered(folder: Path, keys: Iterable[str]) -> Counter[str]:
    """How many delivered history records each of ``keys`` has."""
    wanted = set(keys)
    return Counter(
        record["key"]
        for record in stored_history(folder)
        if record["status"] == "delivered" and record["key"] in wanted
    )


def verdicts(reports: list[dict[str, Any]]) -> Counter[str]:
    """How many of the workers' alerts were sent and how many suppressed."""
    return Counter(report["alerts"][0]["verdict"] for report in reports)


class TestSameAlertFromManyProcesses:
    """Four processes raise the same stuck alert at once."""

    def test_one_delivery_per_repeat_and_clear_lets_one_more_through(self, setup: Setup) -> None:
        """The first alert goes out once; at once again, every process holds the repeat
        back saying when it may go; after ``ratelimit clear`` of its type and key, exactly
        one goes out again.
        """
        supervision_id = str(uuid.uuid4())

        first = setup.workers.release([supervision_id] * PROCESSES)
        assert verdicts(first) == {"send": 1, "suppress": PROCESSES - 1}
        assert delivered(setup.folder, [supervision_id]) == {supervision_id: 1}
        prefix = f"escalation: next job_stuck alert for {supervision_id} not before "
        for report in first:
            alert = report["alerts"][0]
            if alert["verdict"] == "suppress":
                assert alert["reason"].startswith(prefix)
                assert alert["reason"].endswith("(repeat 1, 5 minutes after the last)")

        again = setup.workers.release([supervision_id] * PROCESSES)
        assert verdicts(again) == {"suppress": PROCESSES}
        assert delivered(setup.folder, [supervision_id]) == {supervision_id: 1}

        cleared = run_cli(
            "ratelimit",
            "clear",
            "--type",
            "job_stuck",
            "--key",
            supervision_id,
            cwd=setup.folder,
            env=setup.env,
        )
        assert cleared.returncode == 0, str(cleared)
        assert cleared.stdout.strip() == f"cleared the escalation of job_stuck:{supervision_id}"

        after = setup.workers.release([supervision_id] * PROCESSES)
        assert verdicts(after) == {"send": 1, "suppress": PROCESSES - 1}
        assert delivered(setup.folder, [supervision_id]) == {supervision_id: 2}


class TestDistinctAlertsFromManyProcesses:
    """Processes raising different alerts at once do not hold each other back."""

    def test_each_gets_one_delivery(self, setup: Setup) -> None:
        """Three processes, three supervision ids: three deliveries, one each."""
        ids = [str(uuid.uuid4()) for _ in range(3)]

        reports = setup.workers.release(ids)

        assert verdicts(reports) == {"send": len(ids)}
        assert delivered(setup.folder, ids) == dict.fromkeys(ids, 1)

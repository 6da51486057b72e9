"""``[[schedules]]`` in the config file: read into the settings, every mistake named by
its entry and key at start-up.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from chaperone._exceptions import ConfigError, ConfigProblem
from chaperone.config import load_settings
from chaperone.schedules import Overlap


def problems_of(cwd: Path, toml: str) -> dict[str, ConfigProblem]:
    """Write ``toml`` as chaperone.toml, load, expect a ConfigError; its problems by key."""
    (cwd / "chaperone.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings({}, cwd)
    return {problem.key: problem for problem in caught.value.problems}


class TestReading:
    def test_the_issue_example_loads(self, tmp_path: Path) -> None:
        """The issue's cron entry and an every entry load with their settings."""
        (tmp_path / "chaperone.toml").write_text(
            """
[[schedules]]
job = "reports.nightly"
cron = "0 3 * * *"
timezone = "Europe/Berlin"
grace = "10m"

[[schedules]]
job = "sync"
every = "15m"
max_runtime = "5m"
overlap = "alert"
alert_on_failure = false
""",
            encoding="utf-8",
        )
        nightly, sync = load_settings({}, tmp_path).schedules
        assert (nightly.job, nightly.cron, nightly.timezone.key, nightly.grace) == (
            "reports.nightly",
            "0 3 * * *",
            "Europe/Berlin",
            timedelta(minutes=10),
        )
        assert (sync.every, sync.grace, sync.max_runtime) == (
            timedelta(minutes=15),
            timedelta(minutes=5),
            timedelta(minutes=5),
        )
        assert (sync.overlap, sync.alert_on_failure, sync.cron) == (Overlap.ALERT, False, None)

    def test_none_by_default(self, tmp_path: Path) -> None:
        """Without [[schedules]] there are none."""
        assert load_settings({}, tmp_path).schedules == ()


class TestErrors:
    @pytest.mark.parametrize(
        ("entry", "key", "message"),
        [
            ('job = "a"\ncron = "0 3 * *"', "schedules[1].cron", "five cron fields"),
            ('job = "a"\ncron = "0 25 * * *"', "schedules[1].cron", "invalid cron"),
            ('job = "a"\ncron = "@sometimes"', "schedules[1].cron", "nickname"),
            (
                'job = "a"\ncron = "@daily"\ntimezone = "Mars/Olympus"',
                "schedules[1].timezone",
                "unknown time zone",
            ),
            ('job = "a"', "schedules[1].cron", "exactly one of cron and every"),
            ('job = "a"\ncron = "@daily"\nevery = "1h"', "schedules[1].cron", "exactly one"),
            ('job = "a"\nevery = -300', "schedules[1].every", "non-negative"),
            ('job = "a"\nevery = "0s"', "schedules[1].every", "above zero"),
            ('job = "a"\ncron = "@daily"\ngrace = -60', "schedules[1].grace", "non-negative"),
            (
                'job = "a"\ncron = "@daily"\nmax_runtime = "0"',
                "schedules[1].max_runtime",
                "above zero",
            ),
            (
                'job = "a"\ncron = "@daily"\noverlap = "queue"',
                "schedules[1].overlap",
                "ignore, alert",
            ),
            ('job = "a"\ncron = "@daily"\ncorn = "x"', "schedules[1].corn", "unknown setting"),
            ('cron = "@daily"', "schedules[1].job", "required"),
            ('job = "a"\nevery = "1h"\ntimezone = "UTC"', "schedules[1].timezone", "cron only"),
            ('job = "ok"\ncron = "@daily"', "schedules[1].job", "another schedule"),
        ],
    )
    def test_each_mistake_names_its_entry_and_key(
        self, tmp_path: Path, entry: str, key: str, message: str
    ) -> None:
        """A bad second entry fails naming schedules[1] and the key, and says why."""
        toml = f'[[schedules]]\njob = "ok"\ncron = "@daily"\n\n[[schedules]]\n{entry}\n'
        problems = problems_of(tmp_path, toml)
        assert key in problems, problems
        assert message in problems[key].message
        assert str(tmp_path / "chaperone.toml") == problems[key].source

    def test_not_an_array_of_tables(self, tmp_path: Path) -> None:
        """``schedules = "x"`` is refused as a whole."""
        problems = problems_of(tmp_path, 'schedules = "nightly"\n')
        assert "array of tables" in problems["schedules"].message

"""Escalation from the outside: configured in ``chaperone.toml``, cleared by the real
``chaperone ratelimit clear`` in a subprocess.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chaperone import (
    JobStuck,
    ManualClock,
    Priority,
    Settings,
    VerdictKind,
)
from chaperone.builtin import escalation_filter as escalation
from chaperone.builtin import ratelimit_filter as ratelimit
from chaperone.config import EscalationSettings, GroupingSettings, load_settings
from helpers.cli import STORE_FILE, clean_environ, run_cli
from helpers.fatigue import SEED_DELAYS, runtime_with, sqlite_store, trouble


class TestTomlConfig:
    def test_true_and_a_list_end_to_end(self, tmp_path: Path) -> None:
        """``job_stuck = true`` gives the seed's delays and ``job_timeout = [...]`` its
        own; raised every minute for 2 hours, the stuck alert goes out at minutes 0, 5,
        20, 50 and 110.
        """
        (tmp_path / "chaperone.toml").write_text(
            "[alerting]\n"
            'channels = ["database"]\n'
            "[alerting.escalation]\n"
            "job_stuck = true\n"
            'job_timeout = ["0s", "2m", "10m"]\n',
            encoding="utf-8",
        )
        loaded = load_settings(environ={}, cwd=tmp_path)
        assert loaded.escalation.delays_for("job_stuck") == SEED_DELAYS
        assert loaded.escalation.delays_for("job_timeout") == (
            timedelta(0),
            timedelta(minutes=2),
            timedelta(minutes=10),
        )
        assert loaded.escalation.delays_for("circuit_breaker") is None

        clock = ManualClock(datetime(2024, 1, 15, 10, 0, tzinfo=UTC))
        sent = []
        with runtime_with(loaded, clock) as rt:
            for minute in range(120):
                (report,) = rt.dispatch(
                    JobStuck(
                        supervision_id="sup-1",
                        job_class="App\\Jobs\\ImportFeed",
                        stuck_duration=timedelta(minutes=minute),
                    )
                ).alerts
                if report.verdict.kind is VerdictKind.SEND:
                    sent.append(minute)
                clock.advance(60)
        assert sent == [0, 5, 20, 50, 110]


class TestRatelimitClear:
    @pytest.fixture
    def env(self, tmp_path: Path) -> dict[str, str]:
        """A clean environment whose store is ``tmp_path/chaperone.db``."""
        return clean_environ(tmp_path)

    def remember(self, tmp_path: Path, *alerts: tuple[str, str, Priority]) -> None:
        """Pass ``alerts`` (type, key, priority) through the filters of a runtime on the
        CLI's store, now, with job_stuck escalating.
        """
        path = tmp_path / STORE_FILE
        clock = ManualClock(datetime.now(UTC))
        settings = Settings(
            channels=("database",),
            escalation=EscalationSettings(per_type={"job_stuck": SEED_DELAYS}),
            grouping=GroupingSettings(enabled=False),
        )
        with runtime_with(settings, clock, store=sqlite_store(path, clock)) as rt:
            for alert_type, key, priority in alerts:
                report = rt.send(trouble(alert_type, key, clock.now(), priority=priority))
                assert report.verdict.kind is VerdictKind.SEND

    def keys(self, tmp_path: Path) -> tuple[list[str], list[str]]:
        """The live escalation keys and rate-limit marks in the CLI's store."""
        path = tmp_path / STORE_FILE
        store = sqlite_store(path, ManualClock(datetime.now(UTC)))
        try:
            return store.keys(escalation.PREFIX), store.keys(ratelimit.PREFIX)
        finally:
            store.close()

    def test_clear_one_incident(self, tmp_path: Path, env: dict[str, str]) -> None:
        """``--type --key`` clears the escalation count and the fixed-window mark of that
        incident only (keys with ``|`` and ``:`` included), and says which it cleared.
        """
        odd = "a|0:memory"
        self.remember(
            tmp_path,
            ("job_stuck", "k1", Priority.NORMAL),
            ("job_stuck", "k1", Priority.CRITICAL),
            ("job_stuck", odd, Priority.NORMAL),
            ("job_stuck", "a", Priority.NORMAL),
        )
        outputs = [
            run_cli(
                "ratelimit", "clear", "--type", "job_stuck", "--key", key, cwd=tmp_path, env=env
            )
            for key in ("k1", odd, odd)
        ]
        assert [result.returncode for result in outputs] == [0, 0, 0], outputs
        assert [result.stdout.strip() for result in outputs] == [
            "cleared the rate limit and the escalation of job_stuck:k1",
            f"cleared the escalation of job_stuck:{odd}",
            f"no rate limit was set for job_stuck:{odd}",
        ]
        escalation_keys, marks = self.keys(tmp_path)
        assert marks == []
        assert escalation_keys
        assert {key.rpartition("|")[0] for key in escalation_keys} == {
            escalation.incident_prefix("job_stuck", "a")[:-1]
        }

    def test_clear_all(self, tmp_path: Path, env: dict[str, str]) -> None:
        """``--all`` clears every mark and every escalation count and counts both; with no
        escalation count it says what it always said.
        """
        self.remember(
            tmp_path,
            ("job_stuck", "k1", Priority.NORMAL),
            ("job_stuck", "k2", Priority.NORMAL),
            ("circuit_breaker", "stripe", Priority.NORMAL),
        )
        first = run_cli("ratelimit", "clear", "--all", cwd=tmp_path, env=env)
        assert first.returncode == 0, str(first)
        assert first.stdout.strip() == "cleared 1 rate limit(s) and 2 escalation(s)"
        assert self.keys(tmp_path) == ([], [])
        second = run_cli("ratelimit", "clear", "--all", cwd=tmp_path, env=env)
        assert second.stdout.strip() == "cleared 0 rate limit(s)"

    def test_help_mentions_escalation(self, tmp_path: Path, env: dict[str, str]) -> None:
        """``ratelimit clear --help`` says that escalation counts are cleared too."""
        result = run_cli("ratelimit", "clear", "--help", cwd=tmp_path, env=env)
        assert result.returncode == 0, str(result)
        assert "escalation" in result.stdout

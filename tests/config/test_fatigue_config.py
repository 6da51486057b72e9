"""The alert-fatigue settings: escalation, grouping, priority, routes, maintenance windows
and runbooks, from TOML and the environment, with errors that name the exact key.
"""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaperone import Priority
from chaperone._exceptions import ConfigError, ConfigProblem
from chaperone.config import load_settings
from chaperone.config._settings import SEED_ESCALATION
from helpers.fatigue import ISSUE_EXAMPLE_CONFIG, ISSUE_SLACK_WEBHOOK

ENV = "environment"


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return the path."""
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(cwd: Path, environ: dict[str, str] | None = None) -> dict[str, ConfigProblem]:
    """Load, expect a ConfigError, and return its problems by key."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ or {}, cwd)
    return {problem.key: problem for problem in caught.value.problems}


class TestIssueExample:
    def test_every_section_is_read(self, tmp_path: Path) -> None:
        """The issue's example configuration loads into the settings it describes."""
        write(tmp_path / "chaperone.toml", ISSUE_EXAMPLE_CONFIG)
        loaded = load_settings({}, tmp_path)
        assert loaded.rate_limit.window_for("job_stuck") == timedelta(minutes=10)
        assert loaded.escalation.delays_for("job_stuck") == SEED_ESCALATION
        assert loaded.escalation.delays_for("job_timeout") is None
        assert loaded.grouping.window == timedelta(minutes=10)
        assert loaded.grouping.after == 5
        assert loaded.grouping.by == ("type", "job_class")
        assert loaded.priority.critical_jobs == ("App\\Jobs\\ChargeCustomer",)
        assert loaded.priority.patterns == {
            Priority.HIGH: ("*Payment*", "*Order*"),
            Priority.LOW: ("*Cleanup*", "*Archive*"),
        }
        [route] = loaded.routes
        assert route.name == "critical"
        assert route.channels == ("pagerduty", "slack")
        assert route.match.to_dict() == {"priority": ["critical", "high"]}
        assert route.channel_settings == {"slack": {"webhook_url": ISSUE_SLACK_WEBHOOK}}
        assert route.runbook_url == "https://docs.example.com/runbooks/critical"
        assert route.continue_matching is False
        [window] = loaded.maintenance
        assert window.weekdays == frozenset({5, 6})
        assert (window.start, window.end) == (time(2), time(4))
        assert window.timezone.key == "Europe/Berlin"
        assert window.match.to_dict() == {"job_class": ["App\\Jobs\\Backup*"]}
        assert window.summary is True

    def test_pyproject_tool_table(self, tmp_path: Path) -> None:
        """The same sections work under [tool.chaperone] in pyproject.toml."""
        text = ISSUE_EXAMPLE_CONFIG.replace("[alerting", "[tool.chaperone.alerting").replace(
            "[[alerting", "[[tool.chaperone.alerting"
        )
        write(tmp_path / "pyproject.toml", "[project]\nname = 'app'\n" + text)
        loaded = load_settings({}, tmp_path)
        assert [route.name for route in loaded.routes] == ["critical"]
        assert len(loaded.maintenance) == 1


class TestDefaults:
    def test_defaults(self, tmp_path: Path) -> None:
        """Grouping is on (10 min, the fifth held); no escalation, routes, windows, rules."""
        loaded = load_settings({}, tmp_path)
        assert loaded.grouping.enabled is True
        assert loaded.grouping.window == timedelta(minutes=10)
        assert loaded.grouping.after == 5
        assert loaded.grouping.by == ("type", "job_class")
        assert loaded.escalation.per_type == {}
        assert loaded.routes == ()
        assert loaded.maintenance == ()
        assert loaded.maintenance_summary is True
        assert loaded.priority.critical_jobs == ()
        assert loaded.priority.patterns == {}
        assert loaded.runbooks == {}


class TestEscalation:
    def test_true_means_the_seed_delays(self, tmp_path: Path) -> None:
        """`job_stuck = true` asks for the seed's delays; `false` leaves the fixed window."""
        write(tmp_path / "chaperone.toml", "[alerting.escalation]\njob_stuck = true\nx = false\n")
        loaded = load_settings({}, tmp_path)
        assert loaded.escalation.per_type == {"job_stuck": SEED_ESCALATION}

    def test_environment_list_overrides_toml(self, tmp_path: Path) -> None:
        """CHAPERONE_ALERT_ESCALATION_<TYPE> takes a comma-separated list and wins."""
        write(tmp_path / "chaperone.toml", '[alerting.escalation]\njob_stuck = ["0s", "1h"]\n')
        loaded = load_settings({"CHAPERONE_ALERT_ESCALATION_JOB_STUCK": "0, 2m, 10m"}, tmp_path)
        assert loaded.escalation.per_type["job_stuck"] == (
            timedelta(0),
            timedelta(minutes=2),
            timedelta(minutes=10),
        )
        assert loaded.source_of("alerting.escalation.job_stuck") == ENV

    @pytest.mark.parametrize(
        ("value", "needle"),
        [('["0s", "soon"]', "'soon'"), ("[]", "list of delays"), ('["0", "0"]', "every delay")],
    )
    def test_bad_delays_name_the_type(self, tmp_path: Path, value: str, needle: str) -> None:
        """A bad delay list is an error at `alerting.escalation.<type>`."""
        toml = write(tmp_path / "chaperone.toml", f"[alerting.escalation]\njob_stuck = {value}\n")
        problem = problems_of(tmp_path)["alerting.escalation.job_stuck"]
        assert problem.source == str(toml)
        assert needle in problem.message


class TestGroupingAndPriority:
    def test_environment_settings(self, tmp_path: Path) -> None:
        """Grouping and priority scalars have environment variables."""
        loaded = load_settings(
            {
                "CHAPERONE_ALERT_GROUPING": "off",
                "CHAPERONE_ALERT_GROUP_WINDOW": "5m",
                "CHAPERONE_ALERT_GROUP_AFTER": "3",
                "CHAPERONE_ALERT_GROUP_BY": "type, service, team",
                "CHAPERONE_CRITICAL_JOBS": "App\\Jobs\\Charge, App\\Jobs\\Refund",
                "CHAPERONE_ALERT_PRIORITY_LOW": "*Cleanup*",
                "CHAPERONE_ALERT_LOW_DIGEST_ONLY": "yes",
            },
            tmp_path,
        )
        assert loaded.grouping.enabled is False
        assert loaded.grouping.window == timedelta(minutes=5)
        assert loaded.grouping.after == 3
        assert loaded.grouping.by == ("type", "service", "team")
        assert loaded.priority.critical_jobs == ("App\\Jobs\\Charge", "App\\Jobs\\Refund")
        assert loaded.priority.patterns == {Priority.LOW: ("*Cleanup*",)}
        assert loaded.priority.low_digest_only is True

    def test_bad_grouping_values_are_named(self, tmp_path: Path) -> None:
        """Each bad grouping value is reported at its own key."""
        write(
            tmp_path / "chaperone.toml",
            '[alerting.grouping]\nwindow = "0s"\nafter = 0\nby = ["no spaces"]\nflush_at = "x"\n'
            "digest_size = 21\n",
        )
        problems = problems_of(tmp_path)
        assert {
            "alerting.grouping.window",
            "alerting.grouping.after",
            "alerting.grouping.by",
            "alerting.grouping.flush_at",
            "alerting.grouping.digest_size",
        } <= set(problems)
        assert "at most 20" in problems["alerting.grouping.digest_size"].message

    def test_unknown_priority_key(self, tmp_path: Path) -> None:
        """A typo under [alerting.priority] is an unknown setting, not ignored."""
        write(tmp_path / "chaperone.toml", '[alerting.priority]\nhihg = ["*Payment*"]\n')
        assert problems_of(tmp_path)["alerting.priority.hihg"].message == "unknown setting"


class TestRoutes:
    def test_continue_and_several_routes(self, tmp_path: Path) -> None:
        """Routes keep their order; `continue = true` is read; names default by position."""
        write(
            tmp_path / "chaperone.toml",
            '[[alerting.routes]]\nmatch = { severity = "critical" }\nchannels = ["log"]\n'
            "continue = true\n"
            '[[alerting.routes]]\nname = "rest"\nchannels = ["database"]\n',
        )
        first, second = load_settings({}, tmp_path).routes
        assert (first.name, first.continue_matching) == ("route-1", True)
        assert (second.name, second.continue_matching) == ("rest", False)
        assert second.match.describe() == "everything"

    def test_every_route_problem_is_named(self, tmp_path: Path) -> None:
        """Each bad route key is reported with its index, all at once."""
        write(
            tmp_path / "chaperone.toml",
            '[[alerting.routes]]\nname = "a"\nchannels = ["log"]\nmatch = { severity = [] }\n'
            '[[alerting.routes]]\nname = "a"\nchannels = []\nslack = { webhook_url = "x" }\n'
            'runbook_url = "not a url"\ncontinue = "maybe"\n',
        )
        problems = problems_of(tmp_path)
        assert {
            "alerting.routes[0].match",
            "alerting.routes[1].name",
            "alerting.routes[1].channels",
            "alerting.routes[1].slack",
            "alerting.routes[1].runbook_url",
            "alerting.routes[1].continue",
        } <= set(problems)

    def test_routes_must_be_an_array_of_tables(self, tmp_path: Path) -> None:
        """`[alerting.routes]` (a table, not an array) is an error."""
        write(tmp_path / "chaperone.toml", '[alerting.routes]\nchannels = ["log"]\n')
        assert "array of tables" in problems_of(tmp_path)["alerting.routes"].message


class TestMaintenanceWindows:
    @pytest.mark.parametrize(
        ("every", "days"),
        [
            ('"daily"', set(range(7))),
            ('"weekdays"', {0, 1, 2, 3, 4}),
            ('["Saturday", "sun"]', {5, 6}),
            ('["weekends", "mon"]', {0, 5, 6}),
        ],
    )
    def test_weekday_names(self, tmp_path: Path, every: str, days: set[int]) -> None:
        """Weekdays are read from short or long names and from daily/weekdays/weekends."""
        write(
            tmp_path / "chaperone.toml",
            f'[[alerting.maintenance]]\nevery = {every}\nfrom = "23:00"\nto = "01:30"\n',
        )
        [window] = load_settings({}, tmp_path).maintenance
        assert window.weekdays == frozenset(days)
        assert window.timezone.key == "UTC"
        assert (window.start, window.end) == (time(23), time(1, 30))

    def test_every_window_problem_is_named(self, tmp_path: Path) -> None:
        """Missing and bad values, and unknown keys, are named with the window's index."""
        write(
            tmp_path / "chaperone.toml",
            '[[alerting.maintenance]]\nevery = ["someday"]\nfrom = "25:00"\n'
            'timezone = "Mars/Olympus"\ncolour = "red"\n'
            '[[alerting.maintenance]]\nevery = "daily"\nfrom = "02:00"\nto = "02:00"\n',
        )
        problems = problems_of(tmp_path)
        assert {
            "alerting.maintenance[0].every",
            "alerting.maintenance[0].from",
            "alerting.maintenance[0].to",
            "alerting.maintenance[0].timezone",
            "alerting.maintenance[0].colour",
            "alerting.maintenance[1].to",
        } <= set(problems)
        assert problems["alerting.maintenance[0].to"].message == "is required"

    def test_window_names_are_unique(self, tmp_path: Path) -> None:
        """Two windows with one name would share occurrence ids: an error at the second."""
        window = '[[alerting.maintenance]]\nname = "nightly"\nevery = "daily"\n'
        write(
            tmp_path / "chaperone.toml",
            f'{window}from = "02:00"\nto = "03:00"\n{window}from = "04:00"\nto = "05:00"\n',
        )
        assert "nightly" in problems_of(tmp_path)["alerting.maintenance[1].name"].message

    def test_summary_can_be_turned_off(self, tmp_path: Path) -> None:
        """Per window `summary = false`, and globally CHAPERONE_MAINTENANCE_SUMMARY."""
        write(
            tmp_path / "chaperone.toml",
            '[[alerting.maintenance]]\nevery = "daily"\nfrom = "02:00"\nto = "03:00"\n'
            "summary = false\n",
        )
        loaded = load_settings({"CHAPERONE_MAINTENANCE_SUMMARY": "false"}, tmp_path)
        assert loaded.maintenance[0].summary is False
        assert loaded.maintenance_summary is False

    @given(hour=st.integers(0, 23), minute=st.integers(0, 59))
    def test_any_clock_time_is_read(self, hour: int, minute: int) -> None:
        """Every HH:MM of the day parses to that time."""
        from chaperone._exceptions import ConfigProblem as Problem
        from chaperone.config._fatigue import parse_recurring_windows

        problems: list[Problem] = []
        text = f"{hour:02d}:{minute:02d}"
        [window] = parse_recurring_windows(
            [{"every": "daily", "from": text, "to": "00:00" if text != "00:00" else "01:00"}],
            "test",
            problems,
        )
        assert problems == []
        assert window.start == time(hour, minute)


class TestRunbooks:
    def test_per_type_runbooks(self, tmp_path: Path) -> None:
        """[alerting.runbooks] maps types to URLs; the environment wins; bad URLs are named."""
        write(
            tmp_path / "chaperone.toml",
            '[alerting.runbooks]\njob_stuck = "https://docs.example.com/stuck"\n'
            'job_timeout = "https://docs.example.com/timeout"\n',
        )
        loaded = load_settings(
            {"CHAPERONE_ALERT_RUNBOOK_JOB_TIMEOUT": "https://wiki.example.com/t"}, tmp_path
        )
        assert loaded.runbooks == {
            "job_stuck": "https://docs.example.com/stuck",
            "job_timeout": "https://wiki.example.com/t",
        }
        write(tmp_path / "chaperone.toml", '[alerting.runbooks]\njob_stuck = "docs/stuck"\n')
        assert "alerting.runbooks.job_stuck" in problems_of(tmp_path)

r"""``chaperone maintenance start|end|status`` run as a person runs them: the real console
script in subprocesses sharing a fresh SQLite file per scenario.

The issue's Done-means line is the first scenario: ``maintenance start 30m --match
job_class='*'``, then ``test-alerts`` suppresses the three job alerts and still
delivers the circuit breaker's; ``maintenance end`` delivers one summary naming the 3.

Most of a run is Python starting up, so the scenarios advance together: each stage starts
the next command of every scenario at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs
import pytest

from chaperone.testing.servers import RecordingServer, Reply
from helpers.cli import (
    CliResult,
    Invocation,
    clean_environ,
    require_fixture_plugins,
    run_many,
    stored_history,
)

JOB_TYPES = {"job_stuck", "job_timeout", "resource_violation"}
BERLIN = ZoneInfo("Europe/Berlin")
WINDOW_ID = re.compile(r"\bmw-[0-9a-f]{8}\b")


@attrs.define
class Scenario:
    """A folder with its own store (and config), and the results of its commands."""

    folder: Path
    env: dict[str, str]
    results: dict[str, CliResult] = attrs.field(factory=dict)

    def __getitem__(self, name: str) -> CliResult:
        return self.results[name]


def _recurring_config(folder: Path) -> None:
    """A chaperone.toml with a recurring window on now (matching circuit breakers) and
    one that starts in three hours, both daily, the first in UTC, the other in Berlin.
    """
    now = datetime.now(UTC)

    def clock(moment: datetime) -> str:
        return moment.strftime("%H:%M")

    (folder / "chaperone.toml").write_text(
        f"""
[[alerting.maintenance]]
name = "breakers"
every = "daily"
from = "{clock(now - timedelta(hours=1))}"
to = "{clock(now + timedelta(hours=1))}"
match = {{ type = "circuit_breaker" }}
reason = "gateway upgrade"

[[alerting.maintenance]]
name = "backup"
every = "daily"
from = "{clock(now.astimezone(BERLIN) + timedelta(hours=3))}"
to = "{clock(now.astimezone(BERLIN) + timedelta(hours=4))}"
timezone = "Europe/Berlin"
match = {{ job_class = "App\\\\Jobs\\\\Backup*" }}
""",
        encoding="utf-8",
    )


def _stage(scenarios: dict[str, Scenario], commands: dict[str, tuple[str, ...]]) -> None:
    """Run ``scenario.step: args`` for every entry at once; file each result."""
    invocations = {}
    for name, args in commands.items():
        scenario, _, step = name.partition(".")
        folder = scenarios[scenario]
        invocations[name] = Invocation(args, folder.folder, folder.env)
    for name, result in run_many(invocations).items():
        scenario, _, step = name.partition(".")
        scenarios[scenario].results[step] = result


def _first_id(result: CliResult) -> str:
    found = WINDOW_ID.search(result.stdout)
    assert found, str(result)
    return found.group(0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Scenario]]:
    """Every scenario, run stage by stage."""
    require_fixture_plugins()
    with ExitStack() as stack:
        server = stack.enter_context(
            RecordingServer(default=Reply(status=400, body="invalid_payload"))
        )

        def scenario(name: str, **variables: str) -> Scenario:
            folder = tmp_path_factory.mktemp(name)
            return Scenario(folder, clean_environ(folder, **variables))

        scenarios = {
            name: scenario(name)
            for name in (
                "done",
                "json",
                "recurring",
                "bad_duration",
                "zero_duration",
                "bad_match",
                "bad_key",
                "unknown",
                "empty",
            )
        }
        scenarios["failing"] = scenario(
            "failing",
            CHAPERONE_ALERT_CHANNELS="webhook,database",
            CHAPERONE_WEBHOOK_URL=server.url_for("/hook"),
            CHAPERONE_DELIVERY_MAX_BACKOFF="0",
        )
        scenarios["off"] = scenario("off", CHAPERONE_MAINTENANCE_SUMMARY="false")
        scenarios["disabled"] = scenario("disabled", CHAPERONE_ALERTING_ENABLED="false")
        _recurring_config(scenarios["recurring"].folder)

        start = ("maintenance", "start")
        _stage(
            scenarios,
            {
                "done.start": (
                    *start,
                    "30m",
                    "--match",
                    "job_class=*",
                    "--reason",
                    "deploy",
                ),
                "json.start": (
                    *start,
                    "1h",
                    "--match",
                    "type=job_stuck",
                    "--match",
                    "type=job_timeout",
                    "--no-summary",
                    "--json",
                ),
                "failing.start": (*start, "10m"),
                "off.start": (*start, "10m"),
                "disabled.start": (*start, "10m"),
                "recurring.alerts": ("test-alerts", "circuit-breaker"),
                "bad_duration.start": (*start, "soon"),
                "zero_duration.start": (*start, "0"),
                "bad_match.start": (*start, "30m", "--match", "job_class"),
                "bad_key.start": (*start, "30m", "--match", "1st=x"),
                "unknown.end": ("maintenance", "end", "mw-deadbeef"),
                "empty.status": ("maintenance", "status"),
                "empty.end": ("maintenance", "end"),
            },
        )
        _stage(
            scenarios,
            {
                "done.alerts": ("test-alerts",),
                "json.status": ("maintenance", "status", "--json"),
                "failing.end": ("maintenance", "end"),
                "off.end": ("maintenance", "end"),
                "disabled.end": ("maintenance", "end", "--json"),
                "recurring.status": ("maintenance", "status", "--json"),
                "recurring.table": ("maintenance", "status"),
            },
        )
        recurring = [row for row in scenarios["recurring"]["status"].json() if row["active"]]
        json_id = scenarios["json"]["start"].json()["id"]
        _stage(
            scenarios,
            {
                "done.status": ("maintenance", "status", "--json"),
                "json.end": ("maintenance", "end", json_id, "--json"),
                "recurring.end": ("maintenance", "end", recurring[0]["id"] if recurring else "?"),
            },
        )
        _stage(
            scenarios,
            {
                "done.end": ("maintenance", "end"),
                "json.again": ("maintenance", "end", json_id),
            },
        )
        _stage(
            scenarios,
            {
                "done.history": ("history", "--json"),
                "done.after": ("maintenance", "status", "--json"),
                "done.again": ("maintenance", "end"),
            },
        )
        yield scenarios


# -- the Done-means line -------------------------------------------------------------------


class TestDoneMeans:
    r"""start 30m --match job_class='*', test-alerts, end: the job alerts are
    suppressed, the breaker's delivered, and one summary names the 3.
    """

    def test_start_prints_the_window(self, runs: dict[str, Scenario]) -> None:
        """start exits 0, printing the id, the end time and what the window matches."""
        result = runs["done"]["start"]
        assert result.returncode == 0, str(result)
        assert WINDOW_ID.search(result.stdout), str(result)
        assert "UTC (30 minutes)" in result.stdout
        assert "matches: job_class=*" in result.stdout
        assert "reason: deploy" in result.stdout

    def test_test_alerts_suppresses_the_job_alerts(self, runs: dict[str, Scenario]) -> None:
        """The three job samples are suppressed by the window; the circuit breaker is
        delivered to both channels; the run succeeds and says what it suppressed.
        """
        result = runs["done"]["alerts"]
        window = _first_id(runs["done"]["start"])
        assert result.returncode == 0, str(result)
        lines = result.stdout.splitlines()
        suppressed = [line for line in lines if f"suppress: maintenance window {window}" in line]
        assert len(suppressed) == 3, str(result)
        for sample in ("stuck", "timeout", "resource"):
            assert any(line.startswith(f"- {sample} ") for line in suppressed), str(result)
        delivered = [line for line in lines if line.startswith("✓")]
        assert len(delivered) == 2, str(result)
        assert all("circuit_breaker" in line for line in delivered)
        assert lines[-1] == "2 delivered, 0 failed, 3 suppressed"

    def test_status_counts_while_on(self, runs: dict[str, Scenario]) -> None:
        """status --json lists the window on, with 3 suppressed, one of each job type."""
        [row] = runs["done"]["status"].json()
        assert row["id"] == _first_id(runs["done"]["start"])
        assert row["active"] is True
        assert row["kind"] == "ad-hoc"
        assert row["suppressed"] == 3
        assert row["suppressed_by_type"] == dict.fromkeys(JOB_TYPES, 1)
        assert row["match"] == {"job_class": ["*"]}
        assert row["reason"] == "deploy"
        assert 0 < row["remaining"] <= 30 * 60

    def test_end_delivers_one_summary(self, runs: dict[str, Scenario]) -> None:
        """end exits 0, saying the window suppressed 3 and the summary was delivered."""
        result = runs["done"]["end"]
        window = _first_id(runs["done"]["start"])
        assert result.returncode == 0, str(result)
        assert result.stdout.startswith(f"{window} ended: 3 alerts suppressed"), str(result)
        assert "summary delivered to log, database" in result.stdout

    def test_history_has_the_breaker_and_one_summary(self, runs: dict[str, Scenario]) -> None:
        """The database channel recorded the breaker's alert and one summary naming 3,
        and none of the suppressed job alerts.
        """
        history = runs["done"]["history"].json()
        database = [row for row in history if row["channel"] == "database"]
        assert sorted(row["type"] for row in database) == ["circuit_breaker", "maintenance"]
        [summary] = [row for row in database if row["type"] == "maintenance"]
        assert summary["key"] == _first_id(runs["done"]["start"])
        assert summary["status"] == "delivered"
        assert summary["title"] == "Maintenance window ended: 3 alerts suppressed"
        assert summary["fields"]["Suppressed"] == "3"
        assert summary["fields"]["Matched"] == "job_class=*"
        assert stored_history(runs["done"].folder) == history

    def test_nothing_left_after_the_end(self, runs: dict[str, Scenario]) -> None:
        """After the end, status lists nothing, and another end has nothing to do."""
        assert runs["done"]["after"].json() == []
        again = runs["done"]["again"]
        assert again.returncode == 0, str(again)
        assert again.stdout.strip() == "no maintenance window is on"


# -- JSON, ids, several globs, no summary --------------------------------------------------


class TestJsonAndIds:
    """start --json, status --json, end ID --json, and ending an ended window."""

    def test_start_json(self, runs: dict[str, Scenario]) -> None:
        """start --json prints the window: the same key twice is either glob."""
        result = runs["json"]["start"]
        assert result.returncode == 0, str(result)
        window = result.json()
        assert WINDOW_ID.fullmatch(window["id"])
        assert window["match"] == {"type": ["job_stuck", "job_timeout"]}
        assert window["matches"] == "type=job_stuck|job_timeout"
        assert window["summary"] is False
        assert window["suppressed"] == 0
        started = datetime.fromisoformat(window["from"])
        assert datetime.fromisoformat(window["to"]) - started == timedelta(hours=1)

    def test_status_json_lists_it(self, runs: dict[str, Scenario]) -> None:
        """status --json is a list holding the window, on."""
        rows = runs["json"]["status"].json()
        assert [row["id"] for row in rows] == [runs["json"]["start"].json()["id"]]
        assert rows[0]["active"] is True

    def test_end_by_id_json(self, runs: dict[str, Scenario]) -> None:
        """end ID --json: ended now, no summary because the window said so."""
        result = runs["json"]["end"]
        assert result.returncode == 0, str(result)
        [ending] = result.json()
        assert ending["id"] == runs["json"]["start"].json()["id"]
        assert ending["ended_now"] is True
        assert ending["summary"] == "skipped"
        assert ending["detail"] == "no summary: this window's summary is off"

    def test_ending_again_says_it_had_ended(self, runs: dict[str, Scenario]) -> None:
        """Ending an ended window exits 0 and says when it ended."""
        result = runs["json"]["again"]
        assert result.returncode == 0, str(result)
        assert " had ended at " in result.stdout
        assert "its summary was already claimed" in result.stdout


# -- recurring windows from the config file ------------------------------------------------


class TestRecurring:
    """[[alerting.maintenance]] windows: in force now, next occurrence, end by id."""

    def test_config_window_suppresses_test_alert(self, runs: dict[str, Scenario]) -> None:
        """The breaker sample is suppressed by the recurring window in force."""
        result = runs["recurring"]["alerts"]
        assert result.returncode == 0, str(result)
        assert "suppress: maintenance window breakers@" in result.stdout
        assert "gateway upgrade" in result.stdout

    def test_status_shows_both(self, runs: dict[str, Scenario]) -> None:
        """status --json: the window in force with its count and next occurrence, and the
        other with only its next occurrence.
        """
        rows = {row["name"]: row for row in runs["recurring"]["status"].json()}
        assert set(rows) == {"breakers", "backup"}
        on, later = rows["breakers"], rows["backup"]
        assert on["active"] is True
        assert on["kind"] == "recurring"
        assert on["suppressed"] == 1
        assert on["id"].startswith("breakers@")
        assert on["next_from"] is not None
        assert later["active"] is False
        assert later["from"] is None
        next_from = datetime.fromisoformat(later["next_from"])
        assert timedelta(hours=2) < next_from - datetime.now(UTC) < timedelta(hours=3)
        assert later["matches"] == "job_class=App\\Jobs\\Backup*"

    def test_status_table(self, runs: dict[str, Scenario]) -> None:
        """The text status shows both windows, one on and one next."""
        result = runs["recurring"]["table"]
        assert result.returncode == 0, str(result)
        assert "breakers@" in result.stdout
        assert "backup@" in result.stdout
        assert "gateway upgrade" in result.stdout

    def test_end_the_occurrence(self, runs: dict[str, Scenario]) -> None:
        """Ending the occurrence by its id delivers its summary of 1 alert."""
        result = runs["recurring"]["end"]
        assert result.returncode == 0, str(result)
        assert "ended: 1 alert suppressed (circuit_breaker 1)" in result.stdout
        assert "summary delivered to log, database" in result.stdout
        history = stored_history(runs["recurring"].folder)
        assert [row["type"] for row in history if row["channel"] == "database"] == ["maintenance"]


# -- failures and mistakes -----------------------------------------------------------------


class TestMistakes:
    """Bad input exits 2 naming what is wrong; a failed summary exits 1."""

    @pytest.mark.parametrize(
        ("scenario", "expected"),
        [
            ("bad_duration", "DURATION"),
            ("zero_duration", "DURATION"),
            ("bad_match", "--match"),
            ("bad_key", "--match"),
        ],
    )
    def test_bad_start(self, runs: dict[str, Scenario], scenario: str, expected: str) -> None:
        """start with a bad DURATION or --match exits 2, naming it, and opens nothing."""
        result = runs[scenario]["start"]
        assert result.returncode == 2, str(result)
        assert f"Invalid value for {expected}:" in result.stderr, str(result)
        assert result.stdout == ""

    def test_bad_match_says_the_form(self, runs: dict[str, Scenario]) -> None:
        """A --match without '=' is told the expected KEY=GLOB form."""
        assert "KEY=GLOB" in runs["bad_match"]["start"].stderr

    def test_unknown_id(self, runs: dict[str, Scenario]) -> None:
        """end with an id no window has exits 2 with a clear message."""
        result = runs["unknown"]["end"]
        assert result.returncode == 2, str(result)
        assert "no maintenance window 'mw-deadbeef' is known" in result.stderr

    def test_nothing_on(self, runs: dict[str, Scenario]) -> None:
        """With no window, status and end say so and exit 0."""
        status, end = runs["empty"]["status"], runs["empty"]["end"]
        assert status.returncode == 0, str(status)
        assert "no maintenance window is on" in status.stdout
        assert end.returncode == 0, str(end)
        assert end.stdout.strip() == "no maintenance window is on"

    def test_failed_summary_exits_1(self, runs: dict[str, Scenario]) -> None:
        """A channel refusing the summary: end exits 1, naming the channel and its answer;
        the other channel still got it, and the history records both, and the degraded
        alert the refusal raised about the webhook (sent to the database only).
        """
        result = runs["failing"]["end"]
        assert result.returncode == 1, str(result)
        assert "summary failed: webhook: failed" in result.stdout
        assert "invalid_payload" in result.stdout
        assert "(delivered to database)" in result.stdout
        history = stored_history(runs["failing"].folder)
        assert {(row["type"], row["channel"], row["status"]) for row in history} == {
            ("maintenance", "database", "delivered"),
            ("maintenance", "webhook", "failed"),
            ("chaperone_degraded", "database", "delivered"),
        }

    def test_summaries_off(self, runs: dict[str, Scenario]) -> None:
        """CHAPERONE_MAINTENANCE_SUMMARY=false: end says no summary goes out, exits 0."""
        result = runs["off"]["end"]
        assert result.returncode == 0, str(result)
        assert "no summary: summaries are off" in result.stdout
        assert stored_history(runs["off"].folder) == []

    def test_alerting_disabled(self, runs: dict[str, Scenario]) -> None:
        """CHAPERONE_ALERTING_ENABLED=false: the window ends, its summary is not sent, and
        that is no failure.
        """
        result = runs["disabled"]["end"]
        assert result.returncode == 0, str(result)
        [ending] = result.json()
        assert ending["ended_now"] is True
        assert ending["summary"] == "skipped"
        assert "alerting is disabled" in ending["detail"]

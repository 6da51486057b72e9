"""``chaperone config check`` and ``chaperone config show``, run as the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CHAPERONE = Path(sys.executable).parent / "chaperone"


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``chaperone args`` in ``cwd`` with a clean environment plus ``env``."""
    environ = {
        name: value for name, value in os.environ.items() if not name.startswith("CHAPERONE_")
    }
    environ["CHAPERONE_STORE"] = f"sqlite:///{cwd / 'c.db'}"
    environ["COLUMNS"] = "250"
    environ.update(env or {})
    return subprocess.run(
        [str(CHAPERONE), *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def show_json(cwd: Path, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """``config show --json`` as rows by setting name."""
    result = run(cwd, "config", "show", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return {row["setting"]: row for row in json.loads(result.stdout)}


def table_rows(output: str) -> dict[str, list[str]]:
    """The body rows of a rich table by first cell, each cell's wrapped lines joined."""
    rows: dict[str, list[str]] = {}
    current: list[str] = []
    for line in output.splitlines():
        if not line.startswith("\u2502"):
            continue
        first, *rest = (cell.strip() for cell in line.strip().strip("\u2502").split("\u2502"))
        if first:
            current = rows[first] = rest
        else:
            current[:] = [f"{old} {new}".strip() for old, new in zip(current, rest, strict=True)]
    return rows


def compact(cells: list[str]) -> list[str]:
    """Cells without whitespace, so that where rich wrapped them does not matter."""
    return ["".join(cell.split()) for cell in cells]


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """An empty working directory (resolved, as the child process sees it)."""
    return tmp_path.resolve()


class TestConfigCheck:
    def test_bad_environment_value_exits_2(self, cwd: Path) -> None:
        """A bad CHAPERONE_ALERTING_ENABLED exits 2 naming the variable and 'environment'."""
        result = run(cwd, "config", "check", env={"CHAPERONE_ALERTING_ENABLED": "maybe"})
        assert result.returncode == 2
        assert "CHAPERONE_ALERTING_ENABLED" in result.stderr
        assert "environment" in result.stderr
        assert "'maybe'" in result.stderr
        assert "Traceback" not in result.stderr
        assert "configuration OK" not in result.stdout

    def test_every_problem_is_listed(self, cwd: Path) -> None:
        """Several bad values, from every layer, are each listed on a line of their own."""
        toml = cwd / "chaperone.toml"
        toml.write_text("[alerting.thresholds]\nqueue_length = 'many'\n[alerting]\ntypo = 1\n")
        (cwd / ".env").write_text("CHAPERONE_ALERT_RESPONSE_TIME=forever\n")
        result = run(
            cwd,
            "config",
            "check",
            env={
                "CHAPERONE_ALERTING_ENABLED": "maybe",
                "CHAPERONE_ALERT_ERROR_RATE": "250",
                "CHAPERONE_ALERT_RECIPIENTS": "ops@example.com,oncall",
            },
        )
        assert result.returncode == 2
        lines = result.stderr.splitlines()
        expected = [
            "CHAPERONE_ALERTING_ENABLED (from environment)",
            "CHAPERONE_ALERT_ERROR_RATE (from environment)",
            "CHAPERONE_ALERT_RECIPIENTS (from environment)",
            f"CHAPERONE_ALERT_RESPONSE_TIME (from .env file {cwd / '.env'})",
            f"alerting.thresholds.queue_length (from {toml})",
            f"alerting.typo (from {toml})",
        ]
        for start in expected:
            assert sum(start in line for line in lines) == 1, (start, result.stderr)
        assert "'oncall'" in result.stderr

    def test_valid_configuration_exits_0(self, cwd: Path) -> None:
        """A valid TOML file, .env and environment pass and the file is named."""
        toml = cwd / "chaperone.toml"
        toml.write_text(
            '[alerting]\nrecipients = ["ops@example.com"]\n'
            '[alerting.rate_limit]\njob_stuck = "10m"\n'
        )
        (cwd / ".env").write_text("CHAPERONE_ALERT_ERROR_RATE=15\n")
        result = run(cwd, "config", "check", env={"CHAPERONE_ALERT_CHANNELS": "log,database"})
        assert result.returncode == 0, result.stderr
        assert f"configuration OK (file: {toml})" in result.stdout
        assert "channels: log, database" in result.stdout

    def test_unknown_channel_names_its_package(self, cwd: Path) -> None:
        """A channel no plugin provides exits 2, naming the variable and the package
        that would provide it (a made-up one: real plugins may be installed)."""
        result = run(cwd, "config", "check", env={"CHAPERONE_ALERT_CHANNELS": "pigeon"})
        assert result.returncode == 2
        assert "chaperone-pigeon" in result.stderr
        assert "CHAPERONE_ALERT_CHANNELS (from environment)" in result.stderr

    def test_missing_config_file(self, cwd: Path) -> None:
        """CHAPERONE_CONFIG naming no file exits 2 naming CHAPERONE_CONFIG."""
        result = run(cwd, "config", "check", env={"CHAPERONE_CONFIG": "absent.toml"})
        assert result.returncode == 2
        assert "CHAPERONE_CONFIG (from environment)" in result.stderr
        assert str(cwd / "absent.toml") in result.stderr


class TestMistakesCaughtAtOnce:
    """The mistakes of issue 13, item 8, through the real command: one line each, exit
    2, never a traceback.
    """

    def test_core_and_channel_problems_are_listed_together(self, cwd: Path) -> None:
        """Bad core settings do not hide the channels' problems: a bad duration, an
        unknown variable, a wrong TOML type and an unknown channel key are all listed.
        """
        toml = cwd / "chaperone.toml"
        toml.write_text('[delivery]\ntimeout = ["10"]\n[channels.log]\nloger = "x"\n')
        env = {"CHAPERONE_ALERT_RATE_LIMIT": "soon", "CHAPERONE_ALERT_CHANELS": "log"}
        result = run(cwd, "config", "check", env=env)
        assert result.returncode == 2, result
        assert result.stderr.splitlines()[-4:] == [
            "  CHAPERONE_ALERT_RATE_LIMIT (from environment): expected a duration such as "
            "300, '5m' or '1h', got 'soon'",
            f"  delivery.timeout (from {toml}): expected a duration such as 300, '5m' or "
            "'1h', got an array",
            f"  channels.log.loger (from {toml}): channel 'log' has no setting 'loger'; did "
            "you mean logger?",
            "  CHAPERONE_ALERT_CHANELS (from environment): no setting is named so; did you "
            "mean CHAPERONE_ALERT_CHANNELS?",
        ]
        assert "Traceback" not in result.stderr

    @pytest.mark.parametrize(
        ("file", "content", "expected"),
        [
            (
                "chaperone.toml",
                b'[serve]\nhost = "caf\xe9"\n',
                "serve.host (from {path}): is not UTF-8 text (byte 0xe9 on line 2)",
            ),
            (
                ".env",
                b"CHAPERONE_ALERT_CHANNELS=log\nMAIL_FROM_NAME=caf\xe9\n",
                "MAIL_FROM_NAME (from .env file {path}): is not UTF-8 text (byte 0xe9 on line 2)",
            ),
            (
                "chaperone.toml",
                b"[store]\nurl = 1979-05-27\n",
                "store.url (from {path}): expected text, got a date",
            ),
        ],
    )
    def test_a_file_mistake_is_one_line(
        self, cwd: Path, file: str, content: bytes, expected: str
    ) -> None:
        """A file that is not UTF-8, or a TOML value of the wrong kind, is one line
        naming the setting and the file.
        """
        path = cwd / file
        path.write_bytes(content)
        result = run(cwd, "config", "check")
        assert result.returncode == 2, result
        (line,) = [line for line in result.stderr.splitlines() if line.startswith("  ")]
        assert line.startswith("  " + expected.format(path=path))
        assert "Traceback" not in result.stderr

    @pytest.mark.parametrize(
        ("variable", "value", "message"),
        [
            ("CHAPERONE_DELIVERY_TIMEOUT", "0", "expected a duration above 0"),
            ("CHAPERONE_ALERT_RATE_LIMIT", "99999999d", "duration too long"),
            ("CHAPERONE_ALERT_RATE_LIMIT_JOB_STUCK", "99999999d", "duration too long"),
        ],
    )
    def test_durations_out_of_range(
        self, cwd: Path, variable: str, value: str, message: str
    ) -> None:
        """A delivery timeout of 0 and durations too long for a date are refused."""
        result = run(cwd, "config", "check", env={variable: value})
        assert result.returncode == 2, result
        assert f"{variable} (from environment): {message}" in result.stderr

    def test_maintenance_longer_than_a_date_can_hold(self, cwd: Path) -> None:
        """``maintenance start 99999999d`` is a usage error (exit 2), not a traceback."""
        result = run(cwd, "maintenance", "start", "99999999d")
        assert result.returncode == 2, result
        assert "Invalid value for DURATION: duration too long" in result.stderr
        assert "Traceback" not in result.stderr

    def test_every_command_refuses_an_unknown_variable(self, cwd: Path) -> None:
        """A command that builds the runtime (``maintenance end``) refuses a misspelt
        variable too, with the suggestion.
        """
        result = run(cwd, "maintenance", "end", env={"CHAPERONE_STOR": "memory://"})
        assert result.returncode == 2, result
        assert "did you mean CHAPERONE_STORE?" in result.stderr

    def test_the_test_and_benchmark_variables_pass(self, cwd: Path) -> None:
        """The variables the test suite and the benchmarks set for the commands they
        start are known.
        """
        env = {
            "CHAPERONE_TEST_REDIS": "required",
            "CHAPERONE_TEST_BROWSER": "required",
            "CHAPERONE_TEST_CHROMIUM": "/usr/bin/chromium",
            "CHAPERONE_TEST_ARTIFACTS": str(cwd / "artifacts"),
            "CHAPERONE_TEST_DOCS_IMAGES": "write",
            "CHAPERONE_BENCH_RESULTS": str(cwd / "r"),
        }
        result = run(cwd, "config", "check", env=env)
        assert result.returncode == 0, result


class TestConfigShow:
    def test_json_lists_values_and_sources(self, cwd: Path) -> None:
        """Each setting shows its value and where it came from: environment, .env, TOML or
        default, and per-type rate limits get rows of their own.
        """
        toml = cwd / "chaperone.toml"
        toml.write_text('[alerting.rate_limit]\njob_stuck = "10m"\n[log]\nlevel = "warning"\n')
        (cwd / ".env").write_text("CHAPERONE_ALERT_QUEUE_LENGTH=55\n")
        rows = show_json(cwd, env={"CHAPERONE_ALERT_RESPONSE_TIME": "5m"})
        queue = rows["alerting.thresholds.queue_length"]
        assert queue == {
            "setting": "alerting.thresholds.queue_length",
            "env": "CHAPERONE_ALERT_QUEUE_LENGTH",
            "value": 55,
            "source": f".env file {cwd / '.env'}",
        }
        assert rows["alerting.thresholds.response_time"]["value"] == 300
        assert rows["alerting.thresholds.response_time"]["source"] == "environment"
        assert rows["log.level"]["value"] == "warning"
        assert rows["log.level"]["source"] == str(toml)
        stuck = rows["alerting.rate_limit.job_stuck"]
        assert (stuck["value"], stuck["source"]) == (600, str(toml))
        assert stuck["env"] == "CHAPERONE_ALERT_RATE_LIMIT_JOB_STUCK"
        assert rows["alerting.enabled"]["value"] is True
        assert rows["alerting.enabled"]["source"] == "default"
        assert rows["alerting.channels"]["value"] == "log, database"

    def test_table_shows_dotenv_source(self, cwd: Path) -> None:
        """The table row of a .env value names the .env file."""
        (cwd / ".env").write_text("CHAPERONE_ALERT_RECIPIENTS=ops@example.com\n")
        result = run(cwd, "config", "show")
        assert result.returncode == 0, result.stderr
        rows = table_rows(result.stdout)
        assert compact(rows["alerting.recipients"]) == [
            "CHAPERONE_ALERT_RECIPIENTS",
            "ops@example.com",
            compact([f".env file {cwd / '.env'}"])[0],
        ]
        assert compact(rows["alerting.enabled"])[1:] == ["True", "default"]

    def test_show_with_bad_value_exits_2(self, cwd: Path) -> None:
        """`config show` refuses a bad configuration the same way `check` does."""
        result = run(cwd, "config", "show", "--json", env={"CHAPERONE_LOG_LEVEL": "loud"})
        assert result.returncode == 2
        assert "CHAPERONE_LOG_LEVEL (from environment)" in result.stderr
        assert result.stdout == ""

"""load_settings: layers and their precedence, finding the TOML file, the seed's
variables, per-type rate limits, and errors that name every bad key and its source.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone._exceptions import ConfigError, ConfigProblem
from chaperone.config import Settings, load_settings

ENV = "environment"


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return the path."""
    path.write_text(text, encoding="utf-8")
    return path


def dotenv_source(cwd: Path) -> str:
    """The source name load_settings gives values from ``cwd/.env``."""
    return f".env file {cwd / '.env'}"


def problems_of(environ: dict[str, str], cwd: Path) -> list[ConfigProblem]:
    """Load, expect a ConfigError, and return its problems."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ, cwd)
    return list(caught.value.problems)


def problem_for(problems: list[ConfigProblem], key: str) -> ConfigProblem:
    """The one problem about ``key``."""
    found = [problem for problem in problems if problem.key == key]
    assert len(found) == 1, problems
    return found[0]


class TestDefaults:
    def test_nothing_configured(self, tmp_path: Path) -> None:
        """With no environment and no files every setting has its default, from 'default'."""
        loaded = load_settings({}, tmp_path)
        assert loaded.enabled is True
        assert loaded.channels == ("log", "database")
        assert loaded.recipients == ()
        assert loaded.thresholds.error_rate == 10.0
        assert loaded.thresholds.response_time == timedelta(seconds=300)
        assert loaded.thresholds.queue_length == 1000
        assert loaded.rate_limit.default == timedelta(seconds=300)
        assert loaded.rate_limit.per_type == {}
        assert loaded.config_file is None
        assert dict(loaded.sources) == {}
        assert loaded.source_of("alerting.channels") == "default"

    def test_default_store_url_is_used_when_none_set(self, tmp_path: Path) -> None:
        """The caller's default store URL applies only when CHAPERONE_STORE is not set."""
        fallback = f"sqlite:///{tmp_path / 'd.db'}"
        assert load_settings({}, tmp_path, default_store_url=fallback).store_url == fallback
        chosen = load_settings(
            {"CHAPERONE_STORE": "memory://"}, tmp_path, default_store_url=fallback
        )
        assert chosen.store_url == "memory://"


class TestPrecedence:
    def test_each_layer_overrides_the_one_below(self, tmp_path: Path) -> None:
        """Environment beats .env beats TOML beats defaults, setting by setting."""
        write(
            tmp_path / "chaperone.toml",
            "[alerting]\nchannels = ['log']\n"
            "[alerting.thresholds]\nerror_rate = 30\nqueue_length = 3\nresponse_time = '3m'\n",
        )
        write(
            tmp_path / ".env",
            "CHAPERONE_ALERT_ERROR_RATE=20\nCHAPERONE_ALERT_QUEUE_LENGTH=2\n",
        )
        loaded = load_settings({"CHAPERONE_ALERT_ERROR_RATE": "10.5"}, tmp_path)
        toml = str(tmp_path / "chaperone.toml")
        assert loaded.thresholds.error_rate == 10.5
        assert loaded.source_of("alerting.thresholds.error_rate") == ENV
        assert loaded.thresholds.queue_length == 2
        assert loaded.source_of("alerting.thresholds.queue_length") == dotenv_source(tmp_path)
        assert loaded.thresholds.response_time == timedelta(minutes=3)
        assert loaded.source_of("alerting.thresholds.response_time") == toml
        assert loaded.channels == ("log",)
        assert loaded.sources["alerting.channels"] == toml
        assert loaded.enabled is True
        assert loaded.source_of("alerting.enabled") == "default"
        assert "alerting.enabled" not in loaded.sources
        assert loaded.config_file == toml

    def test_merged_environment_keeps_sources(self, tmp_path: Path) -> None:
        """Settings.environ is .env under the environment, each variable with its source."""
        write(tmp_path / ".env", "CHAPERONE_SLACK_CHANNEL=#ops\nOTHER=from-file\n")
        loaded = load_settings({"OTHER": "from-env"}, tmp_path)
        assert loaded.environ["CHAPERONE_SLACK_CHANNEL"] == "#ops"
        assert loaded.environ_sources["CHAPERONE_SLACK_CHANNEL"] == dotenv_source(tmp_path)
        assert loaded.environ["OTHER"] == "from-env"
        assert loaded.environ_sources["OTHER"] == ENV

    def test_empty_environment_variable_leaves_dotenv_value(self, tmp_path: Path) -> None:
        """An empty variable in the environment counts as not set, so .env still applies."""
        write(tmp_path / ".env", "CHAPERONE_ALERT_QUEUE_LENGTH=55\n")
        loaded = load_settings({"CHAPERONE_ALERT_QUEUE_LENGTH": "  "}, tmp_path)
        assert loaded.thresholds.queue_length == 55
        assert loaded.source_of("alerting.thresholds.queue_length") == dotenv_source(tmp_path)

    @settings(max_examples=60, deadline=None)
    @given(
        layers=st.fixed_dictionaries(
            {
                name: st.sets(st.sampled_from(["env", "dotenv", "toml"]))
                for name in ("queue_length", "history_limit", "log_level", "response_time")
            }
        ),
        location=st.sampled_from(["chaperone.toml", "pyproject", "env-config", "dotenv-config"]),
    )
    def test_highest_layer_wins(self, layers: dict[str, set[str]], location: str) -> None:
        """For any choice of layers setting each value, the highest one's value and source win,
        wherever the TOML file is found.
        """
        specs = {
            # name: (environment variable, TOML table, TOML key)
            "queue_length": ("CHAPERONE_ALERT_QUEUE_LENGTH", "alerting.thresholds", "queue_length"),
            "history_limit": ("CHAPERONE_HISTORY_LIMIT", "alerting", "history_limit"),
            "log_level": ("CHAPERONE_LOG_LEVEL", "log", "level"),
            "response_time": (
                "CHAPERONE_ALERT_RESPONSE_TIME",
                "alerting.thresholds",
                "response_time",
            ),
        }
        values = {
            "queue_length": {"env": "1", "dotenv": "2", "toml": "3"},
            "history_limit": {"env": "11", "dotenv": "12", "toml": "13"},
            "log_level": {"env": "error", "dotenv": "debug", "toml": "warning"},
            "response_time": {"env": "1m", "dotenv": "2m", "toml": "3m"},
        }
        with tempfile.TemporaryDirectory() as tmp:
            cwd = Path(tmp)
            environ: dict[str, str] = {}
            dotenv: list[str] = []
            tables: dict[str, list[str]] = {}
            for name, chosen in layers.items():
                variable, table, key = specs[name]
                if "env" in chosen:
                    environ[variable] = values[name]["env"]
                if "dotenv" in chosen:
                    dotenv.append(f"{variable}={values[name]['dotenv']}")
                if "toml" in chosen:
                    tables.setdefault(table, []).append(f'{key} = "{values[name]["toml"]}"')
            prefix = "tool.chaperone." if location == "pyproject" else ""
            toml_text = "".join(
                f"[{prefix}{table}]\n" + "\n".join(lines) + "\n" for table, lines in tables.items()
            )
            toml_path = {
                "chaperone.toml": cwd / "chaperone.toml",
                "pyproject": cwd / "pyproject.toml",
                "env-config": cwd / "conf" / "settings.toml",
                "dotenv-config": cwd / "conf" / "settings.toml",
            }[location]
            toml_path.parent.mkdir(exist_ok=True)
            if location == "pyproject":
                toml_text = "[project]\nname = 'app'\n[tool.chaperone]\n" + toml_text
            write(toml_path, toml_text)
            if location == "env-config":
                environ["CHAPERONE_CONFIG"] = str(toml_path)
            if location == "dotenv-config":
                dotenv.append("CHAPERONE_CONFIG=conf/settings.toml")
            write(cwd / ".env", "\n".join(dotenv) + "\n")

            loaded = load_settings(environ, cwd)

            assert loaded.config_file == str(toml_path)
            read = {
                "queue_length": (loaded.thresholds.queue_length, str),
                "history_limit": (loaded.history_limit, str),
                "log_level": (loaded.log_level, str),
                "response_time": (
                    loaded.thresholds.response_time,
                    lambda text: f"{int(text.total_seconds()) // 60}m",
                ),
            }
            dotted = {
                "queue_length": "alerting.thresholds.queue_length",
                "history_limit": "alerting.history_limit",
                "log_level": "log.level",
                "response_time": "alerting.thresholds.response_time",
            }
            source_names = {"env": ENV, "dotenv": dotenv_source(cwd), "toml": str(toml_path)}
            for name, chosen in layers.items():
                winner = next(
                    (layer for layer in ("env", "dotenv", "toml") if layer in chosen), None
                )
                value, shown = read[name]
                if winner is None:
                    assert loaded.source_of(dotted[name]) == "default"
                    assert dotted[name] not in loaded.sources
                else:
                    assert shown(value) == values[name][winner]
                    assert loaded.source_of(dotted[name]) == source_names[winner]


class TestFindingTheTomlFile:
    def test_chaperone_config_in_environment(self, tmp_path: Path) -> None:
        """CHAPERONE_CONFIG names the file, even over ./chaperone.toml."""
        elsewhere = write(tmp_path / "other.toml", "[alerting]\nenabled = false\n")
        write(tmp_path / "chaperone.toml", "[alerting]\nenabled = true\n")
        loaded = load_settings({"CHAPERONE_CONFIG": str(elsewhere)}, tmp_path)
        assert loaded.enabled is False
        assert loaded.config_file == str(elsewhere)
        assert loaded.source_of("alerting.enabled") == str(elsewhere)

    def test_chaperone_config_in_dotenv_relative_to_cwd(self, tmp_path: Path) -> None:
        """CHAPERONE_CONFIG may come from .env, a relative path read from the working dir."""
        (tmp_path / "etc").mkdir()
        path = write(tmp_path / "etc" / "c.toml", "[alerting]\nrecipients = ['a@example.com']\n")
        write(tmp_path / ".env", "CHAPERONE_CONFIG= etc/c.toml \n")
        loaded = load_settings({}, tmp_path)
        assert loaded.recipients == ("a@example.com",)
        assert loaded.config_file == str(path)

    def test_chaperone_toml_in_cwd(self, tmp_path: Path) -> None:
        """./chaperone.toml is read when CHAPERONE_CONFIG is not set, before pyproject.toml."""
        write(tmp_path / "chaperone.toml", "[alerting]\nchannels = 'log'\n")
        write(tmp_path / "pyproject.toml", "[tool.chaperone.alerting]\nchannels = 'database'\n")
        loaded = load_settings({}, tmp_path)
        assert loaded.channels == ("log",)
        assert loaded.config_file == str(tmp_path / "chaperone.toml")

    def test_pyproject_tool_chaperone(self, tmp_path: Path) -> None:
        """[tool.chaperone] in ./pyproject.toml is the last place looked."""
        write(
            tmp_path / "pyproject.toml",
            "[project]\nname = 'app'\n[tool.chaperone.alerting.thresholds]\nqueue_length = 7\n",
        )
        loaded = load_settings({}, tmp_path)
        assert loaded.thresholds.queue_length == 7
        assert loaded.config_file == str(tmp_path / "pyproject.toml")
        assert loaded.source_of("alerting.thresholds.queue_length") == str(
            tmp_path / "pyproject.toml"
        )

    def test_pyproject_without_tool_chaperone_is_ignored(self, tmp_path: Path) -> None:
        """A pyproject.toml with no [tool.chaperone] is no configuration file, and its other
        tables are not 'unknown settings'.
        """
        write(
            tmp_path / "pyproject.toml", "[project]\nname = 'app'\n[tool.ruff]\nline-length = 9\n"
        )
        loaded = load_settings({}, tmp_path)
        assert loaded.config_file is None
        assert loaded.channels == ("log", "database")

    def test_empty_chaperone_config_counts_as_unset(self, tmp_path: Path) -> None:
        """CHAPERONE_CONFIG set to blanks falls back to ./chaperone.toml."""
        write(tmp_path / "chaperone.toml", "[alerting]\nenabled = 'off'\n")
        loaded = load_settings({"CHAPERONE_CONFIG": "  "}, tmp_path)
        assert loaded.enabled is False


class TestSeedVariables:
    def test_seed_environment_block(self, tmp_path: Path) -> None:
        """The seed guide's .env example means the same here."""
        write(
            tmp_path / ".env",
            "# Global alerting toggle\n"
            "CHAPERONE_ALERTING_ENABLED=true\n"
            "CHAPERONE_ALERT_CHANNELS=mail,slack,database\n"
            "CHAPERONE_ALERT_RECIPIENTS=oncall@example.com,team-lead@example.com\n"
            "CHAPERONE_ALERT_ERROR_RATE=10\n"
            "CHAPERONE_ALERT_RESPONSE_TIME=300\n"
            "CHAPERONE_ALERT_QUEUE_LENGTH=1000\n",
        )
        loaded = load_settings({}, tmp_path)
        assert loaded.enabled is True
        assert loaded.channels == ("mail", "slack", "database")
        assert loaded.recipients == ("oncall@example.com", "team-lead@example.com")
        assert loaded.thresholds.error_rate == 10.0
        assert loaded.thresholds.response_time == timedelta(seconds=300)
        assert loaded.thresholds.queue_length == 1000
        for setting in (
            "alerting.enabled",
            "alerting.channels",
            "alerting.recipients",
            "alerting.thresholds.error_rate",
            "alerting.thresholds.response_time",
            "alerting.thresholds.queue_length",
        ):
            assert loaded.source_of(setting) == dotenv_source(tmp_path)

    def test_values_are_trimmed(self, tmp_path: Path) -> None:
        """Whitespace around values and list items is dropped."""
        loaded = load_settings(
            {
                "CHAPERONE_ALERTING_ENABLED": "  False ",
                "CHAPERONE_ALERT_CHANNELS": " log , database ",
                "CHAPERONE_ALERT_RECIPIENTS": " a@example.com ,  b@example.org ",
                "CHAPERONE_ALERT_ERROR_RATE": "\t25 ",
                "CHAPERONE_ALERT_RESPONSE_TIME": " 5m ",
                "CHAPERONE_ALERT_QUEUE_LENGTH": " 50\n",
            },
            tmp_path,
        )
        assert loaded.enabled is False
        assert loaded.channels == ("log", "database")
        assert loaded.recipients == ("a@example.com", "b@example.org")
        assert loaded.thresholds.error_rate == 25.0
        assert loaded.thresholds.response_time == timedelta(minutes=5)
        assert loaded.thresholds.queue_length == 50

    @pytest.mark.parametrize(
        "variable",
        [
            "CHAPERONE_ALERTING_ENABLED",
            "CHAPERONE_ALERT_CHANNELS",
            "CHAPERONE_ALERT_RECIPIENTS",
            "CHAPERONE_ALERT_ERROR_RATE",
            "CHAPERONE_ALERT_RESPONSE_TIME",
            "CHAPERONE_ALERT_QUEUE_LENGTH",
        ],
    )
    @pytest.mark.parametrize("empty", ["", "   "])
    def test_empty_values_count_as_not_set(self, tmp_path: Path, variable: str, empty: str) -> None:
        """An empty variable (in the environment or .env) leaves the default in force."""
        write(tmp_path / ".env", f"{variable}={empty}\n")
        from_file = load_settings({}, tmp_path)
        from_env = load_settings({variable: empty}, tmp_path)
        assert from_file == Settings(
            store_url=from_file.store_url,
            environ=from_file.environ,
            environ_sources=from_file.environ_sources,
        )
        assert from_file.sources == {}
        assert from_env.sources == {}
        assert from_env.channels == ("log", "database")

    def test_empty_environment_value_falls_through_to_toml(self, tmp_path: Path) -> None:
        """An empty environment variable does not hide the TOML value under it."""
        write(tmp_path / "chaperone.toml", "[alerting]\nchannels = ['log']\nenabled = false\n")
        loaded = load_settings(
            {"CHAPERONE_ALERT_CHANNELS": "", "CHAPERONE_ALERTING_ENABLED": " "}, tmp_path
        )
        assert loaded.channels == ("log",)
        assert loaded.enabled is False
        assert loaded.source_of("alerting.channels") == str(tmp_path / "chaperone.toml")

    @pytest.mark.parametrize(
        ("text", "seconds"), [("90", 90), ("5m", 300), ("1h", 3600), ("1h30m", 5400)]
    )
    def test_durations_accept_seconds_and_units(
        self, tmp_path: Path, text: str, seconds: int
    ) -> None:
        """Duration settings take seconds or '5m'/'1h', in the environment and in TOML."""
        from_env = load_settings({"CHAPERONE_ALERT_RESPONSE_TIME": text}, tmp_path)
        assert from_env.thresholds.response_time == timedelta(seconds=seconds)
        write(tmp_path / "chaperone.toml", f"[alerting.thresholds]\nresponse_time = '{text}'\n")
        from_toml = load_settings({}, tmp_path)
        assert from_toml.thresholds.response_time == timedelta(seconds=seconds)

    def test_toml_native_types(self, tmp_path: Path) -> None:
        """TOML booleans, numbers and arrays are read as such."""
        write(
            tmp_path / "chaperone.toml",
            "[alerting]\nenabled = false\nchannels = ['log', 'Database']\n"
            "recipients = ['ops@example.com']\n"
            "[alerting.thresholds]\nerror_rate = 12.5\nresponse_time = 90\nqueue_length = 10\n",
        )
        loaded = load_settings({}, tmp_path)
        assert loaded.enabled is False
        assert loaded.channels == ("log", "database")
        assert loaded.recipients == ("ops@example.com",)
        assert loaded.thresholds.error_rate == 12.5
        assert loaded.thresholds.response_time == timedelta(seconds=90)
        assert loaded.thresholds.queue_length == 10


class TestRateLimits:
    def test_per_type_window_from_toml(self, tmp_path: Path) -> None:
        """[alerting.rate_limit] job_stuck = "10m" sets that type's window only."""
        write(
            tmp_path / "chaperone.toml",
            '[alerting.rate_limit]\ndefault = "2m"\njob_stuck = "10m"\n',
        )
        loaded = load_settings({}, tmp_path)
        assert loaded.rate_limit.default == timedelta(minutes=2)
        assert loaded.rate_limit.per_type == {"job_stuck": timedelta(minutes=10)}
        assert loaded.rate_limit.window_for("job_stuck") == timedelta(minutes=10)
        assert loaded.rate_limit.window_for("job_timeout") == timedelta(minutes=2)
        assert loaded.source_of("alerting.rate_limit.job_stuck") == str(tmp_path / "chaperone.toml")

    def test_environment_wins_over_toml(self, tmp_path: Path) -> None:
        """CHAPERONE_ALERT_RATE_LIMIT_JOB_STUCK=600 overrides the TOML window."""
        write(tmp_path / "chaperone.toml", '[alerting.rate_limit]\njob_stuck = "1m"\n')
        loaded = load_settings({"CHAPERONE_ALERT_RATE_LIMIT_JOB_STUCK": "600"}, tmp_path)
        assert loaded.rate_limit.window_for("job_stuck") == timedelta(seconds=600)
        assert loaded.source_of("alerting.rate_limit.job_stuck") == ENV

    def test_dotenv_and_default_variable(self, tmp_path: Path) -> None:
        """Per-type windows also come from .env; CHAPERONE_ALERT_RATE_LIMIT sets the default."""
        write(tmp_path / ".env", "CHAPERONE_ALERT_RATE_LIMIT_CIRCUIT_BREAKER_OPENED=1h\n")
        loaded = load_settings({"CHAPERONE_ALERT_RATE_LIMIT": "45"}, tmp_path)
        assert loaded.rate_limit.default == timedelta(seconds=45)
        assert loaded.rate_limit.window_for("circuit_breaker_opened") == timedelta(hours=1)
        assert loaded.source_of("alerting.rate_limit.circuit_breaker_opened") == dotenv_source(
            tmp_path
        )

    def test_bad_windows_name_their_key(self, tmp_path: Path) -> None:
        """A bad per-type window names the TOML key or variable and where it came from."""
        toml = write(tmp_path / "chaperone.toml", '[alerting.rate_limit]\njob_timeout = "soon"\n')
        problems = problems_of({"CHAPERONE_ALERT_RATE_LIMIT_JOB_STUCK": "-1"}, tmp_path)
        assert problem_for(problems, "alerting.rate_limit.job_timeout").source == str(toml)
        assert problem_for(problems, "CHAPERONE_ALERT_RATE_LIMIT_JOB_STUCK").source == ENV

    def test_rate_limit_must_be_a_table(self, tmp_path: Path) -> None:
        """`rate_limit = "5m"` under [alerting] is an error, not silently ignored."""
        toml = write(tmp_path / "chaperone.toml", '[alerting]\nrate_limit = "5m"\n')
        problem = problem_for(problems_of({}, tmp_path), "alerting.rate_limit")
        assert problem.source == str(toml)
        assert "table" in problem.message


class TestErrors:
    def test_bad_environment_value(self, tmp_path: Path) -> None:
        """A bad variable names itself, 'environment', and the value."""
        problems = problems_of({"CHAPERONE_ALERTING_ENABLED": "maybe"}, tmp_path)
        assert len(problems) == 1
        problem = problems[0]
        assert (problem.key, problem.source) == ("CHAPERONE_ALERTING_ENABLED", ENV)
        assert "'maybe'" in problem.message
        assert "CHAPERONE_ALERTING_ENABLED (from environment)" in str(ConfigError(problems))

    def test_bad_dotenv_value(self, tmp_path: Path) -> None:
        """A bad value in .env names the variable and the .env file's path."""
        write(tmp_path / ".env", "CHAPERONE_ALERT_QUEUE_LENGTH=lots\n")
        problem = problem_for(problems_of({}, tmp_path), "CHAPERONE_ALERT_QUEUE_LENGTH")
        assert problem.source == dotenv_source(tmp_path)
        assert str(tmp_path / ".env") in problem.source

    def test_bad_toml_value(self, tmp_path: Path) -> None:
        """A bad TOML value names its dotted key and the TOML file's path."""
        toml = write(tmp_path / "chaperone.toml", "[alerting.thresholds]\nerror_rate = 150\n")
        problem = problem_for(problems_of({}, tmp_path), "alerting.thresholds.error_rate")
        assert problem.source == str(toml)
        assert "between 0 and 100" in problem.message

    def test_every_problem_is_reported_at_once(self, tmp_path: Path) -> None:
        """Bad values in every layer, and unknown keys, all come in one ConfigError."""
        toml = write(
            tmp_path / "chaperone.toml",
            "[alerting]\nenabeld = true\n[alerting.thresholds]\nqueue_length = -4\n",
        )
        write(tmp_path / ".env", "CHAPERONE_ALERT_RESPONSE_TIME=forever\n")
        problems = problems_of(
            {
                "CHAPERONE_ALERTING_ENABLED": "maybe",
                "CHAPERONE_ALERT_ERROR_RATE": "-1",
                "CHAPERONE_ALERT_RECIPIENTS": "ops@example.com,not-an-address",
                "CHAPERONE_ALERT_CHANNELS": "log,sl ack",
            },
            tmp_path,
        )
        expected = {
            ("CHAPERONE_ALERTING_ENABLED", ENV),
            ("CHAPERONE_ALERT_ERROR_RATE", ENV),
            ("CHAPERONE_ALERT_RECIPIENTS", ENV),
            ("CHAPERONE_ALERT_CHANNELS", ENV),
            ("CHAPERONE_ALERT_RESPONSE_TIME", dotenv_source(tmp_path)),
            ("alerting.thresholds.queue_length", str(toml)),
            ("alerting.enabeld", str(toml)),
        }
        assert {(problem.key, problem.source) for problem in problems} == expected

    @pytest.mark.parametrize(
        ("text", "key"),
        [
            ("[alerting]\nenabeld = true\n", "alerting.enabeld"),
            ("alertng = 1\n", "alertng"),
            ("[alerting.thresholds]\neror_rate = 5\n", "alerting.thresholds.eror_rate"),
            ("[delivery]\nretries = 5\n", "delivery.retries"),
            ("[store]\nurl = 'memory://'\npath = 'x'\n", "store.path"),
            ("[log.format]\nkind = 'json'\n", "log.format"),
        ],
    )
    def test_unknown_toml_keys_are_errors(self, tmp_path: Path, text: str, key: str) -> None:
        """A key no setting reads is named, with the file, so a typo fails loudly."""
        toml = write(tmp_path / "chaperone.toml", text)
        problem = problem_for(problems_of({}, tmp_path), key)
        assert problem.source == str(toml)

    def test_unknown_key_in_pyproject_names_pyproject(self, tmp_path: Path) -> None:
        """Typos under [tool.chaperone] are errors naming pyproject.toml."""
        pyproject = write(
            tmp_path / "pyproject.toml", "[tool.chaperone.alerting]\nchanels = 'log'\n"
        )
        problem = problem_for(problems_of({}, tmp_path), "alerting.chanels")
        assert problem.source == str(pyproject)

    def test_free_tables_accept_any_name(self, tmp_path: Path) -> None:
        """Alert types under [alerting.rate_limit] and channel names under [channels] are the
        user's to pick.
        """
        write(
            tmp_path / "chaperone.toml",
            '[alerting.rate_limit]\nmy_own_type = "1m"\n[channels.pager]\nroute = "x"\n',
        )
        loaded = load_settings({}, tmp_path)
        assert loaded.rate_limit.window_for("my_own_type") == timedelta(minutes=1)
        assert loaded.channel_sections == {"pager": {"route": "x"}}

    @pytest.mark.parametrize("name", ["chaperone.toml", "pyproject.toml"])
    def test_invalid_toml_names_the_file(self, tmp_path: Path, name: str) -> None:
        """A file that is not TOML is an error naming the file."""
        path = write(tmp_path / name, "[alerting\nenabled = = true\n")
        problem = problem_for(problems_of({}, tmp_path), name)
        assert problem.source == str(path)

    def test_missing_chaperone_config_from_environment(self, tmp_path: Path) -> None:
        """CHAPERONE_CONFIG naming no file is an error naming CHAPERONE_CONFIG and the path."""
        missing = tmp_path / "nope.toml"
        problem = problem_for(
            problems_of({"CHAPERONE_CONFIG": str(missing)}, tmp_path), "CHAPERONE_CONFIG"
        )
        assert problem.source == ENV
        assert str(missing) in problem.message

    def test_missing_chaperone_config_from_dotenv(self, tmp_path: Path) -> None:
        """When CHAPERONE_CONFIG came from .env the error says so."""
        write(tmp_path / ".env", "CHAPERONE_CONFIG=conf/missing.toml\n")
        problem = problem_for(problems_of({}, tmp_path), "CHAPERONE_CONFIG")
        assert problem.source == dotenv_source(tmp_path)
        assert str(tmp_path / "conf" / "missing.toml") in problem.message

    def test_bad_recipient_is_named(self, tmp_path: Path) -> None:
        """Among good addresses, the bad one is quoted in the message."""
        problem = problem_for(
            problems_of(
                {"CHAPERONE_ALERT_RECIPIENTS": "ops@example.com, oncall at example.com"},
                tmp_path,
            ),
            "CHAPERONE_ALERT_RECIPIENTS",
        )
        assert "'oncall at example.com'" in problem.message
        assert "ops@example.com" not in problem.message

    def test_too_long_duration_is_a_config_error(self, tmp_path: Path) -> None:
        """An absurdly long duration is a ConfigError naming the variable, not a crash."""
        problem = problem_for(
            problems_of({"CHAPERONE_ALERT_RESPONSE_TIME": "99999999999d"}, tmp_path),
            "CHAPERONE_ALERT_RESPONSE_TIME",
        )
        assert problem.source == ENV

    def test_config_error_is_a_value_error(self, tmp_path: Path) -> None:
        """Callers may catch ConfigError as ValueError; its text lists every problem."""
        with pytest.raises(ValueError, match="CHAPERONE_ALERT_QUEUE_LENGTH") as caught:
            load_settings(
                {"CHAPERONE_ALERT_QUEUE_LENGTH": "x", "CHAPERONE_LOG_LEVEL": "loud"}, tmp_path
            )
        assert "CHAPERONE_LOG_LEVEL (from environment)" in str(caught.value)

"""A TOML value of the wrong kind anywhere (an array where text is expected, a date, a
table) is a ConfigProblem naming the setting and the file, never another exception.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone import Chaperone, ConfigError, ManualClock, PluginHost
from chaperone.config import SETTING_SPECS, collect_settings, load_settings
from chaperone.store import MemoryStore

ALWAYS_WRONG = {
    "a table": "{ a = 1 }",
    "a date": "1979-05-27",
    "a time": "07:32:00",
    "a date-time": "1979-05-27T07:32:00Z",
}
"""TOML literals no scalar setting takes, by how the error names their kind."""
SOMETIMES_WRONG = {
    "an array": '["x", "y"]',
    "an array of tables": "[{ a = 1 }]",
    "a nested array": "[[1], [2]]",
    "true": "true",
    "a number": "-1.5",
}
"""TOML literals some settings take (lists of names, booleans, numbers)."""

TOML_LITERALS = st.recursive(
    st.sampled_from([*ALWAYS_WRONG.values(), "true", "0", "-7", "1.5e300", '"x"', '""', "nan"]),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.dictionaries(st.sampled_from(["a", "b", "name"]), inner, max_size=2).map(
            lambda table: "{ " + ", ".join(f"{k} = {v}" for k, v in table.items()) + " }"
        ),
    ),
    max_leaves=6,
)
"""Any TOML value, arrays and inline tables nested."""

PLACES = [
    *(spec.toml for spec in SETTING_SPECS),
    ("alerting", "rate_limit", "job_stuck"),
    ("alerting", "escalation", "job_stuck"),
    ("alerting", "runbooks", "job_stuck"),
    ("channels", "log", "logger"),
    ("channels", "log", "timeout"),
    ("channels", "log", "max_attempts"),
    ("channels", "log", "fallback"),
    ("channels", "database", "max_total"),
]
"""Every key a value can sit at outside the arrays of tables."""
ENTRY_KEYS = {
    "alerting.routes": ["name", "channels", "match", "runbook_url", "continue", "log"],
    "alerting.maintenance": ["every", "from", "to", "timezone", "match", "reason", "name"],
}
"""The keys of the arrays of tables."""
VALID_ENTRIES = {
    "alerting.routes": {"channels": '["log"]'},
    "alerting.maintenance": {"every": '"daily"', "from": '"02:00"', "to": '"03:00"'},
}


def toml_at(path: tuple[str, ...], literal: str) -> str:
    """A TOML document setting ``path`` to ``literal``."""
    *table, key = path
    header = f"[{'.'.join(table)}]\n" if table else ""
    return f"{header}{key} = {literal}\n"


def write_config(folder: Path, text: str) -> Path:
    path = folder / "chaperone.toml"
    path.write_text(text, encoding="utf-8")
    return path


def check_all(folder: Path) -> list[str]:
    """Every problem ``config check`` would list (core and channels), as text; raises
    whatever else goes wrong.
    """
    loaded, problems = collect_settings({}, folder)
    found = list(problems)
    try:
        store = MemoryStore(ManualClock())
        Chaperone(loaded, store=store, plugins=PluginHost(entry_points=False)).close()
    except ConfigError as exc:
        found.extend(exc.problems)
    return [str(problem) for problem in found]


class TestScalarSettings:
    @pytest.mark.parametrize("spec", SETTING_SPECS, ids=lambda spec: spec.name)
    @pytest.mark.parametrize("kind", sorted(ALWAYS_WRONG))
    def test_a_table_or_date_is_a_problem_naming_key_and_file(
        self, tmp_path: Path, spec: object, kind: str
    ) -> None:
        """A table, date, time or date-time for any setting is one problem naming the
        setting's TOML key and the file, saying what kind of value it got.
        """
        toml = spec.toml  # type: ignore[attr-defined]
        path = write_config(tmp_path, toml_at(toml, ALWAYS_WRONG[kind]))
        with pytest.raises(ConfigError) as caught:
            load_settings({}, tmp_path)
        (problem,) = caught.value.problems
        assert problem.key == ".".join(toml)
        assert problem.source == str(path)
        assert kind in problem.message
        assert "\n" not in str(problem)

    @pytest.mark.parametrize("spec", SETTING_SPECS, ids=lambda spec: spec.name)
    @pytest.mark.parametrize("kind", sorted(SOMETIMES_WRONG))
    def test_other_kinds_load_or_name_the_key(
        self, tmp_path: Path, spec: object, kind: str
    ) -> None:
        """An array, a boolean or a number either is what the setting takes, or is a
        problem naming the setting and the file: never another exception.
        """
        toml = spec.toml  # type: ignore[attr-defined]
        path = write_config(tmp_path, toml_at(toml, SOMETIMES_WRONG[kind]))
        _settings, problems = collect_settings({}, tmp_path)
        assert [(p.key, p.source) for p in problems] in ([], [(".".join(toml), str(path))])

    @pytest.mark.parametrize(
        ("setting", "literal"),
        [
            (("store", "url"), '["sqlite:///a.db"]'),
            (("serve", "host"), '["127.0.0.1"]'),
            (("serve", "token"), '["secret-token"]'),
            (("log", "level"), '["info"]'),
            (("app_url",), '["https://app.example.com"]'),
            (("alerting", "thresholds", "response_time"), '["5m"]'),
            (("delivery", "timeout"), '["10"]'),
            (("alerting", "grouping", "enabled"), '["yes"]'),
            (("alerting", "history_limit"), "[10]"),
        ],
    )
    def test_an_array_where_one_value_is_expected(
        self, tmp_path: Path, setting: tuple[str, ...], literal: str
    ) -> None:
        """An array for a setting of one value is a problem saying it got an array,
        without quoting the value.
        """
        write_config(tmp_path, toml_at(setting, literal))
        with pytest.raises(ConfigError) as caught:
            load_settings({}, tmp_path)
        (problem,) = caught.value.problems
        assert problem.key == ".".join(setting)
        assert "got an array" in problem.message
        assert "secret-token" not in str(problem)

    def test_a_value_the_environment_overrides_is_still_checked(self, tmp_path: Path) -> None:
        """A bad value in the file is found even while a variable overrides it."""
        path = write_config(tmp_path, '[store]\nurl = ["x"]\n[alerting.rate_limit]\nx = []\n')
        environ = {"CHAPERONE_STORE": "memory://", "CHAPERONE_ALERT_RATE_LIMIT_X": "5m"}
        with pytest.raises(ConfigError) as caught:
            load_settings(environ, tmp_path)
        keys = {(problem.key, problem.source) for problem in caught.value.problems}
        assert keys == {("store.url", str(path)), ("alerting.rate_limit.x", str(path))}

    def test_a_toml_local_time_is_a_time_of_day(self, tmp_path: Path) -> None:
        """A recurring window's ``from = 02:00:00`` (a TOML time) reads as 02:00."""
        write_config(
            tmp_path,
            '[[alerting.maintenance]]\nevery = "daily"\nfrom = 02:00:00\nto = "03:30"\n',
        )
        (window,) = load_settings({}, tmp_path).maintenance
        assert (window.start.hour, window.start.minute) == (2, 0)


class TestEverywhere:
    @pytest.mark.parametrize("kind", sorted(ALWAYS_WRONG))
    @pytest.mark.parametrize("place", PLACES, ids=".".join)
    def test_channel_and_per_type_values(
        self, tmp_path: Path, place: tuple[str, ...], kind: str
    ) -> None:
        """In a per-type table or a channel's table, a table or date is a problem naming
        the key and the file, found by the same check as the core settings.
        """
        path = write_config(tmp_path, toml_at(place, ALWAYS_WRONG[kind]))
        problems = check_all(tmp_path)
        expected = f"{'.'.join(place)} (from {path}): "
        assert [problem for problem in problems if problem.startswith(expected)], problems
        assert any(kind in problem for problem in problems), problems

    @pytest.mark.parametrize(
        ("table", "key", "kind"),
        [
            (table, key, kind)
            for table, keys in ENTRY_KEYS.items()
            for key in keys
            for kind in sorted(ALWAYS_WRONG)
            # A TOML time is a time of day there (test_a_toml_local_time_is_a_time_of_day).
            if not (key in {"from", "to"} and kind == "a time")
        ],
    )
    def test_route_and_window_values(self, tmp_path: Path, table: str, key: str, kind: str) -> None:
        """In a route or a recurring window, a table or date is a problem naming the
        entry's key (``alerting.routes[0].name``) and the file.
        """
        entry = {**VALID_ENTRIES[table], key: ALWAYS_WRONG[kind]}
        lines = "".join(f"{name} = {value}\n" for name, value in entry.items())
        path = write_config(tmp_path, f"[[{table}]]\n{lines}")
        problems = check_all(tmp_path)
        assert any(
            problem.startswith(f"{table}[0].{key}") and f"(from {path})" in problem
            for problem in problems
        ), problems

    @settings(max_examples=150, deadline=None)
    @given(
        place=st.sampled_from(
            [
                *PLACES,
                *((f"{table}[]", key) for table, keys in ENTRY_KEYS.items() for key in keys),
            ]
        ),
        literal=TOML_LITERALS,
    )
    def test_any_value_anywhere_is_read_or_a_problem(
        self, place: tuple[str, ...], literal: str
    ) -> None:
        """Any TOML value at any key either loads, or gives problems that each name a key
        and the file, one line each: never another exception.
        """
        table, *rest = place
        if table.endswith("[]"):
            entry = {**VALID_ENTRIES[table[:-2]], rest[0]: literal}
            text = f"[[{table[:-2]}]]\n" + "".join(f"{k} = {v}\n" for k, v in entry.items())
        else:
            text = toml_at(place, literal)
        with tempfile.TemporaryDirectory() as folder:
            path = write_config(Path(folder), text)
            for problem in check_all(Path(folder)):
                assert f"(from {path})" in problem
                assert "\n" not in problem

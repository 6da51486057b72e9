"""ChannelSettings names a setting the way a person would set it, and refuses a value
of a kind no channel takes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import ClassVar, Self

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaperone import (
    Alert,
    Channel,
    ChannelSettings,
    ConfigError,
    ManualClock,
    Outcome,
    SendContext,
)
from chaperone.channels import channel_settings
from chaperone.config import Settings
from chaperone.store import MemoryStore


class Mailish(Channel):
    name = "mailish"
    env_aliases: ClassVar[Mapping[str, str]] = {"MAILISH_HOST": "host"}

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        settings.require("host")
        return cls()

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        return Outcome.delivered()


def settings_for(environ: dict[str, str]) -> ChannelSettings:
    clock = ManualClock()
    return channel_settings(
        Mailish, app=Settings(environ=environ), store=MemoryStore(clock), clock=clock
    )


class TestSettingNames:
    def test_unset_key_is_named_by_its_alias(self) -> None:
        """A missing key with a customary variable is named by that variable."""
        problem = settings_for({}).problem("host", "is required").problems[0]
        assert problem.key == "MAILISH_HOST"
        assert problem.source == "not set"

    def test_unset_key_without_alias_uses_the_generic_name(self) -> None:
        """A missing key without one is named CHAPERONE_<NAME>_<KEY>."""
        assert settings_for({}).setting_name("port") == "CHAPERONE_MAILISH_PORT"

    def test_set_key_is_named_where_it_came_from(self) -> None:
        """A key that was set is named by the variable that set it."""
        settings = settings_for({"CHAPERONE_MAILISH_HOST": "smtp.example.com"})
        assert settings.setting_name("host") == "CHAPERONE_MAILISH_HOST"


def settings_with(values: dict[str, object]) -> ChannelSettings:
    """The settings of ``mailish`` with ``values`` as its TOML table."""
    clock = ManualClock()
    app = Settings(channel_sections={"mailish": values}, config_file="/srv/chaperone.toml")
    return channel_settings(Mailish, app=app, store=MemoryStore(clock), clock=clock)


class TestValueKinds:
    @pytest.mark.parametrize(
        ("value", "kind"),
        [
            ({"a": 1}, "a table"),
            (date(1979, 5, 27), "a date"),
            (time(7, 32), "a time"),
            (datetime(1979, 5, 27, 7, 32, tzinfo=UTC), "a date-time"),
            ([["nested"]], "an array"),
        ],
    )
    def test_no_channel_value_is_a_table_or_date(self, value: object, kind: str) -> None:
        """Reading a table, date, time or nested array is a ConfigError naming the key
        and the file: no channel takes one.
        """
        with pytest.raises(ConfigError) as caught:
            settings_with({"host": value}).get("host")
        (problem,) = caught.value.problems
        assert (problem.key, problem.source) == ("channels.mailish.host", "/srv/chaperone.toml")
        assert problem.message.endswith(f"got {kind}")

    @pytest.mark.parametrize(
        ("value", "kind"), [(["a", "b"], "an array"), (True, "true"), ({"a": 1}, "a table")]
    )
    def test_text_refuses_other_kinds(self, value: object, kind: str) -> None:
        """``text`` and ``require_text`` take text or a number, and name the key for an
        array, true/false or a table.
        """
        settings = settings_with({"host": value})
        for read in (settings.text, settings.require_text):
            with pytest.raises(ConfigError, match=f"channels.mailish.host .*got {kind}"):
                read("host")

    def test_text_reads_numbers_and_defaults(self) -> None:
        """A number reads as its text; an unset key is the default, or required."""
        settings = settings_with({"host": " smtp ", "port": 587})
        assert settings.text("host") == "smtp"
        assert settings.text("port") == "587"
        assert settings.text("user") is None
        assert settings.text("user", "anonymous") == "anonymous"
        with pytest.raises(ConfigError, match=r"CHAPERONE_MAILISH_USER .*is required"):
            settings.require_text("user")

    @given(value=st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none()))
    def test_plain_values_and_arrays_pass_get(self, value: object) -> None:
        """Text, numbers, true/false and arrays of those come back from ``get``."""
        settings = settings_with({"one": value, "many": [value]})
        if value is not None:
            assert settings.get("many") == [value]
        settings.get("one")

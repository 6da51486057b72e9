"""ChannelSettings names a setting the way a person would set it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Self

from chaperone import Alert, Channel, ChannelSettings, ManualClock, Outcome, SendContext
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

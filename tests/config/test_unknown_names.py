"""Names nothing reads are errors, with "did you mean …" where a known name is close:
``CHAPERONE_*`` variables, keys of channel tables and of routes' channel settings,
channel tables, and names in ``CHAPERONE_DISABLE_PLUGINS``.

The channels here are the built-in ``log`` and ``database`` and channels registered in
code, so the outcome does not depend on which channel plugins are installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaperone import (
    Alert,
    Channel,
    ChannelSettings,
    Chaperone,
    ConfigError,
    ConfigProblem,
    ManualClock,
    Outcome,
    PluginHost,
    SendContext,
    Settings,
    hookimpl,
)
from chaperone._policy import CORE_KEYS
from chaperone.config import SETTING_SPECS, load_settings
from chaperone.config._unknown import OTHER_VARIABLES, channel_keys, unknown_names
from chaperone.store import MemoryStore


class Pager(Channel):
    """A channel declaring its keys."""

    name = "pager"
    setting_keys = frozenset({"token", "region"})

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        return cls()

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        return Outcome.delivered()


class OldPager(Channel):
    """A channel written before channels declared their keys."""

    name = "old-pager"

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        return cls()

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        return Outcome.delivered()


class TaggedPager(Pager):
    """A subclass reading one more key, that does not declare its own keys."""

    name = "tagged-pager"


class Channels:
    """A plugin registering the given channel classes."""

    def __init__(self, *classes: type[Channel]) -> None:
        self.classes = classes

    @hookimpl
    def chaperone_register_channels(self, register: Any) -> None:
        for channel_class in self.classes:
            register(channel_class)


def host(*classes: type[Channel], disabled: tuple[str, ...] = ()) -> PluginHost:
    """Built-ins and ``classes``, no entry points (installed plugins do not matter)."""
    plugin = [("pagers", Channels(*classes))] if classes else []
    return PluginHost(entry_points=False, extra=plugin, disabled=disabled)


def problems(
    environ: dict[str, str] | None = None,
    toml: str = "",
    *,
    cwd: Path,
    classes: tuple[type[Channel], ...] = (Pager, OldPager, TaggedPager),
) -> dict[str, ConfigProblem]:
    """The unknown names of a configuration, by key."""
    if toml:
        (cwd / "chaperone.toml").write_text(toml, encoding="utf-8")
    settings = load_settings(environ or {}, cwd)
    found = unknown_names(settings, host(*classes, disabled=settings.disabled_plugins))
    by_key = {problem.key: problem for problem in found}
    assert len(by_key) == len(found), found
    return by_key


class TestVariables:
    def test_every_setting_and_other_variable_is_known(self, tmp_path: Path) -> None:
        """Every setting's variable, the per-type prefixes and the variables read besides
        settings (the config file, the supervision id, the tests' and benchmarks') pass.
        """
        environ = {spec.env: "x" for spec in SETTING_SPECS} | dict.fromkeys(OTHER_VARIABLES, "x")
        environ |= {
            "CHAPERONE_ALERT_RATE_LIMIT_MY_TYPE": "5m",
            "CHAPERONE_ALERT_ESCALATION_JOB_STUCK": "true",
            "CHAPERONE_ALERT_RUNBOOK_DEPLOY": "https://runbooks.example.com/deploy",
        }
        settings = Settings(environ=environ)
        assert unknown_names(settings, host()) == []

    def test_a_typo_suggests_the_setting(self, tmp_path: Path) -> None:
        """``CHAPERONE_ALERT_CHANELS`` is an error suggesting CHAPERONE_ALERT_CHANNELS,
        naming where it was set.
        """
        (tmp_path / ".env").write_text("CHAPERONE_ALERT_CHANELS=log\n", encoding="utf-8")
        found = problems(cwd=tmp_path)
        problem = found["CHAPERONE_ALERT_CHANELS"]
        assert problem.source == f".env file {tmp_path / '.env'}"
        assert problem.message == "no setting is named so; did you mean CHAPERONE_ALERT_CHANNELS?"

    def test_a_channel_key_typo_suggests_the_channel_variable(self, tmp_path: Path) -> None:
        """A misspelt key of an installed channel names the channel and its variable."""
        found = problems({"CHAPERONE_PAGER_TOKN": "t"}, cwd=tmp_path)
        assert found["CHAPERONE_PAGER_TOKN"].message == (
            "channel 'pager' has no setting 'tokn'; did you mean CHAPERONE_PAGER_TOKEN?"
        )

    def test_a_far_key_lists_the_channel_settings(self, tmp_path: Path) -> None:
        """With nothing close, the message lists what the channel reads, delivery
        settings included.
        """
        found = problems({"CHAPERONE_PAGER_COLOUR": "red"}, cwd=tmp_path)
        message = found["CHAPERONE_PAGER_COLOUR"].message
        assert message.startswith("channel 'pager' has no setting 'colour'; its settings are ")
        for key in ("region", "token", *CORE_KEYS):
            assert key in message

    def test_a_channel_takes_the_delivery_settings(self, tmp_path: Path) -> None:
        """``CHAPERONE_<NAME>_TIMEOUT`` and the other delivery settings are every
        channel's.
        """
        environ = {f"CHAPERONE_PAGER_{key.upper()}": "1" for key in CORE_KEYS}
        assert problems(environ, cwd=tmp_path) == {}

    def test_a_channel_that_declares_nothing_is_not_checked(self, tmp_path: Path) -> None:
        """Any ``CHAPERONE_OLD_PAGER_*`` variable passes: the class declares no keys."""
        assert problems({"CHAPERONE_OLD_PAGER_ANYTHING": "x"}, cwd=tmp_path) == {}

    def test_the_longest_channel_prefix_is_asked_too(self, tmp_path: Path) -> None:
        """``CHAPERONE_TAGGED_PAGER_X`` belongs to ``tagged-pager`` (undeclared), not to
        a ``tagged`` channel; with ``pager`` and ``pager-eu`` both installed,
        ``CHAPERONE_PAGER_EU_TOKEN`` is ``pager-eu``'s.
        """

        class EuPager(Pager):
            name = "pager-eu"
            setting_keys = Pager.setting_keys

        environ = {"CHAPERONE_TAGGED_PAGER_X": "1", "CHAPERONE_PAGER_EU_TOKEN": "t"}
        found = problems(environ, cwd=tmp_path, classes=(Pager, TaggedPager, EuPager))
        assert found == {}

    def test_a_variable_of_a_channel_not_installed_names_the_plugin(self, tmp_path: Path) -> None:
        """A variable whose channel no installed plugin provides says what to install."""
        found = problems({"CHAPERONE_TEAMS_WEBHOOK_URL": "https://x"}, cwd=tmp_path)
        assert found["CHAPERONE_TEAMS_WEBHOOK_URL"].message == (
            "no setting or installed channel reads it; if it is a setting of channel 'teams', "
            "install that channel: pip install chaperone-teams"
        )

    def test_a_configured_channel_not_installed_is_reported_once(self, tmp_path: Path) -> None:
        """The variables of a channel named in the config but not installed are left to
        the channel's own error (which names the package to install).
        """
        environ = {"CHAPERONE_ALERT_CHANNELS": "teams", "CHAPERONE_TEAMS_WEBHOOK_URL": "x"}
        assert problems(environ, cwd=tmp_path) == {}

    def test_a_core_word_is_not_taken_for_a_channel(self, tmp_path: Path) -> None:
        """``CHAPERONE_DELIVERY_COLOUR`` is no setting; no 'delivery' plugin is offered."""
        found = problems({"CHAPERONE_DELIVERY_COLOUR": "red"}, cwd=tmp_path)
        assert found["CHAPERONE_DELIVERY_COLOUR"].message == "no setting is named so"

    def test_empty_and_other_variables_are_ignored(self, tmp_path: Path) -> None:
        """An empty variable counts as not set, and variables without the prefix (the
        mail channel's MAIL_HOST among them) are not Chaperone's to judge.
        """
        environ = {"CHAPERONE_NOTHING": "", "MAIL_HOST": "x", "chaperone_store": "x"}
        assert problems(environ, cwd=tmp_path) == {}

    def test_no_value_is_quoted(self, tmp_path: Path) -> None:
        """The error names the variable, never its value (it may be a secret)."""
        value = "https://hooks.example.com/T000/B000/s3cr3t"
        found = problems({"CHAPERONE_PAGER_WEBHOOK": value}, cwd=tmp_path)
        assert value not in str(found["CHAPERONE_PAGER_WEBHOOK"])

    @given(suffix=st.from_regex(r"[A-Z][A-Z0-9_]{0,30}", fullmatch=True))
    def test_any_variable_is_known_or_one_line_problem(self, suffix: str) -> None:
        """Any ``CHAPERONE_*`` variable is accepted or gives one one-line problem named
        after it.
        """
        variable = f"CHAPERONE_{suffix}"
        found = unknown_names(Settings(environ={variable: "1"}), host(Pager, OldPager, TaggedPager))
        assert [problem.key for problem in found] in ([], [variable])
        assert all("\n" not in str(problem) for problem in found)


class TestChannelTables:
    def test_an_unknown_key_suggests_the_close_one(self, tmp_path: Path) -> None:
        """``[channels.log] loger`` suggests logger, naming the key and the file."""
        found = problems(toml='[channels.log]\nloger = "x"\n', cwd=tmp_path)
        problem = found["channels.log.loger"]
        assert problem.source == str(tmp_path / "chaperone.toml")
        assert problem.message == "channel 'log' has no setting 'loger'; did you mean logger?"

    def test_the_database_channel_takes_only_delivery_settings(self, tmp_path: Path) -> None:
        """``database`` declares no keys of its own: only the delivery settings pass."""
        found = problems(toml="[channels.database]\nmax_attempts = 2\npath = 1\n", cwd=tmp_path)
        assert list(found) == ["channels.database.path"]

    def test_a_subclass_must_declare_its_own_keys(self, tmp_path: Path) -> None:
        """A subclass of a declaring channel that declares nothing itself is not checked
        (it may read keys its parent does not know).
        """
        assert Channel.setting_keys is None
        assert channel_keys(OldPager) is None
        assert channel_keys(TaggedPager) is None
        assert channel_keys(Pager) == {"token", "region"} | CORE_KEYS
        assert problems(toml="[channels.tagged-pager]\nenvironment = 1\n", cwd=tmp_path) == {}

    def test_an_unknown_table_suggests_the_channel(self, tmp_path: Path) -> None:
        """``[channels.pagr]`` suggests pager, and still says what to install otherwise."""
        found = problems(toml='[channels.pagr]\ntoken = "x"\n', cwd=tmp_path)
        assert found["channels.pagr"].message == (
            "no installed plugin provides channel 'pagr'; did you mean pager? "
            "If not, install it with: pip install chaperone-pagr"
        )

    def test_a_table_of_a_channel_not_installed_names_the_plugin(self, tmp_path: Path) -> None:
        """``[channels.teams]`` without the plugin says to install chaperone-teams."""
        found = problems(toml='[channels.teams]\nwebhook_url = "x"\n', cwd=tmp_path)
        message = found["channels.teams"].message
        assert message.startswith(
            "no installed plugin provides channel 'teams'; install it with: "
            "pip install chaperone-teams (installed channels: "
        )
        assert "log" in message

    def test_route_settings_are_checked_against_the_channel(self, tmp_path: Path) -> None:
        """A route's settings for a channel hold only that channel's keys."""
        toml = (
            '[[alerting.routes]]\nchannels = ["log"]\n'
            '[[alerting.routes]]\nchannels = ["pager", "log"]\n'
            'pager = { tokn = "x", fallback = "log" }\nlog = { logger = "x" }\n'
        )
        found = problems(toml=toml, cwd=tmp_path)
        assert list(found) == ["alerting.routes[1].pager.tokn"]
        assert found["alerting.routes[1].pager.tokn"].message.endswith("did you mean token?")


class TestDisabledPlugins:
    def test_a_typo_suggests_the_plugin(self, tmp_path: Path) -> None:
        """``CHAPERONE_DISABLE_PLUGINS=pagers,chaperone.builtin.ratelimt_filter`` suggests
        the rate limit's name, naming the variable.
        """
        environ = {"CHAPERONE_DISABLE_PLUGINS": "pagers,chaperone.builtin.ratelimt_filter"}
        found = problems(environ, cwd=tmp_path)
        problem = found["CHAPERONE_DISABLE_PLUGINS"]
        assert problem.source == "environment"
        assert problem.message == (
            "no installed plugin is named 'chaperone.builtin.ratelimt_filter'; "
            "did you mean chaperone.builtin.ratelimit_filter?"
        )

    @pytest.mark.parametrize(
        ("short", "meant"),
        [
            ("ratelimit", "'chaperone.builtin.ratelimit_filter'"),
            ("jobs", "'chaperone.builtin.job_detector'"),
            ("log", "'chaperone.builtin.log_channel'"),
            ("alerts", "'chaperone.builtin.alert_builder' or 'chaperone.builtin.alert_grouping'"),
        ],
    )
    def test_a_short_name_of_old_names_the_builtin(
        self, tmp_path: Path, short: str, meant: str
    ) -> None:
        """A built-in's short name of old is no plugin's: the problem says built-ins go by
        their module's name and which it meant.
        """
        found = problems({"CHAPERONE_DISABLE_PLUGINS": short}, cwd=tmp_path)
        assert found["CHAPERONE_DISABLE_PLUGINS"].message == (
            f"no installed plugin is named {short!r}; built-in plugins go by their "
            f"module's name: did you mean {meant}?"
        )

    @pytest.mark.parametrize(
        "name",
        [
            "chaperone.builtin.alert_builder",
            "chaperone.builtin.alert_grouping",
            "chaperone.builtin.queued_events",
            "chaperone.builtin.routing",
        ],
    )
    def test_a_builtin_that_cannot_be_disabled_is_refused(self, tmp_path: Path, name: str) -> None:
        """Disabling a built-in that declares REQUIRED is a problem naming it and why."""
        found = problems({"CHAPERONE_DISABLE_PLUGINS": name}, cwd=tmp_path)
        message = found["CHAPERONE_DISABLE_PLUGINS"].message
        assert message.startswith(f"the built-in plugin {name!r} cannot be disabled: ")
        assert message.removeprefix(f"the built-in plugin {name!r} cannot be disabled: ")

    def test_the_table_of_a_disabled_builtin_channel_may_stay(self, tmp_path: Path) -> None:
        """With the log channel's plugin disabled, ``[channels.log]`` is no error."""
        environ = {"CHAPERONE_DISABLE_PLUGINS": "chaperone.builtin.log_channel"}
        assert problems(environ, '[channels.log]\nlogger = "x"\n', cwd=tmp_path) == {}

    def test_from_toml_it_names_the_toml_key(self, tmp_path: Path) -> None:
        """Set in the file, the problem names ``plugins.disable`` and lists the plugins
        when none is close.
        """
        found = problems(toml='[plugins]\ndisable = ["zzz"]\n', cwd=tmp_path)
        message = found["plugins.disable"].message
        assert message.startswith("no installed plugin is named 'zzz' (installed plugins: ")
        assert "grouping" in message

    def test_a_disabled_plugin_is_still_known(self, tmp_path: Path) -> None:
        """Disabling a plugin that is there is no error."""
        environ = {"CHAPERONE_DISABLE_PLUGINS": "pagers,chaperone.builtin.escalation_filter"}
        assert problems(environ, cwd=tmp_path) == {}

    def test_the_settings_of_a_disabled_channel_plugin_may_stay(self, tmp_path: Path) -> None:
        """With its plugin disabled, a channel's table and variables are no error (the
        plugin is installed; the configuration is kept for when it is enabled again).
        """

        class Pagers(Pager):
            name = "pagers"
            setting_keys = Pager.setting_keys

        environ = {"CHAPERONE_DISABLE_PLUGINS": "pagers", "CHAPERONE_PAGERS_TOKEN": "t"}
        toml = '[channels.pagers]\nregion = "eu"\n'
        assert problems(environ, toml, cwd=tmp_path, classes=(Pagers,)) == {}


class TestRuntimeCheck:
    def test_runtime_lists_them_with_the_channel_problems(self) -> None:
        """Building a Chaperone reports unknown names together with a channel's own
        problems, in one ConfigError.
        """
        settings = Settings(
            channels=("log", "needy"),
            environ={"CHAPERONE_ALERT_CHANELS": "log"},
            channel_sections={"log": {"loger": "x"}},
        )
        with pytest.raises(ConfigError) as caught:
            Chaperone(settings, store=MemoryStore(ManualClock()), plugins=host(Pager))
        keys = [problem.key for problem in caught.value.problems]
        assert "CHAPERONE_ALERT_CHANELS" in keys
        assert "channels.log.loger" in keys
        assert "CHAPERONE_ALERT_CHANNELS" in keys  # needy is not installed

    def test_declared_keys_of_every_installed_channel_are_read(self) -> None:
        """Every installed channel that declares keys is built from a table holding
        exactly those keys without an unknown-name problem (the declaration matches what
        the check accepts).
        """
        plugins = PluginHost()
        for name, channel_class in plugins.channel_classes.items():
            keys = channel_keys(channel_class)
            if keys is None:
                continue
            settings = Settings(channel_sections={name: dict.fromkeys(keys, "1")})
            assert unknown_names(settings, plugins) == [], name

"""The built-in ``log`` and ``database`` channels: the channel contract, then what each
one does that the contract does not cover.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Self

import attrs
import pytest
import structlog
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import chaperone.testing
import chaperone.testing.cli
import chaperone.testing.digests
import chaperone.testing.strategies
from chaperone import (
    Alert,
    AlertStatus,
    Channel,
    ChannelSettings,
    Chaperone,
    ConfigError,
    ManualClock,
    Outcome,
    PluginHost,
    Secret,
    SendContext,
    Settings,
    Severity,
    _sanitize,
    hookimpl,
)
from chaperone.builtin.database_channel import DatabaseChannel, read_history
from chaperone.builtin.log_channel import LogChannel
from chaperone.channels import channel_settings
from chaperone.hookspecs import RegisterChannel
from chaperone.store import MemoryStore, SQLiteStore, Store
from chaperone.testing import (
    ChannelContract,
    MockService,
    ServiceMode,
    assert_registered,
    capture_all_logs,
    offline_client,
)
from chaperone.testing.strategies import alerts

ALERT_LINE_PREFIXES = ("[FIRING] ", "[RESOLVED] ")


def alert_lines(entries: Sequence[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    """The captured log events that are alerts written by the log channel."""
    return [entry for entry in entries if str(entry["event"]).startswith(ALERT_LINE_PREFIXES)]


def send(channel: Channel, alerts: Sequence[Alert], clock: ManualClock) -> list[Outcome]:
    """Send ``alerts`` through ``channel`` one after the other, as the core would."""

    async def run() -> list[Outcome]:
        async with offline_client() as http:
            context = SendContext(http=http, clock=clock, timeout=10.0)
            return [await channel.send(alert, context) for alert in alerts]

    return asyncio.run(run())


def sample_alert(number: int, clock: ManualClock, **changes: Any) -> Alert:
    """A firing alert numbered ``number`` (its key is ``job-<number>``)."""
    values: dict[str, Any] = {
        "type": "job_stuck",
        "key": f"job-{number}",
        "headline": "Job Stuck",
        "title": f"Job Stuck: App\\Jobs\\Import{number}",
        "summary": "A supervised job has been detected as stuck and may require intervention.",
        "fields": {"Supervision ID": f"job-{number}", "Stuck Duration": "30 minutes"},
        "occurred_at": clock.now(),
    }
    values.update(changes)
    return Alert(**values)


# -------------------------------------------------------------------------------------
# The contract
# -------------------------------------------------------------------------------------


class LogLines:
    """The log channel's "service": the log itself, read from the contract's capture."""


class TestLogChannel(ChannelContract):
    """The channel contract, run against the ``log`` channel."""

    channel_class = LogChannel
    plugin_name = "chaperone.builtin.log_channel"
    supports_failures = False

    def valid_settings(self) -> dict[str, Any]:
        return {"logger": "chaperone.alerts"}

    def make_service(self, mode: ServiceMode) -> LogLines:
        return LogLines()

    def received(self, service: Any) -> int:
        return len(alert_lines(self.captured_logs))

    def received_texts(self, service: Any) -> list[str]:
        return [str(entry) for entry in alert_lines(self.captured_logs)]

    def hypothesis_settings(self) -> settings:
        return settings(super().hypothesis_settings(), max_examples=50)


class TestDatabaseChannel(ChannelContract):
    """The channel contract, run against the ``database`` channel on a memory store."""

    channel_class = DatabaseChannel
    plugin_name = "chaperone.builtin.database_channel"
    supports_failures = False

    def make_service(self, mode: ServiceMode) -> Store:
        return MemoryStore(ManualClock())

    def make_store(self, service: Any) -> Store:
        return service if isinstance(service, MemoryStore) else MemoryStore(ManualClock())

    def received(self, service: Any) -> int:
        return len(read_history(service, 1_000_000))

    def received_texts(self, service: Any) -> list[str]:
        return [json.dumps(row, ensure_ascii=False) for row in read_history(service, 1_000_000)]

    async def close_service(self, service: Any) -> None:
        service.close()

    def hypothesis_settings(self) -> settings:
        return settings(super().hypothesis_settings(), max_examples=50)


# -------------------------------------------------------------------------------------
# The log channel
# -------------------------------------------------------------------------------------


def build_log_channel(**values: Any) -> LogChannel:
    """The log channel built from ``[channels.log]`` values, as at start-up."""
    clock = ManualClock()
    app = Settings(channel_sections={"log": values})
    return LogChannel.from_settings(
        channel_settings(LogChannel, app=app, store=MemoryStore(clock), clock=clock)
    )


EXPECTED_LEVEL = {
    Severity.CRITICAL: "critical",
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
}


class TestLogLines:
    @given(alert=alerts())
    @settings(max_examples=50)
    def test_one_line_per_alert_at_its_severity(self, alert: Alert) -> None:
        """Each alert is one log line at its severity's level (info once resolved)."""
        with capture_all_logs() as entries:
            outcome = send(build_log_channel(), [alert], ManualClock())[0]
        assert outcome.ok
        lines = alert_lines(entries)
        assert len(lines) == 1
        expected = (
            "info" if alert.status is AlertStatus.RESOLVED else EXPECTED_LEVEL[alert.severity]
        )
        assert lines[0]["log_level"] == expected

    @given(alert=alerts(status=AlertStatus.FIRING))
    @settings(max_examples=30)
    def test_line_names_status_title_and_identity(self, alert: Alert) -> None:
        """The line reads ``[FIRING] <title>`` and carries type, key, severity and summary
        (its lines joined by `` | ``).
        """
        with capture_all_logs() as entries:
            send(build_log_channel(), [alert], ManualClock())
        (line,) = alert_lines(entries)
        assert line["event"] == f"[FIRING] {alert.title}"
        assert line["type"] == alert.type
        assert line["key"] == alert.key
        assert line["severity"] == alert.severity.value
        assert line["priority"] == alert.priority.value
        if "\n" in alert.summary:  # folded onto the one line
            assert line["summary"] == " | ".join(
                part.strip() for part in alert.summary.split("\n") if part.strip()
            )
        else:
            assert line["summary"] == alert.summary

    def test_details_list_the_fields_in_order(self) -> None:
        """The ``details`` value lists every field as ``name: value``, in order."""
        clock = ManualClock()
        alert = sample_alert(1, clock, fields=[("B", "2"), ("A", "1"), ("C", "3")])
        with capture_all_logs() as entries:
            send(build_log_channel(), [alert], clock)
        (line,) = alert_lines(entries)
        assert line["details"] == "B: 2; A: 1; C: 3"

    def test_resolved_alert_is_logged_as_resolved_at_info(self) -> None:
        """A resolved critical alert is an info line starting ``[RESOLVED]``."""
        clock = ManualClock()
        alert = sample_alert(1, clock, status="resolved", severity="critical")
        with capture_all_logs() as entries:
            send(build_log_channel(), [alert], clock)
        (line,) = alert_lines(entries)
        assert line["event"].startswith("[RESOLVED] Job Stuck")
        assert line["log_level"] == "info"

    def test_lines_through_the_runtime(self) -> None:
        """An alert sent through a runtime configured for ``log`` is logged once."""
        clock = ManualClock()
        runtime = Chaperone(
            Settings(channels=("log",)),
            clock=clock,
            store=MemoryStore(clock),
            plugins=PluginHost(entry_points=False),
        )
        with runtime, capture_all_logs() as entries:
            report = runtime.send(sample_alert(7, clock, severity="warning"))
        assert report.delivered
        (line,) = alert_lines(entries)
        assert line["key"] == "job-7"
        assert line["log_level"] == "warning"


# -------------------------------------------------------------------------------------
# The database channel
# -------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of each backend, on its own manual clock."""
    clock = ManualClock()
    if request.param == "memory":
        opened: Store = MemoryStore(clock)
    else:
        path = tmp_path / "history.sqlite3"
        opened = SQLiteStore(path, clock, f"sqlite:///{path}")
    yield opened
    opened.close()


def build_database_channel(store: Store, clock: ManualClock, history_limit: int) -> Channel:
    """The database channel on ``store``, keeping ``history_limit`` records."""
    app = Settings(history_limit=history_limit)
    return DatabaseChannel.from_settings(
        channel_settings(DatabaseChannel, app=app, store=store, clock=clock)
    )


class FailingChannel(Channel):
    """A channel whose service always refuses: to see failures land in the history."""

    name = "failing"

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        return cls()

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        return Outcome.permanent("HTTP 400: invalid_payload", status_code=400)


class FailingPlugin:
    """Registers :class:`FailingChannel`."""

    @hookimpl
    def chaperone_register_channels(self, register: RegisterChannel) -> None:
        register(FailingChannel)


class TestHistory:
    def test_records_read_back_newest_first(self, store: Store) -> None:
        """Each alert is one record; read_history returns them newest first."""
        clock = ManualClock()
        channel = build_database_channel(store, clock, history_limit=100)
        sent = []
        for number in range(4):
            sent.append(sample_alert(number, clock))
            clock.advance(60)
        outcomes = send(channel, sent, clock)
        assert all(outcome.ok for outcome in outcomes)
        history = read_history(store, 100)
        assert [record["key"] for record in history] == ["job-3", "job-2", "job-1", "job-0"]

    def test_record_fields(self, store: Store) -> None:
        """A record holds the alert's type, key, status and time, and the channel."""
        clock = ManualClock()
        alert = sample_alert(1, clock, status="resolved", severity="warning")
        clock.advance(5)
        send(build_database_channel(store, clock, 10), [alert], clock)
        (record,) = read_history(store, 10)
        assert record["type"] == "job_stuck"
        assert record["key"] == "job-1"
        assert record["channel"] == "database"
        assert record["status"] == "delivered"
        assert record["alert_status"] == "resolved"
        assert record["severity"] == "warning"
        assert record["title"] == alert.title
        assert record["occurred_at"] == alert.occurred_at.isoformat()
        assert record["recorded_at"] == clock.now().isoformat()

    def test_trimmed_to_history_limit(self, store: Store) -> None:
        """Only the newest ``history_limit`` records are kept."""
        clock = ManualClock()
        channel = build_database_channel(store, clock, history_limit=3)
        send(channel, [sample_alert(number, clock) for number in range(7)], clock)
        assert [record["key"] for record in read_history(store, 100)] == [
            "job-6",
            "job-5",
            "job-4",
        ]

    def test_read_history_limit_caps_the_answer(self, store: Store) -> None:
        """read_history returns at most ``limit`` records, the newest."""
        clock = ManualClock()
        send(
            build_database_channel(store, clock, 100),
            [sample_alert(n, clock) for n in range(5)],
            clock,
        )
        assert [record["key"] for record in read_history(store, 2)] == ["job-4", "job-3"]
        assert read_history(store, 0) == []

    @given(
        keys=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=25),
        limit=st.integers(min_value=1, max_value=10),
    )
    def test_history_is_the_newest_sent_newest_first(self, keys: list[str], limit: int) -> None:
        """For any alerts and limit, the history is the last ``limit`` sent, reversed."""
        clock = ManualClock()
        store = MemoryStore(clock)
        channel = build_database_channel(store, clock, history_limit=limit)
        send(channel, [sample_alert(0, clock, key=key) for key in keys], clock)
        history = read_history(store, 1000)
        expected = [_sanitize.identity(key) for key in reversed(keys)]
        assert [record["key"] for record in history] == expected[:limit]

    def test_other_channels_deliveries_are_recorded(self, tmp_path: Path) -> None:
        """With ``database`` configured, other channels' deliveries and failures land in
        the history too, each under its own channel name.
        """
        clock = ManualClock()
        path = tmp_path / "c.sqlite3"
        runtime = Chaperone(
            Settings(
                channels=("log", "database", "failing"),
                delivery=attrs.evolve(Settings().delivery, max_attempts=1),
            ),
            clock=clock,
            store=SQLiteStore(path, clock, f"sqlite:///{path}"),
            plugins=PluginHost(entry_points=False, extra=[("failing", FailingPlugin())]),
        )
        with runtime:
            report = runtime.send(sample_alert(1, clock))
            # The failing channel raises Chaperone's own degraded alert: recorded too.
            runtime.self_watch.wait(5)
            history = [
                record
                for record in read_history(runtime.store, 10)
                if record["type"] != "chaperone_degraded"
            ]
        assert not report.delivered
        by_channel = {record["channel"]: record for record in history}
        assert set(by_channel) == {"log", "database", "failing"}
        assert by_channel["log"]["status"] == "delivered"
        assert by_channel["database"]["status"] == "delivered"
        assert by_channel["failing"]["status"] == "failed"
        assert by_channel["failing"]["detail"] == "HTTP 400: invalid_payload"
        assert [record["key"] for record in history] == ["job-1"] * 3

    def test_history_survives_reopening_the_file(self, tmp_path: Path) -> None:
        """Records written to a SQLite store are read back after it is reopened."""
        clock = ManualClock()
        path = tmp_path / "c.sqlite3"
        first = SQLiteStore(path, clock, f"sqlite:///{path}")
        send(build_database_channel(first, clock, 10), [sample_alert(1, clock)], clock)
        first.close()
        second = SQLiteStore(path, clock, f"sqlite:///{path}")
        try:
            assert [record["key"] for record in read_history(second, 10)] == ["job-1"]
        finally:
            second.close()


# -------------------------------------------------------------------------------------
# The contract suite itself, on a reference HTTP channel and on broken variants of it
# -------------------------------------------------------------------------------------

HOOK_URL = "https://hooks.example.test/services/T0ken/S3cr3tPath"


class HookChannel(Channel):
    """A minimal HTTP channel written as a plugin author would: the suite's reference."""

    name = "hook"
    secret_keys = frozenset({"url"})

    def __init__(self, url: Secret) -> None:
        self._url = url

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        url = str(settings.require("url"))
        if not url.startswith(("http://", "https://")):
            raise settings.problem("url", "must be an absolute http:// or https:// URL")
        return cls(Secret(url))

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        response = await context.http.post(
            self._url.reveal(),
            json={
                "title": alert.title[:3000],
                "status": alert.status.value,
                "fields": [[name[:300], value[:3000]] for name, value in alert.fields],
            },
            timeout=context.timeout,
        )
        status = response.status_code
        if status < 300:
            return Outcome.delivered(f"HTTP {status}", status_code=status)
        if status == 429 or status >= 500:
            retry_after = response.headers.get("Retry-After")
            return Outcome.transient(
                f"HTTP {status}",
                retry_after=float(retry_after) if retry_after else None,
                status_code=status,
            )
        return Outcome.permanent(f"HTTP {status}: {response.text[:100]}", status_code=status)


class HookContract(ChannelContract):
    """The contract as a plugin's tests would fill it in, for :class:`HookChannel`."""

    channel_class: ClassVar[type[Channel]] = HookChannel

    def valid_settings(self) -> dict[str, Any]:
        return {"url": HOOK_URL}

    def invalid_settings(self) -> list[tuple[dict[str, Any], str]]:
        return [({}, "url"), ({"url": "ftp://files.example.test/s3cr3t"}, "url")]

    def secrets(self) -> list[str]:
        return [HOOK_URL]

    def hypothesis_settings(self) -> settings:
        return settings(super().hypothesis_settings(), max_examples=20)


class TestHookChannel(HookContract):
    """The whole contract passes for a well-behaved HTTP channel."""

    def test_mock_service_records_the_posts(self) -> None:
        """MockService records each request, body included, and answers by its mode."""
        run = self.send_alerts([sample_alert(1, ManualClock())])
        service = run.service
        assert isinstance(service, MockService)
        (request,) = service.requests
        assert str(request.url) == HOOK_URL
        assert json.loads(request.content)["status"] == "firing"
        assert run.outcomes[0].status_code == 200

    def test_transient_double_asks_to_retry_later(self) -> None:
        """A transiently failing MockService says 503 with Retry-After."""
        run = self.send_alerts([sample_alert(1, ManualClock())], ServiceMode.TRANSIENT)
        assert run.outcomes[0].status_code == 503
        assert run.outcomes[0].retry_after == 1.0


class LeakyDetail(HookChannel):
    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        outcome = await super().send(alert, context)
        return attrs.evolve(outcome, detail=f"{outcome.detail} from {self._url.reveal()}")


class LeakyRepr(HookChannel):
    def __repr__(self) -> str:
        return f"<LeakyRepr {self._url.reveal()}>"


class LeakyLog(HookChannel):
    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        structlog.get_logger("hook").debug("posting", url=self._url.reveal())
        return await super().send(alert, context)


class LeakyConfigError(HookChannel):
    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        url = str(settings.require("url"))
        if not url.startswith(("http://", "https://")):
            raise settings.problem("url", f"{url} is not an http URL")
        return cls(Secret(url))


class UnnamedConfigError(HookChannel):
    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        url = str(settings.get("url", ""))
        if not url.startswith(("http://", "https://")):
            raise ConfigError.single("the channel", "somewhere", "is misconfigured")
        return cls(Secret(url))


class ChokesOnLongTitles(HookChannel):
    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        if len(alert.title) > 500:
            return Outcome.permanent("HTTP 400: title too long", status_code=400)
        return await super().send(alert, context)


class ChokesOnMarkup(HookChannel):
    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        if "[" in alert.title or not alert.title.isascii():
            raise ValueError("unbalanced markup in the title")
        return await super().send(alert, context)


class ColoursTheTitle(HookChannel):
    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        response = await context.http.post(
            self._url.reveal(),
            json={"title": f"\x1b[31m{alert.title[:300]}\x1b[0m"},
            timeout=context.timeout,
        )
        return Outcome.delivered(f"HTTP {response.status_code}")


class NeverSends(HookChannel):
    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        return Outcome.delivered("pretended")


class IgnoresStatus(HookChannel):
    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        await super().send(alert, context)
        return Outcome.delivered("HTTP 200")


class ShowsTenFields(HookChannel):
    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        return await super().send(attrs.evolve(alert, fields=alert.fields[:10]), context)


class AlwaysPermanent(HookChannel):
    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        outcome = await super().send(alert, context)
        return outcome if outcome.ok else Outcome.permanent(outcome.detail)


def contract_for(channel: type[HookChannel], *, secret_key: bool = True) -> HookContract:
    """The reference contract, run against ``channel`` instead of HookChannel."""

    class Contract(HookContract):
        channel_class = channel

        def hypothesis_settings(self) -> settings:
            # The first failing example is proof enough: no shrinking, nothing saved. The
            # suite's own worst cases (the oversized alert, the hostile one) always run
            # first: generation alone missed a long title 1 time in 40.
            return settings(
                super().hypothesis_settings(),
                phases=[Phase.explicit, Phase.generate],
                database=None,
            )

    if not secret_key:
        Contract.channel_class = type(channel.__name__, (channel,), {"secret_keys": frozenset()})
    return Contract()


class TestContractCatchesBrokenChannels:
    @pytest.mark.parametrize("channel", [LeakyDetail, LeakyRepr, LeakyLog])
    def test_a_leaked_secret_fails(self, channel: type[HookChannel]) -> None:
        """A secret in an outcome, the repr or a log event fails the secrets test."""
        with pytest.raises(AssertionError, match="secret"):
            contract_for(channel).test_no_secret_in_repr_outcomes_or_logs()

    def test_a_secret_in_a_config_error_fails(self) -> None:
        """A ConfigError quoting the bad (secret) value fails the settings test."""
        with pytest.raises(AssertionError, match="shows a secret"):
            contract_for(LeakyConfigError).test_invalid_settings_raise_config_error_naming_the_key()

    def test_a_config_error_not_naming_the_key_fails(self) -> None:
        """A ConfigError that does not name the offending key fails the settings test."""
        with pytest.raises(AssertionError, match="does not name url"):
            contract_for(
                UnnamedConfigError
            ).test_invalid_settings_raise_config_error_naming_the_key()

    def test_an_undeclared_secret_key_fails(self) -> None:
        """A secret under a key missing from ``secret_keys`` fails."""
        with pytest.raises(AssertionError, match="secret_keys"):
            contract_for(HookChannel, secret_key=False).test_secrets_are_in_the_valid_settings()

    # Unshrunk, the failing alert is long: hypothesis warns that printing it is costly.
    @pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
    def test_rejecting_long_alerts_fails(self) -> None:
        """A channel that cannot deliver an oversized alert fails the any-alert test."""
        with pytest.raises(AssertionError, match="healthy service: permanent"):
            contract_for(ChokesOnLongTitles).test_any_alert_is_delivered_to_a_healthy_service()

    @pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
    def test_choking_on_hostile_text_fails(self) -> None:
        """A channel that raises on markup (or on any letter that is not ASCII) in a title
        fails the hostile-alert test."""
        with pytest.raises(ValueError, match="unbalanced markup"):
            contract_for(ChokesOnMarkup).test_hostile_alert_is_delivered_to_a_healthy_service()

    @pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
    def test_sending_escape_sequences_fails(self) -> None:
        """A channel that puts terminal escape sequences on the wire fails it too."""
        with pytest.raises(AssertionError, match=r"characters \['0x1b'\] reached the service"):
            contract_for(ColoursTheTitle).test_hostile_alert_is_delivered_to_a_healthy_service()

    def test_delivered_without_sending_fails(self) -> None:
        """Reporting delivered without reaching the service fails."""
        with pytest.raises(AssertionError, match="never reached it"):
            contract_for(NeverSends).test_several_alerts_through_one_channel()

    def test_ignoring_failures_fails(self) -> None:
        """Calling a 503 delivered fails the transient test."""
        with pytest.raises(AssertionError, match="gave delivered"):
            contract_for(IgnoresStatus).test_transient_failure_is_reported_transient()

    def test_treating_transient_as_permanent_fails(self) -> None:
        """Calling a 503 permanent (so never retried) fails the transient test."""
        with pytest.raises(AssertionError, match="gave permanent"):
            contract_for(AlwaysPermanent).test_transient_failure_is_reported_transient()

    def test_dropping_digest_entries_fails(self) -> None:
        """A channel that shows only some of a digest's entries fails the digest test."""
        with pytest.raises(AssertionError, match="10 of the digest's 20 entries never reached"):
            contract_for(ShowsTenFields).test_a_full_digest_reaches_the_service_whole()

    def test_an_unregistered_plugin_fails(self) -> None:
        """The registration check fails when no plugin of that name exists."""
        with pytest.raises(AssertionError, match="no plugin 'hook' found"):
            assert_registered(HookChannel, "hook", PluginHost(entry_points=False))

    def test_a_plugin_providing_another_channel_fails(self) -> None:
        """The registration check fails when the plugin provides a different channel."""
        with pytest.raises(AssertionError, match="registers"):
            assert_registered(
                HookChannel, "chaperone.builtin.log_channel", PluginHost(entry_points=False)
            )


class TestTestingPackage:
    def test_importing_chaperone_does_not_import_test_tools(self) -> None:
        """``import chaperone`` (CLI and built-in channels included) loads neither
        hypothesis, pytest nor chaperone.testing: they stay out of the runtime.
        """
        code = (
            "import sys, chaperone, chaperone.cli, chaperone.builtin.log_channel, "
            "chaperone.builtin.database_channel, chaperone.builtin.ratelimit_filter\n"
            "print(sorted(name for name in sys.modules if name.split('.')[0] in "
            "{'hypothesis', 'pytest', '_pytest'} or name.startswith('chaperone.testing')))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert result.stdout.strip() == "[]"

    @pytest.mark.parametrize(
        "module",
        [
            chaperone.testing,
            chaperone.testing.cli,
            chaperone.testing.digests,
            chaperone.testing.strategies,
        ],
    )
    def test_public_names_are_sorted_and_documented(self, module: ModuleType) -> None:
        """Each module's ``__all__`` is sorted (isort style, as ruff keeps it: constants,
        classes, the rest) and every public name has a docstring.
        """
        names = list(module.__all__)
        assert names == sorted(
            names, key=lambda name: (not name.isupper(), not name[:1].isupper(), name)
        )
        undocumented = [
            name
            for name in names
            if not isinstance(getattr(module, name), int | str)
            and not (getattr(module, name).__doc__ or "").strip()
        ]
        assert undocumented == []

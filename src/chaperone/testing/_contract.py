"""The channel contract suite: the tests every channel, built-in or third-party, passes.

A channel plugin's tests subclass :class:`ChannelContract` in a class named ``Test...``
and say how to build the channel and how to fake its service; pytest then runs every
contract test against that channel. The suite assumes nothing about the wire: HTTP
channels get :class:`MockService` ready-made, others (SMTP, a log, the store) bring
their own double through :meth:`ChannelContract.make_service`,
:meth:`~ChannelContract.make_context` and :meth:`~ChannelContract.received`.
"""

# ruff: noqa: S101 - a test suite states its checks with assert, as pytest expects

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import re
import traceback
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any, ClassVar, Protocol

import attrs
import httpx
import hypothesis
import pytest
import structlog
from hypothesis import HealthCheck, example, given

from chaperone._alerts import Alert
from chaperone._clock import ManualClock
from chaperone._digests import MAX_ENTRIES
from chaperone._exceptions import ConfigError
from chaperone._plugins import PluginHost
from chaperone._verdicts import Outcome, OutcomeKind
from chaperone.channels._base import Channel, ChannelSettings, SendContext
from chaperone.channels._configure import channel_settings
from chaperone.config import Settings
from chaperone.config._unknown import channel_keys
from chaperone.store import MemoryStore, Store
from chaperone.testing.digests import held_stuck_alerts, sample_digests
from chaperone.testing.strategies import (
    HOSTILE_LENGTH,
    HOSTILE_PIECES,
    OVERSIZED_LENGTH,
    alerts,
    hostile_alerts,
)

__all__ = [
    "ChannelContract",
    "MockService",
    "Responder",
    "SendRun",
    "ServiceMode",
    "assert_registered",
    "capture_all_logs",
    "find_secrets",
    "offline_client",
]

LogEntry = MutableMapping[str, Any]

_UNSAFE: re.Pattern[str] = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
"""What must never reach a service: control characters (tab and line ends aside), bidi
overrides, lone surrogates."""


class Responder(Protocol):
    """Builds the response a :class:`MockService` gives to one request."""

    def __call__(self, request: httpx.Request, /) -> httpx.Response:
        """Answer ``request``."""
        ...


_CONFIG_FILE = "chaperone.toml"


class ServiceMode(enum.StrEnum):
    """How a service double answers: healthy, failing for now, or refusing for good."""

    OK = "ok"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


def _ok(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text="ok")


def _transient(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, headers={"Retry-After": "1"}, text="service unavailable")


def _permanent(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, text="invalid_payload")


class MockService:
    """A double of an HTTP service: answers every request according to :attr:`mode` and
    records it. Its :attr:`client` is an ``httpx.AsyncClient`` on an
    ``httpx.MockTransport``, so nothing leaves the process.

    By default a healthy service answers ``200 ok``, a transiently failing one ``503``
    with ``Retry-After: 1``, a permanently failing one ``400 invalid_payload``; pass
    ``ok``, ``transient`` or ``permanent`` to answer as the real service does (``202``
    with a JSON body, ``429``, ...).
    """

    def __init__(
        self,
        mode: ServiceMode | str = ServiceMode.OK,
        *,
        ok: Responder | None = None,
        transient: Responder | None = None,
        permanent: Responder | None = None,
    ) -> None:
        self.mode: ServiceMode = ServiceMode(mode)
        """How the service answers; change it between sends to script an outage."""
        self.requests: list[httpx.Request] = []
        """Every request received, oldest first, bodies read."""
        self._responders: dict[ServiceMode, Responder] = {
            ServiceMode.OK: ok or _ok,
            ServiceMode.TRANSIENT: transient or _transient,
            ServiceMode.PERMANENT: permanent or _permanent,
        }
        self.client: httpx.AsyncClient = httpx.AsyncClient(
            transport=httpx.MockTransport(self._handle)
        )
        """The client to put in the channel's :class:`~chaperone.SendContext`."""

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._responders[self.mode](request)

    @property
    def received(self) -> int:
        """How many requests the service received."""
        return len(self.requests)

    async def aclose(self) -> None:
        """Close the client."""
        await self.client.aclose()

    def __repr__(self) -> str:
        return f"<MockService mode={self.mode.value} received={self.received}>"


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("offline_client() refuses every request", request=request)


def offline_client() -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every request fails with ``ConnectError``: the
    HTTP client to lend a channel that must not use HTTP at all.
    """
    return httpx.AsyncClient(transport=httpx.MockTransport(_refuse))


@contextlib.contextmanager
def capture_all_logs() -> Iterator[list[LogEntry]]:
    """Capture structlog events as ``structlog.testing.capture_logs`` does, but at every
    level, whatever level logging was set to.

    Entries are captured before any processor runs, the secret-masking one included, so
    they show what the code logged, not what masking saved.
    """
    was_configured = structlog.is_configured()
    old_wrapper = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET))
    try:
        with structlog.testing.capture_logs() as entries:
            yield entries
    finally:
        if was_configured:
            structlog.configure(wrapper_class=old_wrapper)
        else:
            structlog.reset_defaults()


def _texts(value: Any) -> Iterator[str]:
    """Every piece of text inside ``value``, nested mappings and sequences included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _texts(key)
            yield from _texts(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, BaseException):
        yield "".join(traceback.format_exception(value))
    elif value is not None:
        yield str(value)
        yield repr(value)


def find_secrets(value: Any, secrets: Iterable[str]) -> list[str]:
    """Return the ``secrets`` that occur in ``value``: text, or any mapping, sequence or
    exception holding text (an exception is searched in its whole formatted traceback).
    """
    texts = list(_texts(value))
    return [secret for secret in secrets if any(secret in text for text in texts)]


def assert_registered(
    channel_class: type[Channel], plugin_name: str, host: PluginHost | None = None
) -> None:
    """Assert that the plugin ``plugin_name`` is found (by its entry point, or as a
    built-in), loads without error, and provides ``channel_class`` under its name.
    """
    host = host or PluginHost()
    found = {info.name: info for info in host.plugins}
    assert plugin_name in found, (
        f"no plugin {plugin_name!r} found; found {sorted(found)}. Is the distribution "
        f"installed and its entry point in the group 'chaperone'?"
    )
    info = found[plugin_name]
    assert info.status == "ok", f"plugin {plugin_name!r} is {info.status}: {info.error}"
    assert channel_class.name in info.channels, (
        f"plugin {plugin_name!r} registers {info.channels}, not {channel_class.name!r}"
    )
    assert host.channel_classes[channel_class.name] is channel_class


@attrs.define
class SendRun:
    """What happened when a channel was sent alerts: for a contract test to judge."""

    service: Any
    """The service double the alerts went to."""
    channel: Channel
    outcomes: list[Outcome]
    """One outcome per alert, in order."""
    received: list[int]
    """What :meth:`ChannelContract.received` said after each send."""
    logs: list[LogEntry]
    """Every structlog event logged while building the channel and sending."""
    texts: list[str] | None = None
    """What :meth:`ChannelContract.received_texts` said after the last send, when the run
    was asked to read it."""


class ChannelContract:
    """The contract tests, run against the channel a subclass describes.

    Subclass it in a class whose name starts with ``Test`` (pytest collects this base
    only through such subclasses) and set:

    - :attr:`channel_class`, and :attr:`plugin_name` to check the plugin is found;
    - :attr:`supports_failures` to False for a channel whose service cannot fail (a log);
    - :meth:`valid_settings`, :meth:`invalid_settings` and :meth:`secrets`;
    - for a channel that does not speak HTTP, :meth:`make_service`, :meth:`make_context`
      and :meth:`received`, and :meth:`received_texts` for the checks that read what
      arrived (HTTP channels get :class:`MockService` by default; override
      :meth:`make_service` to answer as the real service does).

    Settings reach the channel as its ``[channels.<name>]`` table of ``chaperone.toml``,
    through :func:`chaperone.channels.channel_settings`, as at start-up. Property tests
    draw from :mod:`chaperone.testing.strategies`; tune them with
    :meth:`hypothesis_settings`. Every check says what went wrong in its message; for
    pytest's detailed comparisons too, call
    ``pytest.register_assert_rewrite("chaperone.testing")`` in your ``conftest.py``.
    """

    channel_class: ClassVar[type[Channel]]
    """The channel under test."""
    plugin_name: ClassVar[str | None] = None
    """The entry-point name of the plugin providing the channel; None skips that check."""
    supports_failures: ClassVar[bool] = True
    """Whether the service double can fail (HTTP, SMTP) or not (a log, the store)."""
    send_timeout: ClassVar[float] = 30.0
    """Seconds one send may take before the test fails: a hung channel fails, not hangs."""

    captured_logs: list[LogEntry]
    """While a send runs: the log events captured so far (for :meth:`received` of a
    channel whose service is the log).
    """

    # -- what a subclass describes ------------------------------------------------------

    def valid_settings(self) -> dict[str, Any]:
        """Settings values that make a working channel, as in its TOML table."""
        return {}

    def invalid_settings(self) -> list[tuple[dict[str, Any], str]]:
        """Bad settings, each with the key its ConfigError must name (case-insensitive:
        ``"url"`` matches ``CHAPERONE_WEBHOOK_URL`` and ``channels.webhook.url``).
        """
        return []

    def secrets(self) -> list[str]:
        """The secret strings that occur in :meth:`valid_settings` (webhook URLs, keys,
        passwords): none may ever show in a repr, an outcome, a log or an error.
        """
        return []

    def make_service(self, mode: ServiceMode) -> Any:
        """A double of the channel's service, answering in ``mode``."""
        return MockService(mode)

    def make_context(self, service: Any) -> SendContext:
        """The :class:`~chaperone.SendContext` to send through ``service``.

        The default lends a :class:`MockService`'s client, or :func:`offline_client` for
        any other double. The suite closes the context's client after the run.
        """
        http = service.client if isinstance(service, MockService) else offline_client()
        return SendContext(http=http, clock=ManualClock(), timeout=10.0)

    def received(self, service: Any) -> int:
        """How many messages ``service`` has received (requests, mails, lines, rows)."""
        if isinstance(service, MockService):
            return service.received
        raise NotImplementedError(
            f"{type(self).__name__} uses a service double of its own: override received()"
        )

    def received_texts(self, service: Any) -> list[str] | None:
        """The text of every message ``service`` has received, in order, for the checks
        that look inside: a :class:`MockService`'s request bodies by default. A double of
        your own returns its messages' readable text (a mail's decoded body parts, a log
        line, a stored row), or None to skip those checks.
        """
        if isinstance(service, MockService):
            return [request.content.decode("utf-8", "replace") for request in service.requests]
        return None

    async def close_service(self, service: Any) -> None:
        """Release ``service``: awaits its ``aclose()`` when it has one."""
        aclose = getattr(service, "aclose", None)
        if aclose is not None:
            await aclose()

    def make_store(self, service: Any) -> Store:
        """The store the channel's settings carry (a fresh :class:`MemoryStore`)."""
        return MemoryStore(ManualClock())

    def app_settings(self, values: Mapping[str, Any]) -> Settings:
        """The application settings, with ``values`` as the channel's TOML table."""
        name = self.channel_class.name
        return Settings(
            channels=(name,),
            channel_sections={name: dict(values)},
            config_file=_CONFIG_FILE,
        )

    def build_settings(self, values: Mapping[str, Any], service: Any = None) -> ChannelSettings:
        """The channel's settings from ``values``, merged as at start-up."""
        store = self.make_store(service)
        return channel_settings(
            self.channel_class,
            app=self.app_settings(values),
            store=store,
            clock=ManualClock(),
        )

    def build_channel(self, service: Any = None) -> Channel:
        """The channel, built from :meth:`valid_settings`."""
        return self.channel_class.from_settings(self.build_settings(self.valid_settings(), service))

    def hypothesis_settings(self) -> hypothesis.settings:
        """Settings for the suite's property tests (the loaded profile's, no deadline)."""
        return hypothesis.settings(
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )

    # -- running ------------------------------------------------------------------------

    def send_alerts(
        self,
        alerts: Sequence[Alert],
        mode: ServiceMode = ServiceMode.OK,
        *,
        read_texts: bool = False,
    ) -> SendRun:
        """Build the channel, send it ``alerts`` through a service double in ``mode``, and
        return what happened, logs included (and, with ``read_texts``, what
        :meth:`received_texts` says the double received). Closes the channel and the
        double.
        """
        with capture_all_logs() as logs:
            self.captured_logs = logs
            try:
                return asyncio.run(self._send_alerts(alerts, mode, logs, read_texts))
            finally:
                self.captured_logs = []

    async def _send_alerts(
        self, alerts: Sequence[Alert], mode: ServiceMode, logs: list[LogEntry], read_texts: bool
    ) -> SendRun:
        outcomes: list[Outcome] = []
        received: list[int] = []
        texts: list[str] | None = None
        service = self.make_service(mode)
        try:
            channel = self.build_channel(service)
            try:
                context = self.make_context(service)
                try:
                    for alert in alerts:
                        async with asyncio.timeout(self.send_timeout):
                            outcomes.append(await channel.send(alert, context))
                        received.append(self.received(service))
                    if read_texts:
                        texts = self.received_texts(service)
                finally:
                    await context.http.aclose()
            finally:
                await channel.aclose()
        finally:
            await self.close_service(service)
        return SendRun(
            service=service,
            channel=channel,
            outcomes=outcomes,
            received=received,
            logs=logs,
            texts=texts,
        )

    def _skip_without_secrets(self) -> list[str]:
        secrets = self.secrets()
        if not secrets:
            pytest.skip(f"{self.channel_class.name} has no secrets")
        return secrets

    def _skip_without_failures(self) -> None:
        if not self.supports_failures:
            pytest.skip(f"the service of {self.channel_class.name} cannot fail")

    def _check_delivered(self, run: SendRun) -> None:
        before = 0
        for number, (outcome, received) in enumerate(
            zip(run.outcomes, run.received, strict=True), start=1
        ):
            assert isinstance(outcome, Outcome), f"send returned {outcome!r}, not an Outcome"
            assert outcome.kind is OutcomeKind.DELIVERED, (
                f"alert {number} to a healthy service: {outcome.kind.value} ({outcome.detail})"
            )
            assert received > before, f"alert {number} was 'delivered' but never reached it"
            before = received

    def _check_failed(self, run: SendRun, kind: OutcomeKind) -> None:
        for outcome, received in zip(run.outcomes, run.received, strict=True):
            assert isinstance(outcome, Outcome), f"send returned {outcome!r}, not an Outcome"
            assert outcome.kind is kind, (
                f"a {kind.value}ly failing service gave {outcome.kind.value} ({outcome.detail})"
            )
            assert not outcome.ok
            assert received >= 1, "the channel reported a failure without contacting it"

    # -- the contract -------------------------------------------------------------------

    def test_channel_has_a_config_name(self) -> None:
        """The channel's name is a lower-case name that config and routes can use."""
        name = self.channel_class.name
        assert isinstance(name, str)
        assert name
        assert name == name.strip().lower()
        assert all(char.isalnum() or char in "-_" for char in name)

    def test_valid_settings_build_the_channel(self) -> None:
        """The valid settings build an instance of the channel class."""
        channel = self.channel_class.from_settings(self.build_settings(self.valid_settings()))
        try:
            assert isinstance(channel, self.channel_class)
        finally:
            asyncio.run(channel.aclose())

    def test_invalid_settings_raise_config_error_naming_the_key(self) -> None:
        """Each invalid setting raises ConfigError naming its key and quoting no secret."""
        cases = self.invalid_settings()
        if not cases:
            pytest.skip(f"{self.channel_class.name} accepts any settings")
        secret_keys = self.channel_class.secret_keys
        for values, key in cases:
            secrets = [*self.secrets()]
            secrets += [
                str(value).strip()
                for name, value in values.items()
                if name in secret_keys and len(str(value).strip()) >= 4
            ]
            with pytest.raises(ConfigError) as caught:
                self.channel_class.from_settings(self.build_settings(values))
            message = str(caught.value)
            assert key.lower() in message.lower(), f"{values!r}: {message!r} does not name {key}"
            leaked = find_secrets(caught.value, secrets)
            assert not leaked, f"{values!r}: the ConfigError shows a secret"

    def test_secrets_are_in_the_valid_settings(self) -> None:
        """Each declared secret occurs in a value of ``secret_keys`` in the valid settings,
        so it is masked wherever settings are shown.
        """
        secrets = self._skip_without_secrets()
        values = self.valid_settings()
        for secret in secrets:
            holders = [key for key, value in values.items() if secret in str(value)]
            assert holders, "a declared secret is not in valid_settings()"
            assert set(holders) & self.channel_class.secret_keys, (
                f"the secret in {holders} is not under one of secret_keys "
                f"{sorted(self.channel_class.secret_keys)}"
            )

    def test_any_alert_is_delivered_to_a_healthy_service(self) -> None:
        """Any alert, however long or strange, sent to a healthy service is delivered."""

        @self.hypothesis_settings()
        @given(alert=alerts())
        @example(alert=_oversized_alert())
        def check(alert: Alert) -> None:
            self._check_delivered(self.send_alerts([alert]))

        check()

    def test_hostile_alert_is_delivered_to_a_healthy_service(self) -> None:
        """Any hostile alert (lone surrogates, control characters, escape sequences, bidi
        overrides, markup, texts of a megabyte) is delivered to a healthy service without
        an exception, and none of those characters reaches it.
        """

        @self.hypothesis_settings()
        @given(alert=hostile_alerts())
        @example(alert=_hostile_alert())
        def check(alert: Alert) -> None:
            run = self.send_alerts([alert], read_texts=True)
            self._check_delivered(run)
            for text in run.texts or []:
                unsafe = sorted({hex(ord(char)) for char in _UNSAFE.findall(_strings_in(text))})
                assert not unsafe, f"characters {unsafe} reached the service"

        check()

    def test_several_alerts_through_one_channel(self) -> None:
        """One channel object delivers alert after alert (firing, then resolved)."""
        run = self.send_alerts(_sample_alerts())
        assert len(run.outcomes) == len(_sample_alerts())
        self._check_delivered(run)

    def test_a_full_digest_reaches_the_service_whole(self) -> None:
        """A digest listing as many alerts as one lists at most is delivered, and every
        listed alert's key reaches the service: no entry is dropped to fit the message.
        """
        held = held_stuck_alerts(MAX_ENTRIES)
        [digest] = sample_digests(held, size=MAX_ENTRIES)
        run = self.send_alerts([digest], read_texts=True)
        self._check_delivered(run)
        if run.texts is None:
            pytest.skip(f"received_texts() cannot read what {self.channel_class.name} sent")
        missing = [alert.key for alert in held if not any(alert.key in t for t in run.texts)]
        assert not missing, (
            f"{len(missing)} of the digest's {len(held)} entries never reached the service, "
            f"first {missing[0]}"
        )

    def test_transient_failure_is_reported_transient(self) -> None:
        """A service failing for now yields a transient outcome, whatever the alert."""
        self._skip_without_failures()

        @self._failure_settings()
        @given(alert=alerts())
        def check(alert: Alert) -> None:
            self._check_failed(
                self.send_alerts([alert], ServiceMode.TRANSIENT), OutcomeKind.TRANSIENT
            )

        check()

    def test_permanent_failure_is_reported_permanent(self) -> None:
        """A service refusing the alert yields a permanent outcome, whatever the alert."""
        self._skip_without_failures()

        @self._failure_settings()
        @given(alert=alerts())
        def check(alert: Alert) -> None:
            self._check_failed(
                self.send_alerts([alert], ServiceMode.PERMANENT), OutcomeKind.PERMANENT
            )

        check()

    def test_no_secret_in_repr_outcomes_or_logs(self) -> None:
        """No secret shows in the channel's repr or str, in any outcome's detail, or in
        anything it logs, whether the service accepts or fails.
        """
        secrets = self._skip_without_secrets()
        modes = [ServiceMode.OK]
        if self.supports_failures:
            modes += [ServiceMode.TRANSIENT, ServiceMode.PERMANENT]
        for mode in modes:
            run = self.send_alerts(_sample_alerts(), mode)
            assert not find_secrets(repr(run.channel), secrets), "repr(channel) shows a secret"
            assert not find_secrets(str(run.channel), secrets), "str(channel) shows a secret"
            for outcome in run.outcomes:
                assert not find_secrets(outcome.detail, secrets), (
                    f"a {mode.value} outcome's detail shows a secret"
                )
                assert not find_secrets(repr(outcome), secrets)
            leaked = [
                _redact(str(entry.get("event")), secrets)
                for entry in run.logs
                if find_secrets(entry, secrets)
            ]
            assert not leaked, f"log events show a secret ({mode.value} service): {leaked}"

    def test_settings_use_declared_keys(self) -> None:
        """The valid and invalid settings hold only keys the channel declares in
        ``setting_keys`` (or a delivery setting), so a user writing them is not told they
        are unknown.
        """
        keys = self._skip_without_declared_keys()
        used = set(self.valid_settings())
        for values, _key in self.invalid_settings():
            used |= set(values)
        assert used <= keys, f"keys not in setting_keys: {sorted(used - keys)}"

    def test_reads_only_declared_keys(self) -> None:
        """Building the channel reads no key outside ``setting_keys`` (and the delivery
        settings): a key it reads but does not declare would be refused as unknown.
        """
        keys = self._skip_without_declared_keys()
        settings = self.build_settings(self.valid_settings())
        reads = _Reads(settings.values)
        channel = self.channel_class.from_settings(attrs.evolve(settings, values=reads))
        asyncio.run(channel.aclose())
        assert reads.keys_read <= keys, (
            f"from_settings reads keys not in setting_keys: {sorted(reads.keys_read - keys)}"
        )

    def test_a_table_or_date_for_any_key_is_a_config_error(self) -> None:
        """Each valid setting given a TOML table, date, time or nested array instead either
        builds the channel (the key went unread) or raises ConfigError naming the key:
        never another exception.
        """
        valid = self.valid_settings()
        if not valid:
            pytest.skip(f"{self.channel_class.name} takes no settings")
        for key in valid:
            for odd in _ODD_VALUES:
                error = self._build_error({**valid, key: odd})
                assert error is None or key.lower() in str(error).lower(), (
                    f"{key} = {odd!r}: {error}"
                )

    def _build_error(self, values: Mapping[str, Any]) -> ConfigError | None:
        """The ConfigError building the channel from ``values`` raises, or None when it
        builds.
        """
        try:
            channel = self.channel_class.from_settings(self.build_settings(values))
        except ConfigError as exc:
            return exc
        asyncio.run(channel.aclose())
        return None

    def _skip_without_declared_keys(self) -> frozenset[str]:
        keys = channel_keys(self.channel_class)
        if keys is None:
            pytest.skip(f"{self.channel_class.__name__} declares no setting_keys: not checked")
        return keys

    def test_registered_through_entry_point(self) -> None:
        """The plugin named :attr:`plugin_name` is found, loads, and provides the channel."""
        if self.plugin_name is None:
            pytest.skip("no plugin_name set")
        assert_registered(self.channel_class, self.plugin_name)

    def _failure_settings(self) -> hypothesis.settings:
        parent = self.hypothesis_settings()
        return hypothesis.settings(parent, max_examples=max(1, parent.max_examples // 4))


_ODD_VALUES: tuple[Any, ...] = (
    {"a": 1},
    date(1979, 5, 27),
    time(7, 32),
    datetime(1979, 5, 27, 7, 32, tzinfo=UTC),
    [["nested"]],
)
"""TOML values no channel setting takes."""


class _Reads(Mapping[str, Any]):
    """A channel's settings values that remember which keys were asked for."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)
        self.keys_read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.keys_read.add(key)
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret replaced, so a failure report does not print it."""
    for secret in secrets:
        text = text.replace(secret, "<secret>")
    return text


def _oversized_alert() -> Alert:
    """Always tried: every text over any service's limit, non-ASCII, and many fields."""
    text = ("Ünïcødé ⚠ " * OVERSIZED_LENGTH)[:OVERSIZED_LENGTH]
    return Alert(
        type="job_stuck",
        key=text,
        headline=text,
        title=text,
        summary=text,
        explanation=text,
        fields={f"{text[:300]} {index}": text for index in range(60)},
        job_class=text,
        supervision_id=text,
        labels={"team": text},
        details_url="https://example.com/" + "x" * 5000,
        runbook_url="https://example.com/runbook",
        occurred_at=datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
    )


def _strings_in(text: str) -> str:
    """The strings of ``text`` when it is JSON (an HTTP body), joined; else ``text``."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    return "\n".join(_texts(data))


def _hostile_alert() -> Alert:
    """Always tried: every hostile piece in every text, each text a megabyte long."""
    piece = "".join(HOSTILE_PIECES)
    text = (piece * (HOSTILE_LENGTH // len(piece) + 1))[:HOSTILE_LENGTH]
    return Alert(
        type="job_failed",
        key=text,
        headline=piece,
        title=text,
        summary=text,
        explanation=text,
        fields=[(piece, text) for _ in range(8)] + [(piece, piece)] * 60,
        job_class=text,
        supervision_id=piece,
        service=piece,
        labels={f"{piece}{index}": piece for index in range(60)},
        details_url=f"https://example.com/{piece}",
        runbook_url=text,
        occurred_at=datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
    )


def _sample_alerts() -> list[Alert]:
    when = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    firing = Alert(
        type="job_stuck",
        key="550e8400-e29b-41d4-a716-446655440000",
        headline="Job Stuck",
        title="Job Stuck: App\\Jobs\\ProcessLargeDataset",
        summary="A supervised job has been detected as stuck and may require intervention.",
        explanation="This job may be in an infinite loop, deadlocked, or otherwise unable "
        "to complete.",
        fields={
            "Supervision ID": "550e8400-e29b-41d4-a716-446655440000",
            "Job Class": "App\\Jobs\\ProcessLargeDataset",
            "Stuck Duration": "30 minutes",
            "Last Heartbeat": "2024-01-15 10:00:00 UTC",
        },
        job_class="App\\Jobs\\ProcessLargeDataset",
        supervision_id="550e8400-e29b-41d4-a716-446655440000",
        occurred_at=when,
    )
    resolved = attrs.evolve(
        firing,
        headline="Job Recovered",
        title="Job Recovered: App\\Jobs\\ProcessLargeDataset",
        summary="The job recovered: heartbeats resumed.",
        status="resolved",
        severity="info",
    )
    return [firing, resolved]

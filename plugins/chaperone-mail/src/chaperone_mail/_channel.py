"""Channel ``mail``: one e-mail per alert, to every recipient, over SMTP."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import os
import re
import ssl
import types
from collections.abc import Mapping, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any, ClassVar, Final, Self

import aiosmtplib
import attrs
import structlog

from chaperone.channels import (
    Alert,
    Channel,
    ChannelSettings,
    ConfigError,
    Outcome,
    Secret,
    SendContext,
    env_prefix,
)
from chaperone.channels.text import fit, one_line
from chaperone_mail._render import build_message

__all__ = ["Encryption", "MailChannel"]

_log = structlog.get_logger("chaperone.mail")

_REPLY_EXCERPT: Final = 200
_QUIT_TIMEOUT: Final = 2.0
_QUIT_MARGIN: Final = 0.25
"""Seconds of the send's time left unused by hanging up, so the core never cancels a
send whose alert was accepted (and retries it: a duplicate e-mail).
"""
_CLOSE_POLL: Final = 0.002
_IMPLICIT_TLS_PORT: Final = 465
_DEFAULT_PORT: Final = 587
_RECIPIENTS_VARIABLE: Final = "CHAPERONE_ALERT_RECIPIENTS"
_ALLOW_UNENCRYPTED_PASSWORD: Final = "allow_unencrypted_password"  # noqa: S105 - a key
"""The setting (``CHAPERONE_MAIL_ALLOW_UNENCRYPTED_PASSWORD``) that lets the password go
to a server that is not on this machine over a connection with ``encryption = none``."""
# The WHATWG (HTML) definition of a valid e-mail address: ASCII, no quoting, no comments.
_ADDRESS: Final = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_HOST: Final = re.compile(r"[A-Za-z0-9._:\[\]-]+")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


class Encryption(enum.StrEnum):
    """How the connection to the SMTP server is protected."""

    STARTTLS = "tls"
    """Plain connection upgraded with STARTTLS (required: no upgrade, no mail)."""
    SSL = "ssl"
    """TLS from the first byte (implicit TLS, port 465)."""
    NONE = "none"
    """No encryption at all."""


_COMMANDS: Final[Mapping[type[Exception], str]] = {
    aiosmtplib.SMTPSenderRefused: "MAIL FROM",
    aiosmtplib.SMTPRecipientRefused: "RCPT TO",
    aiosmtplib.SMTPDataError: "DATA",
}
"""The command a refusal answered, when the exception says."""

_ENCRYPTION_NAMES: Final = {
    "tls": Encryption.STARTTLS,
    "starttls": Encryption.STARTTLS,
    "ssl": Encryption.SSL,
    "smtps": Encryption.SSL,
    "none": Encryption.NONE,
    # Laravel's .env writes MAIL_ENCRYPTION=null for "no encryption".
    "null": Encryption.NONE,
}


@attrs.frozen(kw_only=True)
class _Config:
    host: str
    port: int
    encryption: Encryption
    username: str | None
    password: Secret | None
    sender: Address
    recipients: tuple[str, ...]
    verify_certificates: bool
    ca_file: str | None
    ca_setting: str
    """The name to set ``ca_file`` by, for the hint when a certificate is not trusted."""


class MailChannel(Channel):
    r"""Sends each alert as one multipart (text and HTML) e-mail to all recipients.

    Subject ``[Chaperone Alert] Job Stuck: App\Jobs\ProcessLargeDataset``; a resolved
    alert's is ``[Chaperone Resolved] Job Recovered: ...``. SMTP replies ``4xx``,
    refused or reset connections and timeouts are transient; ``5xx`` replies (unknown
    recipient, failed authentication) and untrusted certificates are permanent.
    """

    name = "mail"
    secret_keys = frozenset({"password"})
    setting_keys = frozenset(
        {
            "host",
            "port",
            "encryption",
            "username",
            "password",
            "from_address",
            "from_name",
            "recipients",
            "verify_certificates",
            "ca_file",
            _ALLOW_UNENCRYPTED_PASSWORD,
        }
    )
    env_aliases: ClassVar[Mapping[str, str]] = types.MappingProxyType(
        {
            "MAIL_HOST": "host",
            "MAIL_PORT": "port",
            "MAIL_ENCRYPTION": "encryption",
            "MAIL_USERNAME": "username",
            "MAIL_PASSWORD": "password",
            "MAIL_FROM_ADDRESS": "from_address",
            "MAIL_FROM_NAME": "from_name",
        }
    )

    def __init__(self, config: _Config) -> None:
        self._config = config
        self._tls = _tls_context(config) if config.encryption is not Encryption.NONE else None

    def __repr__(self) -> str:
        config = self._config
        return (
            f"<MailChannel {config.encryption.value}://{config.host}:{config.port} "
            f"from={config.sender.addr_spec} to={len(config.recipients)} recipient(s)>"
        )

    @property
    def recipients(self) -> tuple[str, ...]:
        """Who each alert goes to."""
        return self._config.recipients

    # -- settings -----------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        """Build the channel; every setting is checked here, so a bad one fails at
        start-up naming its variable (and never quoting the password).
        """
        host = _required(settings, "host")
        if not _HOST.fullmatch(host):
            raise _problem(settings, "host", "is not a host name or IP address")
        encryption = _encryption(settings)
        port = _port(settings, encryption)
        if encryption is Encryption.STARTTLS and port == _IMPLICIT_TLS_PORT:
            # Port 465 speaks TLS from the start; Laravel reads 'tls' there as 'ssl' too.
            encryption = Encryption.SSL
        username = settings.text("username")
        password = settings.text("password")
        if username is not None and password is None:
            raise _problem(settings, "password", "is required when a username is set")
        if password is not None and username is None:
            raise _problem(settings, "username", "is required when a password is set")
        if username is not None and _CONTROL.search(username):
            raise _problem(settings, "username", "contains control characters")
        if password is not None and encryption is Encryption.NONE:
            _check_clear_text_login(settings, host)
        from_address = _required(settings, "from_address")
        if not _ADDRESS.fullmatch(from_address):
            raise _problem(settings, "from_address", f"{from_address!r} is not an e-mail address")
        from_name = settings.text("from_name", "Chaperone")
        if _CONTROL.search(from_name):
            raise _problem(settings, "from_name", "must be one line without control characters")
        verify = _boolean(settings, "verify_certificates", default=True)
        ca_file = settings.text("ca_file")
        if ca_file is not None and (not os.path.isfile(ca_file) or not os.access(ca_file, os.R_OK)):
            raise _problem(settings, "ca_file", "is not a readable file")
        local_part, _, domain = from_address.partition("@")
        config = _Config(
            host=host,
            port=port,
            encryption=encryption,
            username=username,
            password=None if password is None else Secret(password),
            sender=Address(display_name=from_name, username=local_part, domain=domain),
            recipients=_recipients(settings),
            verify_certificates=verify,
            ca_file=ca_file,
            ca_setting=settings.setting_name("ca_file"),
        )
        try:
            return cls(config)
        except ssl.SSLError as exc:
            raise _problem(
                settings, "ca_file", f"holds no usable certificate ({exc.reason})"
            ) from None

    # -- sending ------------------------------------------------------------------------

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        """Render the alert and hand it to the SMTP server; classify how that went."""
        config = self._config
        message = build_message(
            alert, sender=config.sender, recipients=config.recipients, now=context.clock.now()
        )
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.encryption is Encryption.SSL,
            start_tls=False,
            tls_context=self._tls,
            timeout=context.timeout,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + context.timeout
        step = _Step()
        try:
            async with asyncio.timeout_at(deadline):
                outcome = await self._transact(client, message, step)
        except TimeoutError:
            outcome = Outcome.transient(
                f"no answer from {self._where} in {context.timeout:g}s at {step.name}"
            )
        except Exception as exc:
            outcome = self._classify(exc, step.name)
        except BaseException:
            # Cancelled: drop the connection at once.
            client.close()
            raise
        await _hang_up(client, step, polite=outcome.ok, budget=deadline - loop.time())
        return outcome

    @property
    def _where(self) -> str:
        return f"{self._config.host}:{self._config.port}"

    async def _transact(
        self, client: aiosmtplib.SMTP, message: EmailMessage, step: _Step
    ) -> Outcome:
        config = self._config
        step.name = "connect"
        await client.connect()
        step.socket = client.get_transport_info("socket")
        step.name = "EHLO"
        await client.ehlo()
        if config.encryption is Encryption.STARTTLS:
            step.name = "STARTTLS"
            if not client.supports_extension("starttls"):
                return Outcome.permanent(
                    f"{self._where} does not offer STARTTLS, and encryption is 'tls'; use "
                    "'ssl' for a server that speaks TLS from the start (port 465)"
                )
            await client.starttls()
        if config.username is not None and config.password is not None:
            step.name = "AUTH"
            await client.login(config.username, config.password.reveal())
        step.name = "sending"
        refused, reply = await client.send_message(
            message, sender=config.sender.addr_spec, recipients=list(config.recipients)
        )
        accepted = len(config.recipients) - len(refused)
        detail = f"SMTP 250, accepted for {accepted} recipient{'s' if accepted != 1 else ''}"
        if refused:
            summary = "; ".join(
                f"{address} ({response.code} {_excerpt(response.message)})"
                for address, response in refused.items()
            )
            _log.warning("some recipients refused the alert", channel=self.name, refused=summary)
            detail += f"; refused: {summary}"
        reply = _excerpt(reply)
        return Outcome.delivered(f"{detail}: {reply}" if reply else detail, status_code=250)

    def _classify(self, exc: Exception, step: str) -> Outcome:
        """Turn what went wrong into an outcome: 4xx, network trouble and timeouts are
        transient; 5xx, an untrusted certificate and unsupported features permanent.
        """
        where = self._where
        if isinstance(exc, aiosmtplib.SMTPConnectError) and isinstance(exc.__cause__, ssl.SSLError):
            # TLS from the start: the handshake failed inside connect.
            exc = exc.__cause__
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            codes = sorted({refusal.code for refusal in exc.recipients})
            first = exc.recipients[0] if exc.recipients else None
            reply = f": {_excerpt(first.message)}" if first else ""
            detail = f"SMTP {'/'.join(map(str, codes))}: every recipient refused{reply}"
            if any(400 <= code < 500 for code in codes):
                return Outcome.transient(detail, status_code=codes[0])
            return Outcome.permanent(detail, status_code=codes[-1] if codes else None)
        if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code > 0:
            step = _COMMANDS.get(type(exc), step)
            detail = f"SMTP {exc.code} at {step}: {_excerpt(exc.message)}"
            if isinstance(exc, aiosmtplib.SMTPAuthenticationError) and exc.code >= 500:
                detail += " (check the username and password)"
            if 400 <= exc.code < 500:
                return Outcome.transient(detail, status_code=exc.code)
            if exc.code >= 500:
                return Outcome.permanent(detail, status_code=exc.code)
            return Outcome.transient(detail, status_code=exc.code)
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = exc.verify_message or exc.reason or "not trusted"
            hint = (
                f"trust its CA with {self._config.ca_setting}"
                if self._config.ca_file is None
                else f"it is not signed by the CA in {self._config.ca_setting}"
            )
            return Outcome.permanent(
                f"TLS certificate of {where} not verified at {step} ({reason}); {hint}"
            )
        if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return Outcome.transient(f"TLS connection to {where} closed at {step}")
        if isinstance(exc, ssl.SSLError):
            return Outcome.permanent(
                f"TLS failed with {where} at {step} ({exc.reason or type(exc).__name__}); "
                "check the encryption: 'tls' is STARTTLS (port 587), 'ssl' is TLS from the "
                "start (port 465)"
            )
        if isinstance(exc, TimeoutError):
            return Outcome.transient(f"no answer from {where} at {step}")
        if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected):
            return Outcome.transient(f"{type(exc).__name__} at {step}: {_excerpt(str(exc))}")
        if isinstance(exc, OSError):
            return Outcome.transient(f"{type(exc).__name__} connecting to {where} at {step}")
        if isinstance(exc, aiosmtplib.SMTPException):
            return Outcome.permanent(f"{type(exc).__name__} at {step}: {_excerpt(str(exc))}")
        return Outcome.permanent(f"{type(exc).__name__} at {step}: {_excerpt(str(exc))}")


@attrs.define
class _Step:
    """Which part of the SMTP conversation is running (for error details), and the
    connection's socket once there is one.
    """

    name: str = "render"
    socket: Any = None


async def _hang_up(client: aiosmtplib.SMTP, step: _Step, *, polite: bool, budget: float) -> None:
    """End the conversation: QUIT after a delivery (the alert is accepted already, so
    nothing here can fail it), then close, and wait until the socket is really closed (a
    TLS connection closes only after its shutdown handshake), all within ``budget``
    seconds of the send's time and never more than a couple of seconds.
    """
    budget = min(_QUIT_TIMEOUT, budget - _QUIT_MARGIN)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(max(budget, 0.0)):
            if polite and client.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await client.quit()
            client.close()
            # No event says when the socket closes (TLS finishes its shutdown inside
            # asyncio): look at it now and then.
            while step.socket is not None and step.socket.fileno() != -1:  # noqa: ASYNC110
                await asyncio.sleep(_CLOSE_POLL)
    client.close()


def _excerpt(text: str) -> str:
    return fit(one_line(text), _REPLY_EXCERPT)


def _tls_context(config: _Config) -> ssl.SSLContext:
    """Verify the server's certificate and name (against ``ca_file`` when given)."""
    if not config.verify_certificates:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=config.ca_file)


# -- reading settings ----------------------------------------------------------------------


def _alias_of(key: str) -> str | None:
    return next((name for name, alias in MailChannel.env_aliases.items() if alias == key), None)


def _problem(settings: ChannelSettings, key: str, message: str) -> ConfigError:
    """The ConfigError for ``key``: named as it was set, or when unset by the variable a
    person would set (``MAIL_HOST``), with the other ways to set it.
    """
    if key in settings.origins:
        return settings.problem(key, message)
    alias = _alias_of(key)
    own = f"{env_prefix(settings.channel)}{key.upper()}"
    toml = f"{key} in [channels.{settings.channel}]"
    others = f"{own} or {toml}" if alias else toml
    return ConfigError.single(alias or own, "not set", f"{message} (or set {others})")


def _required(settings: ChannelSettings, key: str) -> str:
    value = settings.text(key)
    if value is None:
        raise _problem(settings, key, "is required")
    return value


def _check_clear_text_login(settings: ChannelSettings, host: str) -> None:
    """Refuse to send the password unencrypted, unless the server is on this machine or
    :data:`_ALLOW_UNENCRYPTED_PASSWORD` says the network between is trusted.
    """
    if _is_loopback(host) or _boolean(settings, _ALLOW_UNENCRYPTED_PASSWORD, default=False):
        return
    allow = settings.setting_name(_ALLOW_UNENCRYPTED_PASSWORD)
    raise _problem(
        settings,
        "encryption",
        f"is none, so the password would cross the network to {host} in clear text; use "
        f"tls or ssl, or set {allow}=true if that network is trusted",
    )


def _is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, ``127.0.0.1``, ``[::1]``)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _encryption(settings: ChannelSettings) -> Encryption:
    raw = settings.text("encryption", "tls").strip().lower()
    try:
        return _ENCRYPTION_NAMES[raw]
    except KeyError:
        raise _problem(
            settings, "encryption", "must be tls (STARTTLS), ssl (TLS from the start) or none"
        ) from None


def _port(settings: ChannelSettings, encryption: Encryption) -> int:
    value = settings.get("port")
    if value is None:
        return _IMPLICIT_TLS_PORT if encryption is Encryption.SSL else _DEFAULT_PORT
    try:
        port = int(str(value).strip()) if not isinstance(value, bool) else -1
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise _problem(settings, "port", "must be a port number from 1 to 65535")
    return port


def _boolean(settings: ChannelSettings, key: str, *, default: bool) -> bool:
    value = settings.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _problem(settings, key, "must be true or false")


def _recipients(settings: ChannelSettings) -> tuple[str, ...]:
    """The channel's (or route's) own ``recipients``, else ``CHAPERONE_ALERT_RECIPIENTS``;
    none at all is an error: an e-mail to nobody is an alert lost.
    """
    own = settings.get("recipients")
    if own is not None:
        addresses = _address_list(own)
        for address in addresses:
            if not _ADDRESS.fullmatch(address):
                raise _problem(settings, "recipients", f"{address!r} is not an e-mail address")
        if addresses:
            return tuple(dict.fromkeys(addresses))
    if settings.app.recipients:
        return tuple(settings.app.recipients)
    raise ConfigError.single(
        _RECIPIENTS_VARIABLE,
        settings.app.source_of("alerting.recipients"),
        "the mail channel needs at least one recipient: set it to a comma-separated list "
        "of addresses (or give the route or [channels.mail] its own recipients)",
    )


def _address_list(value: Any) -> list[str]:
    items: Sequence[Any] = value if isinstance(value, list | tuple) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]

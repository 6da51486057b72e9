"""The core's channel contract, run against the mail channel and a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import attrs
import hypothesis
import pytest
from chaperone_mail import MailChannel
from mail_smtp_server import OK, SmtpServer, always

from chaperone.testing import ChannelContract, ServiceMode

PASSWORD = "mail-password-7f3a9c2e"  # noqa: S105 - the loopback server's test password
USER = "chaperone"


@attrs.define
class ServerView:
    """The shared server as one contract run sees it: answering in ``mode``, counting
    transactions from ``baseline``.
    """

    server: SmtpServer
    baseline: int


@pytest.fixture(scope="module", autouse=True)
def contract_server() -> Iterator[SmtpServer]:
    """One SMTP server for the whole contract suite (AUTH allowed without TLS)."""
    with SmtpServer(users={USER: PASSWORD}, auth_over_plain=True).running() as server:
        TestMailContract.server = server
        yield server


class TestMailContract(ChannelContract):
    """The mail channel keeps the contract every channel keeps."""

    channel_class = MailChannel
    plugin_name = "mail"
    server: ClassVar[SmtpServer]

    def hypothesis_settings(self) -> hypothesis.settings:
        # Each example is a real SMTP conversation; test_mail_render draws many more
        # alerts through the renderer alone.
        return hypothesis.settings(super().hypothesis_settings(), max_examples=40)

    def valid_settings(self) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.server.port,
            "encryption": "none",
            "username": USER,
            "password": PASSWORD,
            "from_address": "alerts@example.com",
            "from_name": "Chaperone Alerts",
            "recipients": ["ops@example.com", "dev@example.com"],
        }

    def invalid_settings(self) -> list[tuple[dict[str, Any], str]]:
        valid = self.valid_settings()

        def without(*keys: str, **changes: Any) -> dict[str, Any]:
            values = {key: value for key, value in valid.items() if key not in keys}
            return {**values, **changes}

        return [
            (without("host"), "host"),
            (without(host="smtp example.com"), "host"),
            (without(host="smtp.example.com\r\nRCPT TO:<x@evil.test>"), "host"),
            (without(port="submission"), "port"),
            (without(port=0), "port"),
            (without(port=70_000), "port"),
            (without(encryption="starttls-maybe"), "encryption"),
            (without("from_address"), "from_address"),
            (without(from_address="alerts at example.com"), "from_address"),
            (without(from_name="Chaperone\r\nBcc: victim@example.com"), "from_name"),
            (without("password"), "password"),
            (without("username"), "username"),
            (without(recipients=["ops@example.com", "not an address"]), "recipients"),
            (without(recipients="ops@example.com, <x>@example.com"), "recipients"),
            (without("recipients"), "CHAPERONE_ALERT_RECIPIENTS"),
            (without(verify_certificates="perhaps"), "verify_certificates"),
            (without(ca_file="/nonexistent/chaperone-ca.pem"), "ca_file"),
        ]

    def secrets(self) -> list[str]:
        return [PASSWORD]

    def make_service(self, mode: ServiceMode) -> ServerView:
        server = self.server
        server.clear()
        server.rcpt_reply = None
        server.reply = always(OK)
        if mode is ServiceMode.TRANSIENT:
            server.reply = always("451 4.3.0 Mailbox busy, try again later")
        elif mode is ServiceMode.PERMANENT:
            server.rcpt_reply = "550 5.1.1 No such user here"
        return ServerView(server=server, baseline=server.transactions)

    def received(self, service: ServerView) -> int:
        return service.server.transactions - service.baseline

    def received_texts(self, service: ServerView) -> list[str]:
        return [f"{mail.text()}\n{mail.html()}" for mail in service.server.received]

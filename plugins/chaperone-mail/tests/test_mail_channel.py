"""The mail channel in process, against real SMTP servers on 127.0.0.1: settings as
start-up reads them, TLS (STARTTLS and implicit), AUTH, and how each SMTP answer or
network failure is classified; then the core's retries and a route's own recipients.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chaperone_mail import Encryption, MailChannel
from mail_smtp_server import Certificates, SmtpServer, always, first_try_fails, make_certificates

from chaperone import (
    Alert,
    Chaperone,
    ConfigError,
    Destination,
    ManualClock,
    OutcomeKind,
    PluginHost,
    Runtime,
    SendContext,
    Settings,
    hookimpl,
    load_settings,
)
from chaperone.channels import channel_settings
from chaperone.store import MemoryStore
from chaperone.testing import capture_all_logs, find_secrets, offline_client

PASSWORD = "smtp-pass-9d8e7f6a5b"  # noqa: S105 - the loopback server's test password
USER = "alerts@example.com"
RECIPIENTS = ("ops@example.com", "dev@example.com")
ALERT = Alert(
    type="job_stuck",
    key="550e8400-e29b-41d4-a716-446655440000",
    headline="Job Stuck",
    title="Job Stuck: App\\Jobs\\ProcessLargeDataset",
    summary="A supervised job has been detected as stuck and may require intervention.",
    explanation="This job may be in an infinite loop, deadlocked, or otherwise unable to complete.",
    fields={"Supervision ID": "550e8400-e29b-41d4-a716-446655440000"},
    job_class="App\\Jobs\\ProcessLargeDataset",
    supervision_id="550e8400-e29b-41d4-a716-446655440000",
    details_url="https://app.example.com/chaperone/jobs/550e8400-e29b-41d4-a716-446655440000",
    occurred_at=datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throwaway CA and a server certificate for 127.0.0.1."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def plain_server() -> Iterator[SmtpServer]:
    """A server without TLS or AUTH that accepts everything."""
    with SmtpServer().running() as server:
        yield server


def app_settings(values: Mapping[str, Any], **app: Any) -> Settings:
    return Settings(channels=("mail",), channel_sections={"mail": dict(values)}, **app)


def build(values: Mapping[str, Any], **app: Any) -> MailChannel:
    """The channel from a ``[channels.mail]`` table, as start-up builds it."""
    clock = ManualClock()
    return MailChannel.from_settings(
        channel_settings(
            MailChannel, app=app_settings(values, **app), store=MemoryStore(clock), clock=clock
        )
    )


def settings_for(server: SmtpServer, **values: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": server.port,
        "encryption": "none",
        "from_address": "chaperone@example.com",
        "recipients": list(RECIPIENTS),
        **values,
    }


def send(channel: MailChannel, alert: Alert = ALERT, timeout: float = 5.0) -> Any:
    """Send one alert through ``channel`` and return the outcome."""

    async def run() -> Any:
        context = SendContext(http=offline_client(), clock=ManualClock(), timeout=timeout)
        try:
            return await channel.send(alert, context)
        finally:
            await context.http.aclose()
            await channel.aclose()

    return asyncio.run(run())


class TestSettingsFromTheEnvironment:
    """Start-up reads Laravel's MAIL_* variables and Chaperone's own."""

    def test_mail_variables(self, tmp_path: Path) -> None:
        """MAIL_HOST, MAIL_PORT, MAIL_ENCRYPTION, MAIL_FROM_* and the alert recipients
        make a working channel.
        """
        settings = load_settings(
            {
                "MAIL_HOST": "smtp.example.com",
                "MAIL_PORT": "2525",
                "MAIL_ENCRYPTION": "ssl",
                "MAIL_USERNAME": USER,
                "MAIL_PASSWORD": PASSWORD,
                "MAIL_FROM_ADDRESS": "chaperone@example.com",
                "MAIL_FROM_NAME": "Chaperone Bot",
                "CHAPERONE_ALERT_RECIPIENTS": "ops@example.com, dev@example.com",
            },
            tmp_path,
        )
        clock = ManualClock()
        channel = MailChannel.from_settings(
            channel_settings(MailChannel, app=settings, store=MemoryStore(clock), clock=clock)
        )
        assert repr(channel) == (
            "<MailChannel ssl://smtp.example.com:2525 from=chaperone@example.com to=2 recipient(s)>"
        )
        assert channel.recipients == RECIPIENTS
        assert PASSWORD not in repr(channel)

    def test_chaperone_variables_win_over_mail_variables(self, tmp_path: Path) -> None:
        """CHAPERONE_MAIL_HOST overrides MAIL_HOST (the channel's own prefix is more
        specific than the application's mail settings).
        """
        settings = load_settings(
            {
                "MAIL_HOST": "smtp.example.com",
                "CHAPERONE_MAIL_HOST": "relay.example.com",
                "MAIL_FROM_ADDRESS": "chaperone@example.com",
                "CHAPERONE_ALERT_RECIPIENTS": "ops@example.com",
            },
            tmp_path,
        )
        clock = ManualClock()
        channel = MailChannel.from_settings(
            channel_settings(MailChannel, app=settings, store=MemoryStore(clock), clock=clock)
        )
        assert "relay.example.com:587" in repr(channel)

    def test_missing_host_names_mail_host(self, tmp_path: Path) -> None:
        """With no host at all, the error names MAIL_HOST and the other ways to set it."""
        settings = load_settings(
            {
                "MAIL_FROM_ADDRESS": "chaperone@example.com",
                "CHAPERONE_ALERT_RECIPIENTS": "ops@example.com",
            },
            tmp_path,
        )
        clock = ManualClock()
        with pytest.raises(ConfigError) as caught:
            MailChannel.from_settings(
                channel_settings(MailChannel, app=settings, store=MemoryStore(clock), clock=clock)
            )
        message = str(caught.value)
        assert message.startswith("MAIL_HOST (from not set): is required")
        assert "CHAPERONE_MAIL_HOST" in message
        assert "[channels.mail]" in message

    def test_no_recipients_anywhere_names_alert_recipients(self, tmp_path: Path) -> None:
        """No recipients is an error at start-up naming CHAPERONE_ALERT_RECIPIENTS."""
        settings = load_settings(
            {"MAIL_HOST": "smtp.example.com", "MAIL_FROM_ADDRESS": "chaperone@example.com"},
            tmp_path,
        )
        clock = ManualClock()
        with pytest.raises(ConfigError) as caught:
            MailChannel.from_settings(
                channel_settings(MailChannel, app=settings, store=MemoryStore(clock), clock=clock)
            )
        assert caught.value.problems[0].key == "CHAPERONE_ALERT_RECIPIENTS"


class TestReadme:
    """The README's example configuration works as written."""

    def test_toml_example(self, tmp_path: Path) -> None:
        """The ``[channels.mail]`` table of the README, with the password from the
        environment, builds the channel it describes.
        """
        readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
        [toml] = re.findall(r"```toml\n(.*?)```", readme, flags=re.DOTALL)
        (tmp_path / "chaperone.toml").write_text(toml, encoding="utf-8")
        settings = load_settings({"MAIL_PASSWORD": PASSWORD}, tmp_path)
        clock = ManualClock()
        channel = MailChannel.from_settings(
            channel_settings(MailChannel, app=settings, store=MemoryStore(clock), clock=clock)
        )
        assert repr(channel) == (
            "<MailChannel tls://smtp.example.com:587 from=alerts@example.com to=2 recipient(s)>"
        )


class TestSettingsValues:
    """Defaults and the forms each setting accepts."""

    base: dict[str, Any] = {  # noqa: RUF012 - read only
        "host": "smtp.example.com",
        "from_address": "chaperone@example.com",
        "recipients": "ops@example.com",
    }

    @pytest.mark.parametrize(
        ("values", "shown"),
        [
            ({}, "tls://smtp.example.com:587"),
            ({"encryption": "TLS"}, "tls://smtp.example.com:587"),
            ({"encryption": "starttls"}, "tls://smtp.example.com:587"),
            ({"encryption": "ssl"}, "ssl://smtp.example.com:465"),
            ({"encryption": "tls", "port": 465}, "ssl://smtp.example.com:465"),
            ({"encryption": "none"}, "none://smtp.example.com:587"),
            ({"encryption": "null", "port": "25"}, "none://smtp.example.com:25"),
        ],
    )
    def test_encryption_and_port(self, values: dict[str, Any], shown: str) -> None:
        """STARTTLS on 587 by default; ssl on 465; 'tls' on port 465 means TLS from the
        start (as Laravel reads it); 'null' (Laravel's .env) means none.
        """
        assert f"<MailChannel {shown} " in repr(build({**self.base, **values}))

    def test_app_recipients_when_the_channel_has_none(self) -> None:
        """Without its own list the channel mails CHAPERONE_ALERT_RECIPIENTS."""
        values = {key: value for key, value in self.base.items() if key != "recipients"}
        channel = build(values, recipients=RECIPIENTS)
        assert channel.recipients == RECIPIENTS

    def test_own_recipients_win_and_are_deduplicated(self) -> None:
        """The channel's (or route's) own recipients replace the application's."""
        channel = build(
            {**self.base, "recipients": "dba@example.com, DBA2@example.com,dba@example.com"},
            recipients=RECIPIENTS,
        )
        assert channel.recipients == ("dba@example.com", "DBA2@example.com")

    def test_ca_file_without_certificates(self, tmp_path: Path) -> None:
        """A ca_file holding no certificate fails at start-up, naming ca_file."""
        empty = tmp_path / "empty.pem"
        empty.write_text("not a certificate\n")
        with pytest.raises(ConfigError, match="ca_file"):
            build({**self.base, "ca_file": str(empty)})

    def test_encryption_enum_values(self) -> None:
        """The three encryption modes are the seed's words."""
        assert [mode.value for mode in Encryption] == ["tls", "ssl", "none"]


class TestPasswordWithoutEncryption:
    """A password never crosses the network in clear text unless a setting says so."""

    REMOTE: Mapping[str, str] = {
        "MAIL_HOST": "smtp.example.com",
        "MAIL_ENCRYPTION": "none",
        "MAIL_USERNAME": USER,
        "MAIL_PASSWORD": PASSWORD,
        "MAIL_FROM_ADDRESS": "chaperone@example.com",
        "CHAPERONE_ALERT_RECIPIENTS": "ops@example.com",
    }

    def build_from(self, environ: Mapping[str, str], cwd: Path) -> MailChannel:
        clock = ManualClock()
        settings = load_settings(dict(environ), cwd)
        return MailChannel.from_settings(
            channel_settings(MailChannel, app=settings, store=MemoryStore(clock), clock=clock)
        )

    @pytest.mark.parametrize("encryption", ["none", "null", "NONE"])
    def test_refused_for_a_remote_server(self, tmp_path: Path, encryption: str) -> None:
        """``MAIL_ENCRYPTION=none`` (or Laravel's ``null``) with a password for a server
        elsewhere stops start-up naming MAIL_ENCRYPTION and the setting that would allow
        it, never the password.
        """
        with pytest.raises(ConfigError) as caught:
            self.build_from({**self.REMOTE, "MAIL_ENCRYPTION": encryption}, tmp_path)
        (problem,) = caught.value.problems
        assert (problem.key, problem.source) == ("MAIL_ENCRYPTION", "environment")
        assert problem.message == (
            "is none, so the password would cross the network to smtp.example.com in clear "
            "text; use tls or ssl, or set CHAPERONE_MAIL_ALLOW_UNENCRYPTED_PASSWORD=true if "
            "that network is trusted"
        )
        assert not find_secrets(caught.value, [PASSWORD])

    @pytest.mark.parametrize(
        "allow",
        [
            {"CHAPERONE_MAIL_ALLOW_UNENCRYPTED_PASSWORD": "true"},
            {"CHAPERONE_MAIL_ALLOW_UNENCRYPTED_PASSWORD": "yes"},
        ],
    )
    def test_allowed_by_the_setting(self, tmp_path: Path, allow: dict[str, str]) -> None:
        """CHAPERONE_MAIL_ALLOW_UNENCRYPTED_PASSWORD=true lets it through."""
        channel = self.build_from({**self.REMOTE, **allow}, tmp_path)
        assert repr(channel).startswith("<MailChannel none://smtp.example.com:587 ")

    def test_allowed_from_toml(self) -> None:
        """``allow_unencrypted_password = true`` in ``[channels.mail]`` does the same."""
        values = {
            "host": "10.1.2.3",
            "encryption": "none",
            "username": USER,
            "password": PASSWORD,
            "from_address": "chaperone@example.com",
            "recipients": ["ops@example.com"],
        }
        with pytest.raises(ConfigError, match="CHAPERONE_MAIL_ALLOW_UNENCRYPTED_PASSWORD=true"):
            build(values)
        build({**values, "allow_unencrypted_password": True})

    def test_the_setting_must_be_a_boolean(self, tmp_path: Path) -> None:
        """A value that is not true or false is an error naming the variable."""
        environ = {**self.REMOTE, "CHAPERONE_MAIL_ALLOW_UNENCRYPTED_PASSWORD": "please"}
        with pytest.raises(ConfigError, match="CHAPERONE_MAIL_ALLOW_UNENCRYPTED_PASSWORD"):
            self.build_from(environ, tmp_path)

    @pytest.mark.parametrize("host", ["127.0.0.1", "127.9.8.7", "localhost", "::1", "[::1]"])
    def test_allowed_on_this_machine(self, tmp_path: Path, host: str) -> None:
        """A server on the loopback interface never puts the password on a network."""
        self.build_from({**self.REMOTE, "MAIL_HOST": host}, tmp_path)

    @pytest.mark.parametrize("host", ["10.0.0.1", "localhost.example.com", "::2", "mail"])
    def test_refused_anywhere_else(self, tmp_path: Path, host: str) -> None:
        """A private address or a name that merely starts like localhost is not this
        machine.
        """
        with pytest.raises(ConfigError, match="MAIL_ENCRYPTION"):
            self.build_from({**self.REMOTE, "MAIL_HOST": host}, tmp_path)

    def test_no_password_no_question(self, tmp_path: Path) -> None:
        """Without a login, a plain connection to a remote server is allowed."""
        environ = {
            key: value
            for key, value in self.REMOTE.items()
            if key not in {"MAIL_USERNAME", "MAIL_PASSWORD"}
        }
        self.build_from(environ, tmp_path)


class TestPlainDelivery:
    """One message per alert, to every recipient, as multipart text and HTML."""

    def test_one_message_to_all_recipients(self, plain_server: SmtpServer) -> None:
        """The alert arrives once, addressed to both recipients, from the sender."""
        outcome = send(build(settings_for(plain_server, from_name="Chaperone Bot")))
        assert outcome.kind is OutcomeKind.DELIVERED, outcome.detail
        assert outcome.detail.startswith("SMTP 250, accepted for 2 recipients")
        [received] = plain_server.received
        assert received.rcpt_tos == RECIPIENTS
        assert received.mail_from == "chaperone@example.com"
        assert received.subject == "[Chaperone Alert] Job Stuck: App\\Jobs\\ProcessLargeDataset"
        assert received.message["From"] == "Chaperone Bot <chaperone@example.com>"
        assert "View Job Details: https://app.example.com/chaperone/jobs/" in received.text()
        assert ">View Job Details</a>" in received.html()
        assert not received.secure

    def test_non_ascii_alert(self, plain_server: SmtpServer) -> None:
        """Non-ASCII text in the subject and body arrives intact."""
        alert = Alert(
            type="job_stuck",
            key="k",
            headline="Job Stuck",
            title="Job Stuck: Überweisung 🚨 ジョブ",
            summary="Ünïcødé — ✓",
            occurred_at=datetime(2024, 1, 15, tzinfo=UTC),
        )
        outcome = send(build(settings_for(plain_server)), alert)
        assert outcome.ok, outcome.detail
        [received] = plain_server.received
        assert received.subject == "[Chaperone Alert] Job Stuck: Überweisung 🚨 ジョブ"
        assert "Ünïcødé — ✓" in received.text()

    def test_some_recipients_refused(self, plain_server: SmtpServer) -> None:
        """When the server refuses some recipients the others still get the alert, and
        the outcome says who was refused.
        """
        plain_server.refused = {"dev@example.com": "550 5.1.1 No such user"}
        with capture_all_logs() as logs:
            outcome = send(build(settings_for(plain_server)))
        assert outcome.ok
        assert "accepted for 1 recipient" in outcome.detail
        assert "refused: dev@example.com (550 5.1.1 No such user)" in outcome.detail
        assert plain_server.received[0].rcpt_tos == ("ops@example.com",)
        assert any(entry["event"] == "some recipients refused the alert" for entry in logs)


class TestClassification:
    """SMTP 4xx, refused connections and timeouts are transient; 5xx permanent."""

    @pytest.mark.parametrize(
        ("reply", "kind"),
        [
            ("451 4.3.0 Try again later", OutcomeKind.TRANSIENT),
            ("452 4.3.1 Insufficient system storage", OutcomeKind.TRANSIENT),
            ("550 5.7.1 Message rejected as spam", OutcomeKind.PERMANENT),
            ("554 5.6.0 Message content rejected", OutcomeKind.PERMANENT),
        ],
    )
    def test_data_replies(self, plain_server: SmtpServer, reply: str, kind: OutcomeKind) -> None:
        """The reply to DATA decides: 4xx transient, 5xx permanent, code in the detail."""
        plain_server.reply = always(reply)
        outcome = send(build(settings_for(plain_server)))
        assert outcome.kind is kind
        assert outcome.status_code == int(reply[:3])
        assert outcome.detail == f"SMTP {reply[:3]} at DATA: {reply[4:]}"

    @pytest.mark.parametrize(
        ("reply", "kind"),
        [
            ("450 4.2.0 Mailbox busy", OutcomeKind.TRANSIENT),
            ("550 5.1.1 No such user here", OutcomeKind.PERMANENT),
        ],
    )
    def test_every_recipient_refused(
        self, plain_server: SmtpServer, reply: str, kind: OutcomeKind
    ) -> None:
        """All recipients refused: 4xx transient, 5xx permanent; nothing was sent."""
        plain_server.rcpt_reply = reply
        outcome = send(build(settings_for(plain_server)))
        assert outcome.kind is kind
        assert outcome.detail == f"SMTP {reply[:3]}: every recipient refused: {reply[4:]}"
        assert plain_server.received == []

    def test_connection_refused(self) -> None:
        """Nobody listening on the port: transient (the server may be restarting)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        outcome = send(build({**settings_for_port(port)}))
        assert outcome.kind is OutcomeKind.TRANSIENT
        assert "127.0.0.1" in outcome.detail

    def test_silent_server_times_out(self) -> None:
        """A server that accepts the connection but never greets: transient, within the
        send's timeout.
        """
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            channel = build(settings_for_port(silent.getsockname()[1]))
            started = time.monotonic()
            outcome = send(channel, timeout=0.5)
            elapsed = time.monotonic() - started
        assert outcome.kind is OutcomeKind.TRANSIENT
        assert "no answer" in outcome.detail
        assert elapsed < 3


def settings_for_port(port: int) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "encryption": "none",
        "from_address": "chaperone@example.com",
        "recipients": list(RECIPIENTS),
    }


class TestTls:
    """Certificates are verified by default; STARTTLS and implicit TLS both work."""

    def test_starttls_with_ca_file_and_auth(self, certificates: Certificates) -> None:
        """STARTTLS against the test CA, then AUTH: delivered over TLS as the user."""
        server = SmtpServer(starttls=certificates.server_context, users={USER: PASSWORD})
        with server.running():
            outcome = send(
                build(
                    settings_for(
                        server,
                        encryption="tls",
                        ca_file=str(certificates.ca_file),
                        username=USER,
                        password=PASSWORD,
                    )
                )
            )
        assert outcome.ok, outcome.detail
        [received] = server.received
        assert received.secure
        assert received.login == USER

    def test_untrusted_certificate_fails_permanently(self, certificates: Certificates) -> None:
        """Without the CA the certificate is not trusted: a permanent failure naming the
        setting to fix, and nothing is sent (not even the password).
        """
        server = SmtpServer(starttls=certificates.server_context, users={USER: PASSWORD})
        with server.running():
            outcome = send(
                build(settings_for(server, encryption="tls", username=USER, password=PASSWORD))
            )
        assert outcome.kind is OutcomeKind.PERMANENT
        assert outcome.detail.startswith(
            f"TLS certificate of 127.0.0.1:{server.port} not verified at STARTTLS"
        )
        assert "trust its CA with channels.mail.ca_file" not in outcome.detail
        assert "trust its CA with CHAPERONE_MAIL_CA_FILE" in outcome.detail
        assert server.transactions == 0

    def test_verification_can_be_turned_off(self, certificates: Certificates) -> None:
        """verify_certificates = false accepts the self-signed certificate."""
        server = SmtpServer(starttls=certificates.server_context)
        with server.running():
            outcome = send(
                build(settings_for(server, encryption="tls", verify_certificates="false"))
            )
        assert outcome.ok, outcome.detail
        assert server.received[0].secure

    def test_implicit_tls(self, certificates: Certificates) -> None:
        """encryption = ssl speaks TLS from the first byte."""
        server = SmtpServer(implicit_tls=certificates.server_context)
        with server.running():
            outcome = send(
                build(settings_for(server, encryption="ssl", ca_file=str(certificates.ca_file)))
            )
        assert outcome.ok, outcome.detail
        assert server.received[0].secure

    def test_starttls_required(self, plain_server: SmtpServer) -> None:
        """encryption = tls against a server without STARTTLS: permanent, nothing sent
        in the clear.
        """
        outcome = send(build(settings_for(plain_server, encryption="tls")))
        assert outcome.kind is OutcomeKind.PERMANENT
        assert "does not offer STARTTLS" in outcome.detail
        assert plain_server.transactions == 0

    def test_implicit_tls_untrusted(self, certificates: Certificates) -> None:
        """encryption = ssl verifies the certificate too: without the CA, permanent."""
        server = SmtpServer(implicit_tls=certificates.server_context)
        with server.running():
            outcome = send(build(settings_for(server, encryption="ssl")))
        assert outcome.kind is OutcomeKind.PERMANENT
        assert outcome.detail.startswith(
            f"TLS certificate of 127.0.0.1:{server.port} not verified at connect"
        )
        assert server.transactions == 0

    def test_ssl_against_a_plain_server(self, plain_server: SmtpServer) -> None:
        """encryption = ssl against a plain SMTP port: permanent, with a hint at the
        encryption setting.
        """
        outcome = send(build(settings_for(plain_server, encryption="ssl")), timeout=2)
        assert outcome.kind is OutcomeKind.PERMANENT
        assert "check the encryption" in outcome.detail
        assert plain_server.transactions == 0

    def test_wrong_password(self, certificates: Certificates) -> None:
        """A refused login (535) is permanent, and the password shows nowhere."""
        server = SmtpServer(starttls=certificates.server_context, users={USER: "other"})
        with server.running(), capture_all_logs() as logs:
            outcome = send(
                build(
                    settings_for(
                        server,
                        encryption="tls",
                        ca_file=str(certificates.ca_file),
                        username=USER,
                        password=PASSWORD,
                    )
                )
            )
        assert outcome.kind is OutcomeKind.PERMANENT
        assert outcome.status_code == 535
        assert outcome.detail.startswith("SMTP 535 at AUTH:")
        assert "check the username and password" in outcome.detail
        assert not find_secrets([outcome.detail, repr(outcome), logs], [PASSWORD])
        assert server.transactions == 0


class _Route:
    """A route plugin: job alerts go to the DBAs' own list."""

    @hookimpl
    def chaperone_route(self, alert: Alert, runtime: Runtime) -> Sequence[Destination]:
        return [
            Destination(channel="mail", route="dba", settings={"recipients": ["dba@example.com"]})
        ]


class TestThroughTheCore:
    """The core's delivery around the channel: retries, and a route's recipients."""

    def runtime(self, server: SmtpServer, **plugins: Any) -> Chaperone:
        values = settings_for(server)
        del values["recipients"]
        settings = Settings(
            channels=("mail",),
            channel_sections={"mail": values},
            recipients=RECIPIENTS,
        )
        return Chaperone(settings, clock=ManualClock(), plugins=PluginHost(**plugins))

    def test_transient_reply_is_retried(self, plain_server: SmtpServer) -> None:
        """451 on the first try, then 250: delivered on the second attempt."""
        plain_server.reply = first_try_fails()
        with self.runtime(plain_server) as runtime:
            report = runtime.send(ALERT)
        [result] = report.deliveries
        assert result.ok
        assert result.attempts == 2
        assert [item.reply[:3] for item in plain_server.received] == ["451", "250"]

    def test_permanent_reply_is_not_retried(self, plain_server: SmtpServer) -> None:
        """550: failed after exactly one attempt."""
        plain_server.reply = always("550 5.7.1 Rejected")
        with self.runtime(plain_server) as runtime:
            report = runtime.send(ALERT)
        [result] = report.deliveries
        assert not result.ok
        assert result.attempts == 1
        assert plain_server.transactions == 1

    def test_route_recipients(self, plain_server: SmtpServer) -> None:
        """A route's own recipients replace CHAPERONE_ALERT_RECIPIENTS for its alerts."""
        with self.runtime(plain_server, extra=[("dba-route", _Route())]) as runtime:
            report = runtime.send(ALERT)
        assert [result.ok for result in report.deliveries] == [True]
        assert plain_server.received[0].rcpt_tos == ("dba@example.com",)

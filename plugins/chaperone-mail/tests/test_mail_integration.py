r"""End to end: the real ``chaperone`` CLI in subprocesses, each with a clean environment
and its own SQLite store, sending to real SMTP servers on 127.0.0.1.

Every run is independent, so one fixture starts them all at once and the tests read
their results: plain SMTP, STARTTLS with AUTH (trusted through ``ca_file``), an
untrusted certificate, ``451`` then ``250``, ``550``, a refused password, missing
settings, and the plugin disabled.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from mail_smtp_server import (
    Certificates,
    Received,
    SmtpServer,
    always,
    first_try_fails,
    make_certificates,
)

from chaperone.testing import cli
from chaperone.testing.cli import CliResult, Invocation, run_cli, run_many

PASSWORD = "Sup3r-Secret-SMTP-Passw0rd"  # noqa: S105 - the loopback server's test password
USER = "chaperone@example.com"
RECIPIENTS = ("ops@example.com", "dev@example.com")
APP_URL = "https://app.example.com"
SUBJECTS = {
    "stuck": "[Chaperone Alert] Job Stuck: datasets.process_large",
    "timeout": "[Chaperone Alert] Job Timeout: reports.build_monthly",
    "circuit-breaker": "[Chaperone Alert] Circuit Breaker Opened: payment-gateway",
    "resource": "[Chaperone Alert] Resource Violation: feeds.import_customers",
}
SEND = ("test-alerts", "--channel", "mail", "--json")


@attrs.frozen
class Run(CliResult):
    """One finished ``chaperone`` run, and the folder it ran in."""

    folder: Path

    def rows(self) -> list[dict[str, Any]]:
        """The JSON rows ``test-alerts --json`` printed."""
        rows = self.json()
        assert isinstance(rows, list)
        return rows

    def stored_bytes(self) -> bytes:
        """Everything the run left on disk (the SQLite store and its journals)."""
        return b"".join(path.read_bytes() for path in self.folder.rglob("*") if path.is_file())


@attrs.frozen
class Scenario:
    """A command, its environment, and the server it talks to (if any)."""

    args: tuple[str, ...]
    env: Mapping[str, str]
    server: SmtpServer | None = None


def clean_environ(folder: Path, **variables: str) -> dict[str, str]:
    """The clean environment, less every MAIL_* variable too (the channel reads them)."""
    return cli.clean_environ(folder, without=("MAIL_",), **variables)


def mail_env(server: SmtpServer, **variables: str) -> dict[str, str]:
    """The MAIL_* settings that point the channel at ``server``."""
    return {
        "MAIL_HOST": "127.0.0.1",
        "MAIL_PORT": str(server.port),
        "MAIL_ENCRYPTION": "none",
        "MAIL_FROM_ADDRESS": "alerts@example.com",
        "MAIL_FROM_NAME": "Chaperone",
        "CHAPERONE_ALERT_RECIPIENTS": ",".join(RECIPIENTS),
        "CHAPERONE_APP_URL": APP_URL,
        "CHAPERONE_DELIVERY_MAX_BACKOFF": "0.1s",
        **variables,
    }


def tls_env(server: SmtpServer, certificates: Certificates, **variables: str) -> dict[str, str]:
    """STARTTLS trusting the test CA, and AUTH as USER."""
    return mail_env(
        server,
        MAIL_ENCRYPTION="tls",
        CHAPERONE_MAIL_CA_FILE=str(certificates.ca_file),
        MAIL_USERNAME=USER,
        MAIL_PASSWORD=PASSWORD,
        **variables,
    )


def run_all(scenarios: Mapping[str, Scenario], folders: Mapping[str, Path]) -> dict[str, Run]:
    """Run every scenario at once; wait for each (60 s at most)."""
    invocations = {
        name: Invocation(scenario.args, folders[name], clean_environ(folders[name], **scenario.env))
        for name, scenario in scenarios.items()
    }
    return {
        name: Run(**attrs.asdict(result, recurse=False), folder=folders[name])
        for name, result in run_many(invocations, parallel=None).items()
    }


@attrs.frozen
class Results:
    """Every scenario's run and server."""

    runs: Mapping[str, Run]
    servers: Mapping[str, SmtpServer]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Results]:
    """Start a server per scenario, run every scenario's CLI command concurrently."""
    certificates = make_certificates(tmp_path_factory.mktemp("tls"))
    servers = {
        "plain": SmtpServer(),
        "tls": SmtpServer(starttls=certificates.server_context, users={USER: PASSWORD}),
        "untrusted": SmtpServer(starttls=certificates.server_context, users={USER: PASSWORD}),
        "flaky": SmtpServer(reply=first_try_fails("451 4.3.0 Try again later")),
        "rejecting": SmtpServer(reply=always("550 5.7.1 Message rejected")),
        "bad_password": SmtpServer(
            starttls=certificates.server_context, users={USER: "another-password"}
        ),
    }
    untrusted = tls_env(servers["untrusted"], certificates)
    del untrusted["CHAPERONE_MAIL_CA_FILE"]
    no_recipients = mail_env(servers["plain"])
    del no_recipients["CHAPERONE_ALERT_RECIPIENTS"]
    no_host = mail_env(servers["plain"])
    del no_host["MAIL_HOST"]
    scenarios = {
        "plain": Scenario(SEND, mail_env(servers["plain"]), servers["plain"]),
        "tls": Scenario(
            ("test-alerts", "--channel", "mail"),
            tls_env(servers["tls"], certificates),
            servers["tls"],
        ),
        "untrusted": Scenario(SEND, untrusted, servers["untrusted"]),
        "flaky": Scenario(SEND, mail_env(servers["flaky"]), servers["flaky"]),
        "rejecting": Scenario(SEND, mail_env(servers["rejecting"]), servers["rejecting"]),
        "bad_password": Scenario(
            SEND, tls_env(servers["bad_password"], certificates), servers["bad_password"]
        ),
        "no_recipients": Scenario(SEND, no_recipients),
        "no_host": Scenario(SEND, no_host),
        "config_show": Scenario(
            ("config", "show", "--json"),
            tls_env(servers["tls"], certificates, CHAPERONE_ALERT_CHANNELS="mail"),
        ),
        "disabled": Scenario(
            ("config", "check"),
            mail_env(
                servers["plain"],
                CHAPERONE_ALERT_CHANNELS="mail",
                CHAPERONE_DISABLE_PLUGINS="mail",
            ),
        ),
        "plugins": Scenario(("plugins", "--json"), {}),
    }
    folders = {name: tmp_path_factory.mktemp(name) for name in scenarios}
    for server in servers.values():
        server.start()
    try:
        yield Results(run_all(scenarios, folders), servers)
    finally:
        for server in servers.values():
            server.stop()


def by_subject(received: list[Received]) -> dict[str, Received]:
    return {item.subject: item for item in received}


def assert_no_password(run: Run) -> None:
    """The password is in no output and nowhere on disk."""
    assert PASSWORD not in run.stdout, str(run)
    assert PASSWORD not in run.stderr, str(run)
    assert PASSWORD.encode() not in run.stored_bytes()


class TestDelivered:
    """``chaperone test-alerts --channel mail`` delivers all four alert types."""

    def test_plain_smtp(self, results: Results) -> None:
        """Four messages, one per alert type, each to both recipients, exit 0."""
        run = results.runs["plain"]
        assert run.returncode == 0, str(run)
        rows = run.rows()
        assert [row["sample"] for row in rows] == list(SUBJECTS)
        assert all(row["status"] == "delivered" and row["attempts"] == 1 for row in rows)
        received = results.servers["plain"].received
        assert sorted(item.subject for item in received) == sorted(SUBJECTS.values())
        assert all(item.rcpt_tos == RECIPIENTS for item in received)
        assert all(item.mail_from == "alerts@example.com" for item in received)

    def test_bodies_and_links(self, results: Results) -> None:
        """Each body follows the seed; job alerts link to their job, the breaker not."""
        rows = {row["sample"]: row for row in results.runs["plain"].rows()}
        received = by_subject(results.servers["plain"].received)
        stuck = received[SUBJECTS["stuck"]]
        link = f"{APP_URL}/chaperone/jobs/{rows['stuck']['key']}"
        text = stuck.text()
        assert text.startswith("Job Stuck Alert\nSeverity: error · Type: job_stuck\n")
        assert "Stuck Duration: 30 minutes\n" in text
        assert f"View Job Details: {link}\n" in text
        assert f'<a href="{link}"' in stuck.html()
        timeout_link = f"{APP_URL}/chaperone/jobs/{rows['timeout']['key']}"
        assert f"View Job Details: {timeout_link}" in received[SUBJECTS["timeout"]].text()
        resource = received[SUBJECTS["resource"]].text()
        assert "Severity: warning · Type: resource_violation" in resource
        assert f"{APP_URL}/chaperone/jobs/" in resource
        breaker = received[SUBJECTS["circuit-breaker"]]
        assert "Severity: critical · Type: circuit_breaker" in breaker.text()
        assert "View Job Details" not in breaker.text()
        assert "View Job Details" not in breaker.html()

    def test_starttls_and_auth(self, results: Results) -> None:
        """STARTTLS trusting the CA in CHAPERONE_MAIL_CA_FILE, then AUTH: all four
        delivered over TLS as the user; the password shows nowhere.
        """
        run = results.runs["tls"]
        assert run.returncode == 0, str(run)
        assert "4 delivered, 0 failed" in run.stdout
        received = results.servers["tls"].received
        assert sorted(item.subject for item in received) == sorted(SUBJECTS.values())
        assert all(item.secure and item.login == USER for item in received)
        assert_no_password(run)

    def test_transient_reply_retried(self, results: Results) -> None:
        """451 to each first try: every alert delivered on its second attempt."""
        run = results.runs["flaky"]
        assert run.returncode == 0, str(run)
        assert [row["attempts"] for row in run.rows()] == [2, 2, 2, 2]
        replies = [item.reply[:3] for item in results.servers["flaky"].received]
        assert sorted(replies) == ["250"] * 4 + ["451"] * 4


class TestFailed:
    """Failures are reported, permanent ones not retried, and the exit code is 1."""

    def test_untrusted_certificate(self, results: Results) -> None:
        """Certificates are verified by default: without the CA nothing is sent, each
        alert fails once, and the reason names the setting to fix.
        """
        run = results.runs["untrusted"]
        assert run.returncode == 1, str(run)
        rows = run.rows()
        assert [row["status"] for row in rows] == ["failed"] * 4
        assert [row["attempts"] for row in rows] == [1] * 4
        assert all("not verified" in row["detail"] for row in rows)
        assert all("CHAPERONE_MAIL_CA_FILE" in row["detail"] for row in rows)
        assert results.servers["untrusted"].transactions == 0
        assert_no_password(run)

    def test_permanent_reply_not_retried(self, results: Results) -> None:
        """550: each alert tried exactly once."""
        run = results.runs["rejecting"]
        assert run.returncode == 1, str(run)
        rows = run.rows()
        assert [(row["status"], row["attempts"]) for row in rows] == [("failed", 1)] * 4
        assert all(row["detail"].startswith("SMTP 550") for row in rows)
        assert results.servers["rejecting"].transactions == 4

    def test_refused_password(self, results: Results) -> None:
        """A refused login (535) fails each alert once; the password shows nowhere."""
        run = results.runs["bad_password"]
        assert run.returncode == 1, str(run)
        rows = run.rows()
        assert [(row["status"], row["attempts"]) for row in rows] == [("failed", 1)] * 4
        assert all(row["detail"].startswith("SMTP 535 at AUTH") for row in rows)
        assert results.servers["bad_password"].transactions == 0
        assert_no_password(run)


class TestConfiguration:
    """Bad or missing settings stop start-up (exit 2) naming what to set."""

    def test_no_recipients(self, results: Results) -> None:
        """No recipients anywhere: exit 2 naming CHAPERONE_ALERT_RECIPIENTS."""
        run = results.runs["no_recipients"]
        assert run.returncode == 2, str(run)
        assert "CHAPERONE_ALERT_RECIPIENTS" in run.stderr

    def test_no_host(self, results: Results) -> None:
        """No MAIL_HOST: exit 2 naming it."""
        run = results.runs["no_host"]
        assert run.returncode == 2, str(run)
        assert "MAIL_HOST" in run.stderr

    def test_config_show_masks_the_password(self, results: Results) -> None:
        """``config show`` lists the mail settings by their variables, password masked."""
        run = results.runs["config_show"]
        assert run.returncode == 0, str(run)
        rows = {row["setting"]: row for row in run.json()}
        assert rows["channels.mail.host"]["env"] == "MAIL_HOST"
        assert rows["channels.mail.password"]["value"] == "********"
        assert_no_password(run)


class TestDiscovery:
    """The installed plugin is found; disabled, config naming it says what to install."""

    def test_listed(self, results: Results) -> None:
        """``chaperone plugins --json`` lists the plugin ``mail`` with its channel."""
        run = results.runs["plugins"]
        assert run.returncode == 0, str(run)
        plugins = {plugin["name"]: plugin for plugin in run.json()}
        assert plugins["mail"]["channels"] == ["mail"]
        assert plugins["mail"]["distribution"] == "chaperone-mail"

    def test_disabled_names_the_package(self, results: Results) -> None:
        """With the plugin disabled, CHAPERONE_ALERT_CHANNELS=mail fails naming
        chaperone-mail (the same path as when it is not installed).
        """
        run = results.runs["disabled"]
        assert run.returncode == 2, str(run)
        assert "pip install chaperone-mail" in run.stdout + run.stderr


class TestConfigCheck:
    """``chaperone config check`` on mail settings, one problem a line."""

    def check(self, tmp_path: Path, **variables: str) -> CliResult:
        return run_cli(
            "config",
            "check",
            cwd=tmp_path,
            env=clean_environ(tmp_path, CHAPERONE_ALERT_CHANNELS="log,mail", **variables),
        )

    def test_password_without_encryption_to_a_remote_server(self, tmp_path: Path) -> None:
        """``MAIL_ENCRYPTION=none`` with a password for a remote server exits 2 on one
        line naming MAIL_ENCRYPTION and the setting that allows it, without the password.
        """
        result = self.check(
            tmp_path,
            MAIL_HOST="smtp.example.com",
            MAIL_ENCRYPTION="none",
            MAIL_USERNAME=USER,
            MAIL_PASSWORD=PASSWORD,
            MAIL_FROM_ADDRESS="alerts@example.com",
            CHAPERONE_ALERT_RECIPIENTS="ops@example.com",
        )
        assert result.returncode == 2, result.stderr
        problems = [line for line in result.stderr.splitlines() if line.startswith("  ")]
        assert problems == [
            "  MAIL_ENCRYPTION (from environment): is none, so the password would cross the "
            "network to smtp.example.com in clear text; use tls or ssl, or set "
            "CHAPERONE_MAIL_ALLOW_UNENCRYPTED_PASSWORD=true if that network is trusted"
        ]
        assert PASSWORD not in result.stdout + result.stderr

    def test_a_bad_recipient_list_is_reported_once(self, tmp_path: Path) -> None:
        """A recipient list that does not parse is one problem, not followed by the mail
        channel's complaint that it then has no recipients; the channel's other problems
        are still listed beside it.
        """
        result = self.check(
            tmp_path,
            MAIL_HOST="smtp.example.com",
            MAIL_FROM_ADDRESS="alerts@example.com",
            CHAPERONE_ALERT_RECIPIENTS="ops@example.com,oncall",
            CHAPERONE_MAIL_HOTS="smtp.example.com",
        )
        assert result.returncode == 2, result.stderr
        problems = [line for line in result.stderr.splitlines() if line.startswith("  ")]
        assert problems == [
            "  CHAPERONE_ALERT_RECIPIENTS (from environment): 'oncall' is not an e-mail address",
            "  CHAPERONE_MAIL_HOTS (from environment): channel 'mail' has no setting 'hots'; "
            "did you mean CHAPERONE_MAIL_HOST?",
        ]

"""A secret webhook URL never shows: not on standard output, not on standard error, not in
the history, whatever the server does (rejects the request quoting the URL back, fails
for ever, refuses the connection, never answers) and whichever log format is in force.

The URL carries a distinctive token in its path, as Slack's and Discord's do; each command
runs as a real ``chaperone`` process, and every byte it printed is searched for the token.
Needs the fixture plugin chaperone-testwebhook installed (see ``helpers.cli.INSTALL_LINE``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import attrs
import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:  # until pytest's configuration says pythonpath = ["tests"]
    sys.path.insert(0, _TESTS)

from chaperone.testing.servers import RecordingServer, Reply, unused_port  # noqa: E402
from helpers.cli import (  # noqa: E402
    CliResult,
    Invocation,
    clean_environ,
    require_fixture_plugins,
    run_cli,
    run_many,
    stored_history,
)

TOKEN = "SECRET-TOKEN-abc123"  # noqa: S105 - the secret the tests look for
SECRET_PATH = f"/hook/{TOKEN}"
TELLTALES = (TOKEN, "TOKEN-abc123", SECRET_PATH)
"""Any of these in any output means the secret leaked."""
SLACK_URL = "https://hooks.slack.com/services/T0/B0/XYZ"
SLACK_TELLTALES = (SLACK_URL, "services/T0/B0/XYZ", "T0/B0/XYZ")
HANG_S = 30.0
"""How long the hanging server holds a request (the client gives up after 1 s)."""

SERVERS = ("rejects-quoting-url", "fails-forever", "refuses", "hangs")


def _leaks(text: str, telltales: tuple[str, ...] = TELLTALES) -> list[str]:
    return [telltale for telltale in telltales if telltale in text]


def _assert_clean(result: CliResult, telltales: tuple[str, ...] = TELLTALES) -> None:
    assert not _leaks(result.stdout, telltales), f"secret on stdout:\n{result}"
    assert not _leaks(result.stderr, telltales), f"secret on stderr:\n{result}"


def _store_bytes(folder: Path) -> bytes:
    """Every byte of the SQLite store's files (the database, and its journal if any)."""
    return b"".join(path.read_bytes() for path in sorted(folder.glob("chaperone.db*")))


def _server(kind: str, stack: ExitStack) -> tuple[str, RecordingServer | None]:
    """Start the server ``kind`` names (none for ``refuses``); return its secret URL."""
    if kind == "refuses":
        return f"http://127.0.0.1:{unused_port()}{SECRET_PATH}", None
    reply = {
        "rejects-quoting-url": Reply.echo(400),
        "fails-forever": Reply.echo(500),
        "hangs": Reply(status=200, hang=HANG_S),
    }[kind]
    server = stack.enter_context(RecordingServer(default=reply))
    return server.url_for(SECRET_PATH), server


# Each server sees both log formats and both output forms, two runs each, so that every
# combination of log format and output form is met across the servers.
_RUNS = {
    "rejects-quoting-url": (("json", False), ("console", True)),
    "fails-forever": (("json", True), ("console", False)),
    "refuses": (("console", False), ("json", True)),
    "hangs": (("console", True), ("json", False)),
}
FAILED_DELIVERIES = 2 * 4 + 2 * 4 + 2 * 4 + 2 * 1
"""Two runs against each server: four samples each, one against the hanging server."""


@attrs.frozen
class Deliveries:
    """test-alerts runs against each misbehaving server, all into one store."""

    folder: Path
    runs: dict[str, dict[str, CliResult]]
    """By server, then by ``<log format>/<plain|json>``."""
    paths: dict[str, list[str]]
    """The path of each request each server (not the refused one) received."""
    history: CliResult
    """history --json of the store, afterwards."""


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deliveries]:
    """Run test-alerts against every kind of server, all at once, then read the history."""
    require_fixture_plugins()
    folder = tmp_path_factory.mktemp("deliveries")
    base = clean_environ(
        folder,
        CHAPERONE_ALERT_CHANNELS="webhook,database,log",
        CHAPERONE_DELIVERY_MAX_ATTEMPTS="2",
        CHAPERONE_DELIVERY_MAX_BACKOFF="0",
        CHAPERONE_LOG_LEVEL="debug",
    )
    with ExitStack() as stack:
        servers: dict[str, RecordingServer] = {}
        invocations: dict[str, Invocation] = {}
        for kind in SERVERS:
            url, server = _server(kind, stack)
            if server is not None:
                servers[kind] = server
            # Only the hanging server needs the short timeout (on a loaded machine it
            # could cut short an answer the others do give), and one sample is enough
            # there: each attempt costs a second.
            env = {
                **base,
                "CHAPERONE_WEBHOOK_URL": url,
                "CHAPERONE_DELIVERY_TIMEOUT": "1" if kind == "hangs" else "10",
            }
            samples = ("stuck",) if kind == "hangs" else ()
            for log_format, as_json in _RUNS[kind]:
                form = "json" if as_json else "plain"
                invocations[f"{kind}/{log_format}/{form}"] = Invocation(
                    ("test-alerts", *samples, *(("--json",) if as_json else ())),
                    folder,
                    {**env, "CHAPERONE_LOG_FORMAT": log_format},
                )
        results = run_many(invocations, parallel=8)
        history = run_cli("history", "--json", "--limit", "1000", cwd=folder, env=base)
        yield Deliveries(
            folder=folder,
            runs={
                kind: {
                    name.split("/", 1)[1]: result
                    for name, result in results.items()
                    if name.startswith(kind + "/")
                }
                for kind in SERVERS
            },
            paths={
                kind: [request.path for request in server.requests]
                for kind, server in servers.items()
            },
            history=history,
        )


@pytest.mark.parametrize("kind", SERVERS)
class TestDeliveryFailures:
    """Whatever the server does, test-alerts never shows the URL."""

    def test_delivery_failed(self, deliveries: Deliveries, kind: str) -> None:
        """Every run exits 1, the webhook failing (so the test saw the failure path)."""
        for result in deliveries.runs[kind].values():
            assert result.returncode == 1, str(result)
            assert "alert delivery failed" in result.stderr

    def test_test_alerts_output_is_clean(self, deliveries: Deliveries, kind: str) -> None:
        """Neither test-alerts nor test-alerts --json prints the secret, in either log
        format.
        """
        for result in deliveries.runs[kind].values():
            _assert_clean(result)


class TestHistory:
    """The history records the failures, and no secret."""

    def test_history_json_is_clean(self, deliveries: Deliveries) -> None:
        """history --json lists every webhook failure and prints no secret."""
        assert deliveries.history.returncode == 0, str(deliveries.history)
        _assert_clean(deliveries.history)
        failed = [
            record
            for record in deliveries.history.json()
            if record["channel"] == "webhook" and record["status"] == "failed"
        ]
        assert len(failed) == FAILED_DELIVERIES

    def test_records_are_clean(self, deliveries: Deliveries) -> None:
        """The records, read straight from the store, hold no secret but say what failed."""
        records = stored_history(deliveries.folder)
        failed = [r for r in records if r["channel"] == "webhook" and r["status"] == "failed"]
        assert len(failed) == FAILED_DELIVERIES
        assert all(r["detail"] for r in failed)
        assert any("HTTP 400" in r["detail"] for r in failed)
        assert any("HTTP 500" in r["detail"] for r in failed)
        assert not _leaks(repr(records))

    def test_store_file_is_clean(self, deliveries: Deliveries) -> None:
        """No byte of the SQLite store spells the secret."""
        stored = _store_bytes(deliveries.folder)
        assert stored
        assert not [telltale for telltale in TELLTALES if telltale.encode() in stored]


class TestServersSawTheSecret:
    """The secret did reach the servers: what is masked is the output, not the URL."""

    def test_servers_were_called_at_the_secret_path(self, deliveries: Deliveries) -> None:
        """Every request went to the secret path; the rejecting server got one per alert
        and run, the failing one two; the hanging one at most two per run (an attempt
        that times out while connecting never reaches it).
        """
        assert {path for paths in deliveries.paths.values() for path in paths} == {SECRET_PATH}
        counts = {kind: len(paths) for kind, paths in deliveries.paths.items()}
        assert counts["rejects-quoting-url"] == 2 * 4
        assert counts["fails-forever"] == 2 * 4 * 2
        assert counts["hangs"] <= 2 * 1 * 2


# -- commands that only read the configuration --------------------------------------------


@pytest.fixture(scope="module")
def readers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CliResult]:
    """config show, config show --json, config check on a bad configuration, and plugins
    --json, with the secret URL configured; and config show with a Slack webhook URL
    given in a .env file.
    """
    require_fixture_plugins()
    folder = tmp_path_factory.mktemp("readers")
    secret_url = f"http://127.0.0.1:{unused_port()}{SECRET_PATH}"
    base = clean_environ(
        folder, CHAPERONE_ALERT_CHANNELS="webhook,database", CHAPERONE_WEBHOOK_URL=secret_url
    )
    bad = {**base, "CHAPERONE_DELIVERY_MAX_ATTEMPTS": "0", "CHAPERONE_ALERT_RATE_LIMIT": "soon"}
    malformed = {**base, "CHAPERONE_WEBHOOK_URL": f"htp:/127.0.0.1{SECRET_PATH}"}
    invocations: dict[str, Invocation] = {}

    def add(name: str, args: tuple[str, ...], env: dict[str, str], log_format: str) -> None:
        invocations[name] = Invocation(args, folder, {**env, "CHAPERONE_LOG_FORMAT": log_format})

    # Each command in one log format; each log format met by more than one command.
    add("show", ("config", "show"), base, "console")
    add("show-json", ("config", "show", "--json"), base, "json")
    add("check-bad", ("config", "check"), bad, "json")
    add("check-malformed", ("config", "check"), malformed, "console")
    add("plugins", ("plugins", "--json"), base, "json")

    slack_folder = tmp_path_factory.mktemp("dotenv")
    (slack_folder / ".env").write_text(
        "CHAPERONE_ALERT_CHANNELS=webhook,database\n"
        f"CHAPERONE_WEBHOOK_URL={SLACK_URL}\n"
        f"CHAPERONE_SLACK_WEBHOOK_URL={SLACK_URL}\n"
        f"CHAPERONE_APP_URL={SLACK_URL}\n"
    )
    slack_env = clean_environ(slack_folder)
    invocations["dotenv/show"] = Invocation(("config", "show"), slack_folder, slack_env)
    invocations["dotenv/show-json"] = Invocation(
        ("config", "show", "--json"), slack_folder, slack_env
    )
    return run_many(invocations)


class TestConfigurationCommands:
    """Commands that show the configuration mask the secret and still say where it is."""

    def test_config_show(self, readers: dict[str, CliResult]) -> None:
        """config show lists the webhook URL setting, masked, with its variable."""
        result = readers["show"]
        assert result.returncode == 0, str(result)
        _assert_clean(result)
        assert "channels.webhook.url" in result.stdout
        assert "CHAPERONE_WEBHOOK_URL" in result.stdout
        assert "********" in result.stdout

    def test_config_show_json(self, readers: dict[str, CliResult]) -> None:
        """config show --json gives the URL's row with the mask for its value."""
        result = readers["show-json"]
        assert result.returncode == 0, str(result)
        _assert_clean(result)
        rows = {row["setting"]: row for row in result.json()}
        assert rows["channels.webhook.url"] == {
            "setting": "channels.webhook.url",
            "env": "CHAPERONE_WEBHOOK_URL",
            "value": "********",
            "source": "environment",
        }

    def test_config_check_of_a_bad_configuration(self, readers: dict[str, CliResult]) -> None:
        """config check on an otherwise-bad configuration names the bad settings and
        not the secret.
        """
        result = readers["check-bad"]
        assert result.returncode == 2, str(result)
        _assert_clean(result)
        assert "CHAPERONE_DELIVERY_MAX_ATTEMPTS" in result.stderr
        assert "CHAPERONE_ALERT_RATE_LIMIT" in result.stderr

    def test_config_check_of_a_malformed_secret(self, readers: dict[str, CliResult]) -> None:
        """A malformed secret URL is reported by its variable, never quoted."""
        result = readers["check-malformed"]
        assert result.returncode == 2, str(result)
        _assert_clean(result)
        assert "CHAPERONE_WEBHOOK_URL (from environment)" in result.stderr

    def test_plugins_json(self, readers: dict[str, CliResult]) -> None:
        """plugins --json lists the webhook plugin and prints no secret."""
        result = readers["plugins"]
        assert result.returncode == 0, str(result)
        _assert_clean(result)
        assert "webhook" in {entry["name"] for entry in result.json()}


class TestSlackUrlInDotenv:
    """A Slack webhook URL given in a .env file is masked wherever config show shows it."""

    def test_config_show_masks_it(self, readers: dict[str, CliResult]) -> None:
        """The table shows the webhook's URL masked, read from the .env file."""
        result = readers["dotenv/show"]
        assert result.returncode == 0, str(result)
        _assert_clean(result, SLACK_TELLTALES)
        assert "hooks.slack.com" not in result.stdout
        assert ".env file" in result.stdout

    def test_config_show_json_masks_it(self, readers: dict[str, CliResult]) -> None:
        """In JSON, the channel's URL and the app URL (not a secret setting, but shaped
        like a Slack webhook) are both masked; the source names the .env file.
        """
        result = readers["dotenv/show-json"]
        assert result.returncode == 0, str(result)
        _assert_clean(result, SLACK_TELLTALES)
        rows = {row["setting"]: row for row in result.json()}
        assert rows["channels.webhook.url"]["value"] == "********"
        assert rows["channels.webhook.url"]["source"].startswith(".env file")
        assert rows["app_url"]["value"] == "********"
        assert rows["alerting.channels"]["value"] == "webhook, database"

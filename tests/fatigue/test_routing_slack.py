"""Per-route channel settings with the real Slack channel: two routes, two webhooks, two
loopback servers; the route's webhook URL (a secret) never shows in logs, outcomes or
configuration errors. Skipped when the chaperone-slack plugin is not installed.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import attrs
import pytest
import structlog

from chaperone import Chaperone, JobStuck, ManualClock, Priority, Settings
from chaperone._exceptions import ConfigError
from chaperone._logging import configure_logging
from chaperone._matching import parse_match
from chaperone.config import DeliverySettings, PrioritySettings, Route
from chaperone.testing.servers import RecordingServer, Reply
from helpers.fatigue import runtime_with

slack_plugin = pytest.importorskip("chaperone_slack")

AT = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
TOKEN = "CRITICAL-ROUTE-TOKEN-9f8e7d"  # noqa: S105 - the secret the tests look for
TELLTALES = (TOKEN, "ROUTE-TOKEN-9f8e7d", f"/hook/{TOKEN}")
ROUTE_RUNBOOK = "https://docs.example.com/runbooks/payments"


def settings(general_url: str, critical_url: str) -> Settings:
    """Slack on the default route posts to ``general_url``; the ``critical`` route (high
    priority: ``*Payment*``) posts to ``critical_url`` with its runbook.
    """
    return Settings(
        channels=("slack",),
        store_url="memory://",
        environ={"CHAPERONE_SLACK_WEBHOOK_URL": general_url},
        priority=PrioritySettings(patterns={Priority.HIGH: ("*Payment*",)}),
        routes=(
            Route(
                name="critical",
                match=parse_match({"priority": ["critical", "high"]}),
                channels=("slack",),
                channel_settings={"slack": {"webhook_url": critical_url}},
                runbook_url=ROUTE_RUNBOOK,
            ),
        ),
        delivery=DeliverySettings(max_attempts=1),
    )


def runtime(config: Settings) -> Chaperone:
    """A runtime with the built-ins and the Slack plugin, on a manual clock."""
    return runtime_with(config, ManualClock(AT), slack_plugin)


def stuck(job_class: str, supervision_id: str) -> JobStuck:
    """A stuck job of ``job_class``."""
    return JobStuck(
        supervision_id=supervision_id, job_class=job_class, stuck_duration=timedelta(minutes=5)
    )


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every log line written while the test runs (JSON, debug level), secrets masked
    as they would be on standard error.
    """
    previous = structlog.get_config() if structlog.is_configured() else None
    stream = io.StringIO()
    configure_logging(Settings(log_format="json", log_level="debug"), stream=stream)
    try:
        yield stream
    finally:
        if previous is None:
            structlog.reset_defaults()
        else:
            structlog.configure(**previous)


def leaks(text: str) -> list[str]:
    """The telltales of the secret found in ``text``."""
    return [telltale for telltale in TELLTALES if telltale in text]


class TestTwoWebhooks:
    """The route's Slack webhook gets the route's alerts; the default one gets the rest."""

    def test_each_route_posts_to_its_own_webhook(self, logs: io.StringIO) -> None:
        """A high-priority alert goes to the critical server only, with the route's
        runbook in the message; a normal one to the general server only.
        """
        with (
            RecordingServer() as general,
            RecordingServer() as critical,
            runtime(settings(general.url_for("/hook/general-0123"), critical.url_for(
                f"/hook/{TOKEN}"))) as rt,
        ):  # fmt: skip
            high = rt.dispatch(stuck("App\\Jobs\\PaymentSync", "sup-1"))
            normal = rt.dispatch(stuck("App\\Jobs\\ImportFeed", "sup-2"))
        assert high.alerts[0].delivered, high
        assert normal.alerts[0].delivered, normal
        assert [request.path for request in critical.requests] == [f"/hook/{TOKEN}"]
        assert [request.path for request in general.requests] == ["/hook/general-0123"]
        critical_body = critical.requests[0].body.decode()
        general_body = general.requests[0].body.decode()
        assert "PaymentSync" in critical_body
        assert f"<{ROUTE_RUNBOOK}|Runbook>" in critical_body
        assert "ImportFeed" in general_body
        assert ROUTE_RUNBOOK not in general_body
        assert [r.destination.route for r in high.alerts[0].deliveries] == ["critical"]
        assert [r.destination.route for r in normal.alerts[0].deliveries] == ["default"]
        assert not leaks(logs.getvalue())

    def test_a_rejected_post_quoting_the_url_leaks_nothing(self, logs: io.StringIO) -> None:
        """The critical webhook answers 400 quoting its own URL: the outcome and every
        log line mask it.
        """
        with (
            RecordingServer() as general,
            RecordingServer(default=Reply.echo(400)) as critical,
            runtime(settings(general.url_for("/hook/general-0123"), critical.url_for(
                f"/hook/{TOKEN}"))) as rt,
        ):  # fmt: skip
            report = rt.dispatch(stuck("App\\Jobs\\PaymentSync", "sup-1"))
        [result] = report.alerts[0].deliveries
        assert not result.ok
        assert result.outcome.status_code == 400
        assert TOKEN in critical.requests[0].path  # the server did see (and quote) it
        assert not leaks(result.outcome.detail), result.outcome.detail
        assert not leaks(repr(report)), report
        assert "delivery" in logs.getvalue()
        assert not leaks(logs.getvalue())

    def test_a_bad_route_webhook_fails_start_up_without_quoting_it(self) -> None:
        """A route's webhook URL that Slack's channel rejects (http to a public host)
        fails start-up naming the route's setting, never its value.
        """
        config = settings(
            "https://hooks.slack.com/services/T0/B0/GENERAL0123", f"http://example.com/{TOKEN}"
        )
        with pytest.raises(ConfigError) as caught:
            runtime(config)
        message = str(caught.value)
        assert "slack.webhook_url" in message
        assert "route 'critical'" in message
        assert not leaks(message), message

    def test_default_route_message_has_the_type_runbook(self) -> None:
        """The default route's Slack message carries the type's runbook when set."""
        with RecordingServer() as general, RecordingServer() as critical:
            config = attrs.evolve(
                settings(general.url_for("/hook/general-0123"), critical.url_for("/x")),
                runbooks={"job_stuck": "https://docs.example.com/stuck"},
            )
            with runtime(config) as rt:
                rt.dispatch(stuck("App\\Jobs\\ImportFeed", "sup-2"))
        assert "<https://docs.example.com/stuck|Runbook>" in general.requests[0].body.decode()

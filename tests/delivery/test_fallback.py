"""Fallback channels and per-channel delivery settings: a channel that failed for good
hands the alert to its fallback, marked as such in the hooks, the channel's context and
the history; fallbacks are checked at start-up; a channel's own section overrides the
attempts, timeout and total time of ``[delivery]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaperone import (
    ConfigError,
    Destination,
    ManualClock,
    Outcome,
    OutcomeKind,
    Settings,
)
from chaperone._delivery import deliver
from chaperone._policy import delivery_policy, destination_id
from chaperone.builtin.database_channel import read_history
from chaperone.channels import channel_settings
from chaperone.config import load_settings
from chaperone.config._settings import Route
from chaperone.store import MemoryStore
from chaperone.testing.servers import RecordingServer, Reply
from helpers.cli import Invocation, clean_environ, require_fixture_plugins, run_many
from helpers.delivery import (
    AfterDelivery,
    Channels,
    confirm,
    make_alert,
    outcomes,
    scripted,
)
from helpers.runtime import GROUPING_OFF, make_runtime


def sections(**fallbacks: str) -> dict[str, dict[str, Any]]:
    """``[channels.<name>] fallback = ...`` tables."""
    return {name: {"fallback": target} for name, target in fallbacks.items()}


class TestFallback:
    """After a final failure the fallback channel gets the alert, marked."""

    def test_after_a_permanent_failure(self) -> None:
        """A 400 from the primary: it counts as failed, the fallback delivers, and the
        fallback's context, result and delivered hook say whom it stands in for.
        """
        clock = ManualClock()
        hooks = AfterDelivery()
        primary, primary_calls = outcomes(Outcome.permanent("HTTP 400", status_code=400))
        backup, backup_calls = outcomes(Outcome.delivered("sent"))
        plugin = Channels(scripted("primary", primary), scripted("backup", backup))
        with make_runtime(
            plugin,
            hooks,
            clock=clock,
            channels=("primary",),
            channel_sections=sections(primary="backup"),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:
            report = runtime.send(make_alert())
        failed, delivered = report.deliveries
        assert (failed.destination.channel, failed.status) == ("primary", "failed")
        assert delivered.ok
        assert delivered.destination == Destination(channel="backup", fallback_of="primary")
        assert primary_calls.attempts == [1]
        assert backup_calls.fallback_of == ["primary"]
        assert hooks.failed_at() == [("primary", 1)]
        assert hooks.delivered_to() == [("backup", "primary")]

    def test_after_the_attempts_run_out(self) -> None:
        """Three transient failures end the primary; then the fallback gets it."""
        hooks = AfterDelivery()
        primary, primary_calls = outcomes(Outcome.transient("HTTP 503", status_code=503))
        plugin = Channels(scripted("primary", primary), scripted("backup", confirm))
        with make_runtime(
            plugin,
            hooks,
            channels=("primary",),
            max_attempts=3,
            channel_sections=sections(primary="backup"),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:
            report = runtime.send(make_alert())
        assert [(r.destination.channel, r.status) for r in report.deliveries] == [
            ("primary", "failed"),
            ("backup", "delivered"),
        ]
        assert primary_calls.attempts == [1, 2, 3]
        assert hooks.failed_at() == [("primary", 3)]
        assert hooks.delivered_to() == [("backup", "primary")]

    def test_after_max_total_passed_in_the_outbox(self) -> None:
        """An alert deferred for a minute but drained only after delivery.max_total (no
        monitor ran meanwhile) is not sent again: it fails for good, and the fallback
        gets it.
        """
        clock = ManualClock()
        hooks = AfterDelivery()
        primary, primary_calls = outcomes(
            Outcome.transient("HTTP 429", retry_after=60, status_code=429)
        )
        plugin = Channels(scripted("primary", primary), scripted("backup", confirm))
        with make_runtime(
            plugin,
            hooks,
            clock=clock,
            channels=("primary",),
            max_total=100,
            channel_sections=sections(primary="backup"),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:
            (waiting,) = runtime.send(make_alert()).deliveries
            assert waiting.deferred
            clock.advance(150)
            drained = runtime.drain_outbox()
        assert [(r.destination.channel, r.status) for r in drained] == [
            ("primary", "failed"),
            ("backup", "delivered"),
        ]
        assert "delivery.max_total" in drained[0].outcome.detail
        assert primary_calls.attempts == [1]
        assert hooks.failed_at() == [("primary", 1)]
        assert hooks.delivered_to() == [("backup", "primary")]

    def test_a_chain_of_fallbacks(self) -> None:
        """primary → second → third: when the first two fail for good, the third gets
        the alert, marked as standing in for the second.
        """
        hooks = AfterDelivery()
        refuse, _ = outcomes(Outcome.permanent("no"))
        plugin = Channels(
            scripted("primary", refuse), scripted("second", refuse), scripted("third", confirm)
        )
        with make_runtime(
            plugin,
            hooks,
            channels=("primary",),
            channel_sections=sections(primary="second", second="third"),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:
            report = runtime.send(make_alert())
        assert [
            (r.destination.channel, r.destination.fallback_of, r.status) for r in report.deliveries
        ] == [
            ("primary", None, "failed"),
            ("second", "primary", "failed"),
            ("third", "second", "delivered"),
        ]
        assert hooks.failed_at() == [("primary", 1), ("second", 1)]

    def test_a_delivered_alert_does_not_fall_back(self) -> None:
        """A confirmed delivery never reaches the fallback."""
        backup, backup_calls = outcomes(Outcome.delivered())
        plugin = Channels(scripted("primary", confirm), scripted("backup", backup))
        with make_runtime(
            plugin,
            channels=("primary",),
            channel_sections=sections(primary="backup"),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:
            report = runtime.send(make_alert())
        assert [r.destination.channel for r in report.deliveries] == ["primary"]
        assert backup_calls.attempts == []

    def test_the_route_keeps_its_settings_for_the_fallback(self) -> None:
        """A fallback from a route's destination keeps the route's name and gets the
        route's settings for the fallback channel.
        """
        seen: list[tuple[str, str | None]] = []

        async def backup(alert: Any, context: Any) -> Outcome:
            seen.append((context.route, context.fallback_of))
            return Outcome.delivered()

        refuse, _ = outcomes(Outcome.permanent("no"))
        route = Route(
            name="payments",
            channels=("primary",),
            channel_settings={"backup": {"to": "payments@example.test"}},
        )
        plugin = Channels(scripted("primary", refuse), scripted("backup", backup))
        with make_runtime(
            plugin,
            channels=("primary",),
            routes=(route,),
            channel_sections=sections(primary="backup"),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:
            report = runtime.send(make_alert())
        fallback = report.deliveries[1].destination
        assert (fallback.route, dict(fallback.settings)) == (
            "payments",
            {"to": "payments@example.test"},
        )
        assert seen == [("payments", "primary")]

    def test_history_shows_the_fallback(self) -> None:
        """With ``database`` among the channels, the history has the primary's failure
        and the fallback's delivery with ``fallback_of``.
        """
        refuse, _ = outcomes(Outcome.permanent("HTTP 404", status_code=404))
        plugin = Channels(scripted("primary", refuse), scripted("backup", confirm))
        with make_runtime(
            plugin,
            channels=("primary", "database"),
            channel_sections=sections(primary="backup"),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:
            runtime.send(make_alert())
            history = read_history(runtime.store, 10)
        by_channel = {record["channel"]: record for record in history}
        assert by_channel["primary"]["status"] == "failed"
        assert "fallback_of" not in by_channel["primary"]
        assert by_channel["backup"]["status"] == "delivered"
        assert by_channel["backup"]["fallback_of"] == "primary"

    def test_a_channel_that_cannot_be_built_falls_back(self) -> None:
        """A destination whose channel is not installed any more (an outbox entry left
        from before a change, with its route's settings) fails for good at once, and its
        fallback delivers. (A ``[channels.gone]`` table is refused at start-up.)
        """
        hooks = AfterDelivery()
        plugin = Channels(scripted("backup", confirm))
        gone = Destination(channel="gone", settings={"fallback": "backup"})
        with make_runtime(
            plugin, hooks, channels=("backup",), timeout=5.0, grouping=GROUPING_OFF
        ) as runtime:
            # The pipeline's own step, for a destination whose channel is gone.
            results = runtime._loop.run(deliver(runtime.dispatcher.delivery, make_alert(), [gone]))
        assert [(r.destination.channel, r.status, r.attempts) for r in results] == [
            ("gone", "failed", 0),
            ("backup", "delivered", 1),
        ]
        assert results[0].outcome.kind is OutcomeKind.PERMANENT


class TestFallbackConfig:
    """A fallback is checked at start-up: installed, not the channel itself, no cycle."""

    @pytest.mark.parametrize(
        ("fallbacks", "message"),
        [
            ({"primary": "nowhere"}, "names 'nowhere', which no installed plugin provides"),
            ({"primary": "primary"}, "names the channel itself"),
            (
                {"primary": "backup", "backup": "primary"},
                "cycle of fallbacks: primary → backup → primary",
            ),
        ],
    )
    def test_refused(self, fallbacks: dict[str, str], message: str) -> None:
        """Each bad fallback is a ConfigError naming the setting and what is wrong."""
        plugin = Channels(scripted("primary", confirm), scripted("backup", confirm))
        with pytest.raises(ConfigError) as caught:
            make_runtime(
                plugin,
                channels=("primary",),
                channel_sections=sections(**fallbacks),
                timeout=5.0,
                grouping=GROUPING_OFF,
            )
        assert message in str(caught.value)
        assert "fallback" in str(caught.value)

    def test_from_the_environment(self, tmp_path: Path) -> None:
        """``CHAPERONE_PRIMARY_FALLBACK=backup`` sets the fallback of ``primary``."""
        settings = load_settings(
            {"CHAPERONE_ALERT_CHANNELS": "primary", "CHAPERONE_PRIMARY_FALLBACK": "Backup"},
            tmp_path,
        )
        refuse, _ = outcomes(Outcome.permanent("no"))
        plugin = Channels(scripted("primary", refuse), scripted("backup", confirm))
        with make_runtime(
            plugin,
            channels=settings.channels,
            environ=settings.environ,
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as rt:
            report = rt.send(make_alert())
        assert [r.destination.channel for r in report.deliveries] == ["primary", "backup"]

    def test_a_fallback_with_bad_settings_fails_start_up(self) -> None:
        """The fallback channel is built at start-up too, so its missing settings are
        reported then, not at the first failure.
        """
        plugin = Channels(scripted("primary", confirm), Unbuildable)
        with pytest.raises(ConfigError, match="CHAPERONE_UNBUILDABLE_TOKEN"):
            make_runtime(
                plugin,
                channels=("primary",),
                channel_sections=sections(primary="unbuildable"),
                timeout=5.0,
                grouping=GROUPING_OFF,
            )


class Unbuildable(scripted("unbuildable", confirm)):  # type: ignore[misc]
    """A channel whose settings always lack ``token``."""

    @classmethod
    def from_settings(cls, settings: Any) -> Any:
        raise settings.problem("token", "is required")


class TestPerChannelSettings:
    """A channel's own section overrides ``[delivery]`` for that channel only."""

    def test_max_attempts_and_timeout_per_channel(self) -> None:
        """``[channels.flaky] max_attempts = 5, timeout = "2s"``: five attempts with a two
        second timeout there, the default three elsewhere.
        """
        flaky, flaky_calls = outcomes(Outcome.transient("HTTP 503"))
        other, other_calls = outcomes(Outcome.transient("HTTP 503"))
        timeouts: list[float] = []

        async def flaky_send(alert: Any, context: Any) -> Any:
            timeouts.append(context.timeout)
            return await flaky(alert, context)

        plugin = Channels(scripted("flaky", flaky_send), scripted("other", other))
        with make_runtime(
            plugin,
            channels=("flaky", "other"),
            max_attempts=3,
            channel_sections={"flaky": {"max_attempts": 5, "timeout": "2s"}},
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:
            runtime.send(make_alert())
        assert flaky_calls.attempts == [1, 2, 3, 4, 5]
        assert set(timeouts) == {2.0}
        assert other_calls.attempts == [1, 2, 3]

    @pytest.mark.parametrize(
        ("values", "key"),
        [
            ({"max_attempts": 0}, "channels.hook.max_attempts"),
            ({"timeout": "soon"}, "channels.hook.timeout"),
            ({"max_total": "0"}, "channels.hook.max_total"),
        ],
    )
    def test_bad_override_fails_start_up(self, values: dict[str, Any], key: str) -> None:
        """A malformed override is a ConfigError naming it."""
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            make_runtime(
                Channels(scripted("hook", confirm)),
                channels=("hook",),
                channel_sections={"hook": values},
                timeout=5.0,
                grouping=GROUPING_OFF,
            )

    def test_policy_defaults_and_identity(self) -> None:
        """Without overrides a channel gets ``[delivery]``'s values and its class's pace;
        its id hashes the settings that say where it sends, not the core's own keys, and
        never holds a setting's value.
        """
        channel_class = scripted("hook", confirm, pace=(2, 1.0))
        clock = ManualClock()
        app = Settings(
            channel_sections={"hook": {"url": "https://x.test/secret-path", "max_attempts": 4}}
        )
        policy = delivery_policy(
            channel_class,
            channel_settings(channel_class, app=app, store=MemoryStore(clock), clock=clock),
        )
        assert (policy.max_attempts, policy.timeout, policy.max_total) == (4, 10.0, 3600.0)
        assert policy.pace == (2, 1.0)
        assert policy.destination_id == destination_id(
            "hook", {"url": "https://x.test/secret-path"}
        )
        assert "secret-path" not in policy.destination_id
        assert destination_id("hook", {"url": "a"}) != destination_id("hook", {"url": "b"})

    def test_max_total_setting(self, tmp_path: Path) -> None:
        """``CHAPERONE_DELIVERY_MAX_TOTAL`` is read as a duration; zero is refused."""
        settings = load_settings({"CHAPERONE_DELIVERY_MAX_TOTAL": "30m"}, tmp_path)
        assert settings.delivery.max_total.total_seconds() == 1800
        with pytest.raises(ConfigError, match="CHAPERONE_DELIVERY_MAX_TOTAL"):
            load_settings({"CHAPERONE_DELIVERY_MAX_TOTAL": "0"}, tmp_path)


class TestCommandLine:
    """``chaperone test-alerts`` and ``config check`` on real processes."""

    def test_test_alerts_fallback_deferred_and_config(self, tmp_path: Path) -> None:
        """A refusing webhook with ``database`` as its fallback: the row of the fallback
        says so and the run exits 1 (the primary failed); a webhook answering 429 with a
        long Retry-After: the row is deferred, kept in the outbox, exit 0; a fallback
        cycle fails ``config check`` with exit 2.
        """
        require_fixture_plugins()
        refusing = Reply(status=400, body="invalid_payload")
        limited = Reply(status=429, headers={"Retry-After": "120"}, body="rate_limited")
        with (
            RecordingServer(default=refusing) as refuses,
            RecordingServer(default=limited) as waits,
        ):
            folders = {name: tmp_path / name for name in ("fallback", "deferred", "cycle")}
            for folder in folders.values():
                folder.mkdir()
            (folders["cycle"] / "chaperone.toml").write_text(
                '[channels.webhook]\nfallback = "log"\n[channels.log]\nfallback = "webhook"\n'
            )
            invocations = {
                "fallback": Invocation(
                    ("test-alerts", "stuck", "--json"),
                    folders["fallback"],
                    clean_environ(
                        folders["fallback"],
                        CHAPERONE_ALERT_CHANNELS="webhook",
                        CHAPERONE_WEBHOOK_URL=refuses.url_for("/hook"),
                        CHAPERONE_WEBHOOK_FALLBACK="database",
                    ),
                ),
                "deferred": Invocation(
                    ("test-alerts", "stuck"),
                    folders["deferred"],
                    clean_environ(
                        folders["deferred"],
                        CHAPERONE_ALERT_CHANNELS="webhook",
                        CHAPERONE_WEBHOOK_URL=waits.url_for("/hook"),
                    ),
                ),
                "cycle": Invocation(
                    ("config", "check"),
                    folders["cycle"],
                    clean_environ(
                        folders["cycle"],
                        CHAPERONE_ALERT_CHANNELS="webhook",
                        CHAPERONE_WEBHOOK_URL="http://127.0.0.1:9/hook",
                    ),
                ),
            }
            results = run_many(invocations)
        fallback = results["fallback"]
        assert fallback.returncode == 1, fallback
        rows = json.loads(fallback.stdout)
        assert [(r["channel"], r["fallback_of"], r["status"]) for r in rows] == [
            ("webhook", None, "failed"),
            ("database", "webhook", "delivered"),
        ]
        deferred = results["deferred"]
        assert deferred.returncode == 0, deferred
        assert "deferred until" in deferred.stdout
        assert "kept in the outbox" in deferred.stdout
        assert len(waits.requests) == 1
        cycle = results["cycle"]
        assert cycle.returncode == 2, cycle
        assert "cycle of fallbacks" in cycle.stdout + cycle.stderr

"""The typed hook caller: every hook goes through pluggy, so wrappers run on each (or are
refused at registration, naming the hook), and isolated hooks survive a raising plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

import chaperone
from chaperone import (
    Alert,
    Chaperone,
    Destination,
    JobStuck,
    ManualClock,
    Outcome,
    PluginHost,
    Settings,
    hookspecs,
)
from chaperone._hooks import Hooks
from chaperone._plugins import PER_PLUGIN_HOOKS, is_isolated
from chaperone.store import MemoryStore

NOW = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
HOOKS = sorted(hookspecs.__all__)
"""Every hook the core specifies."""
ISOLATED = sorted(
    name
    for name in HOOKS
    if is_isolated(getattr(PluginHost(entry_points=False).manager.hook, name))
)
"""The hooks whose every implementation is called, one raising or not."""


def an_alert() -> Alert:
    """A firing alert of a stuck job."""
    return Alert(
        type="job_stuck",
        key="sup-1",
        headline="Job stuck",
        title="Job Stuck: reports.build_monthly",
        summary="reports.build_monthly sent no heartbeat for 5 minutes.",
        occurred_at=NOW,
    )


def an_event() -> JobStuck:
    """A stuck job, its time filled in."""
    return JobStuck(
        supervision_id="sup-1",
        job_class="reports.build_monthly",
        stuck_duration=timedelta(minutes=5),
        occurred_at=NOW,
    )


CALLS: dict[str, Callable[[Hooks], object]] = {
    "chaperone_event": lambda hooks: hooks.event(an_event()),
    "chaperone_alerts": lambda hooks: hooks.alerts(an_event()),
    "chaperone_alert_priority": lambda hooks: hooks.priority(an_alert()),
    "chaperone_filter_alert": lambda hooks: hooks.filter(an_alert(), is_test=True),
    "chaperone_route": lambda hooks: hooks.route(an_alert()),
    "chaperone_delivered": lambda hooks: hooks.delivered(
        an_alert(), Destination(channel="log"), Outcome.delivered()
    ),
    "chaperone_delivery_failed": lambda hooks: hooks.delivery_failed(
        an_alert(), Destination(channel="log"), Outcome.permanent("HTTP 400"), 1
    ),
    "chaperone_detect": lambda hooks: hooks.detect(NOW),
    "chaperone_queue_lengths": lambda hooks: hooks.queue_lengths(),
}
"""How the core calls each hook, through the typed caller."""


def plugin(hook: str, implementation: Callable[..., Any]) -> object:
    """A plugin object implementing ``hook`` with ``implementation``."""
    return SimpleNamespace(**{hook: implementation})


def wrapper(calls: list[str], *, old_style: bool = False) -> Callable[[], Any]:
    """A wrapper (new style, or ``hookwrapper=True``) that records itself around the call."""
    if old_style:

        @chaperone.hookimpl(hookwrapper=True)
        def old() -> Generator[None, Any, None]:
            calls.append("before")
            yield
            calls.append("after")

        return old

    @chaperone.hookimpl(wrapper=True)
    def new() -> Generator[None, Any, Any]:
        calls.append("before")
        result = yield
        calls.append("after")
        return result

    return new


def recorder(calls: list[str], name: str, *, fail: bool = False) -> Callable[[], None]:
    """A plain implementation that records ``name`` (then raises, with ``fail``)."""

    @chaperone.hookimpl
    def record() -> None:
        calls.append(name)
        if fail:
            raise RuntimeError(f"{name} broke")

    return record


@pytest.fixture
def make() -> Iterator[Callable[..., Chaperone]]:
    """Build a Chaperone on a memory store with ``(name, plugin)`` pairs; closed after."""
    built: list[Chaperone] = []

    def build(*plugins: tuple[str, object]) -> Chaperone:
        clock = ManualClock(NOW)
        running = Chaperone(
            Settings(channels=("log",), store_url="memory://"),
            clock=clock,
            store=MemoryStore(clock),
            plugins=PluginHost(entry_points=False, extra=list(plugins)),
        )
        built.append(running)
        return running

    yield build
    for running in built:
        running.close()


class TestEveryHookIsCalled:
    def test_the_caller_covers_every_hookspec(self) -> None:
        """Each hook is either called through the typed caller or once per plugin."""
        assert sorted([*CALLS, *PER_PLUGIN_HOOKS]) == HOOKS


class TestWrappers:
    @pytest.mark.parametrize("old_style", [False, True], ids=["wrapper", "hookwrapper"])
    @pytest.mark.parametrize("hook", HOOKS)
    def test_a_wrapper_runs_or_is_refused_naming_the_hook(
        self, make: Callable[..., Chaperone], hook: str, old_style: bool
    ) -> None:
        """A wrapper on a hook runs around the other implementations, or, on a hook called
        once per plugin, is refused at registration with an error naming the hook.
        """
        calls: list[str] = []
        running = make(
            ("inner", plugin(hook, recorder(calls, "inner"))),
            ("outer", plugin(hook, wrapper(calls, old_style=old_style))),
        )
        (outer,) = [info for info in running.plugins.plugins if info.name == "outer"]
        if hook in PER_PLUGIN_HOOKS:
            running.plugins.commands(())  # commands are asked for on first use
            assert outer.status == "broken"
            assert outer.error is not None
            assert hook in outer.error
            assert calls == ["inner"]  # the plain one still registered what it has
            return
        assert outer.status == "ok"
        CALLS[hook](running.hooks)
        assert calls == ["before", "inner", "after"]

    def test_a_wrapper_on_delivered_runs_when_an_alert_is_delivered(
        self, make: Callable[..., Chaperone]
    ) -> None:
        """The issue's case: a wrapper on chaperone_delivered runs for a real delivery."""
        calls: list[str] = []
        running = make(("outer", plugin("chaperone_delivered", wrapper(calls))))
        report = running.send(an_alert())
        assert report.delivered
        assert calls == ["before", "after"]


class TestIsolation:
    @pytest.mark.parametrize("hook", ISOLATED)
    def test_a_raising_implementation_does_not_stop_the_others(
        self, make: Callable[..., Chaperone], hook: str
    ) -> None:
        """On an isolated hook, one implementation raising is logged and skipped: the
        others run, and the call itself does not raise.
        """
        calls: list[str] = []
        running = make(
            ("first", plugin(hook, recorder(calls, "first"))),
            ("broken", plugin(hook, recorder(calls, "broken", fail=True))),
            ("last", plugin(hook, recorder(calls, "last"))),
        )
        CALLS[hook](running.hooks)
        assert calls == ["last", "broken", "first"]

    def test_a_raising_detector_is_named_in_the_detection(
        self, make: Callable[..., Chaperone]
    ) -> None:
        """The detect call reports which detector raised, with its error."""
        calls: list[str] = []
        running = make(("broken", plugin("chaperone_detect", recorder(calls, "x", fail=True))))
        detection = running.hooks.detect(NOW)
        assert [(failure.plugin, failure.error) for failure in detection.failures] == [
            ("broken", "RuntimeError: x broke")
        ]

    @pytest.mark.parametrize("hook", sorted(set(HOOKS) - set(ISOLATED) - PER_PLUGIN_HOOKS))
    def test_a_raising_firstresult_implementation_raises_to_the_dispatcher(
        self, make: Callable[..., Chaperone], hook: str
    ) -> None:
        """A firstresult hook's failure reaches its caller, which falls back (built-in
        alert, send anyway, default route, the alert's own priority).
        """
        calls: list[str] = []
        running = make(("broken", plugin(hook, recorder(calls, "broken", fail=True))))
        with pytest.raises(RuntimeError, match="broken broke"):
            CALLS[hook](running.hooks)

"""The built-in rate-limit filter: at most one alert per type and key per window.

The properties compare the real filter, on a memory store and on a SQLite file, with a
model: an alert passes when no alert of its type and key passed within the window.
Time moves only through a ManualClock.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Literal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone import (
    Alert,
    AlertStatus,
    Chaperone,
    ManualClock,
    VerdictKind,
)
from chaperone.builtin import ratelimit_filter as ratelimit
from chaperone.config import RateLimitSettings
from chaperone.store import MemoryStore, SQLiteStore, Store
from helpers.runtime import make_runtime

TYPES = ("job_stuck", "job_timeout", "circuit_breaker", "resource_violation")
KEYS = ("a", "b", "550e8400-e29b-41d4-a716-446655440000:memory")
_files = itertools.count()


@attrs.frozen
class Raise:
    """Raise an alert ``advance`` seconds after the previous step."""

    type: str
    key: str
    advance: int
    kind: Literal["firing", "resolved", "test"] = "firing"


@attrs.frozen
class Clear:
    """Forget the mark of one type and key (``chaperone ratelimit clear``)."""

    type: str
    key: str


@attrs.frozen
class ClearAll:
    """Forget every mark (``chaperone ratelimit clear --all``)."""


Step = Raise | Clear | ClearAll

advances = st.one_of(
    st.sampled_from([0, 1, 59, 60, 61, 179, 180, 299, 300, 301, 600]),
    st.integers(min_value=0, max_value=900),
)
raises = st.builds(
    Raise,
    st.sampled_from(TYPES),
    st.sampled_from(KEYS),
    advances,
    st.sampled_from(["firing", "firing", "firing", "resolved", "test"]),
)
steps = st.lists(
    st.one_of(
        raises,
        raises,
        raises,
        st.builds(Clear, st.sampled_from(TYPES), st.sampled_from(KEYS)),
        st.just(ClearAll()),
    ),
    max_size=40,
)
windows = st.sampled_from([0, 60, 180, 300, 600])
rate_limits = st.builds(
    RateLimitSettings,
    default=windows.map(lambda seconds: timedelta(seconds=seconds)),
    per_type=st.dictionaries(
        st.sampled_from(TYPES), windows.map(lambda seconds: timedelta(seconds=seconds))
    ),
)


class Model:
    """What the rate limit should do: the time of each type and key's last pass."""

    def __init__(self, limits: RateLimitSettings) -> None:
        self.limits = limits
        self.now = 0
        self.passed_at: dict[tuple[str, str], int] = {}

    def window(self, alert_type: str) -> int:
        return int(self.limits.window_for(alert_type).total_seconds())

    def _live(self, incident: tuple[str, str]) -> bool:
        last = self.passed_at.get(incident)
        return last is not None and self.now - last < self.window(incident[0])

    def raise_(self, step: Raise) -> bool:
        self.now += step.advance
        if step.kind != "firing" or self.window(step.type) <= 0:
            return True
        if self._live((step.type, step.key)):
            return False
        self.passed_at[(step.type, step.key)] = self.now
        return True

    def clear(self, step: Clear) -> bool:
        was_live = self._live((step.type, step.key))
        self.passed_at.pop((step.type, step.key), None)
        return was_live

    def clear_all(self) -> int:
        live = sum(self._live(incident) for incident in self.passed_at)
        self.passed_at.clear()
        return live


def make_alert(step: Raise, clock: ManualClock) -> Alert:
    """An alert of the step's type and key, raised now."""
    status = AlertStatus.RESOLVED if step.kind == "resolved" else AlertStatus.FIRING
    return Alert(
        type=step.type,
        key=step.key,
        headline="Trouble",
        title=f"Trouble: {step.key}",
        summary="Something went wrong.",
        status=status,
        occurred_at=clock.now(),
    )


def open_store(backend: str, clock: ManualClock, directory: Path) -> Store:
    """A fresh, empty store of ``backend`` on ``clock``."""
    if backend == "memory":
        return MemoryStore(clock)
    path = directory / f"ratelimit-{next(_files)}.sqlite3"
    return SQLiteStore(path, clock, f"sqlite:///{path}")


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for the SQLite files the property tests open, one per example."""
    return tmp_path_factory.mktemp("ratelimit")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "sqlite"])
def runtime(
    request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path
) -> Iterator[Chaperone]:
    """A runtime with the default five-minute window, on each store backend."""
    with make_runtime(
        store=open_store(request.param, clock, tmp_path), clock=clock, channels=("database",)
    ) as opened:
        yield opened


def passes(runtime: Chaperone, alert: Alert, *, is_test: bool = False) -> bool:
    """Whether the rate-limit filter lets ``alert`` through (it has no opinion)."""
    return (
        ratelimit.chaperone_filter_alert(alert=alert, runtime=runtime.runtime, is_test=is_test)
        is None
    )


def run_steps(
    runtime: Chaperone, clock: ManualClock, limits: RateLimitSettings, plan: list[Step]
) -> None:
    """Run ``plan`` against the filter function and the model; assert they agree."""
    model = Model(limits)
    for number, step in enumerate(plan):
        if isinstance(step, Raise):
            clock.advance(step.advance)
            alert = make_alert(step, clock)
            actual = passes(runtime, alert, is_test=step.kind == "test")
            assert actual == model.raise_(step), f"step {number}: {step}"
        elif isinstance(step, Clear):
            assert ratelimit.clear(runtime.store, step.type, step.key) == model.clear(step)
        else:
            assert ratelimit.clear_all(runtime.store) == model.clear_all()


class TestAgainstTheModel:
    @pytest.mark.parametrize("backend", ["memory", "sqlite"])
    @given(limits=rate_limits, plan=steps)
    def test_filter_function_matches_the_model(
        self, backend: str, directory: Path, limits: RateLimitSettings, plan: list[Step]
    ) -> None:
        """For any raises, clears and time advances, exactly the alerts whose type and key
        last passed at least a window ago pass; resolved and test alerts always pass and
        leave the window alone; a zero window lets everything through.
        """
        clock = ManualClock()
        with make_runtime(
            store=open_store(backend, clock, directory),
            clock=clock,
            channels=("database",),
            rate_limit=limits,
        ) as rt:
            run_steps(rt, clock, limits, plan)

    @pytest.mark.parametrize("backend", ["memory", "sqlite"])
    @given(limits=rate_limits, plan=st.lists(raises, max_size=12))
    @settings(max_examples=25)
    def test_runtime_send_matches_the_model(
        self, backend: str, directory: Path, limits: RateLimitSettings, plan: list[Raise]
    ) -> None:
        """Through ``Chaperone.send`` (every filter, the pipeline), the verdicts follow the
        model: send for what passes, suppress for the rest.
        """
        clock = ManualClock()
        model = Model(limits)
        with make_runtime(
            store=open_store(backend, clock, directory),
            clock=clock,
            channels=("database",),
            rate_limit=limits,
        ) as rt:
            for step in plan:
                clock.advance(step.advance)
                report = rt.send(make_alert(step, clock), is_test=step.kind == "test")
                expected = VerdictKind.SEND if model.raise_(step) else VerdictKind.SUPPRESS
                assert report.verdict.kind is expected, step


class TestWindow:
    def test_second_alert_inside_the_window_is_suppressed(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """A repeat of the same type and key within five minutes is suppressed, saying why."""
        step = Raise("job_stuck", "job-1", 0)
        assert runtime.send(make_alert(step, clock)).verdict.kind is VerdictKind.SEND
        clock.advance(299)
        report = runtime.send(make_alert(step, clock))
        assert report.verdict.kind is VerdictKind.SUPPRESS
        assert report.verdict.reason == (
            "rate limited: one job_stuck alert per 5 minutes for job-1"
        )

    def test_alert_passes_again_once_the_window_is_over(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """Exactly five minutes after the last pass, the same alert passes again."""
        alert = make_alert(Raise("job_stuck", "job-1", 0), clock)
        assert passes(runtime, alert)
        clock.advance(300)
        assert passes(runtime, alert)
        assert not passes(runtime, alert)

    def test_other_keys_and_types_are_counted_apart(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """Another key, or another type with the same key, has a window of its own."""
        assert passes(runtime, make_alert(Raise("job_stuck", "job-1", 0), clock))
        assert passes(runtime, make_alert(Raise("job_stuck", "job-2", 0), clock))
        assert passes(runtime, make_alert(Raise("job_timeout", "job-1", 0), clock))
        assert not passes(runtime, make_alert(Raise("job_stuck", "job-1", 0), clock))

    def test_per_type_windows(self, clock: ManualClock) -> None:
        """``per_type`` sets a type's own window; other types keep the default."""
        limits = RateLimitSettings(
            default=timedelta(minutes=5),
            per_type={"job_stuck": timedelta(minutes=10), "circuit_breaker": timedelta(0)},
        )
        with make_runtime(
            store=MemoryStore(clock), clock=clock, channels=("database",), rate_limit=limits
        ) as rt:
            stuck = make_alert(Raise("job_stuck", "k", 0), clock)
            timeout = make_alert(Raise("job_timeout", "k", 0), clock)
            breaker = make_alert(Raise("circuit_breaker", "k", 0), clock)
            assert passes(rt, stuck)
            assert passes(rt, timeout)
            assert passes(rt, breaker)
            assert passes(rt, breaker)
            clock.advance(300)
            assert passes(rt, timeout)
            assert not passes(rt, stuck)
            clock.advance(300)
            assert passes(rt, stuck)

    def test_zero_window_disables_the_limit(self, clock: ManualClock) -> None:
        """With a zero default window every alert passes and no mark is stored."""
        limits = RateLimitSettings(default=timedelta(0))
        with make_runtime(
            store=MemoryStore(clock), clock=clock, channels=("database",), rate_limit=limits
        ) as rt:
            alert = make_alert(Raise("job_stuck", "k", 0), clock)
            assert all(passes(rt, alert) for _ in range(5))
            assert rt.store.keys(ratelimit.PREFIX) == []


class TestBypass:
    def test_resolved_alert_passes_and_keeps_the_window(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """A resolved alert passes inside the window and does not reset or consume it."""
        firing = make_alert(Raise("job_stuck", "k", 0), clock)
        resolved = make_alert(Raise("job_stuck", "k", 0, "resolved"), clock)
        assert passes(runtime, resolved)
        assert passes(runtime, firing)
        assert passes(runtime, resolved)
        assert not passes(runtime, firing)

    def test_test_alerts_pass_without_consuming(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """``is_test`` alerts always pass and leave no mark behind."""
        alert = make_alert(Raise("job_stuck", "k", 0), clock)
        assert all(passes(runtime, alert, is_test=True) for _ in range(3))
        assert runtime.store.keys(ratelimit.PREFIX) == []
        assert passes(runtime, alert)
        assert passes(runtime, alert, is_test=True)


class TestClear:
    def test_clear_lets_the_next_alert_pass(self, runtime: Chaperone, clock: ManualClock) -> None:
        """After ``clear`` of a type and key, its next alert passes at once."""
        alert = make_alert(Raise("job_stuck", "k", 0), clock)
        other = make_alert(Raise("job_stuck", "other", 0), clock)
        assert passes(runtime, alert)
        assert passes(runtime, other)
        assert ratelimit.clear(runtime.store, "job_stuck", "k") is True
        assert passes(runtime, alert)
        assert not passes(runtime, other)

    def test_clear_of_nothing_says_so(self, runtime: Chaperone, clock: ManualClock) -> None:
        """Clearing a type and key with no live mark returns False."""
        assert ratelimit.clear(runtime.store, "job_stuck", "never") is False
        assert passes(runtime, make_alert(Raise("job_stuck", "k", 0), clock))
        clock.advance(300)
        assert ratelimit.clear(runtime.store, "job_stuck", "k") is False

    def test_clear_all_lets_every_next_alert_pass(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """``clear_all`` counts the live marks and lets every next alert pass."""
        alerts = [make_alert(Raise(kind, key, 0), clock) for kind in TYPES[:2] for key in KEYS]
        assert all(passes(runtime, alert) for alert in alerts)
        runtime.store.set("unrelated", "kept")
        assert ratelimit.clear_all(runtime.store) == len(alerts)
        assert all(passes(runtime, alert) for alert in alerts)
        assert runtime.store.get("unrelated") == "kept"

    def test_marks_are_shared_through_the_sqlite_file(self, tmp_path: Path) -> None:
        """Two runtimes on one SQLite file share the window: the second is suppressed."""
        clock = ManualClock()
        path = tmp_path / "shared.sqlite3"
        first = make_runtime(
            store=SQLiteStore(path, clock, f"sqlite:///{path}"), clock=clock, channels=("database",)
        )
        second = make_runtime(
            store=SQLiteStore(path, clock, f"sqlite:///{path}"), clock=clock, channels=("database",)
        )
        with first, second:
            alert = make_alert(Raise("job_stuck", "k", 0), clock)
            assert first.send(alert).verdict.kind is VerdictKind.SEND
            assert second.send(alert).verdict.kind is VerdictKind.SUPPRESS
            assert ratelimit.clear(second.store, "job_stuck", "k")
            assert first.send(alert).verdict.kind is VerdictKind.SEND

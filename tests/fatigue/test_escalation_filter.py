r"""Escalating repeats (issue 5, item 2): per alert type and key, the first alert goes out
at once, then no repeat comes sooner than the type's delays (the seed's 5 min, 15 min,
30 min, then every hour); the count lives 24 h after the last delivery and resets when
the incident resolves.

The properties compare the real filter, on a memory store and on a SQLite file, with a
model, and check the schedule directly: deliveries are never closer than the delay that
applies, and an alert whose delay has passed is always delivered. Time moves only
through a ManualClock.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone import (
    Alert,
    Chaperone,
    JobRecovered,
    JobStuck,
    ManualClock,
    Priority,
    VerdictKind,
)
from chaperone.builtin import escalation_filter as escalation
from chaperone.builtin import ratelimit_filter as ratelimit
from chaperone.config import (
    EscalationSettings,
    GroupingSettings,
    PrioritySettings,
    RateLimitSettings,
)
from chaperone.store import MemoryStore, Store
from helpers.fatigue import (
    SEED_DELAYS,
    RecordingChannel,
    recording_runtime,
    sqlite_store,
    trouble,
)

START = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
ESCALATED = ("job_stuck", "job_timeout")
TYPES = (*ESCALATED, "circuit_breaker")
KEYS = ("a", "a|0", "a%7C0", "a:b")
"""Keys whose store prefixes would collide if they were not quoted."""
_files = itertools.count()

# -------------------------------------------------------------------------------------
# Helpers
# -------------------------------------------------------------------------------------


class Recorder(RecordingChannel):
    """The channel ``recording``, which keeps every alert it gets, and when it got them."""

    def minutes(self, alert_type: str = "job_stuck", key: str | None = None) -> list[float]:
        """When (minutes after START) each firing alert of ``alert_type`` was delivered."""
        return [
            (alert.occurred_at - START).total_seconds() / 60
            for alert in self.sent
            if alert.type == alert_type
            and not alert.is_resolved
            and (key is None or alert.key == key)
        ]


def open_store(backend: str, clock: ManualClock, directory: Path) -> Store:
    """A fresh, empty store of ``backend`` on ``clock``."""
    if backend == "memory":
        return MemoryStore(clock)
    return sqlite_store(directory / f"escalation-{next(_files)}.sqlite3", clock)


def escalating_runtime(
    store: Store, clock: ManualClock, recorder: Recorder | None = None, **overrides: Any
) -> Chaperone:
    """A runtime with the built-in plugins and a recording channel; grouping is off and
    job_stuck escalates with the seed's delays unless ``overrides`` say otherwise.
    """
    overrides.setdefault("escalation", EscalationSettings(per_type={"job_stuck": SEED_DELAYS}))
    return recording_runtime(store, clock, recorder, **overrides)


def make_alert(
    alert_type: str,
    key: str,
    clock: ManualClock,
    *,
    resolved: bool = False,
    priority: Priority = Priority.NORMAL,
) -> Alert:
    """An alert of ``alert_type`` and ``key``, raised now."""
    return trouble(alert_type, key, clock.now(), resolved=resolved, priority=priority)


def passes(runtime: Chaperone, alert: Alert, *, is_test: bool = False) -> bool:
    """Whether the escalation filter lets ``alert`` through (it has no opinion)."""
    verdict = escalation.chaperone_filter_alert(
        alert=alert, runtime=runtime.runtime, is_test=is_test
    )
    assert verdict is None or verdict.kind is VerdictKind.SUPPRESS
    return verdict is None


def stuck(supervision_id: str = "sup-1", job_class: str = "App\\Jobs\\ImportFeed") -> JobStuck:
    """A JobStuck event."""
    return JobStuck(
        supervision_id=supervision_id, job_class=job_class, stuck_duration=timedelta(minutes=10)
    )


def escalation_keys(store: Store) -> list[str]:
    """Every live key the escalation filter keeps."""
    return store.keys(escalation.PREFIX)


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for the SQLite files the property tests open, one per example."""
    return tmp_path_factory.mktemp("escalation")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(params=["memory", "sqlite"])
def runtime(
    request: pytest.FixtureRequest, clock: ManualClock, recorder: Recorder, tmp_path: Path
) -> Iterator[Chaperone]:
    """A runtime escalating job_stuck with the seed's delays, on each store backend."""
    with escalating_runtime(open_store(request.param, clock, tmp_path), clock, recorder) as opened:
        yield opened


# -------------------------------------------------------------------------------------
# The model
# -------------------------------------------------------------------------------------

Kind = Literal["firing", "resolved", "test", "critical"]


@attrs.frozen
class Raise:
    """Raise an alert ``advance`` seconds after the previous step."""

    type: str
    key: str
    advance: int
    kind: Kind = "firing"


@attrs.frozen
class Clear:
    """Forget one type and key (``chaperone ratelimit clear --type --key``)."""

    type: str
    key: str


@attrs.frozen
class ClearAll:
    """Forget everything (``chaperone ratelimit clear --all``)."""


Step = Raise | Clear | ClearAll


class Model:
    """What escalation (and, for the alerts it leaves alone, the fixed window) should do."""

    def __init__(self, escalation: EscalationSettings, limits: RateLimitSettings) -> None:
        self.delays = {
            name: [int(delay.total_seconds()) for delay in delays]
            for name, delays in escalation.per_type.items()
        }
        self.memory = int(escalation.memory.total_seconds())
        self.limits = limits
        self.now = 0
        self.state: dict[tuple[str, str], tuple[int, int]] = {}
        """(type, key) → (deliveries so far, time of the last)."""
        self.marks: dict[tuple[str, str], int] = {}
        """(type, key) → time of the last pass of the fixed window."""

    def _live(self, incident: tuple[str, str]) -> tuple[int, int] | None:
        found = self.state.get(incident)
        if found is not None and self.now - found[1] >= self.memory:
            del self.state[incident]
            return None
        return found

    def escalate(self, step: Raise) -> bool:
        """Whether the escalation filter passes ``step`` (updating the state)."""
        self.now += step.advance
        incident = (step.type, step.key)
        delays = self.delays.get(step.type)
        if step.kind == "test" or delays is None:
            return True
        if step.kind == "resolved":
            self.state.pop(incident, None)
            return True
        if step.kind == "critical":
            return True
        count, last = self._live(incident) or (0, 0)
        if count > 0 and self.now - last < delays[min(count, len(delays) - 1)]:
            return False
        self.state[incident] = (count + 1, self.now)
        return True

    def send(self, step: Raise) -> bool:
        """Whether the whole pipeline sends ``step``: escalation for escalated types, the
        fixed window for the others and for critical alerts.
        """
        if not self.escalate(step):
            return False
        incident = (step.type, step.key)
        escalated = step.type in self.delays and step.kind != "critical"
        window = int(self.limits.window_for(step.type).total_seconds())
        if step.kind in ("test", "resolved") or escalated or window <= 0:
            return True
        last = self.marks.get(incident)
        if last is not None and self.now - last < window:
            return False
        self.marks[incident] = self.now
        return True

    def clear(self, step: Clear) -> bool:
        """Whether the incident had a live count (which is now gone)."""
        found = self._live((step.type, step.key)) is not None
        self.state.pop((step.type, step.key), None)
        return found

    def clear_all(self) -> int:
        """How many incidents had a live count (all gone now)."""
        live = sum(self._live(incident) is not None for incident in list(self.state))
        self.state.clear()
        return live


delay_seconds = st.one_of(
    st.sampled_from([0, 1, 59, 60, 300, 900, 1800, 3600]),
    st.integers(min_value=0, max_value=4000),
)
delay_lists = st.lists(delay_seconds, min_size=1, max_size=6).map(
    lambda seconds: tuple(timedelta(seconds=value) for value in seconds)
)
escalations = st.builds(
    EscalationSettings,
    per_type=st.dictionaries(st.sampled_from(ESCALATED), delay_lists, min_size=1),
    memory=st.sampled_from([600, 3600, 86400]).map(lambda seconds: timedelta(seconds=seconds)),
)
advances = st.one_of(
    st.sampled_from([0, 1, 59, 60, 61, 299, 300, 301, 899, 900, 1800, 3599, 3600, 3601]),
    st.integers(min_value=0, max_value=5000),
    st.sampled_from([86399, 86400, 90000]),
)
raises = st.builds(
    Raise,
    st.sampled_from(TYPES),
    st.sampled_from(KEYS),
    advances,
    st.sampled_from(["firing", "firing", "firing", "firing", "resolved", "test", "critical"]),
)
steps = st.lists(
    st.one_of(
        raises,
        raises,
        raises,
        raises,
        st.builds(Clear, st.sampled_from(TYPES), st.sampled_from(KEYS)),
        st.just(ClearAll()),
    ),
    max_size=40,
)


def raised(step: Raise, clock: ManualClock) -> Alert:
    """The alert of ``step``, raised now."""
    return make_alert(
        step.type,
        step.key,
        clock,
        resolved=step.kind == "resolved",
        priority=Priority.CRITICAL if step.kind == "critical" else Priority.NORMAL,
    )


# -------------------------------------------------------------------------------------
# Properties
# -------------------------------------------------------------------------------------


class TestProperties:
    @pytest.mark.parametrize("backend", ["memory", "sqlite"])
    @given(config=escalations, plan=steps)
    def test_filter_matches_the_model(
        self, backend: str, directory: Path, config: EscalationSettings, plan: list[Step]
    ) -> None:
        """For any delays, memory, raises, resolves, clears and time advances, exactly the
        alerts the model passes pass: repeats wait their delay, the count expires after
        ``memory`` and resets on resolve; test, critical and other types always pass.
        """
        clock = ManualClock(START)
        model = Model(config, RateLimitSettings())
        store = open_store(backend, clock, directory)
        with escalating_runtime(store, clock, escalation=config) as rt:
            for number, step in enumerate(plan):
                if isinstance(step, Raise):
                    clock.advance(step.advance)
                    actual = passes(rt, raised(step, clock), is_test=step.kind == "test")
                    assert actual == model.escalate(step), f"step {number}: {step}"
                elif isinstance(step, Clear):
                    assert escalation.clear(rt.store, step.type, step.key) == model.clear(step)
                else:
                    assert escalation.clear_all(rt.store) == model.clear_all()

    @pytest.mark.parametrize("backend", ["memory", "sqlite"])
    @given(
        delays=delay_lists,
        gaps=st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=60),
    )
    def test_delays_are_never_undercut_and_always_honoured(
        self, backend: str, directory: Path, delays: tuple[timedelta, ...], gaps: list[int]
    ) -> None:
        """Raising one alert at any times: consecutive deliveries are at least the delay
        of their repeat apart, and every raise whose delay had passed was delivered.
        """
        clock = ManualClock(START)
        config = EscalationSettings(per_type={"job_stuck": delays})
        delivered: list[datetime] = []
        with escalating_runtime(
            open_store(backend, clock, directory), clock, escalation=config
        ) as rt:
            for gap in gaps:
                clock.advance(gap)
                now = clock.now()
                required = delays[min(len(delivered), len(delays) - 1)]
                due = not delivered or now - delivered[-1] >= required
                assert passes(rt, make_alert("job_stuck", "k", clock)) == due, (
                    f"at {now}, after deliveries {delivered}, {required} required"
                )
                if due:
                    delivered.append(now)
        for repeat, (before, after) in enumerate(itertools.pairwise(delivered), start=1):
            assert after - before >= delays[min(repeat, len(delays) - 1)]

    @pytest.mark.parametrize("backend", ["memory", "sqlite"])
    @given(
        config=escalations,
        limits=st.builds(
            RateLimitSettings,
            default=st.sampled_from([0, 300, 600]).map(lambda s: timedelta(seconds=s)),
        ),
        plan=st.lists(raises, max_size=15),
    )
    @settings(max_examples=25)
    def test_pipeline_uses_escalation_or_the_fixed_window(
        self,
        backend: str,
        directory: Path,
        config: EscalationSettings,
        limits: RateLimitSettings,
        plan: list[Raise],
    ) -> None:
        """Through ``Chaperone.send`` (every built-in filter), escalated types follow their
        delays and never the fixed window, while other types and critical alerts follow the
        fixed window alone.
        """
        clock = ManualClock(START)
        model = Model(config, limits)
        store = open_store(backend, clock, directory)
        with escalating_runtime(store, clock, escalation=config, rate_limit=limits) as rt:
            for step in plan:
                clock.advance(step.advance)
                report = rt.send(raised(step, clock), is_test=step.kind == "test")
                expected = VerdictKind.SEND if model.send(step) else VerdictKind.SUPPRESS
                assert report.verdict.kind is expected, (step, report.verdict)


# -------------------------------------------------------------------------------------
# The schedule
# -------------------------------------------------------------------------------------


def raise_every_minute(runtime: Chaperone, clock: ManualClock, minutes: int) -> list[int]:
    """Dispatch the same JobStuck once a minute for ``minutes`` minutes; return the
    minutes (after START) at which it was sent.
    """
    sent = []
    for _ in range(minutes):
        (report,) = runtime.dispatch(stuck()).alerts
        if report.verdict.kind is VerdictKind.SEND:
            assert report.delivered
            sent.append(round((clock.now() - START).total_seconds() / 60))
        clock.advance(60)
    return sent


class TestSchedule:
    def test_every_minute_for_two_hours(
        self, runtime: Chaperone, clock: ManualClock, recorder: Recorder
    ) -> None:
        """The same stuck alert raised every minute for 2 hours reaches the channel at
        minutes 0, 5, 20, 50 and 110, and never in between.
        """
        assert raise_every_minute(runtime, clock, 120) == [0, 5, 20, 50, 110]
        assert recorder.minutes() == [0, 5, 20, 50, 110]

    def test_the_last_delay_repeats(
        self, runtime: Chaperone, clock: ManualClock, recorder: Recorder
    ) -> None:
        """After the listed delays, the last one (an hour) repeats for ever."""
        assert raise_every_minute(runtime, clock, 300) == [0, 5, 20, 50, 110, 170, 230, 290]

    def test_with_the_default_filters_and_a_longer_fixed_window(self, clock: ManualClock) -> None:
        """With grouping on (the default) and a 10-minute fixed window configured for the
        same type, escalation alone decides: the fixed window does not hold back the
        5-minute repeat.
        """
        recorder = Recorder()
        limits = RateLimitSettings(per_type={"job_stuck": timedelta(minutes=10)})
        with escalating_runtime(
            MemoryStore(clock), clock, recorder, grouping=GroupingSettings(), rate_limit=limits
        ) as rt:
            assert raise_every_minute(rt, clock, 120) == [0, 5, 20, 50, 110]
            assert rt.store.keys(ratelimit.PREFIX) == []
        assert recorder.minutes() == [0, 5, 20, 50, 110]

    def test_suppression_says_when_the_next_repeat_may_go(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """A held-back repeat names the type, the key, the time it may go, its number and
        its delay.
        """
        runtime.dispatch(stuck())
        clock.advance(60)
        (report,) = runtime.dispatch(stuck()).alerts
        assert report.verdict.kind is VerdictKind.SUPPRESS
        assert report.verdict.reason == (
            "escalation: next job_stuck alert for sup-1 not before 2024-01-15 10:05:00 UTC "
            "(repeat 1, 5 minutes after the last)"
        )
        clock.advance(240)
        runtime.dispatch(stuck())
        (report,) = runtime.dispatch(stuck()).alerts
        assert report.verdict.reason == (
            "escalation: next job_stuck alert for sup-1 not before 2024-01-15 10:20:00 UTC "
            "(repeat 2, 15 minutes after the last)"
        )

    def test_keys_and_types_escalate_apart(self, runtime: Chaperone, clock: ManualClock) -> None:
        """Another key of the same type has its own count; a type without delays is left to
        the fixed window.
        """
        assert passes(runtime, make_alert("job_stuck", "a", clock))
        assert passes(runtime, make_alert("job_stuck", "a|0", clock))
        assert passes(runtime, make_alert("job_stuck", "a%7C0", clock))
        assert not passes(runtime, make_alert("job_stuck", "a", clock))
        assert not passes(runtime, make_alert("job_stuck", "a|0", clock))
        breaker = make_alert("circuit_breaker", "a", clock)
        assert all(passes(runtime, breaker) for _ in range(3))
        verdicts = [
            ratelimit.chaperone_filter_alert(alert=breaker, runtime=runtime.runtime, is_test=False)
            for _ in range(2)
        ]
        assert verdicts[0] is None
        assert verdicts[1] is not None
        assert verdicts[1].kind is VerdictKind.SUPPRESS

    def test_fixed_window_stays_out_of_escalated_types(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """The rate-limit filter has no opinion on a non-critical alert of an escalated
        type and leaves no mark for it.
        """
        alert = make_alert("job_stuck", "a", clock)
        for _ in range(3):
            assert (
                ratelimit.chaperone_filter_alert(
                    alert=alert, runtime=runtime.runtime, is_test=False
                )
                is None
            )
        assert runtime.store.keys(ratelimit.PREFIX) == []

    def test_delay_before(self) -> None:
        """``delay_before(n)`` is the wait before repeat n: none for the first alert, then
        the listed delays, the last one repeating.
        """
        waits = [escalation.delay_before(repeat, SEED_DELAYS) for repeat in range(7)]
        assert waits == [
            timedelta(0),
            timedelta(minutes=5),
            timedelta(minutes=15),
            timedelta(minutes=30),
            timedelta(hours=1),
            timedelta(hours=1),
            timedelta(hours=1),
        ]
        assert escalation.delay_before(3, (timedelta(minutes=7),)) == timedelta(minutes=7)
        assert escalation.delay_before(0, (timedelta(minutes=7),)) == timedelta(0)


# -------------------------------------------------------------------------------------
# Resets and bypasses
# -------------------------------------------------------------------------------------


class TestReset:
    def test_resolve_resets_the_count(
        self, runtime: Chaperone, clock: ManualClock, recorder: Recorder
    ) -> None:
        """A recovery clears the incident's count and is delivered; the next stuck alert
        goes out at once and escalation starts again from 5 minutes.
        """
        assert raise_every_minute(runtime, clock, 21) == [0, 5, 20]
        (recovered,) = runtime.dispatch(
            JobRecovered(supervision_id="sup-1", job_class="App\\Jobs\\ImportFeed")
        ).alerts
        assert recovered.verdict.kind is VerdictKind.SEND
        assert recovered.alert.is_resolved
        assert escalation_keys(runtime.store) == []
        assert raise_every_minute(runtime, clock, 10) == [21, 26]
        assert [alert.is_resolved for alert in recorder.sent].count(True) == 1

    def test_resolve_of_another_key_keeps_the_count(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """A resolved alert clears only its own type and key."""
        assert passes(runtime, make_alert("job_stuck", "a", clock))
        assert passes(runtime, make_alert("job_stuck", "a|0", clock, resolved=True))
        assert passes(runtime, make_alert("job_timeout", "a", clock, resolved=True))
        assert not passes(runtime, make_alert("job_stuck", "a", clock))

    def test_count_expires_a_day_after_the_last_delivery(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """Up to a second before 24 h after the last delivery the count holds (the next
        repeat waits an hour); from 24 h on it is gone (the next one waits 5 minutes).
        """
        assert raise_every_minute(runtime, clock, 111) == [0, 5, 20, 50, 110]
        clock.advance(timedelta(hours=24) - timedelta(minutes=1, seconds=1))
        assert passes(runtime, make_alert("job_stuck", "sup-1", clock))
        clock.advance(timedelta(minutes=5))
        assert not passes(runtime, make_alert("job_stuck", "sup-1", clock))
        clock.advance(timedelta(hours=24) - timedelta(minutes=5))
        assert escalation_keys(runtime.store) == []
        assert passes(runtime, make_alert("job_stuck", "sup-1", clock))
        clock.advance(timedelta(minutes=5))
        assert passes(runtime, make_alert("job_stuck", "sup-1", clock))

    def test_shorter_memory(self, clock: ManualClock) -> None:
        """With a memory of 10 minutes, an alert 10 minutes after the last delivery counts as
        a first alert again (so the 15-minute delay never comes into play).
        """
        config = EscalationSettings(
            per_type={"job_stuck": SEED_DELAYS}, memory=timedelta(minutes=10)
        )
        with escalating_runtime(MemoryStore(clock), clock, escalation=config) as rt:
            assert raise_every_minute(rt, clock, 21) == [0, 5, 15, 20]
            clock.advance(timedelta(minutes=9))
            assert raise_every_minute(rt, clock, 6) == [30, 35]


class TestBypass:
    def test_test_alerts_pass_without_counting(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """``is_test`` alerts always pass, leave nothing behind and do not clear a count."""
        alert = make_alert("job_stuck", "k", clock)
        assert all(passes(runtime, alert, is_test=True) for _ in range(3))
        assert escalation_keys(runtime.store) == []
        assert passes(runtime, alert)
        resolved = make_alert("job_stuck", "k", clock, resolved=True)
        assert passes(runtime, resolved, is_test=True)
        assert passes(runtime, alert, is_test=True)
        assert not passes(runtime, alert)

    def test_critical_alerts_get_the_fixed_window(
        self, clock: ManualClock, recorder: Recorder
    ) -> None:
        """An alert made critical by ``critical_jobs`` skips the escalation delays and gets
        the fixed window (10 minutes here) instead, while a normal job of the same type
        escalates; the critical one leaves no escalation count.
        """
        with escalating_runtime(
            MemoryStore(clock),
            clock,
            recorder,
            rate_limit=RateLimitSettings(per_type={"job_stuck": timedelta(minutes=10)}),
            priority=PrioritySettings(critical_jobs=("App\\Jobs\\Charge*",)),
        ) as rt:
            critical: list[int] = []
            for minute in range(31):
                (normal,) = rt.dispatch(stuck("normal")).alerts
                (urgent,) = rt.dispatch(stuck("urgent", "App\\Jobs\\ChargeCustomer")).alerts
                assert normal.alert.priority is Priority.NORMAL
                assert urgent.alert.priority is Priority.CRITICAL
                if urgent.verdict.kind is VerdictKind.SEND:
                    critical.append(minute)
                else:
                    assert urgent.verdict.reason.startswith("rate limited")
                clock.advance(60)
            assert critical == [0, 10, 20, 30]
            assert recorder.minutes(key="normal") == [0, 5, 20]
            assert all(":urgent|" not in key for key in escalation_keys(rt.store))

    def test_critical_alert_passes_escalation_and_keeps_the_count(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """The escalation filter has no opinion on a critical alert and neither counts nor
        clears it; the rate-limit filter does decide on it.
        """
        assert passes(runtime, make_alert("job_stuck", "k", clock))
        critical = make_alert("job_stuck", "k", clock, priority=Priority.CRITICAL)
        assert passes(runtime, critical)
        assert passes(runtime, critical)
        assert not passes(runtime, make_alert("job_stuck", "k", clock))
        verdicts = [
            ratelimit.chaperone_filter_alert(alert=critical, runtime=runtime.runtime, is_test=False)
            for _ in range(2)
        ]
        assert verdicts[0] is None
        assert verdicts[1] is not None
        assert verdicts[1].kind is VerdictKind.SUPPRESS


# -------------------------------------------------------------------------------------
# Clearing and sharing
# -------------------------------------------------------------------------------------


class TestClear:
    def test_clear_forgets_one_incident(self, runtime: Chaperone, clock: ManualClock) -> None:
        """``clear`` of a type and key lets its next alert out at once and leaves every
        other incident (even ones whose keys share a prefix) alone.
        """
        for key in KEYS:
            assert passes(runtime, make_alert("job_stuck", key, clock))
        runtime.store.set("escalationless", "kept")
        assert escalation.clear(runtime.store, "job_stuck", "a") is True
        assert escalation.clear(runtime.store, "job_stuck", "a") is False
        assert passes(runtime, make_alert("job_stuck", "a", clock))
        assert not any(passes(runtime, make_alert("job_stuck", key, clock)) for key in KEYS)
        assert runtime.store.get("escalationless") == "kept"

    def test_clear_all_counts_incidents(self, runtime: Chaperone, clock: ManualClock) -> None:
        """``clear_all`` returns how many incidents had a count and forgets them all."""
        for key in KEYS:
            assert passes(runtime, make_alert("job_stuck", key, clock))
        clock.advance(timedelta(minutes=5))
        assert passes(runtime, make_alert("job_stuck", "a", clock))
        runtime.store.set("ratelimit:job_stuck:a", "kept")
        assert escalation.clear_all(runtime.store) == len(KEYS)
        assert escalation_keys(runtime.store) == []
        assert escalation.clear_all(runtime.store) == 0
        assert runtime.store.get("ratelimit:job_stuck:a") == "kept"


class TestSharedStore:
    def test_two_runtimes_on_one_file(self, tmp_path: Path, clock: ManualClock) -> None:
        """Two runtimes on one SQLite file share the count: each repeat goes out once."""
        path = tmp_path / "shared.sqlite3"
        first = escalating_runtime(sqlite_store(path, clock), clock)
        second = escalating_runtime(sqlite_store(path, clock), clock)
        with first, second:
            sent = []
            for minute in range(25):
                for rt in (first, second):
                    (report,) = rt.dispatch(stuck()).alerts
                    if report.verdict.kind is VerdictKind.SEND:
                        sent.append((minute, rt is first))
                clock.advance(60)
            assert [minute for minute, _ in sent] == [0, 5, 20]

    def test_threads_racing_on_one_file_send_once(self, tmp_path: Path) -> None:
        """Eight threads, each with its own connection to one SQLite file, deciding on the
        same alert at once: exactly one passes, for the first alert and for each repeat.
        """
        clock = ManualClock(START)
        path = tmp_path / "race.sqlite3"
        runtimes = [escalating_runtime(sqlite_store(path, clock), clock) for _ in range(8)]
        try:
            for _ in range(10):
                barrier = threading.Barrier(len(runtimes))
                alert = make_alert("job_stuck", "k", clock)

                def decide(
                    rt: Chaperone, alert: Alert = alert, barrier: threading.Barrier = barrier
                ) -> bool:
                    barrier.wait(timeout=10)
                    return passes(rt, alert)

                with ThreadPoolExecutor(len(runtimes)) as pool:
                    results = list(pool.map(decide, runtimes))
                assert results.count(True) == 1
                clock.advance(timedelta(hours=1))
        finally:
            for rt in runtimes:
                rt.close()

    def test_a_claimed_slot_without_state_is_respected(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """When a process claimed repeat 1 and died before recording it, the others treat
        repeat 1 as sent at its claim time: nothing goes out until repeat 2 is due.
        """
        assert passes(runtime, make_alert("job_stuck", "k", clock))
        clock.advance(timedelta(minutes=5))
        slot = f"{escalation.incident_prefix('job_stuck', 'k')}1"
        assert runtime.store.set_if_absent(slot, clock.now().isoformat(), 86400)
        verdict = escalation.chaperone_filter_alert(
            alert=make_alert("job_stuck", "k", clock), runtime=runtime.runtime, is_test=False
        )
        assert verdict is not None
        assert "not before 2024-01-15 10:20:00 UTC (repeat 2" in verdict.reason
        clock.advance(timedelta(minutes=14, seconds=59))
        assert not passes(runtime, make_alert("job_stuck", "k", clock))
        clock.advance(1)
        assert passes(runtime, make_alert("job_stuck", "k", clock))
        clock.advance(timedelta(minutes=29, seconds=59))
        assert not passes(runtime, make_alert("job_stuck", "k", clock))
        clock.advance(1)
        assert passes(runtime, make_alert("job_stuck", "k", clock))

    def test_unreadable_state_falls_back_to_the_slots(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """A corrupt state record does not let a repeat out early: the claimed slots still
        say what was sent.
        """
        assert passes(runtime, make_alert("job_stuck", "k", clock))
        state = f"{escalation.incident_prefix('job_stuck', 'k')}state"
        assert runtime.store.get(state) is not None
        runtime.store.set(state, "not json", 86400)
        clock.advance(60)
        assert not passes(runtime, make_alert("job_stuck", "k", clock))
        clock.advance(240)
        assert passes(runtime, make_alert("job_stuck", "k", clock))

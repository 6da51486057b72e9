r"""The grouping filter: the first alerts of a group's window go out, the rest are held and
flushed as digests by the monitor, exactly once each, across restarts and processes.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chaperone
from chaperone import (
    Alert,
    AlertReport,
    AlertStatus,
    Chaperone,
    ManualClock,
    Monitor,
    Priority,
    Settings,
    VerdictKind,
)
from chaperone.builtin import alert_grouping as grouping
from chaperone.config import GroupingSettings, PrioritySettings
from chaperone.store import MemoryStore, Store
from helpers.fatigue import RecordingChannel, entry_keys, runtime_with, sqlite_store

AT = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
JOB = "App\\Jobs\\ImportFeed"
OTHER_JOB = "App\\Jobs\\SendNewsletter"
WINDOW = timedelta(minutes=10)

# -------------------------------------------------------------------------------------
# Helpers
# -------------------------------------------------------------------------------------


class Sink(RecordingChannel):
    """A plugin with one channel, ``sink``, that records every alert it is sent."""

    def __init__(self) -> None:
        super().__init__("sink")


def members(digest: Alert) -> list[str]:
    """The keys of the alerts a digest lists, one per field."""
    return entry_keys(digest.fields)


def group_settings(**changes: Any) -> GroupingSettings:
    """The default grouping settings with ``changes``."""
    return attrs.evolve(GroupingSettings(), **changes)


def grouping_runtime(
    sink: Sink,
    clock: ManualClock,
    store: Store | None = None,
    *,
    grouping_settings: GroupingSettings | None = None,
    priority: PrioritySettings | None = None,
) -> Chaperone:
    """A runtime delivering to ``sink`` only, on ``store`` (a fresh memory store if None)."""
    settings_ = Settings(
        channels=("sink",),
        grouping=grouping_settings or GroupingSettings(),
        priority=priority or PrioritySettings(),
        store_url="memory://",
    )
    return runtime_with(settings_, clock, sink, store=store)


def alert(
    key: str,
    clock: ManualClock,
    *,
    job_class: str | None = JOB,
    alert_type: str = "job_stuck",
    **changes: Any,
) -> Alert:
    """A firing alert of ``alert_type`` for ``job_class``, occurring now."""
    return Alert(
        type=alert_type,
        key=key,
        headline="Job Stuck",
        title=f"Job Stuck: {job_class}",
        summary="A supervised job has been detected as stuck.",
        job_class=job_class,
        occurred_at=clock.now(),
        **changes,
    )


def send_all(runtime: Chaperone, alerts: list[Alert], **options: Any) -> list[AlertReport]:
    """Send each alert; return the reports."""
    return [runtime.send(item, **options) for item in alerts]


def kinds(reports: list[AlertReport]) -> list[str]:
    """The verdict of each report."""
    return [report.verdict.kind.value for report in reports]


def due_entries(store: Store) -> list[tuple[str, float]]:
    """Every entry of the grouping deadline index, due or not."""
    return store.due(grouping.DUE_INDEX, 4e9, 1000)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(AT)


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def runtime(sink: Sink, clock: ManualClock) -> Iterator[Chaperone]:
    """A runtime with the default grouping whose monitor has ticked (so holding is on)."""
    with grouping_runtime(sink, clock) as opened:
        Monitor(opened).tick()
        yield opened


# -------------------------------------------------------------------------------------
# The group key
# -------------------------------------------------------------------------------------


class TestGroupKey:
    """Which alerts share a group."""

    def test_type_and_job_class_by_default(self, clock: ManualClock) -> None:
        """The default key is the type and the job class, joined by a bar."""
        key = grouping.group_key(alert("a", clock), GroupingSettings().by)
        assert key == "job_stuck|App\\Jobs\\ImportFeed"

    def test_a_missing_field_is_a_dash(self, clock: ManualClock) -> None:
        """A circuit breaker has no job class: its key says ``-`` for it."""
        breaker = alert("payments", clock, job_class=None, alert_type="circuit_breaker")
        assert grouping.group_key(breaker, ("type", "job_class")) == "circuit_breaker|-"

    @given(
        values=st.lists(st.none() | st.text(alphabet="ab|%-2DC7", max_size=4), min_size=1),
    )
    def test_the_key_spells_out_each_value(self, values: list[str | None]) -> None:
        """The key splits on its bars into exactly one part per grouped field, and each
        part unescapes to that field's value (``-`` to a missing one): distinct values
        never share a key, whatever bars, percent signs and dashes they hold.
        """
        names = [f"f{index}" for index in range(len(values))]
        pairs = zip(names, values, strict=True)
        labels = {name: value for name, value in pairs if value is not None}
        key = grouping.group_key(alert("k", ManualClock(AT), labels=labels), names)
        parts = key.split("|")
        assert len(parts) == len(values)
        decoded = [None if part == "-" else urllib.parse.unquote(part) for part in parts]
        assert decoded == values


# -------------------------------------------------------------------------------------
# Holding and flushing
# -------------------------------------------------------------------------------------


class TestHolding:
    """Inside a window the first four go out and the rest wait for the digest."""

    def test_from_the_fifth_alert_on_they_are_held(
        self, runtime: Chaperone, sink: Sink, clock: ManualClock
    ) -> None:
        """Of seven alerts of one group, four are sent and three held under the group key."""
        reports = send_all(runtime, [alert(f"sup-{n}", clock) for n in range(7)])
        assert kinds(reports) == ["send"] * 4 + ["hold"] * 3
        assert {report.verdict.group_key for report in reports[4:]} == {
            "job_stuck|App\\Jobs\\ImportFeed"
        }
        assert sink.individual == ["sup-0", "sup-1", "sup-2", "sup-3"]

    def test_the_window_closing_sends_one_digest(
        self, runtime: Chaperone, sink: Sink, clock: ManualClock
    ) -> None:
        """When the window closes, the next tick delivers one digest naming the held ones;
        a tick before that delivers nothing.
        """
        for number in range(7):
            Monitor(runtime).tick()
            runtime.send(alert(f"sup-{number}", clock))
            clock.advance(60)
        Monitor(runtime).tick()
        assert sink.digests == []
        clock.advance(WINDOW - timedelta(minutes=7))
        Monitor(runtime).tick()
        [digest] = sink.digests
        assert members(digest) == ["sup-4", "sup-5", "sup-6"]
        assert digest.digest_of == 3
        assert digest.title == "3 job_stuck alerts for App\\Jobs\\ImportFeed in the last 10 minutes"
        assert "4 earlier alerts of this group went out one by one" in digest.summary
        assert digest.job_class == JOB
        Monitor(runtime).tick()
        assert len(sink.digests) == 1

    def test_windows_tumble(self, runtime: Chaperone, sink: Sink, clock: ManualClock) -> None:
        """An alert just inside the window is held; the first at its end opens a new window
        and goes out.
        """
        send_all(runtime, [alert(f"a{n}", clock) for n in range(4)])
        clock.advance(WINDOW - timedelta(seconds=1))
        Monitor(runtime).tick()
        assert runtime.send(alert("late", clock)).verdict.kind is VerdictKind.HOLD
        clock.advance(1)
        assert runtime.send(alert("next", clock)).verdict.kind is VerdictKind.SEND
        Monitor(runtime).tick()
        assert sink.digested == ["late"]

    def test_groups_count_apart(self, runtime: Chaperone, sink: Sink, clock: ManualClock) -> None:
        """Alerts of another job class, or another type, start counting afresh."""
        send_all(runtime, [alert(f"a{n}", clock) for n in range(4)])
        assert kinds(send_all(runtime, [alert("b", clock, job_class=OTHER_JOB)])) == ["send"]
        assert kinds(send_all(runtime, [alert("c", clock, alert_type="job_timeout")])) == ["send"]
        assert kinds(send_all(runtime, [alert("a4", clock)])) == ["hold"]

    def test_count_reached_flushes_early(self, sink: Sink, clock: ManualClock) -> None:
        """With flush_at 3, the tick after the third held alert sends a digest at once; the
        rest of the window is flushed when it closes, each alert once.
        """
        settings_ = group_settings(after=2, flush_at=3)
        with grouping_runtime(sink, clock, grouping_settings=settings_) as runtime:
            Monitor(runtime).tick()
            send_all(runtime, [alert(f"k{n}", clock) for n in range(4)])
            Monitor(runtime).tick()
            assert [members(digest) for digest in sink.digests] == [["k1", "k2", "k3"]]
            clock.advance(60)
            send_all(runtime, [alert(f"k{n}", clock) for n in range(4, 6)])
            Monitor(runtime).tick()
            assert len(sink.digests) == 1
            clock.advance(WINDOW)
            Monitor(runtime).tick()
            assert [members(digest) for digest in sink.digests] == [
                ["k1", "k2", "k3"],
                ["k4", "k5"],
            ]
            assert sink.digests[0].key != sink.digests[1].key
            assert due_entries(runtime.store) == []

    def test_big_groups_are_split_into_numbered_parts(self, sink: Sink, clock: ManualClock) -> None:
        """Held alerts beyond digest_size go on in further messages, none dropped."""
        settings_ = group_settings(after=1, digest_size=3)
        with grouping_runtime(sink, clock, grouping_settings=settings_) as runtime:
            Monitor(runtime).tick()
            send_all(runtime, [alert(f"k{n}", clock) for n in range(7)])
            clock.advance(WINDOW)
            Monitor(runtime).tick()
        assert [len(digest.fields) for digest in sink.digests] == [3, 3, 1]
        assert sink.digested == [f"k{n}" for n in range(7)]
        assert sink.digests[0].title.endswith("(part 1 of 3)")
        assert all(digest.digest_of == 7 for digest in sink.digests)

    def test_a_huge_group_is_flushed_over_several_ticks(
        self, sink: Sink, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A flush takes a bounded number of pop batches; what it leaves goes out on the
        following ticks, each alert once.
        """
        monkeypatch.setattr(grouping, "_POP_BATCH", 2)
        monkeypatch.setattr(grouping, "_POP_ROUNDS", 2)
        with grouping_runtime(sink, clock, grouping_settings=group_settings(after=1)) as runtime:
            Monitor(runtime).tick()
            send_all(runtime, [alert(f"k{n}", clock) for n in range(9)])
            clock.advance(WINDOW)
            flushed = []
            for _ in range(4):
                Monitor(runtime).tick()
                flushed.append(len(sink.digested))
        assert flushed == [4, 8, 9, 9]
        assert sink.digested == [f"k{n}" for n in range(9)]

    def test_an_idle_tick_reads_the_index_once(self, sink: Sink, clock: ManualClock) -> None:
        """With groups scheduled but none due, a flush costs one deadline-index read."""
        calls: list[str] = []

        class Counting(MemoryStore):
            def __getattribute__(self, name: str) -> Any:
                if not name.startswith("_") and name != "url":
                    calls.append(name)
                return super().__getattribute__(name)

        store = Counting(clock)
        with grouping_runtime(sink, clock, store) as runtime:
            Monitor(runtime).tick()
            send_all(runtime, [alert(f"k{n}", clock) for n in range(6)])
            calls.clear()
            assert grouping.flush_due(runtime, clock.now()) == []
            assert calls == ["due"]


class TestNotGrouped:
    """What grouping never holds."""

    @pytest.mark.parametrize(
        "case",
        ["resolved", "test", "critical", "disabled", "no monitor"],
    )
    def test_every_alert_goes_out(self, case: str, sink: Sink, clock: ManualClock) -> None:
        """Resolved, test and critical alerts, and any alert with grouping disabled or no
        monitor to flush, are all sent, and nothing is scheduled.
        """
        changes: dict[str, Any] = {}
        if case == "resolved":
            changes["status"] = AlertStatus.RESOLVED
        if case == "critical":
            changes["priority"] = Priority.CRITICAL
        settings_ = group_settings(enabled=case != "disabled")
        with grouping_runtime(sink, clock, grouping_settings=settings_) as runtime:
            if case != "no monitor":
                Monitor(runtime).tick()
            reports = send_all(
                runtime,
                [alert(f"k{n}", clock, **changes) for n in range(8)],
                is_test=case == "test",
            )
            assert kinds(reports) == ["send"] * 8
            assert due_entries(runtime.store) == []
        assert sink.individual == [f"k{n}" for n in range(8)]

    def test_a_digest_is_never_held(self, runtime: Chaperone, clock: ManualClock) -> None:
        """The filter has no opinion on a digest, even in a full group."""
        send_all(runtime, [alert(f"k{n}", clock) for n in range(6)])
        digest = alert("digest", clock, digest_of=3)
        assert grouping.chaperone_filter_alert(digest, runtime, False) is None


class TestLowDigestOnly:
    """``low_digest_only`` sends low-priority alerts only in digests."""

    def test_low_alerts_are_held_from_the_first(self, sink: Sink, clock: ManualClock) -> None:
        """Every low alert waits for the digest; normal ones keep their four."""
        with grouping_runtime(
            sink, clock, priority=PrioritySettings(low_digest_only=True)
        ) as runtime:
            Monitor(runtime).tick()
            low = send_all(
                runtime,
                [
                    alert(f"low{n}", clock, job_class="App\\Jobs\\Cleanup", priority="low")
                    for n in range(3)
                ],
            )
            normal = send_all(runtime, [alert(f"n{n}", clock) for n in range(5)])
            assert kinds(low) == ["hold"] * 3
            assert kinds(normal) == ["send"] * 4 + ["hold"]
            clock.advance(WINDOW)
            Monitor(runtime).tick()
        assert sink.individual == ["n0", "n1", "n2", "n3"]
        by_subject = {digest.job_class: members(digest) for digest in sink.digests}
        assert by_subject == {"App\\Jobs\\Cleanup": ["low0", "low1", "low2"], JOB: ["n4"]}
        cleanup = next(d for d in sink.digests if d.job_class == "App\\Jobs\\Cleanup")
        assert "went out one by one" not in cleanup.summary

    def test_without_it_low_alerts_are_grouped_as_usual(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """By default a low alert is just another member of its group."""
        reports = send_all(runtime, [alert(f"k{n}", clock, priority="low") for n in range(5)])
        assert kinds(reports) == ["send"] * 4 + ["hold"]


# -------------------------------------------------------------------------------------
# Never lost, never twice
# -------------------------------------------------------------------------------------


class TestRestart:
    """Held alerts live in the store, not in the process that held them."""

    def test_a_new_monitor_flushes_what_the_old_one_held(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        """Alerts held by a runtime that then closed are flushed by a new runtime opened on
        the same SQLite file, once the window is over.
        """
        path = tmp_path / "store.sqlite3"
        first = Sink()
        with grouping_runtime(first, clock, sqlite_store(path, clock)) as runtime:
            Monitor(runtime).tick()
            reports = send_all(runtime, [alert(f"sup-{n}", clock) for n in range(7)])
        assert kinds(reports).count("hold") == 3
        assert first.digests == []

        clock.advance(WINDOW)
        second = Sink()
        with grouping_runtime(second, clock, sqlite_store(path, clock)) as runtime:
            Monitor(runtime).tick()
            Monitor(runtime).tick()
        assert second.individual == []
        assert second.digested == ["sup-4", "sup-5", "sup-6"]


class TestStraggler:
    """An alert held into a window that was already flushed still goes out."""

    def test_a_slow_holder_is_picked_up_by_the_next_tick(
        self, runtime: Chaperone, sink: Sink, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A holder that read the window before it closed, and pushes after its final
        flush, schedules its own flush: the next tick sends it, in a digest of its own.
        """
        send_all(runtime, [alert(f"k{n}", clock) for n in range(5)])
        key = "job_stuck|App\\Jobs\\ImportFeed"
        record = runtime.store.get(f"group:window:{key}")
        assert record is not None
        clock.advance(WINDOW)
        Monitor(runtime).tick()
        assert sink.digested == ["k4"]

        stale = grouping._Window.read(key, record)
        monkeypatch.setattr(grouping, "_window_for", lambda *_args: stale)
        assert runtime.send(alert("slow", clock)).verdict.kind is VerdictKind.HOLD
        Monitor(runtime).tick()
        assert sink.digested == ["k4", "slow"]
        assert sink.individual == ["k0", "k1", "k2", "k3"]


class Racing(MemoryStore):
    """A memory store that, once armed, runs a flush right after each write the grouping
    filter makes: another monitor racing every step of a holder.
    """

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.runtime: Chaperone | None = None
        self.events: list[chaperone.AlertsGrouped] = []
        self._racing = False

    def _race(self) -> None:
        if self.runtime is None or self._racing:
            return
        self._racing = True
        try:
            self.events.extend(grouping.flush_due(self.runtime, self.runtime.clock.now()))
        finally:
            self._racing = False

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        result = super().incr(key, amount, ttl)
        self._race()
        return result

    def push(self, queue: str, record: str) -> None:
        super().push(queue, record)
        self._race()

    def schedule(self, index: str, member: str, at: float) -> None:
        super().schedule(index, member, at)
        self._race()


class HoldDuringPop(MemoryStore):
    """A memory store that runs ``during_pop`` once, right after the next non-empty pop:
    a holder racing a flush between its pop and whatever the flush does next.
    """

    during_pop: Callable[[], None] | None = None

    def pop(self, queue: str, limit: int) -> list[str]:
        records = super().pop(queue, limit)
        action, self.during_pop = (self.during_pop, None) if records else (None, self.during_pop)
        if action is not None:
            action()
        return records


class TestRacingFlush:
    """A flush between any two steps of a holder neither loses nor repeats its alert."""

    @pytest.mark.parametrize("count", [1, 5, 7])
    def test_a_flush_after_every_step(
        self,
        count: int,
        sink: Sink,
        clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A slow holder whose window was already flushed, with a flush racing each of its
        writes, still has its alert delivered exactly once; so do alerts held while the
        window is open with flush_at 2.
        """
        store = Racing(clock)
        settings_ = group_settings(after=1, flush_at=2)
        with grouping_runtime(sink, clock, store, grouping_settings=settings_) as runtime:
            Monitor(runtime).tick()
            runtime.send(alert("first", clock))
            key = "job_stuck|App\\Jobs\\ImportFeed"
            record = store.get(f"group:window:{key}")
            assert record is not None
            store.runtime = runtime
            send_all(runtime, [alert(f"open{n}", clock) for n in range(count)])
            clock.advance(WINDOW)
            Monitor(runtime).tick()
            stale = grouping._Window.read(key, record)
            monkeypatch.setattr(grouping, "_window_for", lambda *_args: stale)
            send_all(runtime, [alert(f"slow{n}", clock) for n in range(count)])
            store.runtime = None
            for event in store.events:
                runtime.dispatch(event)
            Monitor(runtime).tick()
            assert due_entries(store) == []
        expected = ["first"] + [f"open{n}" for n in range(count)]
        expected += [f"slow{n}" for n in range(count)]
        assert sorted(sink.digested) == sorted(expected)
        assert sink.individual == []

    def test_a_holder_between_pop_and_the_rest_of_a_flush(
        self, sink: Sink, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A slow holder pushing and scheduling just after a flush popped its window is
        flushed by the next tick: the flush took its index entry before popping.
        """
        store = HoldDuringPop(clock)
        with grouping_runtime(sink, clock, store) as runtime:
            Monitor(runtime).tick()
            send_all(runtime, [alert(f"k{n}", clock) for n in range(5)])
            key = "job_stuck|App\\Jobs\\ImportFeed"
            record = store.get(f"group:window:{key}")
            assert record is not None
            stale = grouping._Window.read(key, record)
            monkeypatch.setattr(grouping, "_window_for", lambda *_args: stale)
            clock.advance(WINDOW)

            def hold_straggler() -> None:
                verdict = grouping.chaperone_filter_alert(alert("slow", clock), runtime, False)
                assert verdict is not None
                assert verdict.kind is VerdictKind.HOLD

            store.during_pop = hold_straggler
            Monitor(runtime).tick()
            assert sink.digested == ["k4"]
            Monitor(runtime).tick()
        assert sink.digested == ["k4", "slow"]


class TestConcurrency:
    """Several processes on one SQLite file hold and flush without losing or repeating."""

    def test_two_runtimes_holding_and_flushing_at_once(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        """Two runtimes (each its own connection) send alerts of one group from two
        threads each, ticking their monitors in between; afterwards every alert was
        delivered exactly once, individually or in a digest, and only four individually.
        """
        path = tmp_path / "store.sqlite3"
        settings_ = group_settings(flush_at=7, digest_size=5)
        sinks = [Sink(), Sink()]
        runtimes = [
            grouping_runtime(sink, clock, sqlite_store(path, clock), grouping_settings=settings_)
            for sink in sinks
        ]
        per_thread = 40
        barrier = threading.Barrier(4)
        failures: list[BaseException] = []

        def work(runtime: Chaperone, name: str) -> None:
            try:
                barrier.wait(timeout=30)
                for number in range(per_thread):
                    runtime.send(alert(f"{name}-{number}", clock))
                    if number % 5 == 0:
                        Monitor(runtime).tick()
            except BaseException as exc:  # reported below
                failures.append(exc)

        try:
            Monitor(runtimes[0]).tick()
            threads = [
                threading.Thread(target=work, args=(runtimes[index % 2], f"t{index}"))
                for index in range(4)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert not failures, failures
            clock.advance(WINDOW)
            ticks = [threading.Thread(target=Monitor(rt).tick) for rt in runtimes]
            for thread in ticks:
                thread.start()
            for thread in ticks:
                thread.join(timeout=60)
        finally:
            for opened in runtimes:
                opened.close()

        delivered = [key for sink in sinks for key in sink.individual + sink.digested]
        expected = [f"t{index}-{number}" for index in range(4) for number in range(per_thread)]
        assert sorted(delivered) == sorted(expected)
        assert sum(len(sink.individual) for sink in sinks) == 4
        assert all(digest.fields for sink in sinks for digest in sink.digests)

    def test_concurrent_flushers_take_each_group_once(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        """Four monitors on one file ticking at the same moment deliver each held alert
        once between them.
        """
        path = tmp_path / "store.sqlite3"
        settings_ = group_settings(after=1)
        holder_sink = Sink()
        with grouping_runtime(
            holder_sink, clock, sqlite_store(path, clock), grouping_settings=settings_
        ) as holder:
            Monitor(holder).tick()
            for job in range(6):
                send_all(
                    holder,
                    [alert(f"j{job}-{n}", clock, job_class=f"App\\Jobs\\J{job}") for n in range(5)],
                )
        clock.advance(WINDOW)
        sinks = [Sink() for _ in range(4)]
        runtimes = [
            grouping_runtime(sink, clock, sqlite_store(path, clock), grouping_settings=settings_)
            for sink in sinks
        ]
        barrier = threading.Barrier(len(runtimes))

        def tick(runtime: Chaperone) -> None:
            barrier.wait(timeout=30)
            Monitor(runtime).tick()

        try:
            threads = [threading.Thread(target=tick, args=(rt,)) for rt in runtimes]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        finally:
            for opened in runtimes:
                opened.close()
        delivered = [key for sink in sinks for key in sink.digested]
        assert sorted(delivered) == sorted(f"j{job}-{n}" for job in range(6) for n in range(5))
        assert holder_sink.sent == []


# -------------------------------------------------------------------------------------
# The property: each alert in exactly one notification
# -------------------------------------------------------------------------------------


@attrs.frozen
class Step:
    """Wait ``gap`` seconds, maybe tick the monitor, then raise an alert of ``job``."""

    gap: int
    job: int
    tick: bool


steps = st.lists(
    st.builds(
        Step,
        gap=st.one_of(st.just(0), st.integers(min_value=0, max_value=400)),
        job=st.integers(min_value=0, max_value=2),
        tick=st.booleans(),
    ),
    min_size=1,
    max_size=60,
)


def expected_individual(plan: list[Step], window: float, after: int) -> set[str]:
    """The keys the model says go out one by one: per job, tumbling windows from each
    window's first alert, the first ``after - 1`` of each.
    """
    opened: dict[int, tuple[float, int]] = {}
    now = 0.0
    individual = set()
    for number, step in enumerate(plan):
        now += step.gap
        start, count = opened.get(step.job, (None, 0))
        if start is None or now >= start + window:
            start, count = now, 0
        count += 1
        opened[step.job] = (start, count)
        if count < after:
            individual.add(f"k{number}")
    return individual


class TestEveryAlertInExactlyOneNotification:
    """Grouping loses no alert and repeats none."""

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        plan=steps,
        after=st.integers(min_value=1, max_value=5),
        flush_at=st.integers(min_value=1, max_value=8),
        digest_size=st.integers(min_value=1, max_value=5),
    )
    def test_on_a_memory_store(
        self, plan: list[Step], after: int, flush_at: int, digest_size: int
    ) -> None:
        """For any sequence of alerts of three job classes at any times, with ticks in
        between: each alert is delivered exactly once (alone or listed in one digest),
        exactly the model's first ``after - 1`` per group window go alone, and no digest
        is empty or longer than digest_size.
        """
        clock = ManualClock(AT)
        sink = Sink()
        settings_ = group_settings(after=after, flush_at=flush_at, digest_size=digest_size)
        with grouping_runtime(sink, clock, grouping_settings=settings_) as runtime:
            run_plan(runtime, clock, plan)
            store = runtime.store
            assert due_entries(store) == []
        check_notifications(sink, plan, after, digest_size)

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(plan=steps, after=st.integers(min_value=1, max_value=5))
    def test_on_a_sqlite_store(
        self, tmp_path_factory: pytest.TempPathFactory, plan: list[Step], after: int
    ) -> None:
        """The same on a SQLite file, with the default flush_at and digest_size."""
        clock = ManualClock(AT)
        sink = Sink()
        path = tmp_path_factory.mktemp("grouping") / "store.sqlite3"
        settings_ = group_settings(after=after)
        with grouping_runtime(
            sink, clock, sqlite_store(path, clock), grouping_settings=settings_
        ) as runtime:
            run_plan(runtime, clock, plan)
        check_notifications(sink, plan, after, settings_.digest_size)


def run_plan(runtime: Chaperone, clock: ManualClock, plan: list[Step]) -> None:
    """Raise the plan's alerts, ticking as it says (and often enough to keep the monitor
    alive), then let every window close and tick once more.
    """
    jobs = [JOB, OTHER_JOB, "App\\Jobs\\Archive"]
    last_tick: float | None = None
    for number, step in enumerate(plan):
        clock.advance(step.gap)
        now = clock.timestamp()
        if step.tick or last_tick is None or now - last_tick > 60:
            Monitor(runtime).tick()
            last_tick = now
        report = runtime.send(alert(f"k{number}", clock, job_class=jobs[step.job]))
        assert report.verdict.kind in {VerdictKind.SEND, VerdictKind.HOLD}
    clock.advance(WINDOW)
    Monitor(runtime).tick()


def check_notifications(sink: Sink, plan: list[Step], after: int, digest_size: int) -> None:
    """Each planned alert once, alone or in a digest, the model's ones alone."""
    keys = [f"k{number}" for number in range(len(plan))]
    delivered = sink.individual + sink.digested
    assert sorted(delivered) == sorted(keys)
    assert set(sink.individual) == expected_individual(plan, WINDOW.total_seconds(), after)
    for digest in sink.digests:
        assert 1 <= len(digest.fields) <= digest_size
        assert json.dumps(digest.to_dict())

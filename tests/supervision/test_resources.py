"""Resource limits: the sampler's crossing and recovery logic (fake measures, a manual
clock), real psutil measures of real process trees, the background sampler of
``supervise(...)``, and ``chaperone run --memory-limit`` end to end.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

_TESTS = str(Path(__file__).resolve().parent.parent)
if _TESTS not in sys.path:  # until pytest's configuration says pythonpath = ["tests"]
    sys.path.insert(0, _TESTS)

from chaperone._clock import ManualClock, SystemClock  # noqa: E402
from chaperone._event_codec import decode_event  # noqa: E402
from chaperone._events import (  # noqa: E402
    Event,
    IncidentRef,
    JobCompleted,
    ResourceRecovered,
    ResourceViolationDetected,
    ViolationType,
)
from chaperone.store import MemoryStore, SQLiteStore  # noqa: E402
from chaperone.supervision import (  # noqa: E402
    JobRecord,
    Supervision,
    Supervisor,
    _keys,
    supervise,
)
from chaperone.supervision._resources import (  # noqa: E402
    CPU_CONSECUTIVE_SAMPLES,
    Measurement,
    ProcessTreeMeter,
    ResourceSampler,
)
from helpers.cli import (  # noqa: E402
    CliResult,
    Invocation,
    clean_environ,
    finish_cli,
    run_many,
    start_cli,
    store_url,
)

SID = "0b9c3f0e-5d0b-4a4e-9a57-3c1f2e7d9a10"
MB = 1024 * 1024
CHILD_TIMEOUT = 20.0
"""Longest wait for a child process to say it is ready."""


# -- helpers -------------------------------------------------------------------------------


class FlakyStore(MemoryStore):
    """A memory store that can be switched off: then every write raises."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("store unreachable")

    def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        self._check()
        return super().set_if_absent(key, value, ttl)

    def delete(self, key: str) -> bool:
        self._check()
        return super().delete(key)


class Feed:
    """A fake measure: returns the measurements it is given, one per sample."""

    def __init__(self) -> None:
        self.next: Measurement = Measurement()
        self.calls = 0
        self.error: Exception | None = None

    def __call__(self) -> Measurement:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.next


@attrs.define
class Harness:
    """A sampler on a memory store and a manual clock, fed by hand."""

    clock: ManualClock
    store: FlakyStore
    supervisor: Supervisor
    feed: Feed
    record: JobRecord

    def sampler(self, **kwargs: Any) -> ResourceSampler:
        return ResourceSampler(self.supervisor, self.record, 4242, measure=self.feed, **kwargs)

    def sample(self, sampler: ResourceSampler, **values: float | None) -> set[ViolationType]:
        self.feed.next = Measurement(**values)
        self.clock.advance(1)
        return sampler.sample()

    def events(self) -> list[Event]:
        return [decode_event(text) for text in self.store.pop(_keys.EVENTS_QUEUE, 10_000)]

    def incident(self, violation: ViolationType) -> dict[str, Any] | None:
        text = self.store.get(_keys.incident_key(SID, f"resource_violation:{violation.value}"))
        return None if text is None else dict(json.loads(text))


def make_harness(
    memory_limit_mb: float | None = 100.0, cpu_limit_percent: float | None = None
) -> Harness:
    clock = ManualClock()
    store = FlakyStore(clock)
    record = JobRecord(
        supervision_id=SID,
        name="ImportFeed",
        started_at=clock.timestamp(),
        memory_limit_mb=memory_limit_mb,
        cpu_limit_percent=cpu_limit_percent,
    )
    return Harness(clock, store, Supervisor(store, clock), Feed(), record)


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = make_harness()
    yield h
    h.store.close()


def kinds(events: Sequence[Event]) -> list[str]:
    """``detected``/``recovered`` for each resource event, in order."""
    names = {ResourceViolationDetected: "detected", ResourceRecovered: "recovered"}
    return [names[type(event)] for event in events if type(event) in names]


def wait_until(condition: Any, timeout: float = 5.0) -> bool:
    """Poll ``condition`` every 10 ms, at most ``timeout`` seconds; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


@attrs.frozen
class Child:
    """A child process started in its own session (so its whole tree can be stopped)."""

    process: subprocess.Popen[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        watchdog = threading.Timer(CHILD_TIMEOUT, self.stop)
        watchdog.start()
        try:
            line = stdout.readline().strip()
        finally:
            watchdog.cancel()
        assert line == "ready", f"the child did not get ready: {line!r}"

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture
def spawn() -> Iterator[Any]:
    """Start children that print ``ready``; kill every one's process group afterwards."""
    children: list[Child] = []

    def start(args: Sequence[str]) -> Child:
        process = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        child = Child(process)
        children.append(child)
        child.wait_ready()
        return child

    yield start
    for child in children:
        child.stop()
        child.process.wait()
        if child.process.stdout is not None:
            child.process.stdout.close()


HOLD_150_MB = (
    "import time; b = bytearray(150 * 1024 * 1024); print('ready', flush=True); time.sleep(30)"
)
BUSY = 10.0
"""CPU percent a spinning child surely gets, even on a machine other work keeps busy."""
BURN_CPU = (
    "import time\n"
    "print('ready', flush=True)\n"
    "end = time.monotonic() + 1.5\n"
    "while time.monotonic() < end:\n"
    "    pass\n"
)
SPIN_UNTIL_STOPPED = (
    "import time\n"
    "print('ready', flush=True)\n"
    f"end = time.monotonic() + {CHILD_TIMEOUT}\n"
    "while time.monotonic() < end:\n"
    "    pass\n"
)
"""Spins a core until the test stops it (at most CHILD_TIMEOUT seconds)."""


# -- crossing and recovery -------------------------------------------------------------------


class TestMemoryLimit:
    """Memory over the record's limit: reported once per episode, recovered once."""

    def test_crossing_is_reported_with_limit_and_actual(self, harness: Harness) -> None:
        """A sample over the limit queues one violation naming the limit and the value."""
        sampler = harness.sampler()

        assert harness.sample(sampler, memory_mb=312.46) == {ViolationType.MEMORY}
        [event] = harness.events()
        assert isinstance(event, ResourceViolationDetected)
        assert (event.violation_type, event.limit, event.actual) == (
            ViolationType.MEMORY,
            100.0,
            312.5,
        )
        assert (event.supervision_id, event.job_class) == (SID, "ImportFeed")
        assert event.occurred_at == harness.clock.now()

    def test_incident_value_is_what_close_incidents_reads(self, harness: Harness) -> None:
        """The claimed incident carries type, key, since, limit and actual."""
        sampler = harness.sampler()
        since = harness.clock.timestamp() + 1
        harness.sample(sampler, memory_mb=150.0)

        assert harness.incident(ViolationType.MEMORY) == {
            "type": "resource_violation",
            "key": f"{SID}:memory",
            "since": since,
            "limit": 100.0,
            "actual": 150.0,
        }

    def test_staying_over_reports_nothing_more(self, harness: Harness) -> None:
        """Further samples over the limit neither report again nor stop saying over."""
        sampler = harness.sampler()
        for value in (150.0, 180.0, 400.0, 101.0):
            assert harness.sample(sampler, memory_mb=value) == {ViolationType.MEMORY}

        assert kinds(harness.events()) == ["detected"]

    def test_return_within_limit_recovers_once(self, harness: Harness) -> None:
        """Back at or under the limit: one recovery, and the incident is gone."""
        sampler = harness.sampler()
        harness.sample(sampler, memory_mb=150.0)
        harness.events()

        assert harness.sample(sampler, memory_mb=100.0) == set()
        assert harness.sample(sampler, memory_mb=20.0) == set()
        [event] = harness.events()
        assert isinstance(event, ResourceRecovered)
        assert (event.violation_type, event.actual) == (ViolationType.MEMORY, 100.0)
        assert harness.incident(ViolationType.MEMORY) is None

    def test_exactly_at_the_limit_is_within(self, harness: Harness) -> None:
        """The limit itself is allowed."""
        sampler = harness.sampler()

        assert harness.sample(sampler, memory_mb=100.0) == set()
        assert harness.events() == []

    def test_a_new_episode_is_reported_again(self, harness: Harness) -> None:
        """Over, back, over again: two violations and one recovery between them."""
        sampler = harness.sampler()
        for value in (150.0, 50.0, 150.0):
            harness.sample(sampler, memory_mb=value)

        assert kinds(harness.events()) == ["detected", "recovered", "detected"]

    def test_no_limits_means_no_reports(self) -> None:
        """A record without limits is measured but never over anything."""
        h = make_harness(memory_limit_mb=None)
        sampler = h.sampler()

        assert h.sample(sampler, memory_mb=1e9, cpu_percent=1e9) == set()
        assert sampler.limits == {}
        assert h.events() == []
        h.store.close()

    def test_unmeasured_value_keeps_the_state(self, harness: Harness) -> None:
        """A sample that could not read memory neither recovers nor re-reports."""
        sampler = harness.sampler()
        harness.sample(sampler, memory_mb=150.0)

        assert harness.sample(sampler, memory_mb=None) == {ViolationType.MEMORY}
        assert kinds(harness.events()) == ["detected"]

    def test_job_end_resolves_the_open_incident(self, harness: Harness) -> None:
        """``close_incidents`` finds the resource incident and names it for the alert."""
        sampler = harness.sampler()
        harness.sample(sampler, memory_mb=150.0)

        closed = harness.supervisor.close_incidents(SID)

        assert closed == (IncidentRef(type="resource_violation", key=f"{SID}:memory"),)
        assert harness.sample(sampler, memory_mb=10.0) == set()
        assert kinds(harness.events()) == ["detected"]

    def test_two_samplers_report_one_episode_once(self, harness: Harness) -> None:
        """Two samplers of one job: one violation and one recovery between them."""
        first, second = harness.sampler(), harness.sampler()
        for value in (150.0, 10.0):
            harness.sample(first, memory_mb=value)
            harness.sample(second, memory_mb=value)

        assert kinds(harness.events()) == ["detected", "recovered"]

    @given(values=st.lists(st.floats(min_value=0, max_value=300), max_size=40))
    def test_one_report_per_crossing_and_return(self, values: list[float]) -> None:
        """Any sequence of values: a violation per crossing, a recovery per return,
        alternating, starting with a violation."""
        h = make_harness(memory_limit_mb=100.0)
        sampler = h.sampler()
        over_states = [h.sample(sampler, memory_mb=v) == {ViolationType.MEMORY} for v in values]
        observed = kinds(h.events())
        h.store.close()

        assert over_states == [v > 100.0 for v in values]
        expected = []
        previous = False
        for over in over_states:
            if over != previous:
                expected.append("detected" if over else "recovered")
            previous = over
        assert observed == expected
        assert all(a != b for a, b in itertools.pairwise(observed))


class TestCpuLimit:
    """CPU over the limit for two consecutive samples is a violation; a spike is not."""

    def test_a_single_spike_is_not_a_violation(self) -> None:
        """One sample over, then under: nothing reported."""
        h = make_harness(memory_limit_mb=None, cpu_limit_percent=50.0)
        sampler = h.sampler()

        assert h.sample(sampler, cpu_percent=400.0) == set()
        assert h.sample(sampler, cpu_percent=10.0) == set()
        assert h.events() == []
        h.store.close()

    def test_two_consecutive_samples_over_are_a_violation(self) -> None:
        """The second sample over reports with the value it measured."""
        h = make_harness(memory_limit_mb=None, cpu_limit_percent=50.0)
        sampler = h.sampler()
        h.sample(sampler, cpu_percent=90.0)

        assert h.sample(sampler, cpu_percent=120.0) == {ViolationType.CPU}
        [event] = h.events()
        assert isinstance(event, ResourceViolationDetected)
        assert (event.violation_type, event.limit, event.actual) == (ViolationType.CPU, 50, 120)
        h.store.close()

    def test_one_sample_under_recovers(self) -> None:
        """Once reported, the first sample under the limit recovers."""
        h = make_harness(memory_limit_mb=None, cpu_limit_percent=50.0)
        sampler = h.sampler()
        for value in (90.0, 90.0, 30.0):
            h.sample(sampler, cpu_percent=value)

        assert kinds(h.events()) == ["detected", "recovered"]
        h.store.close()

    @given(values=st.lists(st.sampled_from([10.0, 50.0, 51.0, 250.0]), max_size=40))
    def test_reports_follow_the_two_sample_rule(self, values: list[float]) -> None:
        """Any sequence: over means the last two samples were over; reports alternate on
        each change of that."""
        h = make_harness(memory_limit_mb=None, cpu_limit_percent=50.0)
        sampler = h.sampler()
        over_states = [h.sample(sampler, cpu_percent=v) == {ViolationType.CPU} for v in values]
        observed = kinds(h.events())
        h.store.close()

        streak = 0
        expected_states = []
        for value in values:
            streak = streak + 1 if value > 50.0 else 0
            expected_states.append(streak >= CPU_CONSECUTIVE_SAMPLES)
        assert over_states == expected_states
        expected = []
        previous = False
        for over in expected_states:
            if over != previous:
                expected.append("detected" if over else "recovered")
            previous = over
        assert observed == expected


class TestDiskFloor:
    """Free disk space below a floor is a violation; above it, a recovery."""

    def test_below_the_floor_and_back(self, harness: Harness, tmp_path: Path) -> None:
        """Free space under the floor reports; back over it recovers."""
        sampler = harness.sampler(disk_path=tmp_path, disk_floor_mb=500.0)

        assert harness.sample(sampler, disk_free_mb=120.0) == {ViolationType.DISK}
        assert harness.sample(sampler, disk_free_mb=800.0) == set()
        detected, recovered = harness.events()
        assert isinstance(detected, ResourceViolationDetected)
        assert (detected.violation_type, detected.limit, detected.actual) == (
            ViolationType.DISK,
            500.0,
            120.0,
        )
        assert isinstance(recovered, ResourceRecovered)

    def test_path_and_floor_go_together(self, harness: Harness, tmp_path: Path) -> None:
        """A path without a floor (or a floor without a path) is refused."""
        with pytest.raises(ValueError, match="together"):
            harness.sampler(disk_path=tmp_path)
        with pytest.raises(ValueError, match="together"):
            harness.sampler(disk_floor_mb=10.0)


class TestNeverRaises:
    """A failing measure or an absent store never reaches the job."""

    def test_failing_measure_keeps_what_is_known(self, harness: Harness) -> None:
        """A measure that raises leaves the last verdict in place."""
        sampler = harness.sampler()
        harness.sample(sampler, memory_mb=150.0)
        harness.feed.error = RuntimeError("psutil broke")

        assert sampler.sample() == {ViolationType.MEMORY}
        assert harness.feed.calls == 2
        assert kinds(harness.events()) == ["detected"]

    def test_store_down_claims_on_a_later_sample(self, harness: Harness) -> None:
        """The store away at the crossing: still over, reported once it is back."""
        sampler = harness.sampler()
        harness.store.down = True

        assert harness.sample(sampler, memory_mb=150.0) == {ViolationType.MEMORY}
        harness.store.down = False
        assert harness.events() == []
        assert harness.sample(sampler, memory_mb=150.0) == {ViolationType.MEMORY}
        assert harness.sample(sampler, memory_mb=150.0) == {ViolationType.MEMORY}
        assert kinds(harness.events()) == ["detected"]

    def test_store_down_recovers_on_a_later_sample(self, harness: Harness) -> None:
        """The store away at the return: the incident is closed once it is back."""
        sampler = harness.sampler()
        harness.sample(sampler, memory_mb=150.0)
        harness.store.down = True

        assert harness.sample(sampler, memory_mb=10.0) == set()
        harness.store.down = False
        assert harness.incident(ViolationType.MEMORY) is not None
        harness.sample(sampler, memory_mb=10.0)
        assert kinds(harness.events()) == ["detected", "recovered"]
        assert harness.incident(ViolationType.MEMORY) is None

    def test_a_process_that_is_gone_measures_nothing(self, harness: Harness) -> None:
        """The real meter on a pid that ended: no values and no exception."""
        process = subprocess.Popen([sys.executable, "-c", "pass"])
        process.wait()
        sampler = ResourceSampler(harness.supervisor, harness.record, process.pid)

        assert sampler.sample() == set()
        assert sampler.last == Measurement()

    def test_an_unreaped_child_is_no_recovery(self, harness: Harness) -> None:
        """A job that ended but is not yet reaped reads 0 MB: that is not a recovery."""
        process = subprocess.Popen([sys.executable, "-c", "pass"])
        try:
            assert wait_until(lambda: psutil.Process(process.pid).status() == "zombie")
            sampler = harness.sampler()
            harness.sample(sampler, memory_mb=150.0)
            real = ResourceSampler(harness.supervisor, harness.record, process.pid)
            real._open = {ViolationType.MEMORY}  # as if it had reported the violation

            assert ProcessTreeMeter(process.pid)() == Measurement()
            assert real.sample() == set()
            assert kinds(harness.events()) == ["detected"]
            assert harness.incident(ViolationType.MEMORY) is not None
        finally:
            process.wait()


# -- real processes -------------------------------------------------------------------------


class TestProcessTreeMeter:
    """psutil measures of real process trees."""

    def test_memory_of_a_grandchild_counts(self, spawn: Any) -> None:
        """A shell's child holding 150 MB: measured on the shell's pid."""
        shell = spawn(["/bin/sh", "-c", f'"{sys.executable}" -c "{HOLD_150_MB}"; exit 0'])
        meter = ProcessTreeMeter(shell.pid)

        measured = meter()

        assert measured.memory_mb is not None
        assert measured.memory_mb >= 140
        assert psutil.Process(shell.pid).memory_info().rss / MB < 50  # the shell alone

    def test_cpu_of_a_busy_child(self, spawn: Any) -> None:
        """A child spinning a core reads well over 0 % after a priming sample (well under
        100 % on a machine that other work keeps busy)."""
        child = spawn([sys.executable, "-c", BURN_CPU])
        meter = ProcessTreeMeter(child.pid)
        assert meter().cpu_percent == 0.0  # primed

        readings: list[float] = []
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            time.sleep(0.2)
            reading = meter().cpu_percent
            assert reading is not None
            readings.append(reading)
            if reading >= BUSY:
                break

        assert max(readings) >= BUSY, readings

    def test_the_machine_being_busy_is_not_the_job(self, spawn: Any) -> None:
        """An idle child reads about 0 % while another process spins a core."""
        spawn([sys.executable, "-c", BURN_CPU])
        idle = spawn(
            [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(30)"]
        )
        meter = ProcessTreeMeter(idle.pid)
        meter()

        time.sleep(0.3)
        reading = meter().cpu_percent

        assert reading is not None
        assert reading < 5

    def test_cpu_violation_of_a_busy_child(self, spawn: Any) -> None:
        """A real sampler with a 10 % limit reports a child spinning a core once, after
        two consecutive samples over the limit (the first sample only primes)."""
        h = make_harness(memory_limit_mb=None, cpu_limit_percent=BUSY)
        child = spawn([sys.executable, "-c", SPIN_UNTIL_STOPPED])
        sampler = ResourceSampler(h.supervisor, h.record, child.pid)
        assert sampler.sample() == set()  # primes the child's CPU reading
        assert sampler.last is not None
        assert sampler.last.cpu_percent == 0.0

        # On a machine that other work keeps busy the child may get less than the limit
        # now and then, which restarts the streak: retry for a few seconds at most.
        verdicts: list[set[ViolationType]] = []
        readings: list[float | None] = []
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            time.sleep(0.15)
            verdicts.append(sampler.sample())
            readings.append(None if sampler.last is None else sampler.last.cpu_percent)
            if ViolationType.CPU in verdicts[-1]:
                break

        assert ViolationType.CPU in verdicts[-1], readings
        assert verdicts[0] == set()  # one sample over is not yet a violation
        assert all(v == set() for v in verdicts[:-1])
        before, last = readings[-2:]
        assert before is not None
        assert before > BUSY, readings
        assert last is not None
        assert last > BUSY, readings
        [event] = h.events()
        assert isinstance(event, ResourceViolationDetected)
        assert event.violation_type is ViolationType.CPU
        assert event.limit == BUSY
        assert event.actual == round(last, 1)
        h.store.close()

    def test_free_disk_space(self, tmp_path: Path) -> None:
        """Free space on a path, as psutil reads it."""
        free = ProcessTreeMeter(os.getpid(), tmp_path)().disk_free_mb

        assert free is not None
        assert free == pytest.approx(psutil.disk_usage(str(tmp_path)).free / MB, rel=0.05)

    def test_disk_floor_with_the_real_meter(self, harness: Harness, tmp_path: Path) -> None:
        """An unreachable floor is a violation; a tiny one is not."""
        high = ResourceSampler(
            harness.supervisor,
            harness.record,
            os.getpid(),
            disk_path=tmp_path,
            disk_floor_mb=1e12,
        )
        low = ResourceSampler(
            harness.supervisor,
            harness.record,
            os.getpid(),
            disk_path=tmp_path,
            disk_floor_mb=0.001,
        )

        assert ViolationType.DISK in high.sample()
        assert ViolationType.DISK not in low.sample()


# -- the background sampler -------------------------------------------------------------------


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("chaperone-resources")]


class TestBackgroundSampler:
    """``start``/``close``, and ``supervise(...)`` sampling its own process."""

    def test_samples_until_closed(self, harness: Harness) -> None:
        """The thread samples repeatedly and stops promptly when closed."""
        sampler = harness.sampler()
        harness.feed.next = Measurement(memory_mb=150.0)
        sampler.start(0.01)
        assert wait_until(lambda: harness.feed.calls >= 3)

        began = time.monotonic()
        sampler.close()

        assert time.monotonic() - began < 1.0
        assert not sampler.running
        calls = harness.feed.calls
        assert kinds(harness.events()) == ["detected"]
        time.sleep(0.05)
        assert harness.feed.calls == calls

    def test_long_interval_still_stops_promptly(self, harness: Harness) -> None:
        """Closing does not wait for the interval to run out."""
        sampler = harness.sampler()
        sampler.start(60)
        assert wait_until(lambda: harness.feed.calls >= 1)

        began = time.monotonic()
        sampler.close()

        assert time.monotonic() - began < 1.0
        assert not sampler.running

    def test_start_twice_is_refused(self, harness: Harness) -> None:
        """One thread per sampler."""
        sampler = harness.sampler()
        sampler.start(60)
        try:
            with pytest.raises(RuntimeError, match="already"):
                sampler.start(60)
        finally:
            sampler.close()

    def test_supervise_reports_its_own_memory(self, harness: Harness) -> None:
        """A job over a (tiny) memory limit is reported while it runs, and the job's end
        resolves the incident."""
        with supervise(
            "Tiny", memory_limit_mb=1, resource_interval=0.02, supervisor=harness.supervisor
        ) as job:
            assert wait_until(lambda: harness.store.keys(_keys.incident_prefix(job.supervision_id)))
            assert len(sampler_threads()) == 1
        events = harness.events()

        assert sampler_threads() == []
        detected = [e for e in events if isinstance(e, ResourceViolationDetected)]
        assert len(detected) == 1
        assert detected[0].violation_type is ViolationType.MEMORY
        assert detected[0].actual > 1
        [completed] = [e for e in events if isinstance(e, JobCompleted)]
        assert completed.resolves == (
            IncidentRef(type="resource_violation", key=f"{job.supervision_id}:memory"),
        )

    def test_supervise_without_limits_starts_no_thread(self, harness: Harness) -> None:
        """No limits, no sampler."""
        with supervise("Plain", supervisor=harness.supervisor):
            assert sampler_threads() == []

    def test_a_record_of_another_process_is_not_sampled_here(self, harness: Harness) -> None:
        """``chaperone run`` samples its child itself: the handle does not sample the CLI."""
        record = attrs.evolve(harness.record, pid=os.getpid() + 1)
        job = Supervision(harness.supervisor, record, resource_interval=0.01)
        job.start()
        try:
            assert sampler_threads() == []
        finally:
            job.finish()


# -- chaperone run, end to end ------------------------------------------------------------------

HOLD_300_MB = "b = bytearray(300*1024*1024); import time; time.sleep(3)"


@attrs.frozen
class RunResults:
    """Two ``chaperone run --memory-limit 100`` runs (watched, killed), the history of
    each, and the killed job's record."""

    watched: CliResult
    killed: CliResult
    history: list[dict[str, Any]]
    killed_history: list[dict[str, Any]]
    killed_record: JobRecord


def job_records(path: Path) -> list[JobRecord]:
    """The job records in the store file of ``path``, read in this process."""
    database = path / "chaperone.db"
    store = SQLiteStore(database, SystemClock(), store_url(database))
    try:
        return [
            JobRecord.from_json(text)
            for key in store.keys(_keys.JOB_PREFIX)
            if (text := store.get(key)) is not None
        ]
    finally:
        store.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> RunResults:
    """Both runs at once, each on its own store, then ``history --json`` of each."""
    watched_dir = tmp_path_factory.mktemp("watched")
    killed_dir = tmp_path_factory.mktemp("killed")
    common = ("run", "--memory-limit", "100", "--check-interval", "0.2")
    watched_args = (*common, "--", sys.executable, "-c", HOLD_300_MB)
    killed_args = (*common, "--kill-on-memory", "--", sys.executable, "-c", HOLD_300_MB)
    watched = start_cli(watched_args, cwd=watched_dir, env=clean_environ(watched_dir))
    killed = start_cli(killed_args, cwd=killed_dir, env=clean_environ(killed_dir))
    killed_result = finish_cli(killed, killed_args)
    watched_result = finish_cli(watched, watched_args)
    histories = run_many(
        {
            str(path): Invocation(("history", "--json"), path, clean_environ(path))
            for path in (watched_dir, killed_dir)
        }
    )
    for result in histories.values():
        assert result.returncode == 0, str(result)
    [killed_record] = job_records(killed_dir)
    return RunResults(
        watched_result,
        killed_result,
        histories[str(watched_dir)].json(),
        histories[str(killed_dir)].json(),
        killed_record,
    )


def alert_lines(result: CliResult) -> list[dict[str, Any]]:
    """The JSON log lines the ``log`` channel wrote for resource violations."""
    lines = []
    for line in result.stderr.splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and data.get("type") == "resource_violation":
            lines.append(data)
    return lines


class TestRunCommand:
    """``chaperone run --memory-limit 100`` on a child holding 300 MB."""

    def test_violation_is_in_the_history(self, runs: RunResults) -> None:
        """The history holds a firing memory violation delivered to the database."""
        assert runs.watched.returncode == 0, str(runs.watched)
        firing = [
            r
            for r in runs.history
            if r["type"] == "resource_violation"
            and r["alert_status"] == "firing"
            and r["channel"] == "database"
        ]

        assert len(firing) == 1, runs.history
        assert firing[0]["key"].endswith(":memory")
        assert firing[0]["title"].startswith("Resource Violation: ")
        assert firing[0]["status"] == "delivered"

    def test_alert_names_the_limit_and_the_measured_value(self, runs: RunResults) -> None:
        """The alert's details say memory, the 100 MB limit and a value over it."""
        [firing] = [
            line for line in alert_lines(runs.watched) if line["event"].startswith("[FIRING]")
        ]
        details = firing["details"]

        assert "; Violation Type: memory;" in details
        assert "; Limit: 100 MB;" in details
        actual = re.search(r"; Actual: ([0-9.]+) MB;", details)
        assert actual is not None, details
        assert 100 < float(actual.group(1)) <= 400

    def test_the_violation_is_resolved_once(self, runs: RunResults) -> None:
        """The incident is resolved once (by the job's completion, or by its memory
        going back under the limit as the interpreter tears down)."""
        [firing] = [
            r for r in runs.history if r["alert_status"] == "firing" and r["channel"] == "database"
        ]
        resolved = [
            r
            for r in runs.history
            if r["alert_status"] == "resolved" and r["channel"] == "database"
        ]

        assert [(r["type"], r["key"]) for r in resolved] == [(firing["type"], firing["key"])]
        assert resolved[0]["title"].startswith(("Job Completed: ", "Resource Back Within Limit: "))

    def test_kill_on_memory_stops_the_child(self, runs: RunResults) -> None:
        """With ``--kill-on-memory`` the child is stopped well before its 3 s sleep ends."""
        assert runs.killed.returncode == 128 + signal.SIGTERM, str(runs.killed)
        record = runs.killed_record
        assert record.state == "failed"
        assert record.finished_at is not None
        assert record.finished_at - record.started_at < 2.5
        assert "stopping the job (over its memory limit of 100 MB)" in runs.killed.stderr
        assert any(
            r["type"] == "resource_violation" and r["alert_status"] == "firing"
            for r in runs.killed_history
        )
        assert any(r["title"].startswith("Job Failed: ") for r in runs.killed_history)

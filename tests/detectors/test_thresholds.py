"""The built-in threshold detector: error rate, response time and queue length.

Jobs are counted the way the job side counts them (``record_job_finished``, or a real
``supervise`` block); time moves only through a ManualClock. The property compares the
detector, on a memory store and on a SQLite file and with two monitors sharing the
store, with a model that measures each window from the list of jobs it was told of.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaperone import (
    Chaperone,
    ConfigError,
    Event,
    ManualClock,
    PluginHost,
    Runtime,
    Settings,
    ThresholdCleared,
    ThresholdExceeded,
    ThresholdMetric,
    hookimpl,
)
from chaperone._monitor import Monitor
from chaperone._plugins import builtin_modules
from chaperone.builtin import threshold_detector as detector
from chaperone.builtin.database_channel import read_history
from chaperone.config import Thresholds, load_settings
from chaperone.store import MemoryStore, SQLiteStore, Store
from chaperone.supervision import Supervisor, supervise
from chaperone.supervision._stats import BUCKET_SECONDS, record_job_finished
from chaperone.testing import capture_all_logs
from helpers.runtime import make_runtime

CHAPERONE = Path(sys.executable).parent / "chaperone"
ERROR_RATE = ThresholdMetric.ERROR_RATE
RESPONSE_TIME = ThresholdMetric.RESPONSE_TIME
QUEUE_LENGTH = ThresholdMetric.QUEUE_LENGTH
_files = itertools.count()

# -------------------------------------------------------------------------------------
# Helpers
# -------------------------------------------------------------------------------------


def new_store(backend: str, clock: ManualClock, directory: Path) -> Store:
    """A fresh, empty store of ``backend`` on ``clock``."""
    if backend == "memory":
        return MemoryStore(clock)
    path = directory / f"thresholds-{next(_files)}.sqlite3"
    return SQLiteStore(path, clock, f"sqlite:///{path}")


def sqlite_on(path: Path, clock: ManualClock) -> SQLiteStore:
    """Another connection to the SQLite file at ``path``."""
    return SQLiteStore(path, clock, f"sqlite:///{path}")


def finish(
    runtime: Chaperone,
    job_class: str,
    *,
    count: int = 1,
    duration: float = 1.0,
    failed: bool = False,
) -> None:
    """Count ``count`` finished jobs of ``job_class`` now, as the job side does."""
    for _ in range(count):
        record_job_finished(
            runtime.store,
            job_class=job_class,
            duration=duration,
            failed=failed,
            now=runtime.clock.timestamp(),
        )


def advance(runtime: Chaperone, delta: timedelta) -> None:
    """Move the runtime's manual clock forward."""
    assert isinstance(runtime.clock, ManualClock)
    runtime.clock.advance(delta)


def detect(runtime: Chaperone) -> list[Event]:
    """Run the threshold detector once, at the runtime clock's time."""
    return detector.chaperone_detect(runtime=runtime.runtime, now=runtime.clock.now())


Summary = tuple[str, ThresholdMetric, str, float, float]


def summary(event: Event) -> Summary:
    """``(kind, metric, subject, value, threshold)`` of a threshold event."""
    if isinstance(event, ThresholdExceeded):
        return ("exceeded", event.metric, event.subject, event.value, event.threshold)
    assert isinstance(event, ThresholdCleared), event
    return ("cleared", event.metric, event.subject, event.value, event.threshold)


def is_open(runtime: Chaperone, metric: ThresholdMetric, subject: str) -> bool:
    """Whether the store holds an open incident for ``metric`` of ``subject``."""
    return runtime.store.get(detector.threshold_incident_key(metric, subject)) is not None


class QueuePlugin:
    """A plugin reporting the queue depths held in ``depths`` (or raising ``error``)."""

    def __init__(self, depths: object = None, error: Exception | None = None) -> None:
        self.depths = depths
        self.error = error

    @hookimpl
    def chaperone_queue_lengths(self, runtime: Runtime) -> object:
        """Report the depths given, or raise."""
        if self.error is not None:
            raise self.error
        return self.depths


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for the SQLite files, one per store."""
    return tmp_path_factory.mktemp("thresholds")


@pytest.fixture
def clock() -> ManualClock:
    """A clock at the start of a minute, so whole-minute windows are easy to reason on."""
    return ManualClock(datetime(2024, 1, 15, 10, 0, tzinfo=UTC))


RuntimeFactory = Callable[..., Chaperone]


@pytest.fixture(params=["memory", "sqlite"])
def make(
    request: pytest.FixtureRequest, clock: ManualClock, directory: Path
) -> Iterator[RuntimeFactory]:
    """Build runtimes on a fresh store of each backend; all are closed afterwards."""
    built: list[Chaperone] = []

    def factory(*, plugins: Sequence[tuple[str, object]] = (), **options: Any) -> Chaperone:
        runtime = make_runtime(
            *plugins,
            store=new_store(request.param, clock, directory),
            clock=clock,
            channels=("database",),
            thresholds=Thresholds(**options),
        )
        built.append(runtime)
        return runtime

    yield factory
    for runtime in built:
        runtime.close()


# -------------------------------------------------------------------------------------
# Settings
# -------------------------------------------------------------------------------------


def cli_environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    """os.environ without CHAPERONE_* variables, on a store in ``tmp_path``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHAPERONE_")}
    environ["CHAPERONE_STORE"] = f"sqlite:///{tmp_path / 'c.db'}"
    environ.update(extra)
    return environ


class TestSettings:
    """``alerting.thresholds.window`` and ``alerting.thresholds.min_jobs``."""

    def test_defaults(self, tmp_path: Path) -> None:
        """Five minutes and five jobs unless configured."""
        thresholds = load_settings({}, tmp_path).thresholds
        assert thresholds.window == timedelta(minutes=5)
        assert thresholds.min_jobs == 5

    def test_environment(self, tmp_path: Path) -> None:
        """The environment variables set both, with units allowed for the window."""
        settings = load_settings(
            {"CHAPERONE_ALERT_THRESHOLD_WINDOW": "15m", "CHAPERONE_ALERT_THRESHOLD_MIN_JOBS": "20"},
            tmp_path,
        )
        assert settings.thresholds.window == timedelta(minutes=15)
        assert settings.thresholds.min_jobs == 20
        assert settings.source_of("alerting.thresholds.window") == "environment"
        assert settings.source_of("alerting.thresholds.min_jobs") == "environment"

    def test_toml(self, tmp_path: Path) -> None:
        """The TOML keys under ``[alerting.thresholds]`` set both."""
        (tmp_path / "chaperone.toml").write_text(
            '[alerting.thresholds]\nwindow = "1h"\nmin_jobs = 2\n'
        )
        thresholds = load_settings({}, tmp_path).thresholds
        assert thresholds.window == timedelta(hours=1)
        assert thresholds.min_jobs == 2

    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("CHAPERONE_ALERT_THRESHOLD_WINDOW", "30s"),
            ("CHAPERONE_ALERT_THRESHOLD_WINDOW", "2d"),
            ("CHAPERONE_ALERT_THRESHOLD_WINDOW", "soon"),
            ("CHAPERONE_ALERT_THRESHOLD_MIN_JOBS", "0"),
            ("CHAPERONE_ALERT_THRESHOLD_MIN_JOBS", "many"),
        ],
    )
    def test_bad_values_are_refused(self, tmp_path: Path, variable: str, value: str) -> None:
        """A window outside 1m..1d or fewer than one job is a configuration error."""
        with pytest.raises(ConfigError) as caught:
            load_settings({variable: value}, tmp_path)
        assert [problem.key for problem in caught.value.problems] == [variable]

    def test_config_show_lists_them(self, tmp_path: Path) -> None:
        """``chaperone config show --json`` shows both settings with their sources."""
        result = subprocess.run(
            [str(CHAPERONE), "config", "show", "--json"],
            cwd=tmp_path,
            env=cli_environ(tmp_path, CHAPERONE_ALERT_THRESHOLD_WINDOW="10m"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        rows = {row["setting"]: row for row in json.loads(result.stdout)}
        window = rows["alerting.thresholds.window"]
        assert (window["env"], window["value"], window["source"]) == (
            "CHAPERONE_ALERT_THRESHOLD_WINDOW",
            600,
            "environment",
        )
        assert rows["alerting.thresholds.min_jobs"]["value"] == 5


# -------------------------------------------------------------------------------------
# Error rate and response time
# -------------------------------------------------------------------------------------


class TestErrorRate:
    """Percent of a class's finished jobs that failed over the window."""

    def test_over_the_threshold_alerts_once(self, make: RuntimeFactory) -> None:
        """20% failed against 10% opens one incident, with the value, threshold, window."""
        runtime = make()
        finish(runtime, "import", count=8)
        finish(runtime, "import", count=2, failed=True)
        (event,) = detect(runtime)
        assert event == ThresholdExceeded(
            metric=ERROR_RATE,
            subject="import",
            value=20.0,
            threshold=10.0,
            window=timedelta(minutes=5),
            occurred_at=runtime.clock.now(),
        )
        assert is_open(runtime, ERROR_RATE, "import")
        assert detect(runtime) == []

    def test_at_the_threshold_is_no_crossing(self, make: RuntimeFactory) -> None:
        """Exactly 10% failed does not exceed 10% ("alert if error rate exceeds 10%")."""
        runtime = make()
        finish(runtime, "import", count=9)
        finish(runtime, "import", failed=True)
        assert detect(runtime) == []
        finish(runtime, "import", failed=True)
        assert [summary(e)[:3] for e in detect(runtime)] == [("exceeded", ERROR_RATE, "import")]

    def test_fewer_jobs_than_min_jobs_give_no_verdict(self, make: RuntimeFactory) -> None:
        """Four failures out of four say nothing with min_jobs 5; the fifth job decides."""
        runtime = make()
        finish(runtime, "import", count=4, failed=True)
        assert detect(runtime) == []
        finish(runtime, "import")
        assert [summary(e) for e in detect(runtime)] == [
            ("exceeded", ERROR_RATE, "import", 80.0, 10.0)
        ]

    def test_min_jobs_is_configurable(self, make: RuntimeFactory) -> None:
        """With min_jobs 1 a single failed job is a 100% error rate."""
        runtime = make(min_jobs=1)
        finish(runtime, "import", failed=True)
        assert [summary(e)[:4] for e in detect(runtime)] == [
            ("exceeded", ERROR_RATE, "import", 100.0)
        ]

    def test_back_under_resolves_once(self, make: RuntimeFactory) -> None:
        """After the failures leave the window, healthy jobs resolve the incident once."""
        runtime = make()
        finish(runtime, "import", count=5, failed=True)
        assert len(detect(runtime)) == 1
        advance(runtime, timedelta(minutes=6))
        finish(runtime, "import", count=5)
        (event,) = detect(runtime)
        assert event == ThresholdCleared(
            metric=ERROR_RATE,
            subject="import",
            value=0.0,
            threshold=10.0,
            occurred_at=runtime.clock.now(),
        )
        assert not is_open(runtime, ERROR_RATE, "import")
        assert detect(runtime) == []

    def test_a_quiet_window_keeps_the_incident_open(self, make: RuntimeFactory) -> None:
        """Too few jobs in the window neither resolve nor re-open: the verdict waits."""
        runtime = make()
        finish(runtime, "import", count=5, failed=True)
        assert len(detect(runtime)) == 1
        advance(runtime, timedelta(minutes=6))
        finish(runtime, "import", count=4)
        assert detect(runtime) == []
        assert is_open(runtime, ERROR_RATE, "import")
        finish(runtime, "import")
        assert [summary(e)[:2] for e in detect(runtime)] == [("cleared", ERROR_RATE)]

    def test_the_window_slides_by_minutes(self, make: RuntimeFactory) -> None:
        """With a 2-minute window, failures count until their minute leaves the window."""
        runtime = make(window=timedelta(minutes=2))
        finish(runtime, "import", count=5, failed=True)
        assert len(detect(runtime)) == 1
        advance(runtime, timedelta(minutes=1))
        finish(runtime, "import", count=5)
        assert detect(runtime) == []  # 50%: the failures' minute is still in the window
        advance(runtime, timedelta(minutes=1))
        assert [summary(e)[:4] for e in detect(runtime)] == [("cleared", ERROR_RATE, "import", 0.0)]

    def test_classes_are_judged_separately(self, make: RuntimeFactory) -> None:
        """Only the failing class alerts."""
        runtime = make()
        finish(runtime, "export", count=10)
        finish(runtime, "import", count=5, failed=True)
        assert [summary(e)[:3] for e in detect(runtime)] == [("exceeded", ERROR_RATE, "import")]


class TestResponseTime:
    """Average duration in seconds of a class's finished jobs over the window."""

    def test_over_the_threshold_alerts_once(self, make: RuntimeFactory) -> None:
        """An average of 400 s against 300 s opens one incident."""
        runtime = make()
        finish(runtime, "report", count=4, duration=450.0)
        finish(runtime, "report", duration=200.0)
        (event,) = detect(runtime)
        assert event == ThresholdExceeded(
            metric=RESPONSE_TIME,
            subject="report",
            value=400.0,
            threshold=300.0,
            window=timedelta(minutes=5),
            occurred_at=runtime.clock.now(),
        )
        assert detect(runtime) == []

    def test_at_the_threshold_is_no_crossing(self, make: RuntimeFactory) -> None:
        """An average of exactly the threshold does not exceed it."""
        runtime = make(response_time=timedelta(seconds=2))
        finish(runtime, "report", count=5, duration=2.0)
        assert detect(runtime) == []

    def test_min_jobs_gates_it_too(self, make: RuntimeFactory) -> None:
        """Slow jobs fewer than min_jobs say nothing."""
        runtime = make(min_jobs=3)
        finish(runtime, "report", count=2, duration=1000.0)
        assert detect(runtime) == []
        finish(runtime, "report", duration=1000.0)
        assert [summary(e)[:4] for e in detect(runtime)] == [
            ("exceeded", RESPONSE_TIME, "report", 1000.0)
        ]

    def test_faster_jobs_resolve_it(self, make: RuntimeFactory) -> None:
        """Once the window's average is back under, the incident resolves once."""
        runtime = make(response_time=timedelta(seconds=10))
        finish(runtime, "report", count=5, duration=30.0)
        assert len(detect(runtime)) == 1
        advance(runtime, timedelta(minutes=4))
        finish(runtime, "report", count=5, duration=0.5)
        assert detect(runtime) == []  # (5*30 + 5*0.5) / 10 = 15.25 s: the window has both
        advance(runtime, timedelta(minutes=1))
        finish(runtime, "report", duration=0.5)
        assert [summary(e) for e in detect(runtime)] == [
            ("cleared", RESPONSE_TIME, "report", 0.5, 10.0)
        ]

    def test_both_metrics_of_one_class(self, make: RuntimeFactory) -> None:
        """Failing slow jobs raise both incidents, error rate first."""
        runtime = make()
        finish(runtime, "sync", count=5, duration=600.0, failed=True)
        assert [summary(e)[:3] for e in detect(runtime)] == [
            ("exceeded", ERROR_RATE, "sync"),
            ("exceeded", RESPONSE_TIME, "sync"),
        ]


# -------------------------------------------------------------------------------------
# Queue length
# -------------------------------------------------------------------------------------


class TestQueueLength:
    """Queue depths from ``chaperone_queue_lengths`` and ``add_queue_length_source``."""

    def test_from_a_hook_implementation(self, make: RuntimeFactory) -> None:
        """A plugin's report over the threshold alerts; back at the threshold resolves."""
        plugin = QueuePlugin({"emails": 1500, "sms": 3})
        runtime = make(plugins=[("queues", plugin)])
        assert runtime.plugins.plugins[-1].status == "ok"
        (event,) = detect(runtime)
        assert event == ThresholdExceeded(
            metric=QUEUE_LENGTH,
            subject="emails",
            value=1500.0,
            threshold=1000.0,
            window=None,
            occurred_at=runtime.clock.now(),
        )
        assert detect(runtime) == []
        plugin.depths = {"emails": 1000, "sms": 3}
        assert [summary(e) for e in detect(runtime)] == [
            ("cleared", QUEUE_LENGTH, "emails", 1000.0, 1000.0)
        ]

    def test_from_a_callable_source(self, make: RuntimeFactory) -> None:
        """A callable added to the runtime is read on every tick."""
        runtime = make(queue_length=10)
        depth = {"celery": 11}
        runtime.add_queue_length_source("celery", lambda: depth["celery"])
        assert [summary(e) for e in detect(runtime)] == [
            ("exceeded", QUEUE_LENGTH, "celery", 11.0, 10.0)
        ]
        depth["celery"] = 0
        assert [summary(e) for e in detect(runtime)] == [
            ("cleared", QUEUE_LENGTH, "celery", 0.0, 10.0)
        ]

    def test_a_raising_source_is_logged_and_skipped(self, make: RuntimeFactory) -> None:
        """A source that raises is logged (secrets masked) and gives no verdict; the
        others are still read."""
        runtime = make(queue_length=10)
        broken = {"on": False}

        def redis_depth() -> int:
            if broken["on"]:
                raise ConnectionError("redis://:hunter2secret@cache:6379 refused")
            return 50

        runtime.add_queue_length_source("celery", redis_depth)
        runtime.add_queue_length_source("mail", lambda: 20)
        assert len(detect(runtime)) == 2
        broken["on"] = True
        with capture_all_logs() as entries:
            assert detect(runtime) == []
        (entry,) = [e for e in entries if e["event"] == "queue length source raised"]
        assert entry["queue"] == "celery"
        assert entry["log_level"] == "error"
        assert "hunter2secret" not in entry["error"]
        assert is_open(runtime, QUEUE_LENGTH, "celery")

    def test_a_raising_hook_is_skipped(self, make: RuntimeFactory) -> None:
        """A hook implementation that raises leaves the others' reports standing."""
        runtime = make(
            queue_length=10,
            plugins=[
                ("broken", QueuePlugin(error=RuntimeError("no broker"))),
                ("fine", QueuePlugin({"fine": 11})),
            ],
        )
        with capture_all_logs() as entries:
            events = detect(runtime)
        assert [summary(e)[2] for e in events] == ["fine"]
        assert any(e.get("plugin") == "broken" for e in entries)

    def test_a_queue_reported_twice_counts_at_its_largest(self, make: RuntimeFactory) -> None:
        """The hook's and the callable's depth of one queue: the larger is judged."""
        runtime = make(queue_length=10, plugins=[("queues", QueuePlugin({"jobs": 12}))])
        runtime.add_queue_length_source("jobs", lambda: 4)
        assert [summary(e)[3] for e in detect(runtime)] == [12.0]

    @pytest.mark.parametrize(
        "report",
        [
            {"ok": 11, "bad": "many"},
            {"ok": 11, "bad": True},
            {"ok": 11, "bad": -1},
            {"ok": 11, "bad": 2.5},
            {"ok": 11, 7: 20},
        ],
    )
    def test_nonsense_in_a_report_is_skipped(
        self, make: RuntimeFactory, report: Mapping[Any, Any]
    ) -> None:
        """A depth that is no whole number of jobs, or a name that is no text, is logged
        and skipped; the rest of the report counts."""
        runtime = make(queue_length=10, plugins=[("queues", QueuePlugin(report))])
        with capture_all_logs() as entries:
            events = detect(runtime)
        assert [summary(e)[2] for e in events] == ["ok"]
        assert [e["event"] for e in entries] == ["skipped a queue length"]

    def test_a_report_that_is_no_mapping_is_skipped(self, make: RuntimeFactory) -> None:
        """A hook returning a list is logged and ignored."""
        runtime = make(queue_length=10, plugins=[("queues", QueuePlugin([("jobs", 50)]))])
        with capture_all_logs() as entries:
            assert detect(runtime) == []
        assert [e["result_type"] for e in entries] == ["list"]

    def test_a_source_added_again_replaces_the_first(self, make: RuntimeFactory) -> None:
        """Sources are kept by name; an empty name is refused."""
        runtime = make(queue_length=10)
        runtime.add_queue_length_source("jobs", lambda: 50)
        runtime.add_queue_length_source("jobs", lambda: 5)
        assert list(runtime.queue_length_sources) == ["jobs"]
        assert detect(runtime) == []
        with pytest.raises(ValueError, match="name"):
            runtime.add_queue_length_source("", lambda: 1)


# -------------------------------------------------------------------------------------
# Several monitors
# -------------------------------------------------------------------------------------


class TestSeveralMonitors:
    """Monitors sharing a store report each episode once."""

    def test_two_monitors_on_one_sqlite_file(self, tmp_path: Path, clock: ManualClock) -> None:
        """Whichever monitor ticks first reports the crossing and the resolution; the
        other reports nothing."""
        path = tmp_path / "shared.sqlite3"
        first = make_runtime(
            store=sqlite_on(path, clock),
            clock=clock,
            channels=("database",),
            thresholds=Thresholds(queue_length=10),
        )
        second = make_runtime(
            store=sqlite_on(path, clock),
            clock=clock,
            channels=("database",),
            thresholds=Thresholds(queue_length=10),
        )
        with first, second:
            depth = {"jobs": 20}
            for runtime in (first, second):
                runtime.add_queue_length_source("jobs", lambda: depth["jobs"])
            assert [summary(e)[0] for e in detect(first)] == ["exceeded"]
            assert detect(second) == []
            depth["jobs"] = 1
            assert [summary(e)[0] for e in detect(second)] == ["cleared"]
            assert detect(first) == []

    def test_concurrent_claims_yield_one_report(self, tmp_path: Path, clock: ManualClock) -> None:
        """Eight threads, each on its own connection, evaluate one crossing at once:
        exactly one reports it, and exactly one reports its resolution."""
        path = tmp_path / "race.sqlite3"
        stores = [sqlite_on(path, clock) for _ in range(8)]
        barrier = threading.Barrier(len(stores))

        def race(value: float) -> list[Event]:
            results: list[list[Event]] = [[] for _ in stores]
            measured = detector.Measurement(
                metric=QUEUE_LENGTH, subject="jobs", value=value, threshold=10.0
            )

            def run(index: int) -> None:
                barrier.wait(timeout=10)
                results[index] = list(detector.evaluate(stores[index], [measured], clock.now()))

            threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            return [event for result in results for event in result]

        try:
            assert [type(e) for e in race(50.0)] == [ThresholdExceeded]
            assert [type(e) for e in race(5.0)] == [ThresholdCleared]
        finally:
            for store in stores:
                store.close()


# -------------------------------------------------------------------------------------
# The whole path
# -------------------------------------------------------------------------------------


class TestThroughTheMonitor:
    """Supervised jobs → Monitor.tick() → the history."""

    def test_builtin_and_ordered_after_the_event_queue(self) -> None:
        """The detector is a built-in plugin, right after the queued-events detector."""
        modules = [module.__name__ for module in builtin_modules()]
        assert modules.index("chaperone.builtin.threshold_detector") == (
            modules.index("chaperone.builtin.queued_events") + 1
        )

    def test_alert_and_resolution_reach_the_history(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        """Failing supervised jobs raise a threshold alert into the database channel's
        history; healthy ones later resolve it."""
        path = tmp_path / "c.sqlite3"
        runtime = make_runtime(
            store=sqlite_on(path, clock),
            clock=clock,
            channels=("database",),
            thresholds=Thresholds(),
        )
        supervisor = Supervisor(runtime.store, clock)

        def run_job(fail: bool) -> None:
            with (
                contextlib.suppress(JobFailedError),
                supervise("import-users", supervisor=supervisor),
            ):
                clock.advance(1)
                if fail:
                    raise JobFailedError

        with runtime:
            monitor = Monitor(runtime)
            for fail in (True, False, True, False, False):
                run_job(fail)
            reports = monitor.tick()
            assert [type(report.event) for report in reports] == [ThresholdExceeded]
            (record,) = read_history(runtime.store, 10)
            assert record["type"] == "threshold"
            assert record["key"] == "error_rate:import-users"
            assert record["alert_status"] == "firing"
            assert record["title"] == "Error Rate Exceeded: import-users"
            assert record["channel"] == "database"
            assert monitor.tick() == []

            clock.advance(timedelta(minutes=6))
            for _ in range(5):
                run_job(False)
            reports = monitor.tick()
            assert [type(report.event) for report in reports] == [ThresholdCleared]
            newest, oldest = read_history(runtime.store, 10)
            assert oldest == record
            assert (newest["type"], newest["key"]) == ("threshold", "error_rate:import-users")
            assert newest["alert_status"] == "resolved"
            assert newest["title"] == "Error Rate Back To Normal: import-users"


class JobFailedError(Exception):
    """What the failing jobs of the tests raise."""


# -------------------------------------------------------------------------------------
# Property: the detector against a model
# -------------------------------------------------------------------------------------


@attrs.frozen
class Finish:
    """A job of ``job_class`` finishes now."""

    job_class: str
    duration_ms: int
    failed: bool


@attrs.frozen
class Advance:
    """The clock moves ``seconds`` forward."""

    seconds: int


@attrs.frozen
class Depth:
    """Queue ``queue`` now holds ``depth`` jobs."""

    queue: str
    depth: int


@attrs.frozen
class Tick:
    """Monitor ``monitor`` (0 or 1, on the same store) runs the detector."""

    monitor: int


Step = Finish | Advance | Depth | Tick

steps = st.lists(
    st.one_of(
        st.builds(
            Finish,
            st.sampled_from(["a", "b"]),
            st.sampled_from([0, 500, 1000, 2000, 5000, 30_000]),
            st.booleans(),
        ),
        st.builds(Advance, st.sampled_from([0, 1, 30, 59, 60, 61, 120, 300])),
        st.builds(Depth, st.sampled_from(["q1", "q2"]), st.integers(0, 12)),
        st.builds(Tick, st.integers(0, 1)),
    ),
    max_size=40,
)


@attrs.define
class Model:
    """What the detector should report, measured from the jobs and depths it was told."""

    thresholds: Thresholds
    jobs: list[tuple[float, str, int, bool]] = attrs.field(factory=list)
    depths: dict[str, int] = attrs.field(factory=dict)
    open: set[tuple[ThresholdMetric, str]] = attrs.field(factory=set)

    def in_window(self, at: float, now: float) -> bool:
        """Whether a job finished at ``at`` is counted at ``now``: its minute is the
        current one or starts inside the window."""
        window = self.thresholds.window.total_seconds()
        minute = at // BUCKET_SECONDS
        return (now - window) // BUCKET_SECONDS < minute <= now // BUCKET_SECONDS

    def measure(self, now: float) -> Iterator[tuple[ThresholdMetric, str, float, float]]:
        """Every verdict due at ``now``, in the detector's order."""
        for job_class in sorted({job[1] for job in self.jobs}):
            window = [j for j in self.jobs if j[1] == job_class and self.in_window(j[0], now)]
            if len(window) < self.thresholds.min_jobs:
                continue
            failed = sum(1 for j in window if j[3])
            total_ms = sum(j[2] for j in window)
            yield ERROR_RATE, job_class, 100.0 * failed / len(window), self.thresholds.error_rate
            yield (
                RESPONSE_TIME,
                job_class,
                total_ms / 1000.0 / len(window),
                self.thresholds.response_time.total_seconds(),
            )
        for queue in sorted(self.depths):
            yield (
                QUEUE_LENGTH,
                queue,
                float(self.depths[queue]),
                float(self.thresholds.queue_length),
            )

    def tick(self, now: float) -> list[Summary]:
        """The events one tick at ``now`` should report; the model's incidents follow."""
        expected: list[Summary] = []
        for metric, subject, value, threshold in self.measure(now):
            if value > threshold and (metric, subject) not in self.open:
                self.open.add((metric, subject))
                expected.append(("exceeded", metric, subject, value, threshold))
            elif value <= threshold and (metric, subject) in self.open:
                self.open.remove((metric, subject))
                expected.append(("cleared", metric, subject, value, threshold))
        return expected


thresholds_drawn = st.builds(
    Thresholds,
    error_rate=st.sampled_from([0.0, 10.0, 25.0, 50.0]),
    response_time=st.sampled_from([timedelta(seconds=s) for s in (0.5, 1, 2, 5)]),
    queue_length=st.integers(0, 10),
    window=st.sampled_from([timedelta(minutes=m) for m in (1, 2, 5)]),
    min_jobs=st.integers(1, 4),
)


def check_against_model(
    stores: tuple[Store, Store], clock: ManualClock, thresholds: Thresholds, plan: list[Step]
) -> None:
    """Play ``plan`` on two monitors sharing one store and compare each tick with the
    model; then check every (metric, subject)'s events alternate, Exceeded first."""
    model = Model(thresholds)
    depths: dict[str, int] = {}
    monitors = [
        Chaperone(
            Settings(channels=("database",), thresholds=thresholds),
            clock=clock,
            store=store,
            plugins=PluginHost(entry_points=False),
        )
        for store in stores
    ]
    seen: list[Summary] = []
    try:
        for runtime in monitors:
            for queue in ("q1", "q2"):
                runtime.add_queue_length_source(queue, _reader(depths, queue))
        for step in plan:
            if isinstance(step, Finish):
                finish(
                    monitors[0],
                    step.job_class,
                    duration=step.duration_ms / 1000,
                    failed=step.failed,
                )
                model.jobs.append(
                    (clock.timestamp(), step.job_class, step.duration_ms, step.failed)
                )
            elif isinstance(step, Advance):
                clock.advance(step.seconds)
            elif isinstance(step, Depth):
                depths[step.queue] = model.depths[step.queue] = step.depth
            else:
                got = [summary(event) for event in detect(monitors[step.monitor])]
                assert got == model.tick(clock.timestamp())
                seen.extend(got)
    finally:
        for runtime in monitors:
            runtime.close()
    for metric, subject in {(s[1], s[2]) for s in seen}:
        kinds = [s[0] for s in seen if (s[1], s[2]) == (metric, subject)]
        assert kinds[::2] == ["exceeded"] * len(kinds[::2])
        assert kinds[1::2] == ["cleared"] * len(kinds[1::2])


def _reader(depths: dict[str, int], queue: str) -> Callable[[], int]:
    """A source reading ``queue``'s depth; raising (no verdict) while it has none yet."""

    def read() -> int:
        return depths[queue]

    return read


class TestAgainstAModel:
    """For any jobs, clock moves, queue depths and ticks, the detector reports exactly
    the model's crossings, alternating Exceeded and Cleared per metric and subject."""

    @settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
    @given(thresholds=thresholds_drawn, plan=steps)
    def test_on_a_memory_store(self, thresholds: Thresholds, plan: list[Step]) -> None:
        """Two monitors on one memory store agree with the model."""
        clock = ManualClock(datetime(2024, 1, 15, 10, 0, tzinfo=UTC))
        store = MemoryStore(clock)
        with capture_all_logs():
            check_against_model((store, store), clock, thresholds, plan)

    @settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
    @given(thresholds=thresholds_drawn, plan=steps)
    def test_on_a_sqlite_file(
        self, directory: Path, thresholds: Thresholds, plan: list[Step]
    ) -> None:
        """Two monitors, each on its own connection to one SQLite file, agree with it."""
        clock = ManualClock(datetime(2024, 1, 15, 10, 0, tzinfo=UTC))
        path = directory / f"model-{next(_files)}.sqlite3"
        with capture_all_logs():
            check_against_model(
                (sqlite_on(path, clock), sqlite_on(path, clock)), clock, thresholds, plan
            )

"""``chaperone run -- CMD``: run a command as a supervised job, detecting and delivering
its alerts inline (no separate monitor needed), and exit with the command's status.

Nothing of Chaperone's stops, slows or fails the job: the command starts before the
store is first used; the main thread only watches the command (its limits, its
heartbeats through ``CHAPERONE_HEARTBEAT_FILE``, the signals to forward) while the
monitor ticks on a thread of its own and the supervisor writes on another, so a locked,
full or lost store and a hanging channel delay neither the job nor the enforcement of
its limits (stopped within a poll of a tenth of a second). When the store cannot be
used, the job is supervised from memory and its alerts go straight to the channels
(see :mod:`chaperone.store._resilient`). After the job, what is still being reported
and delivered gets ``delivery.exit_grace``; what is left stays in the outbox for
``chaperone monitor``.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Final

import attrs
import click
import structlog

from chaperone._chaperone import Chaperone
from chaperone._events import Event, JobCompleted, JobTimeout
from chaperone._monitor import Monitor
from chaperone._secrets import describe
from chaperone._ticker import Ticker
from chaperone.builtin.job_detector import JOB_TIMEOUT, claim_incident
from chaperone.cli._context import runtime_or_exit
from chaperone.cli._output import error
from chaperone.cli._params import positive_seconds
from chaperone.config import Settings
from chaperone.config._fatigue import parse_zone
from chaperone.config._parsing import parse_duration_setting
from chaperone.schedules import Overlap, Schedule, declare
from chaperone.store import absolute_url
from chaperone.supervision import JobRecord, Supervision, Supervisor
from chaperone.supervision._beat_file import HEARTBEAT_FILE_ENV, BeatFileWatcher
from chaperone.supervision._child import ChildProcess, StartFailed, exit_status
from chaperone.supervision._last_run import LastRun
from chaperone.supervision._overlap import close_overlap, report_overlap, running_run
from chaperone.supervision._resources import Measurement, ProcessTreeMeter, ResourceSampler

__all__ = ["failure_text", "run"]

_log = structlog.get_logger("chaperone.run")

_POLL: Final = 0.1
"""Seconds between two looks at the child (kill-on-timeout precision)."""
_KILL_GRACE: Final = 0.5
"""Seconds between SIGTERM to the job's group and SIGKILL to what is left of it."""


@click.command(
    "run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option("--name", help="The job's name in alerts [default: the command].")
@click.option(
    "--timeout",
    callback=positive_seconds,
    metavar="S",
    help="Seconds (or 10m, 1h) after which the job has timed out [default: the max_runtime "
    "of its [[schedules]] entry, if any].",
)
@click.option(
    "--heartbeat-interval",
    callback=positive_seconds,
    metavar="S",
    help="Seconds (or 1m) between the heartbeats the job promises (`chaperone heartbeat`).",
)
@click.option(
    "--missed-heartbeats",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Heartbeats missed before the job counts as stuck.",
)
@click.option(
    "--memory-limit",
    type=click.FloatRange(min=0, min_open=True),
    metavar="MB",
    help="Resident memory of the job's process tree, in MB.",
)
@click.option(
    "--cpu-limit",
    type=click.FloatRange(min=0, min_open=True),
    metavar="PCT",
    help="CPU percent of the job's process tree (100 = one core).",
)
@click.option(
    "--alert-on-failure/--no-alert-on-failure",
    default=None,
    help="Raise job_failed when the command fails (resolved by the next success of --name) "
    "[default: on for a scheduled job (--schedule, or a [[schedules]] entry of --name), off "
    "otherwise].",
)
@click.option("--kill-on-timeout", is_flag=True, help="Stop the job when it times out.")
@click.option("--kill-on-memory", is_flag=True, help="Stop the job when over its memory limit.")
@click.option(
    "--check-interval",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    help="Seconds between two detection ticks and samples.",
)
@click.option(
    "--schedule",
    "schedule_text",
    metavar="CRON",
    help="The job's schedule, registered in the store (see `chaperone schedules`): five cron "
    "fields, a nickname (@daily) or 'every DURATION' ('every 15m'). The config file's "
    "[[schedules]] entry for the same name wins.",
)
@click.option(
    "--grace",
    metavar="S",
    help="How late (10m) a scheduled run may start before it counts as missed [default: 5m].",
)
@click.option(
    "--timezone",
    metavar="ZONE",
    help="The IANA time zone the --schedule cron fields are read in [default: UTC].",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(
    name: str | None,
    timeout: float | None,
    heartbeat_interval: float | None,
    missed_heartbeats: int,
    memory_limit: float | None,
    cpu_limit: float | None,
    alert_on_failure: bool | None,
    kill_on_timeout: bool,
    kill_on_memory: bool,
    check_interval: float,
    schedule_text: str | None,
    grace: str | None,
    timezone: str | None,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND as a supervised job: it gets CHAPERONE_SUPERVISION_ID, CHAPERONE_STORE
    and CHAPERONE_HEARTBEAT_FILE in its environment, SIGINT, SIGTERM, SIGHUP, SIGQUIT,
    SIGUSR1 and SIGUSR2 are forwarded to it, alerts are detected and delivered while it
    runs, and chaperone exits with its status (126 when it cannot be run, 127 when it
    does not exist).
    """
    if kill_on_timeout and timeout is None:
        raise click.UsageError("--kill-on-timeout needs --timeout")
    if kill_on_memory and memory_limit is None:
        raise click.UsageError("--kill-on-memory needs --memory-limit")
    job_name = name or " ".join(command)[:200]
    schedule = _schedule(job_name, schedule_text, grace, timezone)
    with runtime_or_exit() as runtime:
        in_force = _schedule_in_force(runtime.settings, job_name, schedule)
        if alert_on_failure is None:  # on for a scheduled job, as its schedule says
            alert_on_failure = in_force.alert_on_failure if in_force is not None else False
        if timeout is None and in_force is not None and in_force.max_runtime is not None:
            timeout = in_force.max_runtime.total_seconds()
        record = JobRecord(
            supervision_id=str(uuid.uuid4()),
            name=job_name,
            started_at=runtime.clock.timestamp(),
            heartbeat_interval=heartbeat_interval,
            missed_heartbeats=missed_heartbeats,
            timeout=timeout,
            memory_limit_mb=memory_limit,
            cpu_limit_percent=cpu_limit,
            alert_on_failure=alert_on_failure,
            host=socket.gethostname(),
        )
        overlap_alert = in_force is not None and in_force.overlap is Overlap.ALERT
        options = _Options(kill_on_timeout, kill_on_memory, check_interval, schedule, overlap_alert)
        status = _RunningJob(runtime, record, command, options).run()
    raise SystemExit(status)


def _schedule_in_force(settings: Settings, job: str, schedule: Schedule | None) -> Schedule | None:
    """The schedule of ``job`` that decides what the command line leaves unsaid (failure
    alerts, the timeout from ``max_runtime``): the config file's entry first, then
    ``--schedule``; None for a job without one.
    """
    for entry in settings.schedules:
        if entry.job == job:
            return entry
    return schedule


def _schedule(
    job: str, text: str | None, grace: str | None, timezone: str | None
) -> Schedule | None:
    """The schedule ``--schedule``, ``--grace`` and ``--timezone`` give, or None; a usage
    error naming the option when one is wrong.
    """
    if text is None:
        if grace is not None or timezone is not None:
            raise click.UsageError("--grace and --timezone need --schedule")
        return None
    options: dict[str, object] = {}
    for option, value, parse in (
        ("--grace", grace, parse_duration_setting),
        ("--timezone", timezone, parse_zone),
    ):
        if value is None:
            continue
        try:
            options[option.removeprefix("--")] = parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=option) from None
    try:
        return Schedule.from_text(job, text, **options)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--schedule") from None


@attrs.frozen
class _Options:
    kill_on_timeout: bool
    kill_on_memory: bool
    check_interval: float
    schedule: Schedule | None
    overlap_alert: bool


class _RunningJob:
    """One ``chaperone run``: the child, its supervision, the monitor's thread."""

    def __init__(
        self, runtime: Chaperone, record: JobRecord, command: Sequence[str], options: _Options
    ) -> None:
        self.runtime = runtime
        self.record = record
        self.command = tuple(command)
        self.options = options
        self.supervisor = Supervisor(
            runtime.store,
            runtime.clock,
            background=True,
            lease=runtime.settings.abandoned_after.total_seconds(),
        )
        self.supervisor.follow(runtime.store)
        self.stopped_for: str | None = None

    def run(self) -> int:
        """Start the command, supervise it to its end, report, and return its status."""
        folder = Path(tempfile.mkdtemp(prefix="chaperone-run-"))
        beat_file = folder / "heartbeat"
        try:
            try:
                child = ChildProcess(self.command, self._environment(beat_file))
            except StartFailed as failed:
                error(f"chaperone: {failed.reason}")
                return failed.status
            with child:
                return self._supervise(child, beat_file)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _environment(self, beat_file: Path) -> dict[str, str]:
        return {
            **os.environ,
            "CHAPERONE_SUPERVISION_ID": self.record.supervision_id,
            # Absolute, so that a child that changes directory still finds the store.
            "CHAPERONE_STORE": absolute_url(self.runtime.store.url),
            HEARTBEAT_FILE_ENV: str(beat_file),
        }

    def _supervise(self, child: ChildProcess, beat_file: Path) -> int:
        record = self.record = attrs.evolve(self.record, pid=child.pid)
        job = Supervision(self.supervisor, record)
        # Read before this run's start is written over the job's last run.
        overlapped = self._running_before() if self.options.overlap_alert else None
        job.start()
        sampler = ResourceSampler(self.supervisor, record, child.pid) if _limited(record) else None
        meter = ProcessTreeMeter(child.pid)
        # The job ends soon: this monitor must not promise to flush what grouping holds.
        ticker = Ticker(Monitor(self.runtime, vouch_for=None), self.options.check_interval)
        ticker.start()
        if self.options.schedule is not None:
            ticker.give("schedule", functools.partial(self._declare, self.options.schedule))
        if overlapped is not None:
            ticker.give("overlap", functools.partial(self._overlapping, overlapped))
        try:
            self._watch(child, job, ticker, sampler, meter, BeatFileWatcher(beat_file))
        except Exception:
            # A bug of ours must not leave the job unsupervised and unrecorded.
            _log.exception("chaperone run failed while watching the job; waiting for it")
        returncode = child.returncode()
        failure = None if returncode == 0 else self.stopped_for or failure_text(returncode)
        # On the monitor's thread, after what the main thread handed over (a timeout to
        # report must be claimed before the end closes the job's incidents).
        end = _Once(functools.partial(job.finish, failure))
        grace = self.runtime.settings.delivery.exit_grace.total_seconds()
        ticker.give("end", lambda: self._ended(end, grace))
        if not ticker.finish(grace):
            _log.warning("the job's last alerts are still being detected; leaving them")
            end()
            self.supervisor.flush(grace)
        return exit_status(returncode)

    def _declare(self, schedule: Schedule) -> list[Event]:
        """Register the run's schedule (on the monitor's thread: never before the job)."""
        declare(
            self.runtime.store,
            schedule,
            f"chaperone run on {socket.gethostname()}",
            self.runtime.clock.now(),
        )
        return []

    def _running_before(self) -> LastRun | None:
        """The job's run under way as this one starts, if any (None when unknown)."""
        try:
            return running_run(self.runtime.store, self.record.name)
        except Exception as exc:
            _log.warning("could not read the job's last run", error=describe(exc))
            return None

    def _overlapping(self, running: LastRun) -> list[Event]:
        """Report this run as overlapping ``running`` (on the monitor's thread)."""
        event = report_overlap(
            self.runtime.store,
            self.record.name,
            self.record.supervision_id,
            running,
            self.runtime.clock.now(),
        )
        return [] if event is None else [event]

    def _watch(
        self,
        child: ChildProcess,
        job: Supervision,
        ticker: Ticker,
        sampler: ResourceSampler | None,
        meter: ProcessTreeMeter,
        beats: BeatFileWatcher,
    ) -> None:
        """Until the command ends: enforce its limits, count its heartbeats, and hand
        what needs the store to the monitor's thread.
        """
        record, options, clock = self.record, self.options, self.runtime.clock
        next_sample = 0.0
        while child.poll() is None:
            _count(beats, job)
            deadline = record.timeout_deadline
            if options.kill_on_timeout and deadline is not None and clock.timestamp() >= deadline:
                self._stop(child, f"timed out after {record.timeout:g}s")
                ticker.give("timeout", self._timed_out)
                return
            if sampler is not None and time.monotonic() >= next_sample:
                next_sample = time.monotonic() + options.check_interval
                measurement = meter()
                ticker.give("sample", functools.partial(_judged, sampler, measurement))
                over = _over_memory(record, measurement)
                if options.kill_on_memory and over:
                    self._stop(child, f"over its memory limit of {record.memory_limit_mb:g} MB")
                    return
            child.wait(_POLL)
        _count(beats, job)  # the last heartbeat, written just before the command ended

    def _stop(self, child: ChildProcess, reason: str) -> None:
        self.stopped_for = reason
        error(f"chaperone: stopping the job ({reason})")
        child.stop(_KILL_GRACE)

    def _timed_out(self) -> list[Event]:
        """The job's timeout, claimed like the detector's (one report however many
        monitors saw it), for the monitor's thread to report.
        """
        record, now = self.record, self.runtime.clock.timestamp()
        if not claim_incident(self.runtime.store, record, JOB_TIMEOUT, now):
            return []  # a monitor reported it already
        return [
            JobTimeout(
                supervision_id=record.supervision_id,
                job_class=record.name,
                timeout=timedelta(seconds=record.timeout or 0.0),
                actual_duration=timedelta(seconds=record.duration(now)),
                occurred_at=self.runtime.clock.now(),
            )
        ]

    def _ended(self, end: _Once, grace: float) -> list[Event]:
        """Record the job's end and wait (on the monitor's thread) for it to be written,
        so that the last tick resolves what the job had open.
        """
        end()
        if not self.supervisor.flush(grace):
            _log.warning("the job's end is not written yet; the monitor will finish it")
        if not self.options.overlap_alert:
            return []
        record = self.record
        closed = close_overlap(self.runtime.store, record.name, record.supervision_id)
        if closed is None:
            return []
        duration = max(0.0, self.runtime.clock.timestamp() - record.started_at)
        return [
            JobCompleted(
                supervision_id=record.supervision_id,
                job_class=record.name,
                duration=timedelta(seconds=duration),
                resolves=(closed,),
                occurred_at=self.runtime.clock.now(),
            )
        ]


def _count(beats: BeatFileWatcher, job: Supervision) -> None:
    """Count the heartbeat written to the file since the last look, if any."""
    beat = beats.poll()
    if beat is None:
        return
    if beat.progress is None:
        job.heartbeat()
    else:
        job.progress(*beat.progress)


class _Once:
    """Calls a function the first time it is called, never again (from any thread)."""

    def __init__(self, function: Callable[[], None]) -> None:
        self._function: Callable[[], None] | None = function
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            function, self._function = self._function, None
        if function is not None:
            function()


def _limited(record: JobRecord) -> bool:
    return record.memory_limit_mb is not None or record.cpu_limit_percent is not None


def _over_memory(record: JobRecord, measurement: Measurement) -> bool:
    limit = record.memory_limit_mb
    return limit is not None and measurement.memory_mb is not None and measurement.memory_mb > limit


def _judged(sampler: ResourceSampler, measurement: Measurement) -> list[Event]:
    sampler.record(measurement)
    return []


def failure_text(returncode: int) -> str:
    """How a command that ended with ``returncode`` (not 0) failed, as its record and its
    ``job_failed`` alert say it: ``exit status 3``, ``killed by signal SIGKILL``.
    """
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = str(-returncode)
    return f"killed by signal {name}"

"""``chaperone run -- CMD``: run a command as a supervised job, detecting and delivering
its alerts inline (no separate monitor needed), and exit with the command's status.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import uuid
from types import FrameType
from typing import Final

import attrs
import click

from chaperone._events import ViolationType
from chaperone._monitor import Monitor
from chaperone._runtime import Runtime
from chaperone.cli._context import runtime_or_exit
from chaperone.cli._output import error
from chaperone.cli._params import positive_seconds
from chaperone.store import SQLiteStore
from chaperone.supervision import JobRecord, Supervision, Supervisor
from chaperone.supervision._resources import ResourceSampler

__all__ = ["run"]

_POLL: Final = 0.1
"""Seconds between two looks at the child (kill-on-timeout precision)."""
_KILL_GRACE: Final = 0.5
"""Seconds between SIGTERM and SIGKILL when a limit is enforced."""


def _signal_job(process: subprocess.Popen[bytes], signum: int) -> None:
    """Send ``signum`` to the job's whole process group (the command and what it started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _stop_child(process: subprocess.Popen[bytes], reason: str) -> None:
    error(f"chaperone: stopping the job ({reason})")
    _signal_job(process, signal.SIGTERM)
    try:
        process.wait(_KILL_GRACE)
    except subprocess.TimeoutExpired:
        _signal_job(process, signal.SIGKILL)
        process.wait()


def _exit_status(returncode: int) -> int:
    """The shell's convention: 128 + signal number for a child killed by a signal."""
    return 128 - returncode if returncode < 0 else returncode


@click.command(
    "run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option("--name", help="The job's name in alerts [default: the command].")
@click.option(
    "--timeout",
    callback=positive_seconds,
    metavar="S",
    help="Seconds (or 10m, 1h) after which the job has timed out.",
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
@click.option("--kill-on-timeout", is_flag=True, help="Stop the job when it times out.")
@click.option("--kill-on-memory", is_flag=True, help="Stop the job when over its memory limit.")
@click.option(
    "--check-interval",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    help="Seconds between two detection ticks and samples.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(
    name: str | None,
    timeout: float | None,
    heartbeat_interval: float | None,
    missed_heartbeats: int,
    memory_limit: float | None,
    cpu_limit: float | None,
    kill_on_timeout: bool,
    kill_on_memory: bool,
    check_interval: float,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND as a supervised job: it gets CHAPERONE_SUPERVISION_ID and CHAPERONE_STORE
    in its environment, SIGINT and SIGTERM are forwarded to it, alerts are detected and
    delivered while it runs, and chaperone exits with its status.
    """
    if kill_on_timeout and timeout is None:
        raise click.UsageError("--kill-on-timeout needs --timeout")
    if kill_on_memory and memory_limit is None:
        raise click.UsageError("--kill-on-memory needs --memory-limit")
    with runtime_or_exit() as runtime:
        status = _supervise_child(
            runtime,
            JobRecord(
                supervision_id=str(uuid.uuid4()),
                name=name or " ".join(command)[:200],
                started_at=runtime.clock.timestamp(),
                heartbeat_interval=heartbeat_interval,
                missed_heartbeats=missed_heartbeats,
                timeout=timeout,
                memory_limit_mb=memory_limit,
                cpu_limit_percent=cpu_limit,
                host=socket.gethostname(),
            ),
            command,
            kill_on_timeout=kill_on_timeout,
            kill_on_memory=kill_on_memory,
            check_interval=check_interval,
        )
    raise SystemExit(status)


def _supervise_child(
    runtime: Runtime,
    record: JobRecord,
    command: tuple[str, ...],
    *,
    kill_on_timeout: bool,
    kill_on_memory: bool,
    check_interval: float,
) -> int:
    store = runtime.store
    env = {
        **os.environ,
        "CHAPERONE_SUPERVISION_ID": record.supervision_id,
        # Absolute, so that a child that changes directory still finds the store.
        "CHAPERONE_STORE": f"sqlite:///{store.path}"
        if isinstance(store, SQLiteStore)
        else store.url,
    }
    process: subprocess.Popen[bytes] | None = None
    early: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        if process is None:
            early.append(signum)  # arrived while the child was being started
        elif process.poll() is None:
            _signal_job(process, signum)

    # Handlers first: a signal arriving while the child starts must not kill chaperone
    # and leave the child running unsupervised.
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # A process group of its own, so that a limit stops everything the job started.
        process = subprocess.Popen(command, env=env, process_group=0)  # noqa: S603 - the user's command
    except OSError as exc:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        error(f"chaperone: cannot start {command[0]!r}: {exc.strerror or exc}")
        return 127
    for signum in early:
        _signal_job(process, signum)
    supervisor = Supervisor(runtime.store, runtime.clock)
    job = Supervision(supervisor, attrs.evolve(record, pid=process.pid))
    job.start()
    sampler = ResourceSampler(supervisor, job.record, process.pid)
    # The job ends soon: this monitor must not promise to flush what grouping holds.
    monitor = Monitor(runtime, vouch_for=None)
    stopped_for: str | None = None
    try:
        next_check = 0.0
        while process.poll() is None:
            now = runtime.clock.timestamp()
            deadline = record.timeout_deadline
            if kill_on_timeout and deadline is not None and now >= deadline:
                # Stop first (the limit is the user's), then report: the job is still
                # on record as running, so this tick finds it timed out.
                stopped_for = f"timed out after {record.timeout:g}s"
                _stop_child(process, stopped_for)
                monitor.tick()
                break
            if now >= next_check:
                violations = sampler.sample()
                if kill_on_memory and ViolationType.MEMORY in violations:
                    stopped_for = f"over its memory limit of {record.memory_limit_mb:g} MB"
                    _stop_child(process, stopped_for)
                    monitor.tick()
                    break
                monitor.tick()
                next_check = now + check_interval
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(_POLL)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    returncode = process.wait()
    failure = None
    if returncode != 0:
        failure = ChildFailed(stopped_for or f"exit status {_exit_status(returncode)}")
    sampler.close()
    job.finish(failure)
    monitor.tick()
    return _exit_status(returncode)


class ChildFailed(Exception):  # noqa: N818 - recorded as the job's error: "ChildFailed: exit status 3"
    """The supervised command ended with a non-zero status."""

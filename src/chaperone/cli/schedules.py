"""``chaperone schedules``: every schedule with its last run, its state and its next
expected run; ``pause JOB``, ``resume JOB`` and ``forget JOB``.
"""

from __future__ import annotations

import click

from chaperone._clock import SystemClock
from chaperone._durations import format_time
from chaperone.cli._context import EXIT_FAILED, configured_settings_and_store
from chaperone.cli._output import echo, error, print_json, print_table
from chaperone.schedules import all_schedules, forget, pause, resume, schedule_states

__all__ = ["schedules"]


@click.group("schedules", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def schedules(ctx: click.Context, as_json: bool) -> None:
    """List every schedule (the config file's and those declared by runs): job, schedule,
    timezone, last run, state (up, late, missed, failed or paused), next expected run.
    """
    if ctx.invoked_subcommand is not None:
        return
    with configured_settings_and_store() as (settings, store):
        now = SystemClock().now()
        statuses = schedule_states(all_schedules(settings, store), store, now)
    if as_json:
        print_json([status.to_public() for status in statuses])
        return
    print_table(
        "Schedules",
        ["job", "schedule", "timezone", "last run", "state", "next expected"],
        [
            [
                status.schedule.job,
                status.schedule.describe(),
                status.schedule.timezone.key if status.schedule.cron else "",
                "never"
                if status.last_run is None
                else f"{format_time(status.last_run.started_at)} ({status.last_run.state})",
                status.state.value + (f" ({status.missed} runs)" if status.missed > 1 else ""),
                format_time(status.expected_at),
            ]
            for status in statuses
        ],
    )


@schedules.command("pause")
@click.argument("job")
def pause_command(job: str) -> None:
    """Pause the schedule of JOB: it says paused, whatever its runs do, until resumed."""
    with configured_settings_and_store() as (settings, store):
        if job not in {each.job for each in all_schedules(settings, store)}:
            error(f"no schedule for job {job!r} (see `chaperone schedules`)")
            raise SystemExit(EXIT_FAILED)
        pause(store, job, SystemClock().now())
    echo(f"schedule of {job} paused")


@schedules.command("resume")
@click.argument("job")
def resume_command(job: str) -> None:
    """Resume the paused schedule of JOB."""
    with configured_settings_and_store() as (_settings, store):
        if not resume(store, job, SystemClock().now()):
            error(f"the schedule of {job!r} is not paused")
            raise SystemExit(EXIT_FAILED)
    echo(f"schedule of {job} resumed")


@schedules.command("forget")
@click.argument("job")
def forget_command(job: str) -> None:
    """Forget the schedule JOB's runs declared (chaperone run --schedule, code): the
    monitor stops watching it at its next tick, and an open missed-run alert resolves. A
    schedule in the config file stays until it is removed from the file.
    """
    with configured_settings_and_store() as (settings, store):
        if not forget(store, job, SystemClock().now()):
            error(f"no declared schedule for job {job!r} (see `chaperone schedules`)")
            raise SystemExit(EXIT_FAILED)
        configured = any(each.job == job for each in settings.schedules)
    echo(f"declared schedule of {job} forgotten")
    if configured:
        echo(f"the config file's schedule of {job} stays: remove it from the file")

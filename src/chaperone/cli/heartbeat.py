"""``chaperone heartbeat``: say a job is alive, from a shell script under ``chaperone run``.

Under ``chaperone run`` (the id is the job's own, and ``CHAPERONE_HEARTBEAT_FILE`` is
set), the heartbeat goes to that file and ``chaperone run`` takes it from there: no store
round trip, and nothing the store does (locked, full, away) can delay or fail the job's
script. For a job supervised elsewhere, it is written to the store; a store that cannot
be reached is reported on standard error, and the command still exits 0, so that a
script under ``set -e`` goes on.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from chaperone.cli._output import error

__all__ = ["heartbeat"]

_BUSY_TIMEOUT = 1.0
"""Seconds ``chaperone heartbeat`` waits for another process's lock on a SQLite store."""


def _progress(value: str | None) -> tuple[int, int | None] | None:
    if value is None:
        return None
    current, _, total = value.partition("/")
    try:
        return int(current), int(total) if total else None
    except ValueError:
        raise click.BadParameter(
            f"expected CURRENT or CURRENT/TOTAL, got {value!r}", param_hint="--progress"
        ) from None


@click.command("heartbeat")
@click.option(
    "--id",
    "supervision_id",
    envvar="CHAPERONE_SUPERVISION_ID",
    metavar="ID",
    help="The job's supervision id [default: $CHAPERONE_SUPERVISION_ID].",
)
@click.option("--progress", metavar="CURRENT/TOTAL", help="Report progress too.")
def heartbeat(supervision_id: str | None, progress: str | None) -> None:
    """Record a heartbeat for a supervised job (exit 1 if the store knows no job with
    that id; exit 0 with a warning when the store cannot be reached).
    """
    if not supervision_id:
        raise click.UsageError("no job id: pass --id or set CHAPERONE_SUPERVISION_ID")
    parsed = _progress(progress)
    if _to_beat_file(supervision_id, parsed):
        return
    _to_store(supervision_id, parsed)


def _to_beat_file(supervision_id: str, progress: tuple[int, int | None] | None) -> bool:
    """Hand the heartbeat to ``chaperone run`` through its file, when this is its job."""
    from chaperone.supervision._beat_file import HEARTBEAT_FILE_ENV, write_beat_file

    path = os.environ.get(HEARTBEAT_FILE_ENV, "").strip()
    if not path or os.environ.get("CHAPERONE_SUPERVISION_ID", "").strip() != supervision_id:
        return False
    try:
        write_beat_file(Path(path), progress)
    except OSError:
        return False  # chaperone run is gone: try the store
    return True


def _to_store(supervision_id: str, progress: tuple[int, int | None] | None) -> None:
    from chaperone._exceptions import StoreError
    from chaperone.cli._context import configured_store
    from chaperone.supervision import Supervisor

    try:
        # A locked SQLite file delays a script's heartbeat a second at most, not ten.
        with configured_store(busy_timeout=_BUSY_TIMEOUT) as store:
            supervisor = Supervisor(store, background=False)
            record = supervisor.heartbeat(supervision_id, progress=progress)
            stored = not supervisor.store_away
    except StoreError as exc:
        error(f"warning: heartbeat not recorded, the store is unavailable: {exc}")
        return
    if not stored:
        error("warning: heartbeat not recorded, the store is unavailable")
        return
    if record is None:
        error(f"no supervised job with id {supervision_id}")
        raise SystemExit(1)

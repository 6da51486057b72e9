"""``chaperone heartbeat``: say a job is alive, from a shell script under ``chaperone run``."""

from __future__ import annotations

import click

from chaperone.cli._context import configured_store
from chaperone.cli._output import error
from chaperone.supervision import Supervisor

__all__ = ["heartbeat"]


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
    """Record a heartbeat for a supervised job (exit 1 if no job has that id)."""
    if not supervision_id:
        raise click.UsageError("no job id: pass --id or set CHAPERONE_SUPERVISION_ID")
    parsed = _progress(progress)
    with configured_store() as store:
        record = Supervisor(store).heartbeat(supervision_id, progress=parsed)
    if record is None:
        error(f"no supervised job with id {supervision_id}")
        raise SystemExit(1)

"""``chaperone history``: the alert and delivery history the ``database`` channel keeps."""

from __future__ import annotations

import click

from chaperone.builtin.database_channel import read_history
from chaperone.cli._context import configured_store
from chaperone.cli._output import print_json, print_table

__all__ = ["history"]


@click.command("history")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many records, newest first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def history(limit: int, as_json: bool) -> None:
    """Show recent alerts and what each channel did with them, newest first."""
    with configured_store() as store:
        records = read_history(store, limit)
    if as_json:
        print_json(records)
        return
    print_table(
        "Alert history",
        ["occurred at", "type", "key", "channel", "status", "title", "detail"],
        [
            [
                r["occurred_at"],
                r["type"],
                r["key"],
                f"{r['channel']} (fallback for {r['fallback_of']})"
                if r.get("fallback_of")
                else r["channel"],
                r["status"],
                r["title"],
                r.get("detail", ""),
            ]
            for r in records
        ],
    )

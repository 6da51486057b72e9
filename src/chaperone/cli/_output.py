"""CLI output: everything printed passes the secret masker first."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from chaperone._secrets import MASKER

__all__ = ["echo", "error", "print_json", "print_table"]


def echo(text: str = "", *, err: bool = False) -> None:
    """Print one masked line."""
    click.echo(MASKER.mask(text), err=err)


def error(text: str) -> None:
    """Print one masked line to standard error."""
    echo(text, err=True)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON, secrets masked."""
    click.echo(json.dumps(MASKER.mask_any(data), indent=2, ensure_ascii=False, default=str))


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Print a rich table with masked cells (plain text when not on a terminal). A cell is
    shown as the text it is: square brackets in it are never read as rich markup.
    """
    from rich.console import Console  # rich is slow to import: only for tables
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(MASKER.mask("" if cell is None else str(cell))) for cell in row))
    # Off a terminal (a pipe, a CI log) rich would assume 80 columns and fold every cell.
    width = None if sys.stdout.isatty() else 200
    Console(file=sys.stdout, width=width).print(table)

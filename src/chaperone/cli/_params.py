"""Option readers shared by the commands."""

from __future__ import annotations

from datetime import timedelta

import click

from chaperone._durations import parse_duration

__all__ = ["positive_seconds"]


def positive_seconds(
    _ctx: click.Context, param: click.Parameter, value: str | None
) -> float | None:
    """Read a duration above zero, in seconds or with a unit (``90``, ``10m``, ``1h30m``),
    as a number of seconds; fail naming the option when it is not one.
    """
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None
    if seconds <= timedelta(0):
        raise click.BadParameter(f"expected a duration longer than 0s, got {value!r}", param=param)
    return seconds.total_seconds()

"""Parsers for the structured alert-fatigue settings: escalation delays, routes and
recurring maintenance windows.

Each parser takes the raw TOML value and the dotted key it sits at, and appends a
:class:`ConfigProblem` naming the exact key (``alerting.routes[2].match.severity``) for
everything wrong, so one start-up error lists them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chaperone._exceptions import ConfigProblem
from chaperone._matching import AlertMatcher, parse_match
from chaperone.config._parsing import (
    describe_kind,
    parse_bool,
    parse_duration_setting,
    parse_http_url,
    parse_names,
)
from chaperone.config._settings import SEED_ESCALATION, RecurringWindow, Route

__all__ = [
    "parse_escalation",
    "parse_globs",
    "parse_recurring_windows",
    "parse_routes",
    "parse_zone",
]

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NAMES = {
    **{day: number for number, day in enumerate(_WEEKDAYS)},
    **{day[:3]: number for number, day in enumerate(_WEEKDAYS)},
}
_DAY_SETS = {
    "daily": frozenset(range(7)),
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
}
_CLOCK_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_ROUTE_KEYS = {"name", "match", "channels", "runbook_url", "continue"}
_WINDOW_KEYS = {"name", "every", "from", "to", "timezone", "match", "reason", "summary"}


def parse_escalation(value: Any) -> tuple[timedelta, ...] | None:
    """Read one type's escalation: a list of delays (``["0s", "5m", "1h"]``, also as
    comma-separated text), ``true`` for the seed's delays, or ``false`` for none.
    """
    if isinstance(value, bool) or (
        isinstance(value, str) and value.strip().lower() in {"true", "false", "yes", "no"}
    ):
        return SEED_ESCALATION if parse_bool(value) else None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(
            "expected a list of delays such as ['0s', '5m', '15m', '30m', '1h'], "
            f"got {describe_kind(value)}"
        )
    delays = tuple(parse_duration_setting(item) for item in items)
    if len(delays) > 1 and all(delay == timedelta(0) for delay in delays):
        raise ValueError("every delay is 0: that would never hold a repeat back")
    return delays


def parse_globs(value: Any) -> tuple[str, ...]:
    """Read a list of glob patterns (a TOML array or comma-separated text), case kept."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"expected a list of glob patterns, got {describe_kind(value)}")
    globs: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"expected a glob pattern, got {describe_kind(item)}")
        if item.strip() and item.strip() not in globs:
            globs.append(item.strip())
    return tuple(globs)


def _problem(problems: list[ConfigProblem], key: str, source: str, message: str) -> None:
    problems.append(ConfigProblem(key=key, source=source, message=message))


def _text(
    entry: Mapping[str, Any],
    key: str,
    default: str,
    where: str,
    source: str,
    problems: list[ConfigProblem],
) -> str:
    """The text under ``key`` of a route or window, stripped; ``default`` when it is unset
    or not text (then with a problem naming it).
    """
    raw = entry.get(key)
    if raw is None:
        return default
    if not isinstance(raw, str):
        _problem(problems, f"{where}.{key}", source, f"expected text, got {describe_kind(raw)}")
        return default
    return raw.strip() or default


def _matcher(
    entry: Mapping[str, Any], where: str, source: str, problems: list[ConfigProblem]
) -> AlertMatcher:
    raw = entry.get("match", {})
    try:
        return parse_match(raw)
    except ValueError as exc:
        _problem(problems, f"{where}.match", source, str(exc))
        return AlertMatcher()


def _entries(
    value: Any, key: str, source: str, problems: list[ConfigProblem]
) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        _problem(problems, key, source, f"expected an array of tables ([[{key}]])")
        return []
    return list(value)


def parse_routes(value: Any, source: str, problems: list[ConfigProblem]) -> tuple[Route, ...]:
    """Read ``[[alerting.routes]]``; names must be unique and each route needs channels."""
    routes: list[Route] = []
    for index, entry in enumerate(_entries(value, "alerting.routes", source, problems)):
        where = f"alerting.routes[{index}]"
        name = _text(entry, "name", f"route-{index + 1}", where, source, problems)
        if any(route.name == name for route in routes):
            _problem(problems, f"{where}.name", source, f"another route is named {name!r}")
        try:
            channels = parse_names(entry.get("channels", ()))
        except ValueError as exc:
            _problem(problems, f"{where}.channels", source, str(exc))
            channels = ()
        if not channels:
            _problem(problems, f"{where}.channels", source, "a route needs at least one channel")
        overrides: dict[str, dict[str, Any]] = {}
        for key, item in entry.items():
            if key in _ROUTE_KEYS:
                continue
            if key.lower() in channels and isinstance(item, Mapping):
                overrides[key.lower()] = dict(item)
                continue
            message = (
                f"unknown key; a channel's settings table must name one of this route's "
                f"channels ({', '.join(channels) or 'none'})"
            )
            _problem(problems, f"{where}.{key}", source, message)
        runbook = entry.get("runbook_url")
        if runbook is not None:
            try:
                runbook = parse_http_url(runbook)
            except ValueError as exc:
                _problem(problems, f"{where}.runbook_url", source, str(exc))
                runbook = None
        try:
            keep_going = parse_bool(entry.get("continue", False))
        except ValueError as exc:
            _problem(problems, f"{where}.continue", source, str(exc))
            keep_going = False
        routes.append(
            Route(
                name=name,
                match=_matcher(entry, where, source, problems),
                channels=channels,
                channel_settings=overrides,
                runbook_url=runbook,
                continue_matching=keep_going,
            )
        )
    return tuple(routes)


def _weekdays(value: Any) -> frozenset[int]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError("expected weekdays such as ['sat', 'sun'], or 'daily'")
    days: set[int] = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"expected weekday names such as 'sat', got {describe_kind(item)}")
        text = item.strip().lower()
        if text in _DAY_SETS:
            days |= _DAY_SETS[text]
        elif text in _DAY_NAMES:
            days.add(_DAY_NAMES[text])
        else:
            raise ValueError(f"{item!r} is not a weekday (mon … sun, daily, weekdays, weekends)")
    return frozenset(days)


def _clock_time(value: Any) -> time:
    if isinstance(value, time) and value.tzinfo is None and not value.second:
        return time(value.hour, value.minute)  # a TOML local time, 02:00:00
    if not isinstance(value, str):
        raise ValueError(f"expected a time of day such as '02:00', got {describe_kind(value)}")
    match = _CLOCK_TIME.fullmatch(value.strip())
    if not match:
        raise ValueError(f"expected a time of day such as '02:00', got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def parse_zone(value: Any) -> ZoneInfo:
    """Read an IANA time zone name (``Europe/Berlin``)."""
    if not isinstance(value, str):
        raise ValueError(
            f"expected a time zone name like Europe/Berlin, got {describe_kind(value)}"
        )
    try:
        return ZoneInfo(str(value).strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use a name like Europe/Berlin)") from None


def parse_recurring_windows(
    value: Any, source: str, problems: list[ConfigProblem]
) -> tuple[RecurringWindow, ...]:
    """Read ``[[alerting.maintenance]]``: ``every``, ``from``, ``to``, ``timezone`` (UTC
    when unset), and optionally ``match``, ``reason``, ``name`` and ``summary``.
    """
    windows: list[RecurringWindow] = []
    for index, entry in enumerate(_entries(value, "alerting.maintenance", source, problems)):
        where = f"alerting.maintenance[{index}]"
        for key in sorted(set(entry) - _WINDOW_KEYS):
            _problem(problems, f"{where}.{key}", source, "unknown setting")
        before = len(problems)
        parsed: dict[str, Any] = {}
        for key, parse, default in (
            ("every", _weekdays, None),
            ("from", _clock_time, None),
            ("to", _clock_time, None),
            ("timezone", parse_zone, "UTC"),
            ("summary", parse_bool, True),
        ):
            raw = entry.get(key, default)
            if raw is None:
                _problem(problems, f"{where}.{key}", source, "is required")
                continue
            try:
                parsed[key] = parse(raw)
            except ValueError as exc:
                _problem(problems, f"{where}.{key}", source, str(exc))
        matcher = _matcher(entry, where, source, problems)
        name = _text(entry, "name", f"recurring-{index + 1}", where, source, problems)
        reason = _text(entry, "reason", "", where, source, problems)
        if len(problems) > before:
            continue
        if parsed["from"] == parsed["to"]:
            _problem(problems, f"{where}.to", source, "the window must not end when it starts")
            continue
        if any(window.name == name for window in windows):
            _problem(problems, f"{where}.name", source, f"another window is named {name!r}")
            continue
        windows.append(
            RecurringWindow(
                name=name,
                weekdays=parsed["every"],
                start=parsed["from"],
                end=parsed["to"],
                timezone=parsed["timezone"],
                match=matcher,
                reason=reason,
                summary=parsed["summary"],
            )
        )
    return tuple(windows)

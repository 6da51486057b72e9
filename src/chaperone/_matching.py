"""Which alerts a maintenance window or a route applies to: field globs, ANDed.

A matcher maps a field (``type``, ``key``, ``job_class``, ``service``, ``severity``,
``priority``, or any other name, which is read as a label) to one or more glob patterns.
An alert matches when every field matches at least one of its patterns; a field the
alert does not have (a circuit breaker has no job class) matches nothing. An empty
matcher matches every alert.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import attrs

from chaperone._alerts import Alert

__all__ = ["ALERT_FIELDS", "AlertMatcher", "field_value", "parse_match"]

ALERT_FIELDS: tuple[str, ...] = ("type", "key", "job_class", "service", "severity", "priority")
"""The alert attributes a matcher reads by name; every other name is a label."""

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")


def field_value(alert: Alert, name: str) -> str | None:
    """The text of field ``name`` of ``alert`` (a label when not an attribute), or None."""
    if name in ALERT_FIELDS:
        value = getattr(alert, name)
        return None if value is None else str(value)
    return alert.labels.get(name)


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


@attrs.frozen
class AlertMatcher:
    """Field → glob patterns; matches an alert when each field matches one pattern."""

    patterns: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def matches(self, alert: Alert) -> bool:
        """Whether ``alert`` matches every field of this matcher."""
        return all(self.field_matches(alert, name, globs) for name, globs in self.patterns)

    @staticmethod
    def field_matches(alert: Alert, name: str, globs: tuple[str, ...]) -> bool:
        """Whether field ``name`` of ``alert`` matches one of ``globs`` (case-sensitive)."""
        value = field_value(alert, name)
        return value is not None and any(_compiled(glob).match(value) for glob in globs)

    def explain(self, alert: Alert) -> list[str]:
        """One line per field saying whether and how it matched, for ``chaperone route``."""
        lines = []
        for name, globs in self.patterns:
            value = field_value(alert, name)
            shown = "unset" if value is None else _quoted(value)
            verdict = "matches" if self.field_matches(alert, name, globs) else "does not match"
            lines.append(f"{name} {shown} {verdict} {' or '.join(map(_quoted, globs))}")
        return lines

    def to_dict(self) -> dict[str, list[str]]:
        """The JSON form: field → patterns."""
        return {name: list(globs) for name, globs in self.patterns}

    def describe(self) -> str:
        r"""``job_class=App\Jobs\*, severity=critical|error`` (``everything`` when empty)."""
        if not self.patterns:
            return "everything"
        return ", ".join(f"{name}={'|'.join(globs)}" for name, globs in self.patterns)


def _quoted(text: str) -> str:
    r"""``'App\Jobs\X'``: quoted for reading, backslashes left single (unlike repr)."""
    return f"'{text}'"


def parse_match(value: Any) -> AlertMatcher:
    r"""Read a matcher from a TOML table (``{job_class = "App\\Jobs\\*"}``, a value may be
    a list of globs) or from ``KEY=GLOB`` strings (the CLI's ``--match``; a key given
    twice keeps both globs).

    Raises ValueError naming the bad field.
    """
    pairs: list[tuple[str, Any]]
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, Iterable) and not isinstance(value, str):
        pairs = [_split_pair(item) for item in value]
    else:
        raise ValueError(f"expected a table of field = glob, got {value!r}")
    merged: dict[str, list[str]] = {}
    for name, globs in pairs:
        if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a field name (use type, job_class, service, …)")
        merged.setdefault(name, []).extend(_globs(name, globs))
    return AlertMatcher(
        tuple((name, tuple(dict.fromkeys(globs))) for name, globs in merged.items())
    )


def _split_pair(item: Any) -> tuple[str, str]:
    text = str(item)
    name, sep, glob = text.partition("=")
    if not sep:
        raise ValueError(f"expected KEY=GLOB (like job_class='App\\Jobs\\*'), got {text!r}")
    return name.strip(), glob.strip()


def _globs(name: str, value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f"{name}: expected a glob or a list of globs, got {value!r}")
    globs = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{name}: expected a non-empty glob, got {item!r}")
        globs.append(item.strip())
    return globs

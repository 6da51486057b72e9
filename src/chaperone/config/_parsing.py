"""Parsers for setting values: each takes text (or a TOML value) and returns the typed
value, raising ValueError with a message that says what was expected.

A TOML value of the wrong kind (an array where text is expected, a date, a table) is a
ValueError too, which says what kind of value it got without quoting it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit

from chaperone._durations import parse_duration

__all__ = [
    "describe_kind",
    "parse_bool",
    "parse_choice",
    "parse_duration_setting",
    "parse_emails",
    "parse_float",
    "parse_http_url",
    "parse_int",
    "parse_names",
    "parse_percent",
    "parse_plugin_names",
    "parse_text",
    "parse_texts",
]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>.]+$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")
_DURATION_EXAMPLE = "a duration such as 300, '5m' or '1h'"


def describe_kind(value: Any) -> str:
    """Name the kind of a TOML value, for an error that must not quote it: ``an array``,
    ``a table``, ``a date``, ``a time``, ``a date-time``, ``true``, ``a number``, ``text``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, datetime):  # before date: a datetime is a date
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    return type(value).__name__


def _scalar(value: Any, expected: str, *, numbers: bool = True) -> str:
    """``value`` as text when it is text (or, with ``numbers``, a number); a ValueError
    saying what was expected otherwise.
    """
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected {expected}, got {describe_kind(value)}")


def parse_bool(value: Any) -> bool:
    """Read true/false, yes/no, on/off or 1/0."""
    if isinstance(value, bool):
        return value
    text = _scalar(value, "true or false").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def parse_int(value: Any, *, minimum: int = 0) -> int:
    """Read a whole number no smaller than ``minimum``."""
    text = _scalar(value, "a whole number")
    try:
        number = int(text.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"expected a whole number of at least {minimum}, got {number}")
    return number


def parse_float(value: Any) -> float:
    """Read a number."""
    text = _scalar(value, "a number")
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {value!r}") from None


def parse_percent(value: Any) -> float:
    """Read a percentage between 0 and 100."""
    text = _scalar(value, "a percentage between 0 and 100")
    try:
        number = float(text.strip().removesuffix("%"))
    except ValueError:
        raise ValueError(f"expected a percentage between 0 and 100, got {value!r}") from None
    if not 0 <= number <= 100:
        raise ValueError(f"expected a percentage between 0 and 100, got {number:g}")
    return number


def parse_duration_setting(value: Any) -> timedelta:
    """Read a duration in seconds or with a unit ("90", "5m", "1h")."""
    if isinstance(value, str):
        value = value.strip()
    elif not isinstance(value, int | float | timedelta) or isinstance(value, bool):
        raise ValueError(f"expected {_DURATION_EXAMPLE}, got {describe_kind(value)}")
    return parse_duration(value)


def _items(value: Any, expected: str) -> list[str]:
    """The items of a TOML array of text, or of comma-separated text."""
    if isinstance(value, list | tuple):
        items = [_scalar(item, f"an array of {expected}", numbers=False) for item in value]
    else:
        items = _scalar(value, f"{expected}, comma-separated or as an array").split(",")
    return [item.strip() for item in items if item.strip()]


def parse_texts(value: Any) -> tuple[str, ...]:
    """Read a comma-separated (or TOML array) list of texts."""
    return tuple(_items(value, "texts"))


def parse_names(value: Any) -> tuple[str, ...]:
    """Read a comma-separated (or TOML array) list of lower-case names, without repeats."""
    return _names(value, _NAME, "letters, digits, '-' and '_'")


def parse_plugin_names(value: Any) -> tuple[str, ...]:
    """Read a list of lower-case plugin names as :func:`parse_names` does, dotted ones too
    (``chaperone.builtin.routing``).
    """
    return _names(value, _PLUGIN_NAME, "letters, digits, '-' and '_', parts joined by '.'")


def _names(value: Any, pattern: re.Pattern[str], allowed: str) -> tuple[str, ...]:
    names: list[str] = []
    for item in _items(value, "names"):
        name = item.lower()
        if not pattern.match(name):
            raise ValueError(f"{item!r} is not a valid name ({allowed})")
        if name not in names:
            names.append(name)
    return tuple(names)


def parse_emails(value: Any) -> tuple[str, ...]:
    """Read a comma-separated (or TOML array) list of e-mail addresses."""
    addresses: list[str] = []
    for item in _items(value, "e-mail addresses"):
        if not _EMAIL.match(item):
            raise ValueError(f"{item!r} is not an e-mail address")
        if item not in addresses:
            addresses.append(item)
    return tuple(addresses)


def parse_http_url(value: Any) -> str:
    """Read an absolute http(s) URL (trailing slash removed)."""
    text = _scalar(value, "an absolute http:// or https:// URL", numbers=False).strip()
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("expected an absolute http:// or https:// URL")
    return text.rstrip("/")


def parse_choice(*choices: str) -> Any:
    """Return a parser that accepts one of ``choices`` (case-insensitive)."""

    def parse(value: Any) -> str:
        text = _scalar(value, f"one of {', '.join(choices)}").strip().lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return text

    return parse


def parse_text(value: Any) -> str:
    """Read non-empty text (a TOML number is read as its text)."""
    text = _scalar(value, "text").strip()
    if not text:
        raise ValueError("must not be empty")
    return text

"""Parsers for setting values: each takes text (or a TOML value) and returns the typed
value, raising ValueError with a message that says what was expected.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from chaperone._durations import parse_duration

__all__ = [
    "parse_bool",
    "parse_choice",
    "parse_duration_setting",
    "parse_emails",
    "parse_http_url",
    "parse_int",
    "parse_names",
    "parse_percent",
    "parse_text",
]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>.]+$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def parse_bool(value: Any) -> bool:
    """Read true/false, yes/no, on/off or 1/0."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def parse_int(value: Any, *, minimum: int = 0) -> int:
    """Read a whole number no smaller than ``minimum``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, got {value!r}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"expected a whole number of at least {minimum}, got {number}")
    return number


def parse_percent(value: Any) -> float:
    """Read a percentage between 0 and 100."""
    if isinstance(value, bool):
        raise ValueError(f"expected a percentage between 0 and 100, got {value!r}")
    try:
        number = float(str(value).strip().removesuffix("%"))
    except ValueError:
        raise ValueError(f"expected a percentage between 0 and 100, got {value!r}") from None
    if not 0 <= number <= 100:
        raise ValueError(f"expected a percentage between 0 and 100, got {number:g}")
    return number


def parse_duration_setting(value: Any) -> timedelta:
    """Read a duration in seconds or with a unit ("90", "5m", "1h")."""
    if isinstance(value, str):
        value = value.strip()
    return parse_duration(value)


def _items(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(item).strip() for item in value if str(item).strip()]
    return [item.strip() for item in str(value).split(",") if item.strip()]


def parse_names(value: Any) -> tuple[str, ...]:
    """Read a comma-separated (or TOML array) list of lower-case names, without repeats."""
    names: list[str] = []
    for item in _items(value):
        name = item.lower()
        if not _NAME.match(name):
            raise ValueError(f"{item!r} is not a valid name (letters, digits, '-' and '_')")
        if name not in names:
            names.append(name)
    return tuple(names)


def parse_emails(value: Any) -> tuple[str, ...]:
    """Read a comma-separated (or TOML array) list of e-mail addresses."""
    addresses: list[str] = []
    for item in _items(value):
        if not _EMAIL.match(item):
            raise ValueError(f"{item!r} is not an e-mail address")
        if item not in addresses:
            addresses.append(item)
    return tuple(addresses)


def parse_http_url(value: Any) -> str:
    """Read an absolute http(s) URL (trailing slash removed)."""
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("expected an absolute http:// or https:// URL")
    return text.rstrip("/")


def parse_choice(*choices: str) -> Any:
    """Return a parser that accepts one of ``choices`` (case-insensitive)."""

    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return text

    return parse


def parse_text(value: Any) -> str:
    """Read non-empty text."""
    text = str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text

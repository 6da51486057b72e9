"""Secrets (webhook URLs, routing keys, API keys, passwords) and the masking that keeps
them out of logs, exception messages and CLI output.

A value wrapped in :class:`Secret` prints as ``'********'``; the wrapped text is only
reachable through :meth:`Secret.reveal`. Every secret built is also remembered by the
process-wide :data:`MASKER`, which the logging processor and the CLI run over any text
they emit, so a secret that leaked into, say, an exception message from a library is
still masked on its way out.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = ["MASK", "MASKER", "Masker", "Secret", "describe"]

MASK: Final = "********"
_MIN_SECRET_LENGTH: Final = 4
_MIN_URL_PIECE_LENGTH: Final = 8
_TOKEN_LENGTH: Final = 16
_SECRET_SHAPES: Final = (
    # Webhook URLs carry their credential in the path.
    re.compile(r"https?://hooks\.slack\.com/\S+", re.IGNORECASE),
    re.compile(r"https?://(?:\w+\.)?discord(?:app)?\.com/api/webhooks/\S+", re.IGNORECASE),
    # Credentials in an Authorization header value.
    re.compile(r"(?<=GenieKey )\S+"),
    re.compile(r"(?<=Bearer )[\w.~+/=-]+"),
    # user:password@ in any URL.
    re.compile(r"(?<=://)[^/\s:@]*:[^/\s@]+(?=@)"),
)


class Masker:
    """Replaces every known secret value in text with :data:`MASK`."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._ordered: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        """Remember ``value`` (and its URL-path pieces of note) as secret."""
        if len(value) < _MIN_SECRET_LENGTH:
            return
        pieces = {value, *_url_pieces(value)}
        with self._lock:
            if pieces <= self._values:
                return
            self._values |= pieces
            # Longest first, so a URL is masked whole before a shorter secret inside it.
            self._ordered = tuple(sorted(self._values, key=len, reverse=True))

    def mask(self, text: str) -> str:
        """Return ``text`` with every known secret, and anything shaped like a webhook URL,
        an API key header or a URL password, replaced by :data:`MASK`.
        """
        for value in self._ordered:
            if value in text:
                text = text.replace(value, MASK)
        for shape in _SECRET_SHAPES:
            text = shape.sub(MASK, text)
        return text

    def mask_any(self, value: Any) -> Any:
        """Mask secrets inside strings, and inside mappings and sequences of them."""
        if isinstance(value, Secret):
            return MASK
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, Mapping):
            return {key: self.mask_any(item) for key, item in value.items()}
        if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
            return [self.mask_any(item) for item in value]
        if isinstance(value, BaseException):
            return self.mask(f"{type(value).__name__}: {value}")
        return value

    def forget_all(self) -> None:
        """Forget every secret (for tests that build many configurations)."""
        with self._lock:
            self._values.clear()
            self._ordered = ()


def _url_pieces(value: str) -> set[str]:
    """The parts of a URL that carry its credential, which a service may quote back
    without the rest (an error page showing the path): the path, the query, and the
    path's last segment, each when long enough not to be an ordinary word.
    """
    try:
        parts = urllib.parse.urlsplit(value.strip())
    except ValueError:
        return set()
    if not (parts.scheme and parts.netloc):
        return set()
    segments = [segment for segment in parts.path.split("/") if segment]
    pieces = {parts.path, parts.query, *(s for s in segments[-1:] if _looks_like_token(s))}
    return {piece for piece in pieces if len(piece) >= _MIN_URL_PIECE_LENGTH}


def _looks_like_token(segment: str) -> bool:
    """A path segment that could be a credential rather than a word such as
    ``critical``: long, or mixing letters and digits.
    """
    return len(segment) >= _TOKEN_LENGTH or (
        any(char.isdigit() for char in segment) and any(char.isalpha() for char in segment)
    )


MASKER: Final = Masker()
"""The process-wide masker that logging and the CLI use."""


class Secret:
    """A string that must never be printed. ``str()`` and ``repr()`` give the mask."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        MASKER.add(value)

    def reveal(self) -> str:
        """Return the secret itself, for the one place that sends it."""
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, every known secret in it masked: how Chaperone
    writes an error into a log line, a report or a degraded alert.
    """
    return MASKER.mask(f"{type(exc).__name__}: {exc}")

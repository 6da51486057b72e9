"""structlog set-up: readable lines on a terminal, JSON elsewhere, secrets masked always."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from chaperone._secrets import MASKER

__all__ = ["configure_logging", "mask_secrets"]


def mask_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Structlog processor: replace every secret in every value with the mask."""
    for name, value in event_dict.items():
        event_dict[name] = MASKER.mask_any(value)
    return event_dict


def configure_logging(settings: Any, stream: TextIO | None = None) -> None:
    """Configure structlog from ``settings.log_format`` (auto, console, json) and
    ``settings.log_level``, writing to ``stream`` (standard error by default).
    """
    stream = stream or sys.stderr
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[settings.log_level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )

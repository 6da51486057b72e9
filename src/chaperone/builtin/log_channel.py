"""Built-in channel ``log``: one readable line per alert through structlog.

The alert's texts are already safe (no escape sequence or control character, see
:class:`~chaperone.Alert`); the multi-line ones (the summary, field values such as a
traceback) are folded here, their lines joined by `` | ``, so one alert is one console
line whatever it holds.
"""

from __future__ import annotations

import logging
from typing import Final, Self

import structlog

from chaperone._alerts import Alert, Severity
from chaperone._markers import hookimpl
from chaperone._verdicts import Outcome
from chaperone.channels._base import Channel, ChannelSettings, SendContext
from chaperone.hookspecs import RegisterChannel

__all__ = ["LogChannel", "chaperone_register_channels"]

ORDER: Final = 130
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""

_LEVELS = {
    Severity.CRITICAL: "critical",
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
}


class LogChannel(Channel):
    """Writes each alert as one log line at the level of its severity (a resolve, an
    acknowledgement or its undoing at info).
    """

    name = "log"
    setting_keys = frozenset({"logger"})
    accepts_acknowledgements = True
    accepts_unacknowledgements = True

    def __init__(self, logger_name: str = "chaperone.alerts") -> None:
        self._log = structlog.get_logger(logger_name)

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        """Build the channel; ``logger`` names the logger (default ``chaperone.alerts``)."""
        return cls(settings.text("logger", "chaperone.alerts"))

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        """Log the alert: status and title first (``[FIRING]``, ``[RESOLVED]``,
        ``[ACKNOWLEDGED]``...), then its identity and fields.
        """
        level = _LEVELS[alert.severity] if alert.is_firing else "info"
        details = "; ".join(f"{name}: {_one_line(value)}" for name, value in alert.fields)
        self._log.log(
            _level_number(level),
            f"[{alert.status.value.upper()}] {alert.title}",
            type=alert.type,
            key=alert.key,
            severity=alert.severity.value,
            priority=alert.priority.value,
            summary=_one_line(alert.summary),
            details=details,
        )
        return Outcome.delivered("logged")


def _one_line(text: str) -> str:
    """``text`` itself when it is one line, else its non-blank lines, stripped, joined by
    `` | ``.
    """
    if "\n" not in text:
        return text
    return " | ".join(line.strip() for line in text.split("\n") if line.strip())


def _level_number(level: str) -> int:
    return logging.getLevelNamesMapping()[level.upper()]


@hookimpl
def chaperone_register_channels(register: RegisterChannel) -> None:
    """Register the ``log`` channel."""
    register(LogChannel)

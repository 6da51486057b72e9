"""Chaperone's exceptions.

::

    ChaperoneError (Exception)
     ├── CircuitOpenError                  a circuit breaker is open: the call failed fast
     ├── ConfigError (ValueError)          a setting is missing or malformed; names key and source
     │    └── UnknownChannelError          a configured channel no installed plugin provides
     ├── PluginError                       a plugin failed to load or to register
     └── StoreError (OSError)              the store could not be opened or answered wrongly
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import attrs

__all__ = [
    "ChaperoneError",
    "CircuitOpenError",
    "ConfigError",
    "ConfigProblem",
    "PluginError",
    "StoreError",
    "UnknownChannelError",
]


class ChaperoneError(Exception):
    """Base class of every error Chaperone raises on purpose."""


class CircuitOpenError(ChaperoneError):
    """A call was refused without running: the circuit breaker of ``service`` is open
    until ``retry_at`` (timezone-aware UTC), when trial calls go through again.
    """

    def __init__(self, service: str, retry_at: datetime) -> None:
        self.service = service
        self.retry_at = retry_at.astimezone(UTC)
        super().__init__(
            f"circuit breaker for {service!r} is open; calls fail fast until "
            f"{self.retry_at:%Y-%m-%d %H:%M:%S} UTC, when trial calls go through again"
        )

    def __reduce__(self) -> tuple[type[CircuitOpenError], tuple[str, datetime]]:
        return (type(self), (self.service, self.retry_at))


@attrs.frozen
class ConfigProblem:
    """One thing wrong with the configuration: which key, where it came from, and why."""

    key: str
    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.key} (from {self.source}): {self.message}"


class ConfigError(ChaperoneError, ValueError):
    """The configuration is malformed. Carries every problem found, each naming its key."""

    def __init__(self, problems: Sequence[ConfigProblem] | ConfigProblem) -> None:
        if isinstance(problems, ConfigProblem):
            problems = [problems]
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))

    @classmethod
    def single(cls, key: str, source: str, message: str) -> ConfigError:
        """Build the error for one problem."""
        return cls(ConfigProblem(key=key, source=source, message=message))

    def __reduce__(self) -> tuple[type[ConfigError], tuple[tuple[ConfigProblem, ...]]]:
        return (type(self), (self.problems,))


class UnknownChannelError(ConfigError):
    """A channel named in config is provided by no installed plugin."""


class PluginError(ChaperoneError):
    """A plugin could not be loaded or could not register what it offers."""


class StoreError(ChaperoneError, OSError):
    """The store could not be opened or did not answer as expected."""

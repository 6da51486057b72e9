"""Chaperone watches background jobs and alerts people when one goes wrong.

The public API is re-exported here; implementation lives in private modules, imported
on first use so that a job process (or ``chaperone heartbeat`` in a shell loop) pays only
for what it touches.
"""

from __future__ import annotations

import importlib
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaperone._alerts import Alert, AlertStatus, Priority, Severity
    from chaperone._chaperone import Chaperone
    from chaperone._clock import Clock, ManualClock, SystemClock
    from chaperone._delivery import DeliveryResult
    from chaperone._dispatch import AlertReport, DispatchReport
    from chaperone._durations import format_duration, parse_duration
    from chaperone._events import (
        AlertsGrouped,
        ChaperoneDegraded,
        ChaperoneRecovered,
        CircuitBreakerClosed,
        CircuitBreakerOpened,
        Event,
        IncidentRef,
        JobAbandoned,
        JobCompleted,
        JobFailed,
        JobMissed,
        JobRecovered,
        JobStuck,
        JobTimeout,
        MaintenanceEnded,
        ResourceRecovered,
        ResourceViolationDetected,
        RunsOverlapped,
        ScheduleRecovered,
        ThresholdCleared,
        ThresholdExceeded,
        ThresholdMetric,
        ViolationType,
    )
    from chaperone._exceptions import (
        ChaperoneError,
        CircuitOpenError,
        ConfigError,
        ConfigProblem,
        PluginError,
        StoreError,
        UnknownChannelError,
    )
    from chaperone._logging import configure_logging, mask_secrets
    from chaperone._markers import hookimpl, hookspec
    from chaperone._monitor import Monitor
    from chaperone._plugins import PluginHost, PluginInfo
    from chaperone._runtime import Runtime
    from chaperone._secrets import Secret
    from chaperone._verdicts import Destination, Outcome, OutcomeKind, Verdict, VerdictKind
    from chaperone.breakers import CircuitBreaker, CircuitState, circuit_breaker
    from chaperone.channels import Channel, ChannelSettings, SendContext
    from chaperone.config import Settings, load_settings
    from chaperone.supervision import (
        JobRecord,
        JobState,
        Supervision,
        Supervisor,
        current_job,
        supervise,
    )

_EXPORTS: dict[str, str] = {
    "Alert": "chaperone._alerts",
    "AlertReport": "chaperone._dispatch",
    "AlertsGrouped": "chaperone._events",
    "AlertStatus": "chaperone._alerts",
    "Channel": "chaperone.channels",
    "ChannelSettings": "chaperone.channels",
    "Chaperone": "chaperone._chaperone",
    "ChaperoneDegraded": "chaperone._events",
    "ChaperoneError": "chaperone._exceptions",
    "ChaperoneRecovered": "chaperone._events",
    "circuit_breaker": "chaperone.breakers",
    "CircuitBreaker": "chaperone.breakers",
    "CircuitBreakerClosed": "chaperone._events",
    "CircuitBreakerOpened": "chaperone._events",
    "CircuitOpenError": "chaperone._exceptions",
    "CircuitState": "chaperone.breakers",
    "Clock": "chaperone._clock",
    "ConfigError": "chaperone._exceptions",
    "ConfigProblem": "chaperone._exceptions",
    "configure_logging": "chaperone._logging",
    "current_job": "chaperone.supervision",
    "DeliveryResult": "chaperone._delivery",
    "Destination": "chaperone._verdicts",
    "DispatchReport": "chaperone._dispatch",
    "Event": "chaperone._events",
    "format_duration": "chaperone._durations",
    "hookimpl": "chaperone._markers",
    "hookspec": "chaperone._markers",
    "IncidentRef": "chaperone._events",
    "JobAbandoned": "chaperone._events",
    "JobCompleted": "chaperone._events",
    "JobFailed": "chaperone._events",
    "JobMissed": "chaperone._events",
    "JobRecord": "chaperone.supervision",
    "JobRecovered": "chaperone._events",
    "JobState": "chaperone.supervision",
    "JobStuck": "chaperone._events",
    "JobTimeout": "chaperone._events",
    "MaintenanceEnded": "chaperone._events",
    "load_settings": "chaperone.config",
    "ManualClock": "chaperone._clock",
    "mask_secrets": "chaperone._logging",
    "Monitor": "chaperone._monitor",
    "Outcome": "chaperone._verdicts",
    "OutcomeKind": "chaperone._verdicts",
    "parse_duration": "chaperone._durations",
    "PluginError": "chaperone._exceptions",
    "PluginHost": "chaperone._plugins",
    "PluginInfo": "chaperone._plugins",
    "Priority": "chaperone._alerts",
    "ResourceRecovered": "chaperone._events",
    "ResourceViolationDetected": "chaperone._events",
    "RunsOverlapped": "chaperone._events",
    "ScheduleRecovered": "chaperone._events",
    "Runtime": "chaperone._runtime",
    "Secret": "chaperone._secrets",
    "SendContext": "chaperone.channels",
    "Settings": "chaperone.config",
    "Severity": "chaperone._alerts",
    "StoreError": "chaperone._exceptions",
    "supervise": "chaperone.supervision",
    "Supervision": "chaperone.supervision",
    "Supervisor": "chaperone.supervision",
    "SystemClock": "chaperone._clock",
    "ThresholdCleared": "chaperone._events",
    "ThresholdExceeded": "chaperone._events",
    "ThresholdMetric": "chaperone._events",
    "UnknownChannelError": "chaperone._exceptions",
    "Verdict": "chaperone._verdicts",
    "VerdictKind": "chaperone._verdicts",
    "ViolationType": "chaperone._events",
}
"""Each public name and the module that defines it: the one list of the public API.

``__all__`` (for static tools) and the imports above (for type checkers) repeat it, and
the tests check that they agree with it.
"""


_OWN_MODULE_PREFIX = f"{__name__}."


def _shown_here(value: object) -> None:
    """Make a class or function of this package report ``chaperone`` as its module, so
    ``repr``, tracebacks, pickles and documentation show the name users import.
    """
    if isinstance(value, type | types.FunctionType) and value.__module__.startswith(
        _OWN_MODULE_PREFIX
    ):
        value.__module__ = __name__


def __getattr__(name: str) -> Any:
    home = _EXPORTS.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(home)
    # Every name this module exports is bound at once: each reports "chaperone" from the
    # first time any of them is reached through the top level.
    for export in _HOMES[home]:
        value = getattr(module, export)
        _shown_here(value)
        globals()[export] = value
    return globals()[name]


def __dir__() -> list[str]:
    return list(__all__)


_HOMES: dict[str, tuple[str, ...]] = {
    home: tuple(name for name, module in _EXPORTS.items() if module == home)
    for home in dict.fromkeys(_EXPORTS.values())
}
"""The public names each defining module provides."""

__all__ = [
    "Alert",
    "AlertReport",
    "AlertStatus",
    "AlertsGrouped",
    "Channel",
    "ChannelSettings",
    "Chaperone",
    "ChaperoneDegraded",
    "ChaperoneError",
    "ChaperoneRecovered",
    "CircuitBreaker",
    "CircuitBreakerClosed",
    "CircuitBreakerOpened",
    "CircuitOpenError",
    "CircuitState",
    "Clock",
    "ConfigError",
    "ConfigProblem",
    "DeliveryResult",
    "Destination",
    "DispatchReport",
    "Event",
    "IncidentRef",
    "JobAbandoned",
    "JobCompleted",
    "JobFailed",
    "JobMissed",
    "JobRecord",
    "JobRecovered",
    "JobState",
    "JobStuck",
    "JobTimeout",
    "MaintenanceEnded",
    "ManualClock",
    "Monitor",
    "Outcome",
    "OutcomeKind",
    "PluginError",
    "PluginHost",
    "PluginInfo",
    "Priority",
    "ResourceRecovered",
    "ResourceViolationDetected",
    "RunsOverlapped",
    "Runtime",
    "ScheduleRecovered",
    "Secret",
    "SendContext",
    "Settings",
    "Severity",
    "StoreError",
    "Supervision",
    "Supervisor",
    "SystemClock",
    "ThresholdCleared",
    "ThresholdExceeded",
    "ThresholdMetric",
    "UnknownChannelError",
    "Verdict",
    "VerdictKind",
    "ViolationType",
    "circuit_breaker",
    "configure_logging",
    "current_job",
    "format_duration",
    "hookimpl",
    "hookspec",
    "load_settings",
    "mask_secrets",
    "parse_duration",
    "supervise",
]

"""Chaperone watches background jobs and alerts people when one goes wrong.

The public API is re-exported here; implementation lives in private modules.
"""

from chaperone._alerts import Alert, AlertStatus, Priority, Severity
from chaperone._clock import Clock, ManualClock, SystemClock
from chaperone._delivery import DeliveryResult
from chaperone._durations import format_duration, parse_duration
from chaperone._events import (
    CircuitBreakerClosed,
    CircuitBreakerOpened,
    Event,
    IncidentRef,
    JobCompleted,
    JobRecovered,
    JobStuck,
    JobTimeout,
    ResourceRecovered,
    ResourceViolationDetected,
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
from chaperone._pipeline import AlertReport, DispatchReport
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

__all__ = [
    "Alert",
    "AlertReport",
    "AlertStatus",
    "Channel",
    "ChannelSettings",
    "ChaperoneError",
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
    "JobCompleted",
    "JobRecord",
    "JobRecovered",
    "JobState",
    "JobStuck",
    "JobTimeout",
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
    "Runtime",
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

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
    ConfigError,
    ConfigProblem,
    PluginError,
    StoreError,
    UnknownChannelError,
)
from chaperone._logging import configure_logging, mask_secrets
from chaperone._markers import hookimpl, hookspec
from chaperone._pipeline import AlertReport, DispatchReport
from chaperone._plugins import PluginHost, PluginInfo
from chaperone._runtime import Runtime
from chaperone._secrets import Secret
from chaperone._verdicts import Destination, Outcome, OutcomeKind, Verdict, VerdictKind
from chaperone.channels import Channel, ChannelSettings, SendContext
from chaperone.config import Settings, load_settings

__all__ = [
    "Alert",
    "AlertReport",
    "AlertStatus",
    "Channel",
    "ChannelSettings",
    "ChaperoneError",
    "CircuitBreakerClosed",
    "CircuitBreakerOpened",
    "Clock",
    "ConfigError",
    "ConfigProblem",
    "DeliveryResult",
    "Destination",
    "DispatchReport",
    "Event",
    "IncidentRef",
    "JobCompleted",
    "JobRecovered",
    "JobStuck",
    "JobTimeout",
    "ManualClock",
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
    "SystemClock",
    "ThresholdCleared",
    "ThresholdExceeded",
    "ThresholdMetric",
    "UnknownChannelError",
    "Verdict",
    "VerdictKind",
    "ViolationType",
    "configure_logging",
    "format_duration",
    "hookimpl",
    "hookspec",
    "load_settings",
    "mask_secrets",
    "parse_duration",
]

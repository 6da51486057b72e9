"""Configuration: one validated :class:`Settings` object from defaults, a TOML file,
``.env`` and the environment (each overriding the one before).
"""

from chaperone.config._loading import SETTING_SPECS, SettingSpec, collect_settings, load_settings
from chaperone.config._settings import (
    DeliverySettings,
    EscalationSettings,
    GroupingSettings,
    HealthSettings,
    PrioritySettings,
    RateLimitSettings,
    RecurringWindow,
    Route,
    Settings,
    Thresholds,
)

__all__ = [
    "SETTING_SPECS",
    "DeliverySettings",
    "EscalationSettings",
    "GroupingSettings",
    "HealthSettings",
    "PrioritySettings",
    "RateLimitSettings",
    "RecurringWindow",
    "Route",
    "SettingSpec",
    "Settings",
    "Thresholds",
    "collect_settings",
    "load_settings",
]

"""Configuration: one validated :class:`Settings` object from defaults, a TOML file,
``.env`` and the environment (each overriding the one before), plugins' own settings
(``[plugins.<name>]``) among them.
"""

from chaperone.config._loading import SETTING_SPECS, SettingSpec, collect_settings, load_settings
from chaperone.config._plugin_settings import (
    PluginSetting,
    bind_plugin_settings,
    read_plugin_settings,
)
from chaperone.config._settings import (
    DeliverySettings,
    EscalationSettings,
    GroupingSettings,
    HealthSettings,
    PrioritySettings,
    RateLimitSettings,
    RecurringWindow,
    Role,
    Route,
    ServeSettings,
    Settings,
    Thresholds,
    UserEntry,
)

__all__ = [
    "SETTING_SPECS",
    "DeliverySettings",
    "EscalationSettings",
    "GroupingSettings",
    "HealthSettings",
    "PluginSetting",
    "PrioritySettings",
    "RateLimitSettings",
    "RecurringWindow",
    "Role",
    "Route",
    "ServeSettings",
    "SettingSpec",
    "Settings",
    "Thresholds",
    "UserEntry",
    "bind_plugin_settings",
    "collect_settings",
    "load_settings",
    "read_plugin_settings",
]

"""The narrow runtime every hook receives: settings, store, clock, plugins and a logger.

Nothing else: no channels, no delivery, no HTTP client, no outbox. A hook that needs
more asks the plugin host (``runtime.plugins``) or keeps its own state. What users build
and call is the facade, :class:`chaperone.Chaperone`, whose ``runtime`` attribute is the
object hooks get.
"""

from __future__ import annotations

import attrs
import structlog
from structlog.typing import FilteringBoundLogger

from chaperone._clock import Clock
from chaperone._plugins import PluginHost
from chaperone.config import Settings
from chaperone.store import Store

__all__ = ["Runtime"]


def _plugin_logger() -> FilteringBoundLogger:
    logger: FilteringBoundLogger = structlog.get_logger("chaperone.plugin")
    return logger


@attrs.frozen(eq=False)
class Runtime:
    """What a hook may use: Chaperone's settings, its store and clock, the plugin host,
    and a logger for plugins. Compared by identity: each running Chaperone has its own.
    """

    settings: Settings
    """The validated configuration."""
    store: Store
    """The store every process of this installation shares."""
    clock: Clock
    """The clock all time goes through (a :class:`~chaperone.ManualClock` in tests)."""
    plugins: PluginHost
    """The plugin host: what was found, the channel classes, the pluggy manager."""
    log: FilteringBoundLogger = attrs.field(factory=_plugin_logger)
    """A structlog logger for plugins (``runtime.log.info("...", key=value)``)."""

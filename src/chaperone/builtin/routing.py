"""Built-in plugin: the default route, every alert to ``CHAPERONE_ALERT_CHANNELS``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from chaperone._alerts import Alert
from chaperone._markers import hookimpl
from chaperone._verdicts import Destination

if TYPE_CHECKING:
    from chaperone._runtime import Runtime

__all__ = ["chaperone_route"]


@hookimpl(trylast=True)
def chaperone_route(alert: Alert, runtime: Runtime) -> Sequence[Destination]:
    """Send every alert to each configured channel."""
    return [Destination(channel=name) for name in runtime.settings.channels]

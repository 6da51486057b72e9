"""The one way the core's tests build a running Chaperone: :func:`make_runtime`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs

from chaperone import Chaperone, Clock, ManualClock, PluginHost, Settings
from chaperone.config import DeliverySettings, GroupingSettings
from chaperone.store import MemoryStore, Store

__all__ = ["GROUPING_OFF", "make_runtime"]

GROUPING_OFF = GroupingSettings(enabled=False)
"""Grouping off: for tests that count every alert's delivery."""


def make_runtime(
    *plugins: object,
    clock: Clock | None = None,
    store: Store | None = None,
    validate: bool = True,
    timeout: float | None = None,
    max_attempts: int | None = None,
    max_backoff: float | None = None,
    max_total: float | None = None,
    exit_grace: float | None = None,
    **settings: Any,
) -> Chaperone:
    """A Chaperone with the built-in plugins and ``plugins``, none installed.

    Each plugin is an object (registered as ``test-plugin-<n>``) or a ``(name, plugin)``
    pair. It runs on ``store`` (a fresh memory store on ``clock``, a new ManualClock when
    None; closing the Chaperone closes the store), with ``Settings(**settings)``
    (``store_url`` the store's unless given). The delivery values given in seconds
    (``timeout``, ``max_attempts``, ...) replace those of ``settings["delivery"]``.
    """
    clock = clock or ManualClock()
    store = store if store is not None else MemoryStore(clock)
    settings.setdefault("store_url", store.url)
    given = {
        "timeout": timeout,
        "max_attempts": max_attempts,
        "max_backoff": max_backoff,
        "max_total": max_total,
        "exit_grace": exit_grace,
    }
    changes = {
        name: value if name == "max_attempts" else timedelta(seconds=value)
        for name, value in given.items()
        if value is not None
    }
    if changes:
        settings["delivery"] = attrs.evolve(settings.get("delivery", DeliverySettings()), **changes)
    named = [
        plugin if isinstance(plugin, tuple) else (f"test-plugin-{index}", plugin)
        for index, plugin in enumerate(plugins)
    ]
    return Chaperone(
        Settings(**settings),
        clock=clock,
        store=store,
        plugins=PluginHost(entry_points=False, extra=named),
        validate=validate,
    )

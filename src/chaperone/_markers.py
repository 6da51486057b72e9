"""The pluggy markers: ``hookspec`` for the core's specs, ``hookimpl`` for every plugin."""

from __future__ import annotations

from typing import Final

import pluggy

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME: Final = "chaperone"
hookspec: Final = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks the core's hook specifications (``chaperone.hookspecs``)."""
hookimpl: Final = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin's hook implementations: ``@chaperone.hookimpl``."""

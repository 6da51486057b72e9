"""Stores by URL scheme: every scheme is an entry point of the group ``chaperone.stores``.

The entry point's name is the scheme (``memory``, ``sqlite``, ``redis``, ``rediss``, or a
plugin's own) and its value a *store opener*: a callable ``(url, clock, **options) ->
Store``. The core registers its own stores in its ``pyproject.toml`` exactly as a plugin
does, so :func:`chaperone.store.open_store` knows no scheme by name.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from functools import cache
from typing import Any, Final, Protocol

from chaperone._clock import Clock
from chaperone._exceptions import ConfigError
from chaperone._secrets import describe
from chaperone.store._protocol import Store

__all__ = ["STORE_ENTRY_POINT_GROUP", "StoreOpener", "installed_schemes", "opener_for", "usage"]

STORE_ENTRY_POINT_GROUP: Final = "chaperone.stores"
"""The entry-point group that maps a URL scheme to its store opener."""

_USAGE: Final[Mapping[str, str]] = {
    "sqlite": "sqlite:///PATH",
    "redis": "redis://HOST[:PORT][/DB]",
    "rediss": "rediss://HOST[:PORT][/DB]",
}
"""How error messages show the built-in schemes that take more than ``scheme://``."""


class StoreOpener(Protocol):
    """Opens the store a URL names.

    ``options`` are keyword arguments the core may pass: ``key`` and ``source`` (which
    setting gave the URL, and where: name them in a :class:`~chaperone.ConfigError` for
    a URL that cannot be used) and ``busy_timeout`` (seconds an operation may wait for
    another process's lock). Accept ``**options``, so that new ones break no opener.
    """

    def __call__(self, url: str, clock: Clock, **options: Any) -> Store: ...


@cache
def installed_schemes() -> Mapping[str, importlib.metadata.EntryPoint]:
    """Every installed scheme (lower case) and its entry point."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for entry_point in importlib.metadata.entry_points(group=STORE_ENTRY_POINT_GROUP):
        found.setdefault(entry_point.name.lower(), entry_point)
    return found


def usage() -> str:
    """The installed schemes, as an error message suggests them."""
    schemes = sorted(installed_schemes())
    shown = [_USAGE.get(scheme, f"{scheme}://") for scheme in schemes] or ["none installed"]
    return f"use {', '.join(shown)}"


def opener_for(scheme: str, key: str, source: str) -> StoreOpener:
    """The opener of ``scheme`` (lower case); ConfigError naming ``key`` and ``source``
    when no installed distribution provides it or its entry point fails to load.
    """
    entry_point = installed_schemes().get(scheme)
    if entry_point is None:
        raise ConfigError.single(key, source, f"unsupported store scheme {scheme}://; {usage()}")
    try:
        opener = entry_point.load()
    except Exception as exc:
        raise ConfigError.single(
            key,
            source,
            f"the store for {scheme}:// ({entry_point.value}) failed to load: {describe(exc)}",
        ) from None
    if not callable(opener):
        raise ConfigError.single(
            key, source, f"the store for {scheme}:// ({entry_point.value}) is not callable"
        )
    return opener  # type: ignore[no-any-return]

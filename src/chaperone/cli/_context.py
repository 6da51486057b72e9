"""Building the runtime for a command, and turning configuration errors into exit 2."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs

from chaperone._clock import SystemClock
from chaperone._exceptions import ConfigError
from chaperone._logging import configure_logging
from chaperone.cli._output import error
from chaperone.config import Settings, load_settings
from chaperone.store import Store, default_store_url, open_store
from chaperone.store._sqlite import DEFAULT_BUSY_TIMEOUT_S

if TYPE_CHECKING:
    from chaperone._chaperone import Chaperone

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "configured_settings_and_store",
    "configured_store",
    "load_or_exit",
    "runtime_or_exit",
    "with_channels",
]

EXIT_FAILED = 1
"""Something the command tried did not work (a delivery failed)."""
EXIT_CONFIG = 2
"""The configuration or the command line is wrong."""


def report_config_error(exc: ConfigError) -> None:
    """Print each configuration problem on a line of its own."""
    error("configuration error:")
    for problem in exc.problems:
        error(f"  {problem}")


def load_or_exit() -> Settings:
    """Load settings and set up logging, or print every problem and exit 2."""
    try:
        settings = load_settings(default_store_url=default_store_url())
    except ConfigError as exc:
        report_config_error(exc)
        raise SystemExit(EXIT_CONFIG) from None
    configure_logging(settings)
    return settings


@contextmanager
def runtime_or_exit(
    adjust: Callable[[Settings], Settings] | None = None, **kwargs: Any
) -> Iterator[Chaperone]:
    """Yield a validated Chaperone (settings changed by ``adjust`` first), closed after;
    exit 2 on a configuration error.
    """
    from chaperone._chaperone import Chaperone  # the delivery machinery: only where needed

    settings = load_or_exit()
    if adjust is not None:
        settings = adjust(settings)
    try:
        runtime = Chaperone(settings, **kwargs)
    except ConfigError as exc:
        report_config_error(exc)
        raise SystemExit(EXIT_CONFIG) from None
    try:
        yield runtime
    finally:
        runtime.close()


@contextmanager
def configured_settings_and_store(
    *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S
) -> Iterator[tuple[Settings, Store]]:
    """Yield the loaded settings and the store they configure (closed after); exit 2 on a
    configuration error. ``busy_timeout``: how long a SQLite store waits for another
    process's write lock.
    """
    settings = load_or_exit()
    try:
        store = open_store(
            settings.store_url,
            SystemClock(),
            key="CHAPERONE_STORE",
            source=settings.source_of("store.url"),
            busy_timeout=busy_timeout,
        )
    except ConfigError as exc:
        report_config_error(exc)
        raise SystemExit(EXIT_CONFIG) from None
    try:
        yield settings, store
    finally:
        store.close()


@contextmanager
def configured_store(*, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S) -> Iterator[Store]:
    """Yield the configured store, closed after; exit 2 on a configuration error."""
    with configured_settings_and_store(busy_timeout=busy_timeout) as (_settings, store):
        yield store


def with_channels(names: tuple[str, ...]) -> Callable[[Settings], Settings]:
    """A settings adjustment that sends to ``names`` instead of the configured channels,
    the routes' channels included (a route must not page anyone from a test of Slack).
    """

    def adjust(settings: Settings) -> Settings:
        if not names:
            return settings
        sources = {**settings.sources, "alerting.channels": "the --channel option"}
        return attrs.evolve(settings, channels=names, routes=(), sources=sources)

    return adjust

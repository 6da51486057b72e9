"""The core's store openers, registered under ``chaperone.stores`` in its
``pyproject.toml`` like any plugin's: ``memory``, ``sqlite``, ``redis`` and ``rediss``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from chaperone._clock import Clock
from chaperone._exceptions import ConfigError
from chaperone.store._memory import MemoryStore
from chaperone.store._protocol import Store
from chaperone.store._sqlite import DEFAULT_BUSY_TIMEOUT_S, SQLiteStore

__all__ = ["SQLITE_PREFIX", "open_memory", "open_redis", "open_sqlite", "sqlite_path"]

SQLITE_PREFIX: Final = "sqlite:///"


def open_memory(
    url: str, clock: Clock, *, key: str = "CHAPERONE_STORE", source: str = "default", **_: Any
) -> Store:
    """``memory://``: a store in this process only."""
    if url.partition("://")[2]:
        raise ConfigError.single(key, source, "memory:// takes nothing after the //")
    return MemoryStore(clock, url)


def open_sqlite(
    url: str,
    clock: Clock,
    *,
    key: str = "CHAPERONE_STORE",
    source: str = "default",
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
    **_: Any,
) -> Store:
    """``sqlite:///PATH``: a SQLite file shared by every process on the machine."""
    return SQLiteStore(sqlite_path(url, key, source), clock, url, busy_timeout=busy_timeout)


def open_redis(
    url: str, clock: Clock, *, key: str = "CHAPERONE_STORE", source: str = "default", **_: Any
) -> Store:
    """``redis://`` and ``rediss://``: a Redis server; imports the Redis client here, so it
    stays an optional extra.
    """
    scheme = url.partition("://")[0].lower()
    try:
        from chaperone.store._redis import RedisStore, RedisUrlError
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "redis":
            raise
        raise ConfigError.single(
            key,
            source,
            f"{scheme}:// needs the Redis client: pip install 'chaperone-core[redis]'",
        ) from None
    try:
        return RedisStore(url, clock)
    except RedisUrlError as exc:
        raise ConfigError.single(key, source, f"{scheme}:// URL: {exc}") from None


def sqlite_path(url: str, key: str, source: str) -> Path:
    """Read the file path from ``sqlite:///PATH`` as SQLAlchemy does, plus ``~`` expansion."""
    if not url[: len(SQLITE_PREFIX)].lower() == SQLITE_PREFIX:
        raise ConfigError.single(
            key,
            source,
            "a sqlite URL needs three slashes before the path: sqlite:///relative/path "
            "or sqlite:////absolute/path",
        )
    raw = url[len(SQLITE_PREFIX) :]
    if not raw:
        raise ConfigError.single(
            key, source, "sqlite:/// needs a file path after it (memory:// keeps no file)"
        )
    if "?" in raw:
        raise ConfigError.single(key, source, "sqlite:/// URLs take no query string")
    try:
        path = Path(raw).expanduser()
    except RuntimeError as exc:  # ~user for an unknown user, or no home directory
        raise ConfigError.single(
            key, source, f"cannot expand ~ in the sqlite path: {exc}"
        ) from None
    return path if path.is_absolute() else Path.cwd() / path

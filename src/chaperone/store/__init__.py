"""Where Chaperone keeps what several workers must agree on: rate windows, dedup keys, history.

Pick a store by URL with :func:`open_store`:

``memory://``
    In this process only; for tests and single-process use.
``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///~/path.db``
    A SQLite file shared by every process on the machine (paths as in SQLAlchemy: three
    slashes then the path, so an absolute path shows four).
``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=P]``, ``rediss://…`` (TLS)
    A Redis server shared by every process on every machine that reaches it; keys go
    under the prefix ``P`` (default ``chaperone:``). Needs the Redis client:
    ``pip install 'chaperone-core[redis]'``. The options and what expiry means across
    machines are described in ``chaperone.store._redis``.

:func:`default_store_url` names the SQLite file used when nothing is configured.

:func:`open_resilient_store` opens the same URLs behind a :class:`ResilientStore`, which
works from memory while the store fails (cannot be opened, is away, full, locked, or its
file was replaced) and carries what it did to the store once it answers again.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from chaperone._clock import Clock
from chaperone._exceptions import ConfigError
from chaperone.store._memory import MemoryStore
from chaperone.store._protocol import Store
from chaperone.store._resilient import ResilientStore, StoreChange, StoreState
from chaperone.store._sqlite import DEFAULT_BUSY_TIMEOUT_S, SQLiteStore

__all__ = [
    "MemoryStore",
    "ResilientStore",
    "SQLiteStore",
    "Store",
    "StoreChange",
    "StoreState",
    "absolute_url",
    "default_store_url",
    "open_resilient_store",
    "open_store",
]

_ACCEPTED = "use sqlite:///PATH, redis://HOST[:PORT][/DB] or memory://"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_SQLITE_PREFIX = "sqlite:///"


def open_store(
    url: str,
    clock: Clock,
    *,
    key: str = "CHAPERONE_STORE",
    source: str = "default",
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
) -> Store:
    """Open the store ``url`` names, judging expiry with ``clock``.

    ``key`` and ``source`` say where the URL came from (a setting and the file or
    environment that set it); a URL that cannot be used raises
    :class:`~chaperone.ConfigError` naming both. Error messages quote at most the URL's
    scheme, never the rest, which may hold credentials. A SQLite file that cannot be
    opened raises :class:`~chaperone.StoreError` naming the path. A Redis store sends
    nothing until its first operation (a Redis that is away then raises StoreError), and
    ``redis://`` without the Redis client installed raises ConfigError saying what to
    install. ``busy_timeout``: how many seconds a SQLite operation waits for another
    process's write lock before it fails.
    """
    scheme, separator, rest = url.partition("://")
    if not separator or not _SCHEME.fullmatch(scheme):
        raise ConfigError.single(key, source, f"not a store URL; {_ACCEPTED}")
    scheme = scheme.lower()
    if scheme == "memory":
        if rest:
            raise ConfigError.single(key, source, "memory:// takes nothing after the //")
        return MemoryStore(clock, url)
    if scheme == "sqlite":
        return SQLiteStore(_sqlite_path(url, key, source), clock, url, busy_timeout=busy_timeout)
    if scheme in {"redis", "rediss"}:
        return _redis_store(url, scheme, clock, key, source)
    raise ConfigError.single(key, source, f"unsupported store scheme {scheme}://; {_ACCEPTED}")


def open_resilient_store(
    url: str,
    clock: Clock,
    *,
    key: str = "CHAPERONE_STORE",
    source: str = "default",
    probe_interval: float = 5.0,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
) -> ResilientStore:
    """Open the store ``url`` names behind a :class:`ResilientStore`: never raises
    StoreError, but starts degraded (working from memory, probing every
    ``probe_interval`` seconds of ``clock``) when the store cannot be opened.

    A URL that cannot be used raises :class:`~chaperone.ConfigError`, as with
    :func:`open_store`; ``key``, ``source`` and ``busy_timeout`` mean what they mean there.
    """

    def opener() -> Store:
        return open_store(url, clock, key=key, source=source, busy_timeout=busy_timeout)

    return ResilientStore(url, clock, opener, probe_interval=probe_interval)


def absolute_url(url: str) -> str:
    """``url`` as another process started elsewhere (in another directory) would read it:
    a relative ``sqlite:///`` path made absolute, anything else as it is.
    """
    if url[: len(_SQLITE_PREFIX)].lower() != _SQLITE_PREFIX:
        return url
    try:
        return _SQLITE_PREFIX + str(_sqlite_path(url, "CHAPERONE_STORE", "the store URL"))
    except ConfigError:
        return url


def default_store_url() -> str:
    """Return the store used when none is configured: a SQLite file in the user's state dir.

    That is ``$XDG_STATE_HOME/chaperone/chaperone.sqlite3``, or
    ``~/.local/state/chaperone/chaperone.sqlite3`` when ``XDG_STATE_HOME`` is unset, empty
    or relative (which the XDG spec says to ignore), as an absolute ``sqlite:///`` URL.
    """
    state_home = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state_home) if os.path.isabs(state_home) else Path.home() / ".local" / "state"
    return _SQLITE_PREFIX + str(base / "chaperone" / "chaperone.sqlite3")


def _redis_store(url: str, scheme: str, clock: Clock, key: str, source: str) -> Store:
    """Open a Redis store; imported here so the Redis client stays an optional extra."""
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


def _sqlite_path(url: str, key: str, source: str) -> Path:
    """Read the file path from ``sqlite:///PATH`` as SQLAlchemy does, plus ``~`` expansion."""
    if not url[: len(_SQLITE_PREFIX)].lower() == _SQLITE_PREFIX:
        raise ConfigError.single(
            key,
            source,
            "a sqlite URL needs three slashes before the path: sqlite:///relative/path "
            "or sqlite:////absolute/path",
        )
    raw = url[len(_SQLITE_PREFIX) :]
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

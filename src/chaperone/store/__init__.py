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
any other scheme
    The store a plugin registers under the entry-point group ``chaperone.stores``, by
    scheme (see :mod:`chaperone.store._schemes`); the core's own schemes are registered
    there in the same way.

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
from chaperone.store._openers import SQLITE_PREFIX, sqlite_path
from chaperone.store._protocol import Store
from chaperone.store._resilient import ResilientStore, StoreChange, StoreState
from chaperone.store._schemes import STORE_ENTRY_POINT_GROUP, StoreOpener, opener_for, usage
from chaperone.store._sqlite import DEFAULT_BUSY_TIMEOUT_S, SQLiteStore

__all__ = [
    "STORE_ENTRY_POINT_GROUP",
    "MemoryStore",
    "ResilientStore",
    "SQLiteStore",
    "Store",
    "StoreChange",
    "StoreOpener",
    "StoreState",
    "absolute_url",
    "default_store_url",
    "open_resilient_store",
    "open_store",
]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


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
    process's write lock before it fails. Any other scheme is opened by the store opener
    a plugin registered for it; an unknown scheme's error lists the installed ones.
    """
    scheme, separator, _rest = url.partition("://")
    if not separator or not _SCHEME.fullmatch(scheme):
        raise ConfigError.single(key, source, f"not a store URL; {usage()}")
    opener = opener_for(scheme.lower(), key, source)
    return opener(url, clock, key=key, source=source, busy_timeout=busy_timeout)


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
    if url[: len(SQLITE_PREFIX)].lower() != SQLITE_PREFIX:
        return url
    try:
        return SQLITE_PREFIX + str(sqlite_path(url, "CHAPERONE_STORE", "the store URL"))
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
    return SQLITE_PREFIX + str(base / "chaperone" / "chaperone.sqlite3")

"""The few atomic operations the pipeline asks of a store.

Every backend (``memory://``, ``sqlite:///path`` and ``redis://``) implements this
protocol with the same meaning, so the filters, channels and CLI never know which one
they talk to. Keys are plain strings namespaced by their owner (``ratelimit:…``);
values are text (JSON where structured). TTLs are seconds on the store's clock.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Store"]


@runtime_checkable
class Store(Protocol):
    """A key-value store with expiring keys and append-only streams, shared by processes."""

    url: str
    """Where the store lives, as given to :func:`chaperone.store.open_store`."""

    def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        """Set ``key`` to ``value`` for ``ttl`` seconds unless it holds an unexpired value.

        Atomic across threads and processes sharing the store: of any number of
        concurrent callers with the same key, exactly one gets ``True``.
        """
        ...

    def get(self, key: str) -> str | None:
        """Return the unexpired value of ``key``, or None."""
        ...

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        """Set ``key`` to ``value``, expiring after ``ttl`` seconds (never when None)."""
        ...

    def delete(self, key: str) -> bool:
        """Delete ``key``; return whether an unexpired value was there."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key that starts with ``prefix``; return how many unexpired ones went."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Return the unexpired keys that start with ``prefix``, sorted."""
        ...

    def append(self, stream: str, record: str, max_len: int) -> None:
        """Append ``record`` to ``stream``, keeping at most the newest ``max_len`` records."""
        ...

    def tail(self, stream: str, limit: int) -> list[str]:
        """Return up to ``limit`` records of ``stream``, newest first."""
        ...

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount`` to the integer at ``key`` (0 when absent or expired) and return
        the new value. ``ttl`` sets the expiry only when the key is created by this call.

        Atomic across threads and processes: N concurrent ``incr(k)`` from 0 end at N.
        """
        ...

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """Return the unexpired values of ``keys`` that exist, in one round trip."""
        ...

    def schedule(self, index: str, member: str, at: float) -> None:
        """Put ``member`` in the deadline index ``index`` at time ``at`` (Unix seconds),
        replacing its earlier time if it was there.
        """
        ...

    def unschedule(self, index: str, member: str) -> bool:
        """Take ``member`` out of ``index``; return whether it was there."""
        ...

    def due(self, index: str, until: float, limit: int) -> list[tuple[str, float]]:
        """Return up to ``limit`` members of ``index`` whose time is at most ``until``,
        earliest first, as ``(member, at)``. Leaves them in the index.

        Costs O(log n + k) for an index of n members and k results: a tick over a million
        scheduled jobs of which none is due reads one index entry.
        """
        ...

    def push(self, queue: str, record: str) -> None:
        """Append ``record`` to the FIFO ``queue``."""
        ...

    def pop(self, queue: str, limit: int) -> list[str]:
        """Remove and return up to ``limit`` of the oldest records of ``queue``.

        Atomic across processes: a record pushed once is popped by exactly one caller.
        """
        ...

    def close(self) -> None:
        """Release connections and files. The store is unusable afterwards."""
        ...

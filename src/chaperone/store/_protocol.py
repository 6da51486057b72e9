"""The few atomic operations the pipeline asks of a store.

Every backend (``memory://``, ``sqlite:///path``, and later ``redis://``) implements this
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

    def close(self) -> None:
        """Release connections and files. The store is unusable afterwards."""
        ...

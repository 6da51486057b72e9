"""The configured store as ``chaperone health`` and ``chaperone serve`` judge it: opened
when first needed within the health timeout, opened again on the next judgement while it
cannot be, and closed without waiting on a read that hangs.
"""

from __future__ import annotations

import threading

from chaperone._clock import Clock
from chaperone._exceptions import StoreError
from chaperone.config import Settings
from chaperone.metrics._bounded import NoAnswerError, call_bounded
from chaperone.metrics._health import (
    STORE_TIMEOUT,
    HealthReport,
    check_health,
    close_when_idle,
    unreachable_store_report,
)
from chaperone.store import Store, open_store

__all__ = ["HealthJudge"]


class HealthJudge:
    """Judges health against the store ``settings`` configure, on ``clock``'s time."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        store_timeout: float = STORE_TIMEOUT,
        store: Store | None = None,
    ) -> None:
        """``store``, when given, is one already open (:meth:`close` closes it too)."""
        self.settings = settings
        self.clock = clock
        self.store_timeout = store_timeout
        self._store: Store | None = store
        self._closed = False
        self._lock = threading.Lock()

    def open(self) -> str | None:
        """Open the store unless it is open; return why it cannot be (None when it is
        open). Raises :class:`~chaperone.ConfigError` for a URL that cannot be used.

        An opening that outlasts the timeout goes on in its worker thread, and the store
        it opens is the one the next call uses.
        """
        settings = self.settings

        def opening() -> None:
            if self._store is not None:
                return  # an earlier opening that outlasted its caller got there
            store = open_store(
                settings.store_url,
                self.clock,
                key="CHAPERONE_STORE",
                source=settings.source_of("store.url"),
            )
            with self._lock:
                if self._closed:
                    store.close()
                else:
                    self._store = store

        if self._closed:
            return "the store is closed"
        if self._store is not None:
            return None
        try:
            call_bounded(("open", id(self)), opening, self.store_timeout)
        except StoreError as exc:
            return str(exc)
        except NoAnswerError as exc:
            return f"opening the store gave {exc}: is another process holding it locked?"
        return None

    def store(self) -> Store:
        """The store, opened now if need be; StoreError saying why it cannot be."""
        problem = self.open()
        store = self._store
        if problem is not None or store is None:
            raise StoreError(problem or "the store is not open")
        return store

    def report(self) -> HealthReport:
        """Every check, judged now. Raises ConfigError as :meth:`open` does."""
        problem = self.open()
        store = self._store
        if problem is not None or store is None:
            return unreachable_store_report(self.settings, problem or "the store is not open")
        return check_health(
            store, self.settings, self.clock.timestamp(), store_timeout=self.store_timeout
        )

    def close(self) -> None:
        """Close the store, unless a read of it still hangs (then the process's exit
        does).
        """
        with self._lock:
            self._closed = True
            store, self._store = self._store, None
        if store is not None:
            close_when_idle(store, timeout=self.store_timeout)

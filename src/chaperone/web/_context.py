"""What every route of the web app is given: settings, clock, the store, a Chaperone."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import attrs

from chaperone._clock import Clock, SystemClock
from chaperone.config import Settings
from chaperone.metrics._health import HealthReport
from chaperone.metrics._judge import HealthJudge

if TYPE_CHECKING:
    from chaperone._chaperone import Chaperone
    from chaperone.store import Store

__all__ = ["WebContext"]


@attrs.define
class _Facade:
    """The one Chaperone a context builds, when first asked for."""

    lock: threading.Lock = attrs.field(factory=threading.Lock)
    built: Chaperone | None = None


@attrs.frozen
class WebContext:
    """Settings, clock and the configured store, shared by every request
    (``request.app.state.context``).

    The store is opened when first needed and again on the next request while it cannot
    be (a store that is away at start does not stop the app: ``/health`` says 503).
    """

    settings: Settings
    clock: Clock
    judge: HealthJudge = attrs.field(repr=False)
    """Opens the store and judges health on it."""
    prefix: str = ""
    """Where the pages sit, like ``/chaperone`` ("" for the root)."""
    _facade: _Facade = attrs.field(factory=_Facade, repr=False, alias="_facade")

    @classmethod
    def build(
        cls,
        settings: Settings,
        clock: Clock | None = None,
        *,
        store: Store | None = None,
        prefix: str | None = None,
    ) -> WebContext:
        """A context on ``settings`` (its store opened lazily, unless ``store`` is one
        already open), on ``clock`` (the system's by default), under ``prefix`` (by
        default ``serve.prefix``).
        """
        clock = clock or SystemClock()
        return cls(
            settings=settings,
            clock=clock,
            judge=HealthJudge(settings, clock, store=store),
            prefix=settings.serve.prefix if prefix is None else prefix,
        )

    def store(self) -> Store:
        """The configured store; :class:`~chaperone.StoreError` when it cannot be
        opened.
        """
        return self.judge.store()

    def chaperone(self) -> Chaperone:
        """A Chaperone on the same store and settings, for actions that dispatch alerts
        (built once, when first asked for).
        """
        from chaperone._chaperone import Chaperone  # the plugins load only when needed

        facade = self._facade
        with facade.lock:
            if facade.built is None:
                facade.built = Chaperone(self.settings, clock=self.clock, store=self.store())
            return facade.built

    def health(self) -> HealthReport:
        """Today's health report, judged now."""
        return self.judge.report()

    def close(self) -> None:
        """Close the Chaperone (if one was built) and the store."""
        facade = self._facade
        with facade.lock:
            built, facade.built = facade.built, None
        if built is not None:
            built.close()
        self.judge.close()

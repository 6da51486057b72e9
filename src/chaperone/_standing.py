"""Which runtimes a standing monitor runs on: one that vouches for the store, as
``chaperone monitor`` does, as opposed to the monitor inside a ``chaperone run`` or a
job's own process, which stops with its job.

A detector that judges the whole store by its own configuration (the schedules) runs
only in a standing monitor: a ``chaperone run`` in a cron job's folder may read another
configuration, and must not unwatch what it does not know. Here, below both the monitor
and the built-ins, so that neither imports the other.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaperone._runtime import Runtime

__all__ = ["is_standing", "stand"]

_STANDING: weakref.WeakSet[Runtime] = weakref.WeakSet()


def stand(runtime: Runtime) -> None:
    """Note that a standing monitor runs on ``runtime``."""
    _STANDING.add(runtime)


def is_standing(runtime: Runtime) -> bool:
    """Whether a standing monitor runs on ``runtime``."""
    return runtime in _STANDING

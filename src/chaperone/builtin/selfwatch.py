"""Built-in plugin: a channel that fails for good is a degraded part of Chaperone.

Implements ``chaperone_delivered`` and ``chaperone_delivery_failed``: a delivery that
failed for good (after its retries, or at once for a permanent error) marks the part
``channel:<name>`` failing (``channel:<name>@<route>`` for a route's own settings of
it), which raises a ``chaperone_degraded`` alert on the other destinations; the next
delivery that destination confirms resolves it (see :mod:`chaperone._degraded`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from chaperone._degraded import SelfWatch, part_of
from chaperone._markers import hookimpl
from chaperone._verdicts import Destination, Outcome

if TYPE_CHECKING:
    from chaperone._runtime import Runtime

__all__ = ["chaperone_delivered", "chaperone_delivery_failed"]

ORDER: Final = 120
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""


@hookimpl
def chaperone_delivered(destination: Destination, runtime: Runtime) -> None:
    """The channel works."""
    watch = SelfWatch.of(runtime)
    if watch is not None:
        watch.working(part_of(destination))


@hookimpl
def chaperone_delivery_failed(
    destination: Destination, outcome: Outcome, attempts: int, runtime: Runtime
) -> None:
    """The channel failed for good."""
    watch = SelfWatch.of(runtime)
    if watch is not None:
        detail = outcome.detail or outcome.kind.value
        watch.failing(part_of(destination), f"{attempts} attempt(s): {detail}")

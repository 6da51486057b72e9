"""Built-in plugin: a channel that fails for good is a degraded part of Chaperone.

Implements ``chaperone_delivered`` and ``chaperone_delivery_failed``: a delivery that
failed for good (after its retries, or at once for a permanent error) marks the part
``channel:<name>`` failing, which raises a ``chaperone_degraded`` alert on the other
channels; the next delivery that channel confirms resolves it (see
:mod:`chaperone._degraded`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaperone._markers import hookimpl
from chaperone._verdicts import Destination, Outcome

if TYPE_CHECKING:
    from chaperone._runtime import Runtime

__all__ = ["chaperone_delivered", "chaperone_delivery_failed"]


def _part(destination: Destination) -> str:
    return f"channel:{destination.channel}"


@hookimpl
def chaperone_delivered(destination: Destination, runtime: Runtime) -> None:
    """The channel works."""
    runtime.self_watch.working(_part(destination))


@hookimpl
def chaperone_delivery_failed(
    destination: Destination, outcome: Outcome, attempts: int, runtime: Runtime
) -> None:
    """The channel failed for good."""
    detail = outcome.detail or outcome.kind.value
    runtime.self_watch.failing(_part(destination), f"{attempts} attempt(s): {detail}")

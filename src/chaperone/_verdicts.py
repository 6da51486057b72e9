"""What a filter says about an alert, and what a channel says about a delivery."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from chaperone._secrets import MASKER

__all__ = ["Destination", "Outcome", "OutcomeKind", "Verdict", "VerdictKind"]


class VerdictKind(enum.StrEnum):
    """A filter's decision."""

    SEND = "send"
    SUPPRESS = "suppress"
    HOLD = "hold"


@attrs.frozen(kw_only=True)
class Verdict:
    """A filter's decision on one alert.

    Filters run in order and the first one that returns a verdict decides: ``send``
    delivers at once (skipping the filters after it), ``suppress`` drops the alert with a
    reason, ``hold`` keeps it for a grouped notification under ``group_key``. A filter
    with no opinion returns None and the next filter is asked.
    """

    kind: VerdictKind
    reason: str = ""
    group_key: str | None = None

    @classmethod
    def send(cls, reason: str = "") -> Verdict:
        """Deliver now, skipping the remaining filters."""
        return cls(kind=VerdictKind.SEND, reason=reason)

    @classmethod
    def suppress(cls, reason: str) -> Verdict:
        """Drop the alert; ``reason`` says why (it is logged and shown)."""
        return cls(kind=VerdictKind.SUPPRESS, reason=reason)

    @classmethod
    def hold(cls, group_key: str, reason: str = "") -> Verdict:
        """Keep the alert for the grouped notification of ``group_key``."""
        return cls(kind=VerdictKind.HOLD, reason=reason, group_key=group_key)


@attrs.frozen(kw_only=True)
class Destination:
    """Where a routed alert goes: a channel name, the route that chose it, the route's
    settings for that channel, and the route's runbook link (shown when the alert has
    none of its own).
    """

    channel: str
    route: str = "default"
    settings: Mapping[str, Any] = attrs.field(
        factory=dict, repr=lambda value: MASKER.mask(repr(dict(value)))
    )
    """The route's settings for the channel; known secrets (a route's webhook URL) are
    masked in the repr."""
    runbook_url: str | None = None
    fallback_of: str | None = None
    """For a fallback delivery: the channel that failed for good, which this one stands
    in for (``[channels.<name>] fallback``). None for an ordinary delivery."""


class OutcomeKind(enum.StrEnum):
    """How a delivery attempt ended."""

    DELIVERED = "delivered"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@attrs.frozen(kw_only=True)
class Outcome:
    """A channel's classification of one send.

    ``transient`` failures (5xx, 429, timeouts, refused connections) are retried, after
    ``retry_after`` seconds when the service said so; ``permanent`` ones (other 4xx,
    SMTP 5xx, a bad payload) are not. Whatever the kind, ``retry_after`` holds the whole
    destination: nothing more is sent to it, from any process, before that time (a
    delivered outcome carries one when the service said its rate-limit bucket is empty).
    """

    kind: OutcomeKind
    detail: str = ""
    retry_after: float | None = None
    status_code: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the service confirmed the delivery."""
        return self.kind is OutcomeKind.DELIVERED

    @classmethod
    def delivered(
        cls, detail: str = "", status_code: int | None = None, *, retry_after: float | None = None
    ) -> Outcome:
        """The service confirmed the alert; ``retry_after``: it also said to send nothing
        more for that many seconds (an emptied rate-limit bucket).
        """
        return cls(
            kind=OutcomeKind.DELIVERED,
            detail=detail,
            status_code=status_code,
            retry_after=retry_after,
        )

    @classmethod
    def transient(
        cls, detail: str, *, retry_after: float | None = None, status_code: int | None = None
    ) -> Outcome:
        """Worth trying again, not before ``retry_after`` seconds when given."""
        return cls(
            kind=OutcomeKind.TRANSIENT,
            detail=detail,
            retry_after=retry_after,
            status_code=status_code,
        )

    @classmethod
    def permanent(cls, detail: str, *, status_code: int | None = None) -> Outcome:
        """Trying again would fail the same way."""
        return cls(kind=OutcomeKind.PERMANENT, detail=detail, status_code=status_code)

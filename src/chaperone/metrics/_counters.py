"""Delivery counters in the store: all-time totals per (channel, alert type), and
per-minute buckets of the recent failure rate.

Layout (every key under ``metrics:``):

``metrics:total:sent:CHANNEL|TYPE`` / ``metrics:total:failed:CHANNEL|TYPE``
    All-time counts, never expiring and never decreased (Prometheus counters). The
    channel is percent-encoded, so a ``|`` in a plugin's channel name stays its own; alert
    types are ``[a-z0-9_]`` already. The set of these keys is also the registry of the
    channels and types seen: a few dozen keys, read with one ``keys`` call.
``metrics:minute:MINUTE:sent`` / ``metrics:minute:MINUTE:failed``
    Deliveries in the minute ``MINUTE`` (Unix seconds // 60), kept a day and two minutes,
    so a failure rate over any window up to a day (``health.window``) can be summed. A
    burst of failures last week no longer counts.

Cost: a delivery adds two atomic ``incr`` (its pair's total, its minute's bucket). A read
is one ``keys`` over the totals and one ``get_many`` of those keys and the window's
buckets (two per minute of the window: 120 for the default hour, 2,880 for a day).
Totals by channel and by type are sums of the pair counts, so they always agree with
each other and with the overall totals.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs

if TYPE_CHECKING:
    from chaperone.store import Store

__all__ = [
    "BUCKET_SECONDS",
    "RETENTION_SECONDS",
    "Counts",
    "DeliveryStats",
    "read_delivery_stats",
    "record_delivery",
]

BUCKET_SECONDS: Final = 60
"""Width of one bucket of the recent failure rate: windows are counted to the minute."""
RETENTION_SECONDS: Final = 86_400
"""How far back the buckets reach: the longest ``health.window``, a day."""
_BUCKET_TTL: Final = RETENTION_SECONDS + 2 * BUCKET_SECONDS
_TOTAL: Final = "metrics:total:"
_MINUTE: Final = "metrics:minute:"
SENT: Final = "sent"
FAILED: Final = "failed"


def _total_key(outcome: str, channel: str, alert_type: str) -> str:
    return f"{_TOTAL}{outcome}:{urllib.parse.quote(channel, safe='')}|{alert_type}"


def _minute_key(minute: int, outcome: str) -> str:
    return f"{_MINUTE}{minute}:{outcome}"


def record_delivery(
    store: Store, *, channel: str, alert_type: str, delivered: bool, now: float
) -> None:
    """Count one delivery's final outcome: to ``channel``, of an alert of ``alert_type``,
    ``delivered`` or failed, at ``now`` (Unix seconds on the runtime's clock).

    Raises what the store raises (StoreError when it is away); the hook catches it.
    """
    outcome = SENT if delivered else FAILED
    store.incr(_total_key(outcome, channel, alert_type))
    store.incr(_minute_key(int(now // BUCKET_SECONDS), outcome), 1, _BUCKET_TTL)


@attrs.frozen
class Counts:
    """Deliveries that a channel confirmed (``sent``) and that failed for good."""

    sent: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        """Every delivery counted."""
        return self.sent + self.failed

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.sent + other.sent, self.failed + other.failed)

    def to_dict(self) -> dict[str, int]:
        """``{"sent": N, "failed": N}``."""
        return {SENT: self.sent, FAILED: self.failed}


def _failure_rate(counts: Counts) -> float:
    """Percent of ``counts`` that failed; 0 when there were none."""
    return 100.0 * counts.failed / counts.total if counts.total else 0.0


@attrs.frozen(kw_only=True)
class DeliveryStats:
    """A snapshot of the delivery counters: all-time counts per (channel, alert type), and
    the deliveries of the recent ``window`` that the failure rate is measured over.
    """

    pairs: Mapping[tuple[str, str], Counts]
    """All-time counts by (channel, alert type)."""
    recent: Counts
    """Deliveries in the window."""
    window: timedelta
    threshold: float
    """Failure rate (percent) at or above which delivery is unhealthy."""

    @property
    def totals(self) -> Counts:
        """All-time counts over every channel and type."""
        return sum(self.pairs.values(), Counts())

    @property
    def by_channel(self) -> dict[str, Counts]:
        """All-time counts by channel, sorted by name."""
        return self._grouped(0)

    @property
    def by_type(self) -> dict[str, Counts]:
        """All-time counts by alert type, sorted by name."""
        return self._grouped(1)

    def _grouped(self, position: int) -> dict[str, Counts]:
        grouped: dict[str, Counts] = {}
        for pair, counts in self.pairs.items():
            grouped[pair[position]] = grouped.get(pair[position], Counts()) + counts
        return dict(sorted(grouped.items()))

    @property
    def failure_rate(self) -> float:
        """Percent of the window's deliveries that failed (0 when there were none)."""
        return _failure_rate(self.recent)

    @property
    def healthy(self) -> bool:
        """Whether the window's failure rate is below the threshold. A window without
        deliveries is healthy.
        """
        return self.recent.total == 0 or self.failure_rate < self.threshold

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``chaperone health --json`` prints and ``GET /health`` answers: the
        seed's ``healthy``, ``stats`` and ``failure_rate`` (rounded to 2 decimals), with
        the threshold and the window's counts.
        """
        totals = self.totals
        return {
            "healthy": self.healthy,
            "stats": {
                "total_sent": totals.sent,
                "total_failed": totals.failed,
                "by_channel": {name: c.to_dict() for name, c in self.by_channel.items()},
                "by_type": {name: c.to_dict() for name, c in self.by_type.items()},
            },
            "failure_rate": round(self.failure_rate, 2),
            "threshold": self.threshold,
            "window": {
                "seconds": int(self.window.total_seconds()),
                **self.recent.to_dict(),
            },
        }


def read_delivery_stats(
    store: Store, *, now: float, window: timedelta, threshold: float
) -> DeliveryStats:
    """Read a snapshot of the counters, the failure rate over the last ``window`` (to the
    minute: the buckets that overlap it, at most a day) as seen at ``now``.
    """
    last = int(now // BUCKET_SECONDS)
    first = max(
        int((now - window.total_seconds()) // BUCKET_SECONDS) + 1,
        last - RETENTION_SECONDS // BUCKET_SECONDS + 1,
    )
    minute_keys = [
        _minute_key(minute, outcome)
        for minute in range(first, last + 1)
        for outcome in (SENT, FAILED)
    ]
    total_keys = store.keys(_TOTAL)
    values = store.get_many(total_keys + minute_keys)

    pairs: dict[tuple[str, str], Counts] = {}
    for key in total_keys:
        count = _count(values.get(key))
        outcome, _, pair = key.removeprefix(_TOTAL).partition(":")
        quoted_channel, separator, alert_type = pair.rpartition("|")
        if not separator or outcome not in (SENT, FAILED):
            continue  # not a key this module wrote
        name = (urllib.parse.unquote(quoted_channel), alert_type)
        adding = Counts(sent=count) if outcome == SENT else Counts(failed=count)
        pairs[name] = pairs.get(name, Counts()) + adding

    recent = Counts(
        sent=sum(_count(values.get(key)) for key in minute_keys[0::2]),
        failed=sum(_count(values.get(key)) for key in minute_keys[1::2]),
    )
    return DeliveryStats(
        pairs=dict(sorted(pairs.items())), recent=recent, window=window, threshold=threshold
    )


def _count(value: str | None) -> int:
    """A stored counter; 0 when absent or not a number (a key written by hand)."""
    try:
        return max(0, int(value)) if value is not None else 0
    except ValueError:
        return 0

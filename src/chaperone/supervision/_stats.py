"""Per-job-class counters over time buckets, for the error-rate and response-time
thresholds. A finishing job adds to the current minute's bucket; the threshold detector
sums the buckets of its window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from chaperone.store import Store

__all__ = ["BUCKET_SECONDS", "ClassStats", "read_stats", "record_job_finished", "stats_classes"]

BUCKET_SECONDS: Final = 60.0
RETENTION_SECONDS: Final = 86400.0
"""Buckets live a day: windows longer than that see only the last day."""
_PREFIX: Final = "stats:"
_CLASSES: Final = "stats-class:"


def _bucket_key(job_class: str, bucket: int, counter: str) -> str:
    return f"{_PREFIX}{job_class}|{bucket}|{counter}"


def record_job_finished(
    store: Store, *, job_class: str, duration: float, failed: bool, now: float
) -> None:
    """Count one finished job of ``job_class`` (duration in seconds) in ``now``'s bucket."""
    bucket = int(now // BUCKET_SECONDS)
    store.incr(_bucket_key(job_class, bucket, "finished"), 1, RETENTION_SECONDS)
    if failed:
        store.incr(_bucket_key(job_class, bucket, "failed"), 1, RETENTION_SECONDS)
    store.incr(
        _bucket_key(job_class, bucket, "duration_ms"), round(duration * 1000), RETENTION_SECONDS
    )
    store.set(f"{_CLASSES}{job_class}", str(now), RETENTION_SECONDS)


def stats_classes(store: Store) -> list[str]:
    """The job classes that finished at least once in the retention period."""
    return [key.removeprefix(_CLASSES) for key in store.keys(_CLASSES)]


@attrs.frozen
class ClassStats:
    """What finished jobs of one class did over a window."""

    finished: int
    failed: int
    total_duration: float

    @property
    def error_rate(self) -> float:
        """Percent of finished jobs that failed (0 when none finished)."""
        return 100.0 * self.failed / self.finished if self.finished else 0.0

    @property
    def average_duration(self) -> float:
        """Mean duration in seconds (0 when none finished)."""
        return self.total_duration / self.finished if self.finished else 0.0


def read_stats(store: Store, *, job_class: str, now: float, window: float) -> ClassStats:
    """Sum the buckets of ``job_class`` that overlap the last ``window`` seconds."""
    last = int(now // BUCKET_SECONDS)
    first = int((now - window) // BUCKET_SECONDS) + 1
    keys = [
        _bucket_key(job_class, bucket, counter)
        for bucket in range(max(first, last - int(RETENTION_SECONDS // BUCKET_SECONDS)), last + 1)
        for counter in ("finished", "failed", "duration_ms")
    ]
    values = store.get_many(keys)

    def total(counter: str) -> int:
        return sum(int(v) for k, v in values.items() if k.endswith(f"|{counter}"))

    return ClassStats(
        finished=total("finished"),
        failed=total("failed"),
        total_duration=total("duration_ms") / 1000.0,
    )

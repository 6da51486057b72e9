"""Built-in detector: the seed's thresholds on error rate, response time and queue length.

On every tick, for each job class that finished a job in the last day:

- **error rate**: percent of the class's finished jobs that failed over the sliding
  window ``alerting.thresholds.window``, against ``alerting.thresholds.error_rate``;
- **response time**: their average duration in seconds over the window, against
  ``alerting.thresholds.response_time``.

Both give a verdict only when at least ``alerting.thresholds.min_jobs`` jobs of the
class finished in the window: with fewer, nothing opens and nothing resolves. Job counts
are kept per minute, so the window is whole minutes: the current minute and those that
start inside the window.

- **queue length**: the depth of every queue reported by a ``chaperone_queue_lengths``
  implementation or a callable added with :meth:`Chaperone.add_queue_length_source`,
  against ``alerting.thresholds.queue_length``. A queue reported twice counts at its
  largest depth; a source that raises or reports nonsense is logged and skipped, and
  its queues get no verdict on that tick.

A value *over* its threshold is a crossing (the seed: "alert if error rate exceeds 10%",
so exactly 10% is not). A crossing claims the incident with one set-if-absent on its
key and reports :class:`ThresholdExceeded`; a value at or under the threshold deletes
the key, and only the caller whose delete removed it reports :class:`ThresholdCleared`.
So each episode opens and resolves once, however many monitors share the store. An
incident left open for a week (its subject gone quiet) expires without a report.
A tick reads the open threshold incidents once and the statistics of each class with
one ``get_many``; it writes only when a verdict changes.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs
import structlog

from chaperone._events import Event, ThresholdCleared, ThresholdExceeded, ThresholdMetric
from chaperone._hooks import Hooks
from chaperone._markers import hookimpl
from chaperone._secrets import MASKER
from chaperone.supervision import _keys
from chaperone.supervision._stats import read_stats, stats_classes

if TYPE_CHECKING:
    from chaperone._runtime import Runtime
    from chaperone.config import Thresholds
    from chaperone.store import Store

__all__ = [
    "INCIDENT_PREFIX",
    "Measurement",
    "chaperone_detect",
    "class_measurements",
    "evaluate",
    "queue_lengths",
    "queue_measurements",
    "threshold_incident_key",
]

ORDER: Final = 30
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""

THRESHOLD: Final = "threshold"
"""The alert type of threshold incidents."""
INCIDENT_PREFIX: Final = _keys.incident_prefix(THRESHOLD)
"""Every open threshold incident's key starts with this."""

_log = structlog.get_logger("chaperone.detectors")


def threshold_incident_key(metric: ThresholdMetric, subject: str) -> str:
    """The store key that marks ``metric`` of ``subject`` as over its threshold."""
    return _keys.incident_key(f"{THRESHOLD}:{metric.value}", subject)


@attrs.frozen(kw_only=True)
class Measurement:
    """One metric of one subject measured on a tick, with the threshold it is held to."""

    metric: ThresholdMetric
    subject: str
    value: float
    threshold: float
    window: timedelta | None = None

    @property
    def exceeded(self) -> bool:
        """Whether the value is over (not at) the threshold."""
        return self.value > self.threshold


def class_measurements(store: Store, thresholds: Thresholds, now: float) -> Iterator[Measurement]:
    """Error rate and response time of every job class with at least ``min_jobs``
    finished jobs in the window, classes in name order.
    """
    window = thresholds.window
    for job_class in stats_classes(store):
        stats = read_stats(store, job_class=job_class, now=now, window=window.total_seconds())
        if stats.finished < thresholds.min_jobs:
            continue
        yield Measurement(
            metric=ThresholdMetric.ERROR_RATE,
            subject=job_class,
            value=stats.error_rate,
            threshold=thresholds.error_rate,
            window=window,
        )
        yield Measurement(
            metric=ThresholdMetric.RESPONSE_TIME,
            subject=job_class,
            value=stats.average_duration,
            threshold=thresholds.response_time.total_seconds(),
            window=window,
        )


def _depth(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"expected a whole number of jobs, got {value!r}")
    depth = operator.index(value)
    if depth < 0:
        raise ValueError(f"expected a depth of at least 0, got {depth}")
    return depth


def _add(depths: dict[str, int], name: Any, value: Any, source: str) -> None:
    try:
        if not isinstance(name, str) or not name:
            raise TypeError(f"expected a queue name, got {name!r}")
        depth = _depth(value)
    except (TypeError, ValueError) as exc:
        _log.error("skipped a queue length", source=source, error=MASKER.mask(str(exc)))
        return
    depths[name] = max(depth, depths.get(name, 0))


def queue_lengths(runtime: Runtime) -> dict[str, int]:
    """The depth of every queue reported on this tick by the ``chaperone_queue_lengths``
    implementations (the runtime's queue length sources among them).
    """
    depths: dict[str, int] = {}
    for result in Hooks(runtime).queue_lengths():
        for name, value in result.items():
            _add(depths, name, value, "chaperone_queue_lengths")
    return depths


def queue_measurements(depths: Mapping[str, int], thresholds: Thresholds) -> Iterator[Measurement]:
    """The queue-length measurement of every queue, in name order."""
    for name in sorted(depths):
        yield Measurement(
            metric=ThresholdMetric.QUEUE_LENGTH,
            subject=name,
            value=float(depths[name]),
            threshold=float(thresholds.queue_length),
        )


def evaluate(store: Store, measurements: Iterable[Measurement], now: datetime) -> Iterator[Event]:
    """Open the incident of each measurement over its threshold and resolve that of each
    at or under it; yield the events of the changes this caller won.
    """
    open_incidents = set(store.keys(INCIDENT_PREFIX))
    for measured in measurements:
        key = threshold_incident_key(measured.metric, measured.subject)
        if measured.exceeded:
            if key not in open_incidents and _claim(store, key, measured, now):
                yield ThresholdExceeded(
                    metric=measured.metric,
                    subject=measured.subject,
                    value=measured.value,
                    threshold=measured.threshold,
                    window=measured.window,
                    occurred_at=now,
                )
        elif key in open_incidents and store.delete(key):
            yield ThresholdCleared(
                metric=measured.metric,
                subject=measured.subject,
                value=measured.value,
                threshold=measured.threshold,
                occurred_at=now,
            )


def _claim(store: Store, key: str, measured: Measurement, now: datetime) -> bool:
    value = json.dumps(
        {
            "type": THRESHOLD,
            "key": f"{measured.metric.value}:{measured.subject}",
            "since": now.timestamp(),
            "value": measured.value,
            "threshold": measured.threshold,
        }
    )
    return store.set_if_absent(key, value, _keys.INCIDENT_TTL)


@hookimpl
def chaperone_detect(runtime: Runtime, now: datetime) -> list[Event]:
    """Report thresholds crossed, and crossed ones back to normal."""
    thresholds = runtime.settings.thresholds
    measurements = [
        *class_measurements(runtime.store, thresholds, now.timestamp()),
        *queue_measurements(queue_lengths(runtime), thresholds),
    ]
    return list(evaluate(runtime.store, measurements, now))

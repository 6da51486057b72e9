r"""Built-in plugin: an alert's priority from the ``[alerting.priority]`` rules.

The seed's ``AlertPriority`` trait, as configuration: a job class listed in
``critical_jobs`` (an exact name or a glob) is critical; otherwise the first level, in
the order critical, high, normal, low, one of whose job-class globs matches decides
(``high = ["*Payment*", "*Order*"]``). An alert with no job class, or one no rule
matches, keeps the priority it was built with.

The hook runs last (``trylast``), so a plugin's ``chaperone_alert_priority`` answers
first. What a priority does (critical skips grouping and escalation, low may be
digest-only) is up to those filters. :func:`explain_priority` says why, for
``chaperone route``; the hook uses it too, so the two never disagree.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Final

import attrs

from chaperone._alerts import Alert, Priority
from chaperone._markers import hookimpl

if TYPE_CHECKING:
    from chaperone._runtime import Runtime
    from chaperone.config import PrioritySettings

__all__ = ["LEVELS", "PriorityDecision", "chaperone_alert_priority", "explain_priority"]

ORDER: Final = 50
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""

LEVELS: tuple[Priority, ...] = (Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW)
"""The order the pattern levels are tried in: the first whose globs match wins."""


@attrs.frozen(kw_only=True)
class PriorityDecision:
    """What the rules say about one alert: a priority (None: keep the built one) and why."""

    priority: Priority | None
    reason: str


def _matches(job_class: str, pattern: str) -> bool:
    """An exact name, or a case-sensitive glob (as the route and maintenance matchers)."""
    return job_class == pattern or fnmatch.fnmatchcase(job_class, pattern)


def explain_priority(alert: Alert, settings: PrioritySettings) -> PriorityDecision:
    r"""Apply the rules to ``alert``: ``critical_jobs`` first, then the patterns of each
    level in the order critical, high, normal, low.

    The reason reads like ``job class 'App\\Jobs\\PaymentSync' matches high pattern
    '*Payment*'``.
    """
    job_class = alert.job_class
    if not job_class:
        return PriorityDecision(
            priority=None,
            reason=f"no job class: no priority rule applies, it stays {alert.priority.value}",
        )
    for pattern in settings.critical_jobs:
        if _matches(job_class, pattern):
            return PriorityDecision(
                priority=Priority.CRITICAL,
                reason=f"job class '{job_class}' matches critical_jobs entry '{pattern}'",
            )
    for level in LEVELS:
        for pattern in settings.patterns.get(level, ()):
            if _matches(job_class, pattern):
                return PriorityDecision(
                    priority=level,
                    reason=f"job class '{job_class}' matches {level.value} pattern '{pattern}'",
                )
    return PriorityDecision(
        priority=None,
        reason=f"job class '{job_class}' matches no priority rule: it stays {alert.priority.value}",
    )


@hookimpl(trylast=True)
def chaperone_alert_priority(alert: Alert, runtime: Runtime) -> Priority | None:
    """The priority the ``[alerting.priority]`` rules give ``alert``, or None."""
    return explain_priority(alert, runtime.settings.priority).priority

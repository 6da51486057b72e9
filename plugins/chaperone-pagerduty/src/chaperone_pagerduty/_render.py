"""Render an alert as a PagerDuty Events API v2 event, within the API's limits.

A firing alert becomes a ``trigger`` event, a resolved one a ``resolve`` event, an
acknowledged one (a person said they are on it) an ``acknowledge`` event; all carry the
same ``dedup_key`` (the alert's incident key), so the resolve closes, and the acknowledge
acknowledges, the incident the trigger opened. PagerDuty has no event that undoes an
acknowledgement (it lapses by the service's own acknowledgement timeout, or a person
un-acknowledges in PagerDuty), so the channel takes no undo. Every text is cleaned as
the other channels clean it (the helpers of :mod:`chaperone.channels.text`): control
characters dropped (tab and newline kept in the details), a lone surrogate made U+FFFD.
Pure functions: nothing here sends or logs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from chaperone.channels import Alert, AlertStatus, Severity
from chaperone.channels.text import fit, link_url, multi_line, one_line, utf8_length

__all__ = [
    "CLIENT",
    "COMPONENT",
    "DEDUP_KEY_LIMIT",
    "EVENTS_URL",
    "EVENT_LIMIT",
    "SEVERITIES",
    "SOURCE",
    "SUMMARY_LIMIT",
    "dedup_key",
    "event_size",
    "render_acknowledge",
    "render_event",
    "render_resolve",
    "render_trigger",
]

EVENTS_URL: Final = "https://events.pagerduty.com/v2/enqueue"
"""Where PagerDuty takes Events API v2 events."""
SUMMARY_LIMIT: Final = 1024
"""Most characters in ``payload.summary``."""
DEDUP_KEY_LIMIT: Final = 255
"""Most characters in ``dedup_key`` (counted here in UTF-8 bytes, which is never fewer)."""
EVENT_LIMIT: Final = 512_000
"""Most bytes in one event: PagerDuty's 512 KB, read as the smaller 512,000."""
SOURCE: Final = "chaperone"
COMPONENT: Final = "queue-jobs"
CLIENT: Final = "Chaperone"
SEVERITIES: Final[Mapping[Severity, str]] = {
    Severity.CRITICAL: "critical",
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
}
"""The alert's severity as PagerDuty names it (Chaperone uses PagerDuty's words)."""

_TEXT_LIMIT: Final = 1024
"""``group`` and ``class`` have no documented limit; they are labels, so keep them short."""
_NAME_LIMIT: Final = 256
"""Longest name of a custom detail."""
_URL_LIMIT: Final = 8192
"""A longer link is left out: a cut URL leads nowhere."""
_VALUE_LIMITS: Final = (None, 16_384, 4096, 1024, 256, 64)
"""Each custom detail's value is cut to the first of these that makes the event fit."""
_OMITTED: Final = "omitted"
_DETAILS_LINK: Final = "View Job Details"
_RUNBOOK_LINK: Final = "Runbook"


def dedup_key(alert: Alert) -> str:
    """The incident's ``dedup_key``: the alert's incident key (``job_stuck:<id>``), the same
    for the trigger and the resolve; when too long, its type and the SHA-256 of the whole.
    """
    key = multi_line(alert.incident_key)
    if utf8_length(key) <= DEDUP_KEY_LIMIT:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{alert.type[:100]}:sha256:{digest}"


def event_size(event: Mapping[str, Any]) -> int:
    """The size of ``event`` in bytes, as the largest JSON encoding of it would be (every
    non-ASCII character escaped), so that any client's encoding is no larger.
    """
    return len(json.dumps(event).encode("utf-8"))


def render_event(alert: Alert, routing_key: str) -> dict[str, Any]:
    """The event for ``alert``: ``resolve`` when it is resolved, ``acknowledge`` when it
    is acknowledged, else ``trigger``.
    """
    if alert.is_resolved:
        return render_resolve(alert, routing_key)
    if alert.status is AlertStatus.ACKNOWLEDGED:
        return render_acknowledge(alert, routing_key)
    return render_trigger(alert, routing_key)


def render_acknowledge(alert: Alert, routing_key: str) -> dict[str, Any]:
    """The ``acknowledge`` event for the incident of ``alert``: it stops PagerDuty's own
    escalation of the incident the trigger opened.
    """
    return {
        "routing_key": routing_key,
        "event_action": "acknowledge",
        "dedup_key": dedup_key(alert),
    }


def render_resolve(alert: Alert, routing_key: str) -> dict[str, Any]:
    """The ``resolve`` event closing the incident of ``alert``."""
    return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key(alert)}


def render_trigger(alert: Alert, routing_key: str) -> dict[str, Any]:
    """The ``trigger`` event for ``alert``, at most :data:`EVENT_LIMIT` bytes: custom
    details are cut shorter and shorter, then the last ones left out, until it fits.
    """
    payload: dict[str, Any] = {
        "summary": _summary(alert),
        "source": SOURCE,
        "severity": SEVERITIES[alert.severity],
        "timestamp": alert.occurred_at.isoformat(),
        "component": COMPONENT,
    }
    group = alert.job_class or alert.service
    if group and group.strip():
        payload["group"] = fit(multi_line(group), _TEXT_LIMIT)
    payload["class"] = fit(alert.type, _TEXT_LIMIT)
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(alert),
        "payload": payload,
    }
    links = [
        {"href": link_url(url), "text": text}
        for url, text in ((alert.details_url, _DETAILS_LINK), (alert.runbook_url, _RUNBOOK_LINK))
        if url and url.strip() and len(url) <= _URL_LIMIT
    ]
    if links:
        event["links"] = links
    event["client"] = CLIENT
    _fit_details(event, _detail_entries(alert))
    return event


def _summary(alert: Alert) -> str:
    """The title on one line (or the headline, or the incident key when it is blank)."""
    for text in (alert.title, alert.headline, alert.incident_key):
        line = one_line(text)
        if line:
            return fit(line, SUMMARY_LIMIT)
    return fit(alert.type, SUMMARY_LIMIT)


Entry = tuple[str, str | Mapping[str, str]]


def _detail_entries(alert: Alert) -> list[Entry]:
    """What goes in ``custom_details``, most useful first: the summary, the explanation,
    the fields in order, the labels.
    """
    entries: list[Entry] = []
    if alert.summary.strip():
        entries.append(("summary", alert.summary))
    if alert.explanation.strip():
        entries.append(("explanation", alert.explanation))
    entries.extend(alert.fields)
    if alert.labels:
        entries.append(("labels", alert.labels))
    return entries


def _fit_details(event: dict[str, Any], entries: list[Entry]) -> None:
    """Put the custom details in ``event``, cut (then dropped from the end) to fit."""
    payload = event["payload"]
    limit: int | None = None
    for limit in _VALUE_LIMITS:
        if _least_size(entries, limit) > EVENT_LIMIT:
            continue  # hopeless: the characters alone are too many
        payload["custom_details"] = _details(entries, limit)
        if event_size(event) <= EVENT_LIMIT:
            return
    # Still too big: thousands of details. Keep the most that fit, and say so.
    low, high = 0, len(entries) - 1
    while low < high:
        middle = (low + high + 1) // 2
        payload["custom_details"] = _details(entries[:middle], limit, len(entries) - middle)
        if event_size(event) <= EVENT_LIMIT:
            low = middle
        else:
            high = middle - 1
    payload["custom_details"] = _details(entries[:low], limit, len(entries) - low)


def _least_size(entries: list[Entry], limit: int | None) -> int:
    """Fewest bytes the details' values take with each cut to ``limit`` characters."""
    cap = limit if limit is not None else EVENT_LIMIT + 1
    total = 0
    for _name, value in entries:
        texts = [value] if isinstance(value, str) else value.values()
        total += sum(min(len(text), cap) for text in texts)
    return total


def _details(entries: list[Entry], limit: int | None, omitted: int = 0) -> dict[str, Any]:
    details: dict[str, Any] = {}
    names = _Names()
    for name, value in entries:
        if isinstance(value, str):
            details[names.unique(name, details)] = _cut(value, limit)
        else:
            nested: dict[str, str] = {}
            labels = _Names()
            for label, text in value.items():
                nested[labels.unique(label, nested)] = _cut(text, limit)
            details[names.unique(name, details)] = nested
    if omitted:
        details[names.unique(_OMITTED, details)] = f"{omitted} more details left out (too long)"
    return details


class _Names:
    """Makes detail names short, non-blank and unique: ``Host``, ``Host (2)``, ..."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def unique(self, name: str, taken: Mapping[str, Any]) -> str:
        base = fit(multi_line(name), _NAME_LIMIT) if name.strip() else "(unnamed)"
        if base not in taken:
            return base
        number = self._last.get(base, 1)
        while True:
            number += 1
            candidate = f"{fit(base, _NAME_LIMIT - 16)} ({number})"
            if candidate not in taken:
                self._last[base] = number
                return candidate


def _cut(text: str, limit: int | None) -> str:
    text = multi_line(text)
    return text if limit is None else fit(text, limit)

r"""Pure functions from an alert to the bodies of Opsgenie's Alert API requests.

A firing alert becomes the body of ``POST /v2/alerts`` (create), a resolved one the body
of ``POST /v2/alerts/{alias}/close?identifierType=alias``, an acknowledged one (and its
undoing) the body of ``POST /v2/alerts/{alias}/acknowledge`` (``/unacknowledge``), with
the same ``identifierType=alias``. Both fit every limit Opsgenie
documents, whatever the alert holds: text is cut with an ellipsis, control characters
are dropped, and lengths are counted in UTF-16 code units (what Opsgenie's Java backend
counts), so an emoji counts twice and a message of 130 emoji is still within 130 (the
helpers of :mod:`chaperone.channels.text`).

The alias is the incident's identity, ``<type>:<key>`` (``job_stuck:550e8400-...``), so a
second alert for the same incident is counted on the open Opsgenie alert, not duplicated,
and the resolution closes it. A key too long for the 512-character alias, or holding
control characters, gets a stable hashed alias instead: the start of the cleaned
identity, ``#`` and the SHA-256 of the whole identity in hex.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Final

from chaperone.channels import Alert, Priority, Severity
from chaperone.channels.text import ELLIPSIS, fit, multi_line, one_line, utf16_length

__all__ = [
    "ALIAS_LIMIT",
    "BASE_TAGS",
    "DESCRIPTION_LIMIT",
    "DETAILS_TOTAL_LIMIT",
    "DETAIL_KEY_LIMIT",
    "DETAIL_VALUE_LIMIT",
    "ENTITY_LIMIT",
    "MESSAGE_LIMIT",
    "NOTE_LIMIT",
    "SOURCE",
    "TAG_COUNT_LIMIT",
    "TAG_LENGTH_LIMIT",
    "acknowledge_payload",
    "alias_for",
    "close_payload",
    "create_payload",
    "description_for",
    "details_for",
    "message_for",
    "priority_for",
    "tags_for",
]

MESSAGE_LIMIT: Final = 130
ALIAS_LIMIT: Final = 512
DESCRIPTION_LIMIT: Final = 15_000
ENTITY_LIMIT: Final = 512
NOTE_LIMIT: Final = 25_000
TAG_COUNT_LIMIT: Final = 20
TAG_LENGTH_LIMIT: Final = 50
DETAILS_TOTAL_LIMIT: Final = 8_000
"""Opsgenie's limit on the custom properties: 8,000 characters, keys and values together."""
DETAIL_KEY_LIMIT: Final = 100
"""Our own cap on one custom property's name, so one long field name cannot crowd out the rest."""
DETAIL_VALUE_LIMIT: Final = 1_000
"""Our own cap on one custom property's value, for the same reason."""

SOURCE: Final = "Chaperone"
BASE_TAGS: Final = ("chaperone", "queue-jobs")

_FIELD_VALUE_LIMIT: Final = 1_000
"""A field's value in the description or a note: enough for an error message."""
_PROSE_LIMIT: Final = 3_000
"""The summary and the explanation each, so the fields and links keep their room."""
_LINK_LIMIT: Final = 2_000

_PRIORITY_BY_PRIORITY: Final = {
    Priority.CRITICAL: "P1",
    Priority.HIGH: "P2",
    Priority.LOW: "P4",
}
_PRIORITY_BY_SEVERITY: Final = {
    Severity.CRITICAL: "P1",
    Severity.ERROR: "P2",
    Severity.WARNING: "P3",
    Severity.INFO: "P5",
}


# -- text ------------------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    """The longest start of ``text`` within ``limit`` UTF-16 code units."""
    return fit(text, limit, measure=utf16_length, ellipsis="")


def _fit(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-16 code units, cut with an ellipsis."""
    return fit(text, limit, measure=utf16_length)


def clean_fit(text: str, limit: int) -> str:
    """``text`` cleaned (line breaks kept), stripped and fitted into ``limit`` UTF-16
    code units.
    """
    return _fit(multi_line(text).strip(), limit)


def one_line_fit(text: str, limit: int) -> str:
    """``text`` on one line, fitted into ``limit`` UTF-16 code units."""
    return _fit(one_line(text), limit)


# -- the parts ---------------------------------------------------------------------------


def alias_for(alert: Alert) -> str:
    """The alias of the alert's incident: ``<type>:<key>``, or its stable hashed form when
    that is longer than 512 characters or not plain one-line text.
    """
    identity = alert.incident_key
    if one_line(identity) == identity and utf16_length(identity) <= ALIAS_LIMIT:
        return identity
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
    prefix = _cut(one_line(identity), ALIAS_LIMIT - len(digest) - 1)
    return f"{prefix}#{digest}"


def priority_for(alert: Alert) -> str:
    """``P1``..``P5``: from the alert's priority when it is not normal (critical P1, high
    P2, low P4), else from its severity (critical P1, error P2, warning P3, info P5).
    """
    by_priority = _PRIORITY_BY_PRIORITY.get(alert.priority)
    return by_priority or _PRIORITY_BY_SEVERITY.get(alert.severity, "P3")


def message_for(alert: Alert) -> str:
    """The alert's title on one line, within 130 characters (never empty)."""
    for text in (alert.title, alert.headline, alert.type.replace("_", " ").title()):
        line = one_line_fit(text, MESSAGE_LIMIT)
        if line:
            return line
    return "Chaperone alert"  # pragma: no cover - an alert type is never empty


def _field_lines(fields: Iterable[tuple[str, str]]) -> str:
    lines = []
    for name, value in fields:
        label = one_line_fit(name, DETAIL_KEY_LIMIT) or "Field"
        lines.append(f"{label}: {clean_fit(value, _FIELD_VALUE_LIMIT)}")
    return "\n".join(lines)


def _join(blocks: Iterable[str]) -> str:
    return "\n\n".join(block for block in blocks if block)


def description_for(alert: Alert) -> str:
    """The seed's e-mail body as text: summary, fields, explanation, links; within 15,000
    characters, the fields cut first so the explanation and links always show.
    """
    head = clean_fit(alert.summary, _PROSE_LIMIT)
    links = []
    if alert.details_url:
        links.append(f"View Job Details: {one_line_fit(alert.details_url, _LINK_LIMIT)}")
    if alert.runbook_url:
        links.append(f"Runbook: {one_line_fit(alert.runbook_url, _LINK_LIMIT)}")
    tail = _join([clean_fit(alert.explanation, _PROSE_LIMIT), "\n".join(links)])
    fields = _field_lines(alert.fields)
    separators = 4  # two blank lines between the three blocks
    room = DESCRIPTION_LIMIT - utf16_length(head) - utf16_length(tail) - separators
    if fields and room >= len(ELLIPSIS):
        fields = _fit(fields, room)
    return _fit(_join([head, fields, tail]), DESCRIPTION_LIMIT)


def _identity(alert: Alert) -> list[tuple[str, str]]:
    pairs = [
        ("Alert Type", alert.type),
        ("Alert Key", alert.key),
        ("Severity", alert.severity.value),
        ("Supervision ID", alert.supervision_id),
        ("Job Class", alert.job_class),
        ("Service", alert.service),
        ("Details URL", alert.details_url),
        ("Runbook URL", alert.runbook_url),
        ("Occurred At", alert.occurred_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
    ]
    return [(name, value) for name, value in pairs if value]


def details_for(alert: Alert) -> dict[str, str]:
    """Custom properties, all strings: the alert's identity (type, key, severity,
    supervision id, job class, service, links, time), then its fields, then its labels
    (``label.<name>``); each name at most 100 characters and value at most 1,000, and
    8,000 in all, what does not fit left out.
    """
    fields = [
        (one_line_fit(name, DETAIL_KEY_LIMIT) or f"Field {number}", value)
        for number, (name, value) in enumerate(alert.fields, start=1)
    ]
    labels = [(f"label.{name}", value) for name, value in alert.labels.items()]
    details: dict[str, str] = {}
    used = 0
    for raw_name, raw_value in [*_identity(alert), *fields, *labels]:
        name = one_line_fit(raw_name, DETAIL_KEY_LIMIT)
        value = clean_fit(raw_value, DETAIL_VALUE_LIMIT)
        if details.get(name) == value:
            continue
        name = _unique(name, details)
        room = DETAILS_TOTAL_LIMIT - used - utf16_length(name)
        if room < len(ELLIPSIS):
            break
        value = _fit(value, min(DETAIL_VALUE_LIMIT, room))
        details[name] = value
        used += utf16_length(name) + utf16_length(value)
    return details


def _unique(name: str, taken: Mapping[str, str]) -> str:
    if name not in taken:
        return name
    for number in range(2, len(taken) + 3):
        suffix = f" ({number})"
        candidate = _cut(name, DETAIL_KEY_LIMIT - len(suffix)) + suffix
        if candidate not in taken:
            return candidate
    raise AssertionError("unreachable: fewer names are taken than tried")  # pragma: no cover


def tags_for(alert: Alert, extra: Iterable[str] = ()) -> list[str]:
    """``chaperone``, ``queue-jobs``, the alert type, ``severity:<severity>`` and the
    configured extra tags: at most 20, each at most 50 characters, no duplicates.
    """
    candidates = [*BASE_TAGS, alert.type, f"severity:{alert.severity.value}", *extra]
    tags: list[str] = []
    for candidate in candidates:
        tag = _cut(one_line(candidate), TAG_LENGTH_LIMIT)
        if tag and tag not in tags:
            tags.append(tag)
    return tags[:TAG_COUNT_LIMIT]


# -- the requests ------------------------------------------------------------------------


def create_payload(alert: Alert, *, extra_tags: Iterable[str] = ()) -> dict[str, Any]:
    """The body of ``POST /v2/alerts`` for a firing alert."""
    payload: dict[str, Any] = {
        "message": message_for(alert),
        "alias": alias_for(alert),
        "description": description_for(alert),
        "priority": priority_for(alert),
        "source": SOURCE,
        "tags": tags_for(alert, extra_tags),
        "details": details_for(alert),
    }
    entity = one_line_fit(alert.subject, ENTITY_LIMIT)
    if entity:
        payload["entity"] = entity
    return payload


def acknowledge_payload(alert: Alert) -> dict[str, str]:
    """The body of ``POST /v2/alerts/{alias}/acknowledge?identifierType=alias`` (or
    ``/unacknowledge``): the source and a note saying who did it and why (the alert's
    summary, then its fields).
    """
    summary = clean_fit(alert.summary, _PROSE_LIMIT)
    note = _join([summary, _field_lines(alert.fields)])
    return {"source": SOURCE, "note": _fit(note, NOTE_LIMIT) or message_for(alert)}


def close_payload(alert: Alert) -> dict[str, str]:
    """The body of ``POST /v2/alerts/{alias}/close?identifierType=alias`` for a resolved
    alert: the source and a note saying how it ended (title, summary, fields).
    """
    summary = clean_fit(alert.summary, _PROSE_LIMIT)
    title = one_line_fit(alert.title, _PROSE_LIMIT)
    first = "\n".join(line for line in (title, summary) if line)
    note = _join([first, _field_lines(alert.fields)])
    return {"source": SOURCE, "note": _fit(note, NOTE_LIMIT) or message_for(alert)}

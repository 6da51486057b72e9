"""The alert: what a person is told, independent of the channel that tells them."""

from __future__ import annotations

import enum
import re
import types
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from chaperone import _sanitize
from chaperone._clock import as_utc

__all__ = ["Alert", "AlertStatus", "Priority", "Severity"]


class Severity(enum.StrEnum):
    """How bad it is, in PagerDuty's words."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Priority(enum.StrEnum):
    """How urgently someone must act, independent of severity."""

    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class AlertStatus(enum.StrEnum):
    """Whether the incident is going on or over, or (passed on to the services that
    carried it) that a person acknowledged it or took the acknowledgement back.
    """

    FIRING = "firing"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    """Someone is on it: only channels that opt in (``accepts_acknowledgements``) get it."""
    UNACKNOWLEDGED = "unacknowledged"
    """An acknowledgement undone: only channels that opt in
    (``accepts_unacknowledgements``) get it."""


def _labels(value: Mapping[str, Any]) -> Mapping[str, str]:
    return types.MappingProxyType(_sanitize.labels(value))


_ALERT_TYPE = re.compile(r"[a-z][a-z0-9_]*")


def _alert_type(_instance: object, _attribute: object, value: str) -> None:
    if not _ALERT_TYPE.fullmatch(value):
        raise ValueError(
            f"alert type must be lower-case letters, digits and '_' (like job_stuck), got {value!r}"
        )


@attrs.frozen(kw_only=True, eq=True, hash=False)
class Alert:
    r"""One alert, rendered by every channel in its own format.

    ``type`` (lower-case letters, digits and ``_``) and ``key`` identify the incident
    (``job_stuck`` / a supervision id); the pair is what rate limits count and what
    PagerDuty and Opsgenie deduplicate on.
    ``headline`` is the short kind of trouble ("Job Stuck"), ``title`` the headline with
    its subject ("Job Stuck: App\\Jobs\\ImportFeed"), ``summary`` one sentence of what
    happened, ``explanation`` the likely causes, and ``fields`` the ordered details.

    Every text is made safe as the alert is built, whoever builds it: lone surrogates
    become U+FFFD; terminal escape sequences, control characters and bidirectional
    overrides are removed (one-line texts such as the title turn line breaks into spaces;
    the summary, the explanation and field values keep ``\\n`` and ``\\t``); each text is
    capped (1,000 characters a line, 4,000 a multi-line text, 200 a field or label name),
    the fields to 100 of 16,000 characters together, the labels to 50 of 4,000, with a
    visible marker (``… [12,345 characters cut]``) for what was cut; a link longer than
    4,096 characters is left out. Ordinary text comes through unchanged.
    """

    type: str = attrs.field(validator=_alert_type)
    key: str = attrs.field(converter=_sanitize.identity)
    headline: str = attrs.field(converter=_sanitize.line)
    title: str = attrs.field(converter=_sanitize.line)
    summary: str = attrs.field(converter=_sanitize.text)
    occurred_at: datetime = attrs.field(converter=as_utc)
    severity: Severity = attrs.field(default=Severity.ERROR, converter=Severity)
    status: AlertStatus = attrs.field(default=AlertStatus.FIRING, converter=AlertStatus)
    priority: Priority = attrs.field(default=Priority.NORMAL, converter=Priority)
    explanation: str = attrs.field(default="", converter=_sanitize.text)
    fields: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_sanitize.fields)
    job_class: str | None = attrs.field(default=None, converter=_sanitize.optional_line)
    supervision_id: str | None = attrs.field(default=None, converter=_sanitize.optional_identity)
    service: str | None = attrs.field(default=None, converter=_sanitize.optional_line)
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_labels)
    details_url: str | None = attrs.field(default=None, converter=_sanitize.url)
    runbook_url: str | None = attrs.field(default=None, converter=_sanitize.url)
    digest_of: int | None = None
    """For a digest (held alerts of a group, or what a maintenance window suppressed): how
    many alerts it stands for. Digests skip the filters, since what they stand for already
    went through them. None for an ordinary alert."""

    @property
    def is_digest(self) -> bool:
        """Whether this alert stands for other alerts (a digest or a summary)."""
        return self.digest_of is not None

    @property
    def incident_key(self) -> str:
        """``<type>:<key>``: the stable identity of the incident this alert belongs to."""
        return f"{self.type}:{self.key}"

    @property
    def subject(self) -> str:
        """What the alert is about: the job class, else the service, else the key."""
        return self.job_class or self.service or self.key

    @property
    def is_resolved(self) -> bool:
        """Whether this alert reports the end of its incident."""
        return self.status is AlertStatus.RESOLVED

    @property
    def is_firing(self) -> bool:
        """Whether this alert reports its incident going on (not its end, nor an
        acknowledgement or its undoing).
        """
        return self.status is AlertStatus.FIRING

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict that :meth:`from_dict` reads back."""
        data: dict[str, Any] = attrs.asdict(self, recurse=False)
        data["occurred_at"] = self.occurred_at.isoformat()
        data["severity"] = self.severity.value
        data["status"] = self.status.value
        data["priority"] = self.priority.value
        data["fields"] = [list(pair) for pair in self.fields]
        data["labels"] = dict(self.labels)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """Build an alert from :meth:`to_dict`'s output."""
        values = dict(data)
        values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
        values["fields"] = [tuple(pair) for pair in values.get("fields", ())]
        return cls(**values)

"""Where open incidents live in the store, and how they are written and read.

Keys, each under the incident's own prefix ``incidents:<type>:<quoted key>|`` (the key
percent-quoted, so no incident's prefix is a prefix of another's)::

    ...|opened            when it was first seen and its generation, set once per opening
    ...|last              the newest firing alert: title, summary, fields, ...; JSON
    ...|count.<gen>       how many firing alerts the opening saw (an atomic counter)
    ...|ack               who acknowledged it, when, and their note; JSON
    ...|to:<destination>  a destination that carried one of its firing alerts

Every key lives :data:`TTL` (a week, refreshed with the last alert) and a resolved alert
deletes them all. No write is read-modify-write on shared state: the opening is claimed
with ``set_if_absent``, the count is ``incr``, each destination is a key of its own, and
the last alert simply wins. An incident is open while its ``last`` key is there.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import quote, unquote

import attrs

from chaperone import _sanitize
from chaperone._alerts import Alert
from chaperone._verdicts import Destination
from chaperone.supervision._keys import INCIDENT_TTL

if TYPE_CHECKING:
    from chaperone.store import Store

__all__ = [
    "LAST_REFRESH",
    "PREFIX",
    "TTL",
    "Acknowledgement",
    "Incident",
    "clear_acknowledgement",
    "close_incident",
    "destination_name",
    "find_incident",
    "incident_prefix",
    "open_incidents",
    "record_alert",
    "record_destination",
    "set_acknowledgement",
]

PREFIX: Final = "incidents:"
TTL: Final = INCIDENT_TTL
"""Seconds an incident is kept after its last alert (a week, as the job detector's)."""
_COUNT_TTL: Final = 4 * INCIDENT_TTL
"""The counter is created once per opening, so it lives longer than the rest; an orphan
left by an opening that expired belongs to an old generation and is never read."""

LAST_REFRESH: Final = 60.0
"""Seconds after which a repeat that says nothing new is written as the incident's last
alert all the same (so its time on the pages lags the newest repeat by at most this)."""

_LIFE_REFRESH: Final = 86400.0
"""Seconds between two stretches of the opening's and the acknowledgement's lives (far
below :data:`TTL`)."""

_OPENED: Final = "opened"
_LAST: Final = "last"
_COUNT: Final = "count."
_ACK: Final = "ack"
_TO: Final = "to:"


def incident_prefix(alert_type: str, key: str) -> str:
    """The prefix of every store key kept for the incident ``alert_type`` / ``key``."""
    return f"{PREFIX}{alert_type}:{quote(key, safe='')}|"


def destination_name(destination: Destination) -> str:
    """``channel``, or ``channel@route`` for a named route."""
    if destination.route == "default":
        return destination.channel
    return f"{destination.channel}@{destination.route}"


@attrs.frozen(kw_only=True)
class Acknowledgement:
    """Who acknowledged an incident, when, and what they said."""

    by: str
    at: datetime
    note: str = ""

    def to_json(self) -> str:
        """The stored form."""
        return _sanitize.dumps({"by": self.by, "at": self.at.isoformat(), "note": self.note})

    @classmethod
    def from_json(cls, text: str) -> Acknowledgement | None:
        """Read the stored form back; None for a record that is not one."""
        try:
            data = json.loads(text)
            return cls(by=str(data["by"]), at=datetime.fromisoformat(data["at"]), note=data["note"])
        except (ValueError, KeyError, TypeError):
            return None


@attrs.frozen(kw_only=True)
class Incident:
    """One open incident: what its alerts said, how often, where they went, and whether
    someone acknowledged it.
    """

    type: str
    key: str
    title: str
    summary: str
    severity: str
    priority: str
    opened_at: datetime
    last_alert_at: datetime
    alerts: int
    """Firing alerts seen since it opened (suppressed ones included)."""
    supervision_id: str | None
    fields: dict[str, str]
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    ack_note: str = ""
    delivered_to: tuple[str, ...] = ()
    """The destinations that carried one of its firing alerts: ``channel``, or
    ``channel@route`` for a named route."""

    @property
    def state(self) -> Literal["firing", "acknowledged"]:
        """``acknowledged`` once someone said they are on it, else ``firing``."""
        return "firing" if self.acknowledged_by is None else "acknowledged"

    @property
    def incident_key(self) -> str:
        """``<type>:<key>``, as the alerts name it."""
        return f"{self.type}:{self.key}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``chaperone incidents --json``)."""
        data: dict[str, Any] = attrs.asdict(self)
        data["opened_at"] = self.opened_at.isoformat()
        data["last_alert_at"] = self.last_alert_at.isoformat()
        data["acknowledged_at"] = self.acknowledged_at and self.acknowledged_at.isoformat()
        data["delivered_to"] = list(self.delivered_to)
        data["state"] = self.state
        return data


# -- writing ---------------------------------------------------------------------------


def record_alert(store: Store, alert: Alert, now: datetime) -> Acknowledgement | None:
    """Count a firing ``alert`` in its incident, opening the incident if it is new;
    return the incident's acknowledgement, if it has one.

    A repeat costs one ``get_many`` and the count's ``incr``, plus the last alert's
    ``set`` when it says something new or :data:`LAST_REFRESH` has passed since the one
    stored; the lives of the opening and the acknowledgement are stretched with it once
    a day.
    """
    prefix = incident_prefix(alert.type, alert.key)
    known = store.get_many([prefix + _OPENED, prefix + _LAST, prefix + _ACK])
    opened = known.get(prefix + _OPENED)
    fresh = False
    if opened is None:
        opened = json.dumps({"at": now.isoformat(), "gen": secrets.token_hex(4)})
        fresh = store.set_if_absent(prefix + _OPENED, opened, TTL)
        if not fresh:  # another process opened it a moment ago
            opened = store.get(prefix + _OPENED) or opened
    store.incr(prefix + _COUNT + _generation(opened), ttl=_COUNT_TTL)
    last = {
        "type": alert.type,
        "key": alert.key,
        "title": alert.title,
        "summary": alert.summary,
        "severity": alert.severity.value,
        "priority": alert.priority.value,
        "supervision_id": alert.supervision_id,
        "fields": dict(alert.fields),
        "at": alert.occurred_at.isoformat(),
    }
    stored = known.get(prefix + _LAST)
    ack = known.get(prefix + _ACK)
    if fresh or _age(stored, last) is None or _worth_writing(stored, last):
        store.set(prefix + _LAST, _sanitize.dumps(last), TTL)
        if not fresh and (_age(stored, last) or 0.0) >= _LIFE_REFRESH:
            # Stretch the lives of the opening and the acknowledgement with the last alert's.
            store.set(prefix + _OPENED, opened, TTL)
            if ack is not None:
                store.set(prefix + _ACK, ack, TTL)
    return None if ack is None else Acknowledgement.from_json(ack)


def _age(stored: str | None, last: dict[str, Any]) -> float | None:
    """Seconds from the ``stored`` last alert to ``last``; None when there is none."""
    if stored is None:
        return None
    try:
        previous = json.loads(stored)
        delta = datetime.fromisoformat(last["at"]) - datetime.fromisoformat(previous["at"])
    except (ValueError, KeyError, TypeError):
        return None
    return delta.total_seconds()


def _worth_writing(stored: str | None, last: dict[str, Any]) -> bool:
    """Whether the ``last`` alert should replace the ``stored`` one: it says something
    new, or the stored one was written :data:`LAST_REFRESH` or more before it.
    """
    age = _age(stored, last)
    if stored is None or age is None:
        return True
    previous = json.loads(stored)
    same = all(previous.get(name) == value for name, value in last.items() if name != "at")
    return not same or age >= LAST_REFRESH


def record_destination(store: Store, alert: Alert, destination: Destination) -> None:
    """Remember that ``destination`` carried a firing alert of an open incident."""
    prefix = incident_prefix(alert.type, alert.key)
    if store.get(prefix + _LAST) is not None:
        store.set(prefix + _TO + quote(destination_name(destination), safe="@"), "1", TTL)


def close_incident(store: Store, alert_type: str, key: str) -> bool:
    """Forget the incident (its acknowledgement too); return whether it was open."""
    return store.delete_prefix(incident_prefix(alert_type, key)) > 0


def set_acknowledgement(store: Store, alert_type: str, key: str, ack: Acknowledgement) -> bool:
    """Mark the incident acknowledged unless it already is; return whether this did it
    (of processes acknowledging at once, exactly one).
    """
    return store.set_if_absent(incident_prefix(alert_type, key) + _ACK, ack.to_json(), TTL)


def clear_acknowledgement(store: Store, alert_type: str, key: str) -> bool:
    """Take the acknowledgement back; return whether there was one."""
    return store.delete(incident_prefix(alert_type, key) + _ACK)


# -- reading ---------------------------------------------------------------------------


def open_incidents(store: Store) -> list[Incident]:
    """Every open incident, the one alerted most recently first: one key listing and
    one ``get_many``, whatever the history holds.
    """
    names = store.keys(PREFIX)
    values = store.get_many(names) if names else {}
    grouped: dict[str, dict[str, str]] = defaultdict(dict)
    for name, value in values.items():
        head, _, part = name.partition("|")
        grouped[head][part] = value
    incidents = [
        incident for parts in grouped.values() if (incident := _incident_from(parts)) is not None
    ]
    return sorted(incidents, key=lambda incident: incident.last_alert_at, reverse=True)


def find_incident(store: Store, alert_type: str, key: str) -> Incident | None:
    """The open incident ``alert_type`` / ``key``, or None."""
    prefix = incident_prefix(alert_type, key)
    names = store.keys(prefix)
    values = store.get_many(names) if names else {}
    return _incident_from({name.removeprefix(prefix): value for name, value in values.items()})


def _generation(opened: str) -> str:
    try:
        return str(json.loads(opened)["gen"])
    except (ValueError, KeyError, TypeError):
        return "0"


def _incident_from(parts: dict[str, str]) -> Incident | None:
    """The incident its keys (by part name) describe; None when it is not open."""
    raw = parts.get(_LAST)
    if raw is None:
        return None
    try:
        last = json.loads(raw)
        last_at = datetime.fromisoformat(last["at"])
    except (ValueError, KeyError, TypeError):
        return None
    opened_raw = parts.get(_OPENED)
    opened_at = last_at
    count = 1
    if opened_raw is not None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            opened_at = datetime.fromisoformat(json.loads(opened_raw)["at"])
        count_raw = parts.get(_COUNT + _generation(opened_raw))
        count = int(count_raw) if count_raw and count_raw.isdigit() else 1
    ack_raw = parts.get(_ACK)
    ack = None if ack_raw is None else Acknowledgement.from_json(ack_raw)
    delivered = sorted(unquote(part.removeprefix(_TO)) for part in parts if part.startswith(_TO))
    return Incident(
        type=str(last["type"]),
        key=str(last["key"]),
        title=str(last.get("title", "")),
        summary=str(last.get("summary", "")),
        severity=str(last.get("severity", "")),
        priority=str(last.get("priority", "")),
        opened_at=opened_at,
        last_alert_at=last_at,
        alerts=count,
        supervision_id=last.get("supervision_id"),
        fields={str(name): str(value) for name, value in dict(last.get("fields", {})).items()},
        acknowledged_by=None if ack is None else ack.by,
        acknowledged_at=None if ack is None else ack.at,
        ack_note="" if ack is None else ack.note,
        delivered_to=tuple(delivered),
    )

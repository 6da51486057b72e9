"""Events to JSON and back, so a job process can hand an event to the monitor through the
store's queue.

Datetimes travel as ISO 8601, durations as whole microseconds (exact, however long),
enums as their values. Any text encodes: a lone surrogate (a non-UTF-8 job name) becomes
U+FFFD, so the JSON is valid UTF-8 for every store; everything else comes back exactly
(the alert built from the event makes its text safe to show and caps it). Only event
classes registered here (the built-in ones, and any a plugin registers) can be decoded.
"""

from __future__ import annotations

import enum
import json
from datetime import datetime, timedelta
from typing import Any

import attrs

from chaperone import _events, _sanitize
from chaperone._alerts import Alert
from chaperone._events import Event, IncidentRef

__all__ = ["decode_event", "encode_event", "register_event_class"]

_CLASSES: dict[str, type[Event]] = {
    name: cls
    for name in _events.__all__
    if isinstance(cls := getattr(_events, name), type) and issubclass(cls, Event)
}


def register_event_class(cls: type[Event]) -> None:
    """Let :func:`decode_event` rebuild events of ``cls`` (a plugin's own event class)."""
    _CLASSES[cls.__name__] = cls


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$microseconds": value // timedelta(microseconds=1)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, IncidentRef):
        return {"$incident": [value.type, value.key]}
    if isinstance(value, Alert):
        return {"$alert": value.to_dict()}
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) != 1:
            return {key: _decode(item) for key, item in value.items()}
        if "$datetime" in value:
            return datetime.fromisoformat(value["$datetime"])
        if "$microseconds" in value:
            return timedelta(microseconds=value["$microseconds"])
        if "$seconds" in value:  # written before durations went as microseconds
            return timedelta(seconds=value["$seconds"])
        if "$incident" in value:
            alert_type, key = value["$incident"]
            return IncidentRef(type=alert_type, key=key)
        if "$alert" in value:
            return Alert.from_dict(value["$alert"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def encode_event(event: Event) -> str:
    """Return ``event`` as JSON text."""
    fields = {
        field.name: _encode(getattr(event, field.name)) for field in attrs.fields(type(event))
    }
    return _sanitize.dumps({"event": type(event).__name__, "fields": fields})


def decode_event(text: str) -> Event:
    """Rebuild the event :func:`encode_event` wrote; ValueError for an unknown class and
    for anything else that is not an encoded event.
    """
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        raise ValueError("not an encoded event: expected an object with event and fields")
    name = data.get("event")
    cls = _CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown event class {name!r}")
    try:
        return cls(**{field: _decode(value) for field, value in data["fields"].items()})
    except (TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise ValueError(f"cannot rebuild a {name}: {exc}") from exc

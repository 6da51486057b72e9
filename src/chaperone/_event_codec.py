"""Events to JSON and back, so a job process can hand an event to the monitor through the
store's queue.

Datetimes travel as ISO 8601, durations as whole microseconds (exact, however long),
enums as their values. Any text encodes: a lone surrogate (a non-UTF-8 job name) becomes
U+FFFD, so the JSON is valid UTF-8 for every store; everything else comes back exactly
(the alert built from the event makes its text safe to show and caps it). An event is
named by its class's name: the built-in ones, and those a plugin registers through the
``chaperone_register_events`` hook (:class:`EventClasses`, one per plugin host), so a
monitor decodes what a plugin's job queued.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import attrs

from chaperone import _events, _sanitize
from chaperone._alerts import Alert
from chaperone._events import Event, IncidentRef
from chaperone._exceptions import PluginError

__all__ = ["BUILTIN_EVENT_CLASSES", "EventClasses", "decode_event", "encode_event"]

BUILTIN_EVENT_CLASSES: Mapping[str, type[Event]] = MappingProxyType(
    {
        name: cls
        for name in _events.__all__
        if isinstance(cls := getattr(_events, name), type) and issubclass(cls, Event)
    }
)
"""Chaperone's own event classes, by name."""


class EventClasses(Mapping[str, type[Event]]):
    """The event classes a process decodes, by name: the built-in ones and those each
    plugin registered, with the plugin that did.
    """

    def __init__(self) -> None:
        self._classes: dict[str, type[Event]] = dict(BUILTIN_EVENT_CLASSES)
        self._owners: dict[str, str] = {}

    def register(self, cls: type[Event], plugin: str) -> None:
        """Add ``plugin``'s event class ``cls``; PluginError naming the plugin for what is
        not an :class:`~chaperone.Event` subclass built with attrs, or for a name that a
        built-in event or another plugin's already has.
        """
        built_with_attrs = isinstance(cls, type) and attrs.has(cls)
        if not (built_with_attrs and issubclass(cls, Event)):
            raise PluginError(
                f"plugin {plugin!r}: register() takes an attrs subclass of chaperone.Event, "
                f"got {cls!r}"
            )
        name = cls.__name__
        if name in BUILTIN_EVENT_CLASSES:
            raise PluginError(f"plugin {plugin!r}: event {name!r} is a built-in event's name")
        owner = self._owners.get(name)
        if owner is not None and (owner != plugin or self._classes[name] is not cls):
            raise PluginError(
                f"plugin {plugin!r}: event {name!r} is already registered by plugin {owner!r}"
            )
        self._classes[name] = cls
        self._owners[name] = plugin

    def owner_of(self, name: str) -> str | None:
        """The plugin that registered event class ``name``; None for a built-in."""
        return self._owners.get(name)

    def __getitem__(self, name: str) -> type[Event]:
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)


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


def decode_event(text: str, classes: Mapping[str, type[Event]] = BUILTIN_EVENT_CLASSES) -> Event:
    """Rebuild the event :func:`encode_event` wrote, of one of ``classes`` (by default the
    built-in ones; a plugin host's :attr:`~chaperone.PluginHost.event_classes` adds the
    plugins'); ValueError for an unknown class and for anything else that is not an
    encoded event.
    """
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        raise ValueError("not an encoded event: expected an object with event and fields")
    name = data.get("event")
    cls = classes.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown event class {name!r}")
    try:
        return cls(**{field: _decode(value) for field, value in data["fields"].items()})
    except (TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise ValueError(f"cannot rebuild a {name}: {exc}") from exc

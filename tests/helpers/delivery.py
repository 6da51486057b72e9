"""Shared by the delivery tests (tests/delivery): scripted channels, a recorder of the
after-delivery hooks, runtimes on a chosen store, an HTTP channel for loopback servers,
and a webhook server, slow or faulty as scripted, that tells a request it answered from one
its client left.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import attrs

import chaperone
from chaperone import (
    Alert,
    Channel,
    ChannelSettings,
    Chaperone,
    Destination,
    Outcome,
    Runtime,
    SendContext,
)
from chaperone._gates import DeliveryGates
from chaperone.channels.http import post_json
from helpers.connections import client_gone

__all__ = [
    "AfterDelivery",
    "Behaviour",
    "Channels",
    "Fault",
    "SlowWebhook",
    "confirm",
    "http_channel",
    "make_alert",
    "outcomes",
    "scripted",
    "use_gates",
]

Behaviour = Callable[[Alert, SendContext], Awaitable[Any]]
DEGRADED = "chaperone_degraded"
"""The type of Chaperone's own alerts about itself, which the recorders here leave out."""


def scripted(
    name: str, behaviour: Behaviour, *, pace: tuple[int, float] | None = None
) -> type[Channel]:
    """A channel class named ``name`` (with ``pace``) whose ``send`` is ``behaviour``."""

    class Scripted(Channel):
        @classmethod
        def from_settings(cls, settings: ChannelSettings) -> Self:
            return cls()

        async def send(self, alert: Alert, context: SendContext) -> Any:
            return await behaviour(alert, context)

    Scripted.name = name
    Scripted.pace = pace
    return Scripted


@attrs.define
class Calls:
    """What a scripted behaviour was called with: the attempt numbers, the clock times,
    the alerts' keys and each context's ``fallback_of``.
    """

    attempts: list[int] = attrs.field(factory=list)
    times: list[float] = attrs.field(factory=list)
    keys: list[str] = attrs.field(factory=list)
    fallback_of: list[str | None] = attrs.field(factory=list)

    def record(self, alert: Alert, context: SendContext) -> None:
        """Note one call (Chaperone's own degraded alerts left out: see
        tests/resilience for them)."""
        if alert.type == DEGRADED:
            return
        self.attempts.append(context.attempt)
        self.times.append(context.clock.timestamp())
        self.keys.append(alert.key)
        self.fallback_of.append(context.fallback_of)


def outcomes(*results: Outcome) -> tuple[Behaviour, Calls]:
    """A behaviour returning ``results`` in turn (the last one for ever after), and the
    record of its calls.
    """
    calls = Calls()

    async def behaviour(alert: Alert, context: SendContext) -> Outcome:
        calls.record(alert, context)
        return results[min(len(calls.attempts), len(results)) - 1]

    return behaviour, calls


async def confirm(alert: Alert, context: SendContext) -> Outcome:
    """A behaviour that confirms at once."""
    return Outcome.delivered("ok")


class Channels:
    """A plugin that registers the given channel classes."""

    def __init__(self, *classes: type[Channel]) -> None:
        self.classes = classes

    @chaperone.hookimpl
    def chaperone_register_channels(self, register: Any) -> None:
        for channel_class in self.classes:
            register(channel_class)


class AfterDelivery:
    """Records the chaperone_delivered and chaperone_delivery_failed calls, but those of
    Chaperone's own degraded alerts (tests/resilience checks those)."""

    def __init__(self) -> None:
        self.delivered: list[tuple[Alert, Destination, Outcome]] = []
        self.failed: list[tuple[Alert, Destination, Outcome, int]] = []

    @chaperone.hookimpl
    def chaperone_delivered(
        self, alert: Alert, destination: Destination, outcome: Outcome, runtime: Runtime
    ) -> None:
        if alert.type != DEGRADED:
            self.delivered.append((alert, destination, outcome))

    @chaperone.hookimpl
    def chaperone_delivery_failed(
        self, alert: Alert, destination: Destination, outcome: Outcome, attempts: int
    ) -> None:
        if alert.type != DEGRADED:
            self.failed.append((alert, destination, outcome, attempts))

    def delivered_to(self) -> list[tuple[str, str | None]]:
        """(channel, fallback_of) of each delivered call."""
        return [(d.channel, d.fallback_of) for _, d, _ in self.delivered]

    def failed_at(self) -> list[tuple[str, int]]:
        """(channel, attempts) of each failed call."""
        return [(d.channel, attempts) for _, d, _, attempts in self.failed]


def use_gates(runtime: Chaperone, gates: DeliveryGates) -> None:
    """Have ``runtime`` deliver through ``gates`` (other send slots than the defaults)."""
    runtime.delivery_gates = gates
    delivery = attrs.evolve(runtime.dispatcher.delivery, gates=gates)
    runtime.dispatcher = attrs.evolve(runtime.dispatcher, delivery=delivery)


def make_alert(key: str = "sup-1", alert_type: str = "job_stuck") -> Alert:
    """A firing alert with incident key ``<alert_type>:<key>``."""
    return Alert(
        type=alert_type,
        key=key,
        headline="Job Stuck",
        title="Job Stuck: App\\Jobs\\ImportFeed",
        summary="A supervised job has been detected as stuck.",
        occurred_at=datetime(2024, 1, 15, 10, 0, tzinfo=UTC),
    )


def http_channel(name: str, *, pace: tuple[int, float] | None = None) -> type[Channel]:
    """A channel ``name`` that POSTs ``{"key", "attempt", "fallback_of"}`` to its ``url``
    setting (a secret) and classifies the answer as the HTTP channels do.
    """

    class HttpHook(Channel):
        secret_keys = frozenset({"url"})

        def __init__(self, url: chaperone.Secret) -> None:
            self._url = url

        @classmethod
        def from_settings(cls, settings: ChannelSettings) -> Self:
            return cls(settings.secret("url"))

        async def send(self, alert: Alert, context: SendContext) -> Outcome:
            payload = {
                "key": alert.key,
                "attempt": context.attempt,
                "fallback_of": context.fallback_of,
            }
            outcome, _response = await post_json(context, self._url, payload)
            return outcome

    HttpHook.name = name
    HttpHook.pace = pace
    return HttpHook


class _Server(ThreadingHTTPServer):
    request_queue_size = 128
    """socketserver's backlog of 5 resets some of a burst of connections."""


@attrs.frozen
class Fault:
    """How the webhook misbehaves for one request: answer ``status`` (with ``headers``),
    hang ``seconds`` before answering 200, or send bytes that are not HTTP at all.
    """

    status: int | None = None
    headers: dict[str, str] = attrs.field(factory=dict)
    hang: float = 0.0
    garbage: bool = False


@attrs.frozen
class Received:
    """One request the webhook got: the alert key, when, and how it ended."""

    key: str
    at: float
    """``time.monotonic()`` on arrival."""
    answered: bool
    """True when the client was still there at the end and got a ``2xx``; False when it
    went away first (killed mid-request, or timed out), or was answered with a fault."""


class SlowWebhook:
    """A webhook on 127.0.0.1 that holds every request ``hang`` seconds before answering
    ``200``, and records each with the alert key from its JSON body (``{"key": ...}`` or
    ``{"alert": {"key": ...}}``). The first requests get ``faults`` instead, one each, in
    order of arrival. With ``start_after``, it starts listening (on ``port``) only that
    many seconds after entering: until then, connections are refused.

    A request whose client closed the connection during the hang is recorded as not
    answered: that is the sender killed mid-request (or giving up at its timeout), which
    cannot know whether it was delivered and so sends again (at least once). A service
    that acts only on requests it could answer sees each alert once.
    """

    def __init__(
        self,
        hang: float = 0.0,
        *,
        faults: Sequence[Fault] = (),
        port: int = 0,
        start_after: float = 0.0,
    ) -> None:
        self.hang = hang
        self._faults = list(faults)
        self._lock = threading.Condition()
        self._received: list[Received] = []
        self._arrived = 0
        self._closing = threading.Event()
        self._port = port
        self._start_after = start_after
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        if not start_after:
            self._listen()

    def _listen(self) -> None:
        server = _Server(("127.0.0.1", self._port), self._handler())
        server.daemon_threads = True
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> Self:
        if self._start_after:
            if not self._port:
                raise ValueError("a webhook that starts late needs its port")
            threading.Timer(self._start_after, self._listen).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closing.set()
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._server.server_close()

    @property
    def url(self) -> str:
        """The webhook's URL."""
        return f"http://127.0.0.1:{self._port}/hook"

    @property
    def received(self) -> list[Received]:
        """Every request so far, in order of arrival."""
        with self._lock:
            return list(self._received)

    def arrived(self) -> int:
        """Requests that arrived so far (answered or not, or still held)."""
        with self._lock:
            return self._arrived

    def answered(self) -> Counter[str]:
        """How many times each alert key was answered ``2xx``."""
        return Counter(item.key for item in self.received if item.answered)

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` holds (at most ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 0.1))
            return True

    def _arrival(self) -> Fault | None:
        with self._lock:
            self._arrived += 1
            self._lock.notify_all()
            return self._faults.pop(0) if self._faults else None

    def _record(self, item: Received) -> None:
        with self._lock:
            self._received.append(item)
            self._lock.notify_all()

    def _client_gone(self, connection: socket.socket, seconds: float) -> bool:
        """Hold ``seconds``; return early True when the client closed the connection."""
        deadline = time.monotonic() + seconds
        return client_gone(
            connection, lambda: time.monotonic() < deadline and not self._closing.is_set()
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                key = str(body.get("key") or body.get("alert", {}).get("key"))
                fault = webhook._arrival() or Fault(hang=webhook.hang)
                if webhook._client_gone(self.connection, fault.hang):
                    webhook._record(Received(key, arrived, answered=False))
                    return
                status = fault.status or 200
                try:
                    if fault.garbage:
                        self.wfile.write(b"\x00\xffNOT HTTP AT ALL\r\n\r\n")
                    else:
                        self.send_response(status)
                        for name, value in fault.headers.items():
                            self.send_header(name, value)
                        self.send_header("Content-Length", "2")
                        self.end_headers()
                        self.wfile.write(b"ok")
                except OSError:
                    webhook._record(Received(key, arrived, answered=False))
                    return
                answered = not fault.garbage and 200 <= status < 300
                webhook._record(Received(key, arrived, answered=answered))

            def log_message(self, format: str, *args: object) -> None:
                """Keep test output quiet."""

        return Handler

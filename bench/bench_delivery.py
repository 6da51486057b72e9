"""Delivery throughput: 2,000 alerts to a loopback webhook, Chaperone vs Apprise.

Run with ``nox -s bench`` (or ``python bench/bench_delivery.py [--quick]``).

A small HTTP/1.1 server (asyncio, keep-alive) runs in a separate process on 127.0.0.1,
so it shares no GIL with the client. It answers 200 at once and records, for each
request, the alert id found in its body and its arrival time on the monotonic clock,
which the client process reads too (``time.monotonic`` is system-wide on Linux).

Chaperone sends through a real :class:`~chaperone.Chaperone` with a JSON webhook channel
defined here and registered in code, the way a third-party plugin would
(``PluginHost(extra=[...])``): settings read from the environment, filters on (rate
limit, escalation, priority, maintenance), grouping off and each alert its own key so
every alert is sent, and every alert written to the outbox before it is sent. Two ways a
user sends many alerts are measured:

* batch: ``runtime.dispatch_all(events)``, what a monitor tick does (16 sends in flight),
  200 events per call;
* one by one: ``runtime.dispatch(event)`` in a loop.

Apprise sends to ``json://127.0.0.1:PORT/hook`` through ``Apprise.notify(body, title)``
one by one, and through ``await Apprise.async_notify(...)`` for all alerts at once
(``asyncio.gather``); the better of the two is the peer.

Latency is from the moment an alert's event is handed to the library (for a batch: the
call that hands over all of them) to its arrival at the server. Each run also reports the
CPU time the client process spent per alert, which other work on the machine hardly
changes.

What bounds Chaperone is measured in the same run: the bare ``httpx.AsyncClient`` (the
client every Chaperone channel is given) posting the same bodies, 1 and 16 at a time;
and the pipeline alone, through a channel that sends nothing (filters, outbox and
metrics on the store, no network).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import select
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import attrs
from _summary import machine, summary

ALERTS = 2_000
STORES = ("sqlite", "memory")
BATCH = 200
"""Events per ``dispatch_all`` call: one outbox drain's worth (a monitor tick takes up to
1,000 due checks). A steady size keeps the figure apart from what happens to a call that
outlasts its entries' 15 s leases (the entries still waiting for a send slot then take
their leases anew)."""
WARMUP = 50
TARGET_RATIO = 5.0
_START_TIMEOUT_S = 10.0

_ID = re.compile(rb"benchid-([a-z0-9]+)-(\d+)")
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


# -- the webhook server (its own process) ----------------------------------------------


class _HookProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, just enough for POSTs with a Content-Length and GETs."""

    def __init__(self, records: list[tuple[str, float]]) -> None:
        self._records = records
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        transport = self._transport
        assert transport is not None
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buffer[:end]
            found = _LENGTH.search(head)
            total = end + 4 + (int(found.group(1)) if found else 0)
            if len(self._buffer) < total:
                return
            arrived = time.monotonic()
            body = self._buffer[end + 4 : total]
            self._buffer = self._buffer[total:]
            if head.startswith(b"GET /__records"):
                payload = json.dumps(self._records).encode()
                self._records.clear()
                transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
            else:
                match = _ID.search(body)
                if match:
                    self._records.append((f"{match[1].decode()}-{match[2].decode()}", arrived))
                transport.write(_OK)
            if b"\r\nconnection: close" in head.lower():
                transport.close()
                return


def serve() -> None:
    """Serve until stdin closes; print the port first."""

    async def main() -> None:
        records: list[tuple[str, float]] = []
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _HookProtocol(records), "127.0.0.1", 0, backlog=1024
        )
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent goes
        server.close()

    asyncio.run(main())


class HookServer:
    """The server process, seen from the benchmark."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], _START_TIMEOUT_S)
        line = self._process.stdout.readline() if ready else ""
        if not line.strip():
            self.close()
            raise RuntimeError("the webhook server did not start")
        self.port = int(line)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def records(self) -> dict[str, float]:
        """Arrivals since the last call: alert id → arrival time (the first arrival)."""
        with urllib.request.urlopen(self.url("/__records"), timeout=30) as response:
            rows = json.loads(response.read())
        arrived: dict[str, float] = {}
        for ident, at in rows:
            arrived.setdefault(ident, at)
        return arrived

    def close(self) -> None:
        """Stop the server (it stops when its stdin closes) and wait for it."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        if self._process.stdout is not None:
            self._process.stdout.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


# -- measuring --------------------------------------------------------------------------


@attrs.frozen
class Run:
    """One library sending N alerts one way."""

    name: str
    sent: int
    received: int
    seconds: float
    """From the first hand-off to the last arrival."""
    latencies: list[float]
    """Seconds from hand-off to arrival, per alert that arrived."""
    cpu: float = 0.0
    """CPU seconds the client process (all its threads) spent in the run: unlike the
    rate, hardly changed by other work on the machine."""

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def line(self) -> str:
        lost = f", {self.sent - self.received} NOT RECEIVED" if self.received != self.sent else ""
        return (
            f"  {self.name:<44} {self.rate:>6.0f} alerts/s  "
            f"({self.received} in {self.seconds:.2f} s{lost}); latency "
            f"p50 {self.percentile(0.5) * 1000:.1f} ms, p99 {self.percentile(0.99) * 1000:.1f} ms; "
            f"client CPU {self.cpu / max(self.sent, 1) * 1000:.2f} ms/alert"
        )


def _measure(
    server: HookServer, name: str, ids: list[str], send: Callable[[list[str]], dict[str, float]]
) -> Run:
    """Run ``send(ids)``, which returns each id's hand-off time, and match the arrivals."""
    server.records()  # forget warm-up arrivals
    cpu = time.process_time()
    handed = send(ids)
    cpu = time.process_time() - cpu
    arrived = {ident: at for ident, at in server.records().items() if ident in handed}
    if not arrived:
        return Run(name, len(ids), 0, 0.0, [], cpu)
    first = min(handed.values())
    last = max(arrived.values())
    latencies = [at - handed[ident] for ident, at in arrived.items()]
    return Run(name, len(ids), len(arrived), last - first, latencies, cpu)


# -- Chaperone --------------------------------------------------------------------------


def _bench_plugin() -> object:
    """A JSON webhook channel plugin, written as a third party would write one."""
    from chaperone import Alert, Channel, ChannelSettings, Outcome, SendContext, hookimpl
    from chaperone.hookspecs import RegisterChannel

    class BenchHook(Channel):
        """POSTs ``{"alert": ..., "attempt": N}`` as JSON to ``url``."""

        name = "benchhook"
        secret_keys = frozenset({"url"})

        def __init__(self, url: str) -> None:
            self._url = url

        @classmethod
        def from_settings(cls, settings: ChannelSettings) -> Self:
            url = str(settings.require("url"))
            if not url.startswith(("http://", "https://")):
                raise settings.problem("url", "must be an absolute http(s) URL")
            return cls(url)

        async def send(self, alert: Alert, context: SendContext) -> Outcome:
            response = await context.http.post(
                self._url,
                json={"alert": alert.to_dict(), "attempt": context.attempt},
                timeout=context.timeout,
            )
            status = response.status_code
            if 200 <= status < 300:
                return Outcome.delivered(f"HTTP {status}", status_code=status)
            if status == 429 or status >= 500:
                return Outcome.transient(f"HTTP {status}", status_code=status)
            return Outcome.permanent(f"HTTP {status}", status_code=status)

    class Plugin:
        @hookimpl
        def chaperone_register_channels(self, register: RegisterChannel) -> None:
            register(BenchHook)

    return Plugin()


def _runtime(store_url: str, hook_url: str, cwd: Path, plugin: object | None = None) -> Any:
    from chaperone import Chaperone, PluginHost, load_settings

    environ = {
        "CHAPERONE_ALERT_CHANNELS": "benchhook",
        "CHAPERONE_BENCHHOOK_URL": hook_url,
        "CHAPERONE_STORE": store_url,
        "CHAPERONE_ALERT_GROUPING": "false",
        "CHAPERONE_LOG_LEVEL": "error",
    }
    settings = load_settings(environ, cwd)  # cwd: an empty directory, no config file
    plugin = plugin if plugin is not None else _bench_plugin()
    return Chaperone(
        settings, plugins=PluginHost(entry_points=False, extra=[("benchhook", plugin)])
    )


def _events(ids: list[str]) -> list[Any]:
    from chaperone import JobStuck

    return [
        JobStuck(
            supervision_id=f"benchid-{ident}",
            job_class="App\\Jobs\\ImportFeed",
            stuck_duration=timedelta(minutes=12),
        )
        for ident in ids
    ]


def chaperone_runs(
    server: HookServer, count: int, store: str, tmp: Path, *, one_by_one: bool
) -> list[Run]:
    """Delivery through a runtime on ``store`` (memory or sqlite): a batch, and (when
    ``one_by_one``) a loop of single dispatches.
    """
    tag = store[:2]
    url = "memory://" if store == "memory" else f"sqlite:///{tmp / f'{store}.sqlite3'}"
    runs: list[Run] = []
    with _runtime(url, server.url(), tmp) as runtime:
        warm = runtime.dispatch_all(_events([f"w{tag}-{i}" for i in range(WARMUP)]))
        if not all(report.alerts and report.alerts[0].delivered for report in warm):
            raise RuntimeError(f"warm-up alerts were not delivered: {warm[0]}")

        def batch(chunk: list[str]) -> dict[str, float]:
            handed: dict[str, float] = {}
            for start in range(0, len(chunk), BATCH):
                part = chunk[start : start + BATCH]
                events = _events(part)
                handed.update(dict.fromkeys(part, time.monotonic()))
                reports = runtime.dispatch_all(events, drain=False)
                deferred = sum(1 for report in reports for alert in report.alerts if alert.deferred)
                if deferred:
                    print(f"  ({deferred} alerts of a batch of {len(part)} deferred)")
            return handed

        def single(chunk: list[str]) -> dict[str, float]:
            handed: dict[str, float] = {}
            for ident, event in zip(chunk, _events(chunk), strict=True):
                handed[ident] = time.monotonic()
                runtime.dispatch(event)
            return handed

        ids = [f"{tag}b-{i}" for i in range(count)]
        runs.append(_measure(server, f"Chaperone {store}: dispatch_all of {BATCH}", ids, batch))
        if one_by_one:
            ids = [f"{tag}s-{i}" for i in range(count)]
            runs.append(_measure(server, f"Chaperone {store}: dispatch one by one", ids, single))
    return runs


def httpx_floor(server: HookServer, count: int, in_flight: int) -> Run:
    """The HTTP client every Chaperone channel shares, bare: ``httpx.AsyncClient`` posting
    the same JSON bodies, ``in_flight`` at a time.
    """
    import httpx

    tag = f"f{in_flight}"
    ids = [f"{tag}-{i}" for i in range(count)]
    bodies = {ident: {"alert": alert_body(ident), "attempt": 1} for ident in ids}
    warm = [f"w{tag}-{i}" for i in range(WARMUP)]
    bodies.update({ident: {"alert": alert_body(ident), "attempt": 1} for ident in warm})

    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(headers={"User-Agent": "chaperone"})
    gate = asyncio.Semaphore(in_flight)

    async def one(ident: str) -> None:
        async with gate:
            response = await client.post(server.url(), json=bodies[ident])
            response.raise_for_status()

    async def every(chunk: list[str]) -> None:
        await asyncio.gather(*(one(ident) for ident in chunk))

    def send(chunk: list[str]) -> dict[str, float]:
        handed = time.monotonic()
        loop.run_until_complete(every(chunk))
        return dict.fromkeys(chunk, handed)

    try:
        loop.run_until_complete(every(warm))
        return _measure(server, f"bare httpx.AsyncClient, {in_flight} in flight", ids, send)
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


def pipeline_alone(count: int, store: str, tmp: Path) -> float:
    """Alerts per second through ``dispatch_all`` when the channel sends nothing: what the
    pipeline (filters, outbox, metrics) costs on ``store`` without any network.
    """
    from chaperone import Alert, Channel, ChannelSettings, Outcome, SendContext, hookimpl
    from chaperone.hookspecs import RegisterChannel

    class Nothing(Channel):
        name = "benchhook"

        @classmethod
        def from_settings(cls, settings: ChannelSettings) -> Self:
            return cls()

        async def send(self, alert: Alert, context: SendContext) -> Outcome:
            return Outcome.delivered("sent nowhere")

    class Plugin:
        @hookimpl
        def chaperone_register_channels(self, register: RegisterChannel) -> None:
            register(Nothing)

    url = "memory://" if store == "memory" else f"sqlite:///{tmp / 'alone.sqlite3'}"
    with _runtime(url, "http://127.0.0.1:9/unused", tmp, Plugin()) as runtime:
        runtime.dispatch_all(_events([f"wn-{i}" for i in range(WARMUP)]))
        events = _events([f"n-{i}" for i in range(count)])
        started = time.perf_counter()
        reports = runtime.dispatch_all(events, drain=False)
        took = time.perf_counter() - started
    if not all(report.alerts and report.alerts[0].delivered for report in reports):
        raise RuntimeError("the pipeline did not deliver every alert")
    return count / took


def _floor_ids(count: int) -> list[str]:
    return [f"fl-{i}" for i in range(count)]


def alert_body(ident: str) -> dict[str, Any]:
    """The alert a JobStuck event becomes, as the bench channel sends it."""
    from chaperone import Alert

    return Alert(
        type="job_stuck",
        key=f"benchid-{ident}",
        headline="Job Stuck",
        title="Job Stuck: App\\Jobs\\ImportFeed",
        summary="App\\Jobs\\ImportFeed has sent no heartbeat for 12 minutes.",
        occurred_at=datetime.now(UTC),
        job_class="App\\Jobs\\ImportFeed",
        supervision_id=f"benchid-{ident}",
    ).to_dict()


# -- Apprise ----------------------------------------------------------------------------


def apprise_runs(server: HookServer, count: int) -> list[Run]:
    """``notify`` one by one, and ``async_notify`` for all at once."""
    import apprise

    target = f"json://127.0.0.1:{server.port}/hook"
    apobj = apprise.Apprise()
    if not apobj.add(target):
        raise RuntimeError(f"apprise refused {target}")
    title = "Job Stuck: App\\Jobs\\ImportFeed"
    for index in range(WARMUP):
        apobj.notify(body=f"warm-up benchid-wa-{index}", title=title)

    def body(ident: str) -> str:
        return f"App\\Jobs\\ImportFeed has sent no heartbeat for 12 minutes (benchid-{ident})."

    def sync(chunk: list[str]) -> dict[str, float]:
        handed: dict[str, float] = {}
        for ident in chunk:
            handed[ident] = time.monotonic()
            if not apobj.notify(body=body(ident), title=title):
                raise RuntimeError("apprise failed to notify")
        return handed

    def gathered(chunk: list[str]) -> dict[str, float]:
        handed: dict[str, float] = {}

        async def one(ident: str) -> bool:
            handed[ident] = time.monotonic()
            return bool(await apobj.async_notify(body=body(ident), title=title))

        async def main() -> None:
            if not all(await asyncio.gather(*(one(ident) for ident in chunk))):
                raise RuntimeError("apprise failed to notify")

        asyncio.run(main())
        return handed

    return [
        _measure(server, "Apprise: notify one by one", [f"as-{i}" for i in range(count)], sync),
        _measure(
            server,
            "Apprise: async_notify, all gathered",
            [f"ag-{i}" for i in range(count)],
            gathered,
        ),
    ]


# -- main -------------------------------------------------------------------------------


def _sniffio_note() -> str:
    try:
        import sniffio  # noqa: F401
    except ImportError:
        return (
            "sniffio absent: httpcore retries `import sniffio` on every request "
            "(encode/httpcore#1103; anyio >= 4.11 no longer brings it)"
        )
    return "sniffio installed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 alerts, to smoke-test")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--alerts", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    count = args.alerts or (200 if args.quick else ALERTS)
    print(f"delivery: {count} alerts to a loopback webhook (server in its own process)")
    print(f"  machine: {machine()}; {_sniffio_note()}")
    started = time.perf_counter()
    with HookServer() as server, tempfile.TemporaryDirectory() as tmp:
        runs: list[Run] = []
        runs.extend(chaperone_runs(server, count, "sqlite", Path(tmp), one_by_one=True))
        runs.extend(chaperone_runs(server, count, "memory", Path(tmp), one_by_one=False))
        runs.extend(apprise_runs(server, count))
        floors = [httpx_floor(server, count // 4, in_flight) for in_flight in (1, 16)]
        alone = {store: pipeline_alone(count // 2, store, Path(tmp)) for store in STORES}
    for run in runs:
        print(run.line())
    print("  what bounds it:")
    for run in floors:
        print(run.line())
    for store, rate in alone.items():
        print(f"  {'Chaperone ' + store + ', channel sending nothing':<44} {rate:>6.0f} alerts/s")
    ours = max((r for r in runs if r.name.startswith("Chaperone sqlite")), key=lambda r: r.rate)
    peer = max((r for r in runs if r.name.startswith("Apprise")), key=lambda r: r.rate)
    floor = max(floors, key=lambda r: r.rate)
    complete = all(run.received == run.sent for run in [*runs, *floors])
    ratio = ours.rate / peer.rate if peer.rate else float("inf")
    print(f"  wall time: {time.perf_counter() - started:.1f} s")
    met = complete and ratio >= TARGET_RATIO
    if not complete:
        miss = "alerts lost"
    else:
        miss = (
            f"{ratio:.2f}x, {TARGET_RATIO / ratio:.0f}x short; bounded by httpx.AsyncClient "
            f"(bare, {floor.rate:.0f} posts/s here) and the SQLite outbox "
            f"({alone['sqlite']:.0f} alerts/s with no network at all)"
        )
    summary(
        "delivery",
        figure=(
            f"{ours.rate:.0f} alerts/s (SQLite store, {ours.name.split(': ')[1]}), "
            f"latency p50 {ours.percentile(0.5) * 1000:.0f} ms / p99 "
            f"{ours.percentile(0.99) * 1000:.0f} ms"
        ),
        ratio=f"{ratio:.2f}x Apprise ({peer.rate:.0f} alerts/s, {peer.name.split(': ')[1]})",
        target=f">= {TARGET_RATIO:g}x Apprise",
        met=met,
        miss="" if met else miss,
    )


if __name__ == "__main__":
    main()

"""Whether someone would be paged: the checks ``chaperone health`` and ``GET /health``
judge, each named, with a detail a person can act on.

``store``
    A probe key is written, read back and deleted within ``store_timeout``.
``monitor``
    Some monitor ticked within three of its own intervals (plus :data:`MONITOR_SLACK`);
    skipped when ``health.require_monitor`` is false.
``detection``
    No monitor that ticked recently reports a detection error in its latest tick.
``outbox``
    The alert that has waited longest in the outbox waited less than
    ``health.outbox_max_age``.
``degraded``
    No part of Chaperone is recorded as failing (``degraded:<part>``).
``delivery``
    The failure rate of the recent ``health.window`` is below ``health.failure_threshold``.

Every read happens in one worker thread, waited for ``store_timeout`` at most, and never
two at once for one store (:func:`~chaperone.metrics._bounded.call_bounded`): a store
that is locked, full or away makes health answer within the timeout, with the checks
that needed the store failed and saying why. The reads come first, the probe last, so a
store that still reads but cannot be written (locked, full) shows the other checks too.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

import attrs

from chaperone._clock import ManualClock
from chaperone._durations import format_duration
from chaperone._exceptions import StoreError
from chaperone._outbox import Outbox, OutboxEntry, SecretBook
from chaperone._secrets import MASKER
from chaperone.metrics._bounded import NoAnswerError, call_bounded
from chaperone.metrics._counters import DeliveryStats, read_delivery_stats
from chaperone.metrics._liveness import DegradedRecord, MonitorBeat, read_beats, read_degraded

if TYPE_CHECKING:
    from chaperone.config import Settings
    from chaperone.store import Store

__all__ = [
    "CHECKS",
    "MONITOR_INTERVALS",
    "MONITOR_SLACK",
    "PROBE_PREFIX",
    "STORE_TIMEOUT",
    "CheckResult",
    "HealthReport",
    "check_health",
    "close_when_idle",
    "unreachable_store_report",
]

CHECKS: Final = ("store", "monitor", "detection", "outbox", "degraded", "delivery")
"""Every check, in the order reports list them."""
STORE_TIMEOUT: Final = 2.0
"""Seconds health waits for the store before it says the store did not answer."""
MONITOR_INTERVALS: Final = 3
"""A monitor counts as ticking while its latest tick is at most this many of its own
intervals old (plus :data:`MONITOR_SLACK`)."""
MONITOR_SLACK: Final = 5.0
"""Seconds of leeway on top of a monitor's intervals: a slow tick, a loaded machine."""
PROBE_PREFIX: Final = "health:probe:"
_PROBE_TTL: Final = 60.0
"""A probe key left behind (the process died mid-probe) is gone after this long."""
_OUTBOX_SCAN: Final = 1000
"""Outbox entries read for the oldest (in due order: those waiting longest come first)."""

_T = TypeVar("_T")


@attrs.frozen
class CheckResult:
    """One check's verdict: whether it passed, and what a person should know or do."""

    name: str
    ok: bool
    detail: str
    skipped: bool = False
    """True when the settings turned the check off (it then passes)."""

    def to_dict(self) -> dict[str, Any]:
        """``{"ok": ..., "detail": ...}``, as the JSON of a check."""
        return {"ok": self.ok, "detail": self.detail}


@attrs.frozen(kw_only=True)
class HealthReport:
    """Every check's result, and the delivery counters when they could be read."""

    checks: tuple[CheckResult, ...]
    stats: DeliveryStats | None
    """The delivery counters; None when the store could not be read."""
    window: timedelta
    threshold: float

    @property
    def healthy(self) -> bool:
        """Whether every check passed."""
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> tuple[str, ...]:
        """The names of the checks that failed, in report order."""
        return tuple(check.name for check in self.checks if not check.ok)

    def check(self, name: str) -> CheckResult:
        """The result of the check ``name`` (KeyError for an unknown name)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``chaperone health --json`` and ``GET /health``: the delivery
        counters' ``stats``, ``failure_rate``, ``threshold`` and ``window`` (null counts
        when the store could not be read), ``healthy`` over every check, and ``checks``.
        """
        if self.stats is not None:
            counters = self.stats.to_dict()
        else:
            counters = {
                "healthy": False,  # the key's place; its value is set below
                "stats": None,
                "failure_rate": None,
                "threshold": self.threshold,
                "window": {
                    "seconds": int(self.window.total_seconds()),
                    "sent": None,
                    "failed": None,
                },
            }
        return {
            **counters,
            "healthy": self.healthy,
            "checks": {check.name: check.to_dict() for check in self.checks},
        }


# -- reading the store ---------------------------------------------------------------------


@attrs.frozen
class _Got(Generic[_T]):
    """A read that answered."""

    value: _T


@attrs.frozen
class _Failed:
    """A read that failed, and why (secret-free)."""

    reason: str


@attrs.define
class _Readings:
    """Filled in by the worker thread, one read after another; what is still None was
    not read in time.
    """

    beats: _Got[list[MonitorBeat]] | _Failed | None = None
    degraded: _Got[list[DegradedRecord]] | _Failed | None = None
    outbox: _Got[list[OutboxEntry]] | _Failed | None = None
    stats: _Got[DeliveryStats] | _Failed | None = None
    probe: _Got[float] | _Failed | None = None
    """Seconds the probe took."""
    store_failure: _Failed | None = None
    """The first failure of the store itself: the reads after it are not tried."""

    def attempt(self, read: Callable[[], _T]) -> _Got[_T] | _Failed:
        """Run ``read`` unless the store already failed; a failure becomes its reason."""
        if self.store_failure is not None:
            return self.store_failure
        try:
            return _Got(read())
        except StoreError as exc:
            self.store_failure = _Failed(_reason(exc))
            return self.store_failure
        except Exception as exc:
            return _Failed(_reason(exc))


def _reason(exc: BaseException) -> str:
    """An exception as one secret-free line."""
    text = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
    return MASKER.mask(" ".join(text.split()) or type(exc).__name__)


class _ReferencesKept(SecretBook):
    """A secret book that leaves each secret's reference in place. Health reads an
    entry's age and destination and never sends it, so a secret this process does not
    know (a route configured only where the entry was written) must not hide the entry.
    """

    def decode(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """``settings`` as stored, references included."""
        return dict(settings)


def _probe(store: Store) -> float:
    """Write a probe key, read it back and delete it; return the seconds it took."""
    key = f"{PROBE_PREFIX}{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    token = uuid.uuid4().hex
    started = time.monotonic()
    store.set(key, token, _PROBE_TTL)
    if store.get(key) != token:
        raise StoreError("the probe key read back differs from what was written")
    store.delete(key)
    return time.monotonic() - started


def _read_all(store: Store, settings: Settings, now: float, into: _Readings) -> None:
    """Every read health needs, the probe last, each result kept as soon as it is in."""
    options = settings.health
    clock = ManualClock(datetime.fromtimestamp(now, UTC))  # the outbox's reads ignore it
    outbox = Outbox(store, clock, secrets=_ReferencesKept())
    into.beats = into.attempt(lambda: read_beats(store))
    into.degraded = into.attempt(lambda: read_degraded(store))
    into.outbox = into.attempt(lambda: [entry for entry, _at in outbox.entries(_OUTBOX_SCAN)])
    into.stats = into.attempt(
        lambda: read_delivery_stats(
            store, now=now, window=options.window, threshold=options.failure_threshold
        )
    )
    into.probe = into.attempt(lambda: _probe(store))


def check_health(
    store: Store, settings: Settings, now: float, *, store_timeout: float = STORE_TIMEOUT
) -> HealthReport:
    """Judge every check against ``store`` at ``now`` (Unix seconds) by
    ``settings.health``. Never raises for the store's sake, and returns within about
    ``store_timeout`` seconds whatever the store does.
    """
    readings = _Readings()
    silence = None
    try:
        call_bounded(
            _worker_key(store), lambda: _read_all(store, settings, now, readings), store_timeout
        )
    except NoAnswerError as exc:
        silence = str(exc)
    return _judge(attrs.evolve(readings), settings, now, silence)


def close_when_idle(store: Store, *, timeout: float = STORE_TIMEOUT) -> bool:
    """Close ``store`` once no health read of it is running, waiting ``timeout`` seconds
    at most; False when one still hangs, and the store is left open (to the process's
    exit) rather than block on it.
    """
    try:
        call_bounded(_worker_key(store), store.close, timeout)
    except NoAnswerError:
        return False
    return True


def _worker_key(store: Store) -> tuple[str, int]:
    """The key of health's worker for ``store``: one read of a store at a time."""
    return ("health", id(store))


def unreachable_store_report(settings: Settings, reason: str) -> HealthReport:
    """The report on a store that could not even be opened: every check that needs the
    store fails with ``reason``.
    """
    failed = _Failed(MASKER.mask(reason))
    readings = _Readings(beats=failed, degraded=failed, outbox=failed, stats=failed, probe=failed)
    return _judge(readings, settings, 0.0, None)


# -- judging -------------------------------------------------------------------------------


def _judge(
    readings: _Readings, settings: Settings, now: float, silence: str | None
) -> HealthReport:
    """Turn what was read into the checks' results."""
    options = settings.health

    def judged(
        name: str,
        read: _Got[_T] | _Failed | None,
        judge: Callable[[_T], CheckResult],
    ) -> CheckResult:
        if isinstance(read, _Got):
            return judge(read.value)
        if isinstance(read, _Failed):
            return CheckResult(name, ok=False, detail=f"not checked: {read.reason}")
        return CheckResult(name, ok=False, detail=f"not checked: the store gave {silence}")

    stats = readings.stats
    checks = (
        _store_check(readings, silence),
        judged(
            "monitor",
            readings.beats,
            lambda beats: _monitor_check(beats, now, options.require_monitor),
        ),
        judged("detection", readings.beats, lambda beats: _detection_check(beats, now)),
        judged(
            "outbox",
            readings.outbox,
            lambda entries: _outbox_check(entries, now, options.outbox_max_age),
        ),
        judged("degraded", readings.degraded, lambda records: _degraded_check(records, now)),
        judged("delivery", stats, _delivery_check),
    )
    return HealthReport(
        checks=checks,
        stats=stats.value if isinstance(stats, _Got) else None,
        window=options.window,
        threshold=options.failure_threshold,
    )


def _ago(seconds: float) -> str:
    """A span for a person: ``"0.4 seconds"``, ``"42 seconds"``, ``"12 minutes"``."""
    seconds = max(0.0, seconds)
    if seconds < 10 and round(seconds, 1) != round(seconds):
        return f"{seconds:.1f} seconds"
    return format_duration(timedelta(seconds=seconds))


def _where(host: str, pid: int) -> str:
    return f"{host} pid {pid}"


def _store_check(readings: _Readings, silence: str | None) -> CheckResult:
    probe = readings.probe
    if isinstance(probe, _Got):
        return CheckResult(
            "store",
            ok=True,
            detail=f"written, read back and deleted in {probe.value * 1000:.0f} ms",
        )
    if isinstance(probe, _Failed):
        return CheckResult("store", ok=False, detail=probe.reason)
    if readings.stats is not None:
        detail = (
            f"reads answer, but writing a probe key gave {silence}: is another process "
            "holding the store locked?"
        )
    else:
        detail = f"the store gave {silence}: is it reachable, and not locked by another process?"
    return CheckResult("store", ok=False, detail=detail)


def _is_fresh(beat: MonitorBeat, now: float) -> bool:
    """Whether ``beat`` is recent enough for its monitor to count as ticking."""
    return now - beat.ticked_at <= MONITOR_INTERVALS * beat.interval + MONITOR_SLACK


def _ticking(beats: list[MonitorBeat], now: float) -> str:
    latest = beats[0]
    count = f"{len(beats)} monitor{'s' if len(beats) != 1 else ''}"
    return (
        f"{count} ticking; the latest tick {_ago(now - latest.ticked_at)} ago "
        f"({_where(latest.host, latest.pid)}, every {_ago(latest.interval)})"
    )


def _monitor_check(beats: list[MonitorBeat], now: float, required: bool) -> CheckResult:
    fresh = [beat for beat in beats if _is_fresh(beat, now)]
    if not required:
        state = _ticking(fresh, now) if fresh else "no monitor ticking"
        return CheckResult(
            "monitor",
            ok=True,
            skipped=True,
            detail=f"skipped (CHAPERONE_HEALTH_REQUIRE_MONITOR=false); {state}",
        )
    if fresh:
        return CheckResult("monitor", ok=True, detail=_ticking(fresh, now))
    advice = (
        "run `chaperone monitor` (a job stuck in another process is detected only by a "
        "monitor), or set CHAPERONE_HEALTH_REQUIRE_MONITOR=false"
    )
    if not beats:
        return CheckResult("monitor", ok=False, detail=f"no monitor has ticked recently: {advice}")
    latest = beats[0]
    return CheckResult(
        "monitor",
        ok=False,
        detail=(
            f"no monitor has ticked for {_ago(now - latest.ticked_at)} (the latest: "
            f"{_where(latest.host, latest.pid)}, every {_ago(latest.interval)}): {advice}"
        ),
    )


def _detection_check(beats: list[MonitorBeat], now: float) -> CheckResult:
    fresh = [beat for beat in beats if _is_fresh(beat, now)]
    failing = [beat for beat in fresh if beat.error is not None]
    if failing:
        detail = "; ".join(
            f"the latest tick of {_where(beat.host, beat.pid)} "
            f"({_ago(now - beat.ticked_at)} ago) failed: {MASKER.mask(beat.error or '')}"
            for beat in failing
        )
        return CheckResult("detection", ok=False, detail=f"detection is failing: {detail}")
    if not fresh:
        return CheckResult(
            "detection", ok=True, detail="no monitor ticked recently: no detection to judge"
        )
    return CheckResult(
        "detection",
        ok=True,
        detail=f"the latest tick of each monitor detected without error ({len(fresh)} ticking)",
    )


def _outbox_check(entries: list[OutboxEntry], now: float, max_age: timedelta) -> CheckResult:
    oldest = min(entries, key=lambda entry: entry.created_at, default=None)
    if oldest is None:
        return CheckResult("outbox", ok=True, detail="empty")
    age, limit = now - oldest.created_at, _ago(max_age.total_seconds())
    waiting = f"{len(entries)}{'+' if len(entries) >= _OUTBOX_SCAN else ''} waiting"
    if age < max_age.total_seconds():
        return CheckResult(
            "outbox",
            ok=True,
            detail=f"{waiting}; the oldest for {_ago(age)} (unhealthy from {limit})",
        )
    last = (
        f", last: {MASKER.mask(oldest.last.detail)}" if oldest.last and oldest.last.detail else ""
    )
    return CheckResult(
        "outbox",
        ok=False,
        detail=(
            f"an alert has waited {_ago(age)} in the outbox (unhealthy from {limit}): "
            f"{oldest.alert.type} for "
            f"{oldest.destination.channel}, {oldest.attempts} attempt"
            f"{'s' if oldest.attempts != 1 else ''}{last}; {waiting}. Is a monitor "
            "running to deliver it, and is the channel reachable?"
        ),
    )


def _degraded_check(records: list[DegradedRecord], now: float) -> CheckResult:
    if not records:
        return CheckResult("degraded", ok=True, detail="no part of Chaperone reports a failure")
    parts = "; ".join(
        f"{record.part} since {_ago(now - record.since)} ({_where(record.host, record.pid)}): "
        f"{MASKER.mask(record.reason)}"
        for record in records
    )
    return CheckResult("degraded", ok=False, detail=f"failing: {parts}")


def _delivery_check(stats: DeliveryStats) -> CheckResult:
    recent, span, threshold = stats.recent, format_duration(stats.window), f"{stats.threshold:g}%"
    if not recent.total:
        detail = f"no deliveries in the last {span} (unhealthy at {threshold} failed)"
    else:
        detail = (
            f"{recent.failed} of {recent.total} deliveries failed in the last {span} "
            f"({stats.failure_rate:.2f}%; unhealthy at {threshold})"
        )
    return CheckResult("delivery", ok=stats.healthy, detail=detail)

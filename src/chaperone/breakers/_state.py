"""A circuit breaker's shared state in the store, and its transitions.

Every process with a breaker of the same service reads and writes the same keys, only
through atomic store operations, so they agree on one state:

``breaker:<service>:open``
    Present while the breaker is open (or half-open). Created only by
    ``set_if_absent``: the one process that creates it reports the opening. Removed only
    by ``delete``: the one process whose delete finds it reports the closing. Holds the
    opening's id, when it opened and after how many failures.
``breaker:<service>:retry``
    When the current opening next lets trial calls through, after a trial call failed
    (``opened_at + reset_timeout`` until then). Tagged with the opening's id, so a late
    write about an earlier opening is ignored.
``breaker:<service>:failures``
    Consecutive failures while closed (``incr``; deleted by a success).
``breaker:<service>:trials:<opening>:<retry_at>``
    Successful trial calls of one half-open period (``incr``).
``breaker:<service>:rate:<bucket>:calls`` / ``…:failures``
    Calls and failures per time bucket, for the failure-rate mode.

Half-open is not stored: it is an open breaker whose retry time has come.
"""

from __future__ import annotations

import enum
import json
import uuid
from typing import Final
from urllib.parse import quote

import attrs

from chaperone._clock import utc_from_timestamp
from chaperone._events import CircuitBreakerClosed, CircuitBreakerOpened
from chaperone.supervision import Supervisor

__all__ = ["Admission", "BreakerPolicy", "BreakerState", "CircuitState"]

OPEN_TTL: Final = 30 * 86400.0
"""An open breaker nobody calls any more is forgotten after a month."""
COUNTER_TTL: Final = 86400.0
"""Failure and trial counters nobody touches for a day are forgotten."""
BUCKETS: Final = 10
"""The failure-rate window is summed over this many buckets."""


class CircuitState(enum.StrEnum):
    """Where a circuit breaker stands."""

    CLOSED = "closed"
    """Calls go through; failures are counted."""
    OPEN = "open"
    """Calls fail fast with :class:`~chaperone.CircuitOpenError`."""
    HALF_OPEN = "half_open"
    """The reset timeout has passed: calls go through as trials."""


@attrs.frozen(kw_only=True)
class BreakerPolicy:
    """When a breaker opens and closes. Durations in seconds."""

    failure_threshold: int | None
    reset_timeout: float
    success_threshold: int
    failure_rate: float | None
    minimum_calls: int
    window: float

    @property
    def bucket_seconds(self) -> float:
        """The width of one failure-rate bucket."""
        return self.window / BUCKETS


@attrs.frozen(kw_only=True)
class Admission:
    """What the breaker said when a call came: let it through (closed or as a trial) or
    refuse it. Carries what the outcome needs to be recorded against.
    """

    state: CircuitState
    retry_at: float = 0.0
    """For an open or half-open breaker: when trials start(ed)."""
    opening: str = ""
    """For an open or half-open breaker: the opening's id."""
    failures: int = 0
    """For a closed breaker: consecutive failures so far."""


CLOSED: Final = Admission(state=CircuitState.CLOSED)


class BreakerState:
    """The store side of one service's breaker: read the state, record outcomes.

    Raises whatever the store raises; the caller decides to fail open.
    """

    def __init__(self, service: str, policy: BreakerPolicy, supervisor: Supervisor) -> None:
        self.service = service
        self.policy = policy
        self.supervisor = supervisor
        base = f"breaker:{quote(service, safe='')}:"
        self._open_key = f"{base}open"
        self._retry_key = f"{base}retry"
        self._failures_key = f"{base}failures"
        self._trials_prefix = f"{base}trials:"
        self._rate_prefix = f"{base}rate:"
        self._read_keys = [self._open_key, self._retry_key]
        if policy.failure_threshold is not None:
            self._read_keys.append(self._failures_key)

    # -- reading -------------------------------------------------------------------------

    def admit(self, now: float) -> Admission:
        """Read the state for a call at ``now``: one store round trip."""
        values = self.supervisor.store.get_many(self._read_keys)
        opened = values.get(self._open_key)
        if opened is None:
            failures = int(values.get(self._failures_key) or 0)
            return Admission(state=CircuitState.CLOSED, failures=failures) if failures else CLOSED
        data = json.loads(opened)
        opening = str(data["id"])
        retry_at = float(data["opened_at"]) + self.policy.reset_timeout
        retry = values.get(self._retry_key)
        if retry is not None:
            retry_data = json.loads(retry)
            if retry_data.get("id") == opening:
                retry_at = float(retry_data["retry_at"])
        state = CircuitState.HALF_OPEN if now >= retry_at else CircuitState.OPEN
        return Admission(state=state, retry_at=retry_at, opening=opening)

    # -- recording -----------------------------------------------------------------------

    def record(self, admission: Admission, *, failed: bool, now: float) -> None:
        """Record the outcome of a call the breaker let through."""
        if admission.state is CircuitState.HALF_OPEN:
            if failed:
                self._reopen(admission, now)
            else:
                self._trial_succeeded(admission, now)
        elif failed:
            self._closed_failed(now)
        else:
            self._closed_succeeded(admission, now)

    def _closed_succeeded(self, admission: Admission, now: float) -> None:
        store = self.supervisor.store
        if admission.failures:
            store.delete(self._failures_key)
        if self.policy.failure_rate is not None:
            store.incr(self._bucket_key(now, "calls"), 1, self._bucket_ttl)

    def _closed_failed(self, now: float) -> None:
        store = self.supervisor.store
        policy = self.policy
        if policy.failure_threshold is not None:
            failures = store.incr(self._failures_key, 1, COUNTER_TTL)
            if failures >= policy.failure_threshold:
                self._open(failures, now)
                return
        if policy.failure_rate is not None:
            store.incr(self._bucket_key(now, "calls"), 1, self._bucket_ttl)
            store.incr(self._bucket_key(now, "failures"), 1, self._bucket_ttl)
            calls, failures = self._window_counts(now)
            if calls >= policy.minimum_calls and failures * 100 >= policy.failure_rate * calls:
                self._open(failures, now)

    def _open(self, failures: int, now: float) -> None:
        opening = uuid.uuid4().hex
        value = json.dumps({"id": opening, "opened_at": now, "failures": failures})
        ttl = max(OPEN_TTL, 2 * self.policy.reset_timeout)
        if self.supervisor.store.set_if_absent(self._open_key, value, ttl):
            self.supervisor.emit(
                CircuitBreakerOpened(
                    service=self.service,
                    failure_count=failures,
                    opened_at=utc_from_timestamp(now),
                    retry_at=utc_from_timestamp(now + self.policy.reset_timeout),
                    occurred_at=utc_from_timestamp(now),
                )
            )

    def _reopen(self, admission: Admission, now: float) -> None:
        """A trial failed: the same opening waits another reset timeout (no new event:
        the incident goes on).
        """
        value = json.dumps({"id": admission.opening, "retry_at": now + self.policy.reset_timeout})
        ttl = max(OPEN_TTL, 2 * self.policy.reset_timeout)
        self.supervisor.store.set(self._retry_key, value, ttl)

    def _trial_succeeded(self, admission: Admission, now: float) -> None:
        store = self.supervisor.store
        trials = store.incr(self._trials_key(admission), 1, COUNTER_TTL)
        if trials < self.policy.success_threshold:
            return
        # Close only the opening and half-open period this trial belongs to: a trial
        # that failed meanwhile (or a newer opening) wins over this success.
        current = self.admit(now)
        if current.opening != admission.opening or current.retry_at != admission.retry_at:
            return
        self.close(now)

    def close(self, now: float) -> bool:
        """Close the breaker; report it when this call is the one that closed it.

        The counters go first, so a failure counted while the breaker was open cannot
        reopen it the moment it closes.
        """
        store = self.supervisor.store
        if self.policy.failure_threshold is not None:
            store.delete(self._failures_key)
        if self.policy.failure_rate is not None:
            store.delete_prefix(self._rate_prefix)
        if not store.delete(self._open_key):
            return False
        self.supervisor.emit(
            CircuitBreakerClosed(
                service=self.service,
                closed_at=utc_from_timestamp(now),
                occurred_at=utc_from_timestamp(now),
            )
        )
        store.delete(self._retry_key)
        store.delete_prefix(self._trials_prefix)
        return True

    # -- failure-rate buckets ------------------------------------------------------------

    @property
    def _bucket_ttl(self) -> float:
        return self.policy.window + self.policy.bucket_seconds

    def _bucket(self, now: float) -> int:
        return int(now // self.policy.bucket_seconds)

    def _bucket_key(self, now: float, counter: str) -> str:
        return f"{self._rate_prefix}{self._bucket(now)}:{counter}"

    def _window_counts(self, now: float) -> tuple[int, int]:
        """Calls and failures in the buckets of the last window, including ``now``'s."""
        last = self._bucket(now)
        keys = [
            f"{self._rate_prefix}{bucket}:{counter}"
            for bucket in range(last - BUCKETS + 1, last + 1)
            for counter in ("calls", "failures")
        ]
        values = self.supervisor.store.get_many(keys)
        calls = sum(int(v) for k, v in values.items() if k.endswith(":calls"))
        failures = sum(int(v) for k, v in values.items() if k.endswith(":failures"))
        return calls, failures

    def _trials_key(self, admission: Admission) -> str:
        return f"{self._trials_prefix}{admission.opening}:{admission.retry_at!r}"

"""The outbox: every alert that passed the filters, one entry per destination, kept in the
store from before any network call until its channel confirmed it or its failure was
final.

It is built on the store's plain primitives, so every backend (memory, SQLite, Redis)
holds it without a change to the store protocol:

``outbox:entry:<id>``
    The entry as JSON: the alert, its destination (secret settings by reference only),
    the attempts made so far, when it was written, and the last attempt's outcome.
``outbox:due``
    A deadline index: when each entry may next be tried.
``outbox:lease:<id>``
    Who is delivering the entry, taken with ``set_if_absent`` and a TTL, so of any
    number of processes exactly one holds it, and a holder that dies lets go when the
    TTL runs out.

Claiming an entry takes its lease and moves its due time to the lease's end, so
:meth:`Outbox.claim_due` lists only entries nobody holds, and an entry whose holder was
killed comes due again when the lease expires. A holder renews the lease before each
attempt and each wait; an acknowledgement deletes the entry first and the lease last, so
whoever takes the lease afterwards finds no entry and lets go.

Delivery is at least once: a process killed after the service accepted a send but
before the acknowledgement (one store write later) leaves the entry, which is sent again
when its lease expires. So is a holder stalled longer than its lease (past the send
timeout plus :data:`LEASE_MARGIN`) while another took over.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any, Final

import attrs
import structlog

from chaperone import _sanitize
from chaperone._alerts import Alert
from chaperone._clock import Clock
from chaperone._secrets import MASKER
from chaperone._verdicts import Destination, Outcome, OutcomeKind
from chaperone.store import Store

__all__ = [
    "DUE_INDEX",
    "ENTRY_PREFIX",
    "LEASE_MARGIN",
    "LEASE_PREFIX",
    "RENEW_GUARD",
    "Claim",
    "Outbox",
    "OutboxEntry",
    "SecretBook",
    "UnreadableEntryError",
]

_log = structlog.get_logger("chaperone.outbox")

ENTRY_PREFIX: Final = "outbox:entry:"
LEASE_PREFIX: Final = "outbox:lease:"
DUE_INDEX: Final = "outbox:due"

LEASE_MARGIN: Final = 5.0
"""Seconds a lease outlasts the longest thing its holder does before renewing it (one
send, or one wait and then one send): room for the store's own latency."""
RENEW_GUARD: Final = 1.0
"""A lease with less than this left is not extended in place (it may be gone by the time
the write lands) but taken anew, which succeeds only if nobody else took it."""


class UnreadableEntryError(ValueError):
    """An outbox entry that cannot be turned back into an alert and a destination."""


class SecretBook:
    """Secret settings of destinations, by reference.

    An entry never holds a secret (a route's webhook URL): each secret setting is stored
    as ``{"$secret": "<sha256 prefix>"}`` and the value is looked up here when the entry
    is read. The book knows every value it replaced in this process, and whatever the
    runtime teaches it from the configuration (every route's settings), so a restarted
    process with the same configuration resolves what a killed one wrote.
    """

    def __init__(self, is_secret: Callable[[str, str], bool] | None = None) -> None:
        """``is_secret(channel, key)``: whether a key of a channel's settings is secret
        (values the masker knows are treated as secret whatever their key).
        """
        self._is_secret = is_secret or (lambda _channel, _key: False)
        self._values: dict[str, str] = {}

    @staticmethod
    def reference(value: str) -> str:
        """The reference a secret is stored as: a prefix of its SHA-256."""
        return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def learn(self, value: str) -> str:
        """Remember ``value`` and return its reference."""
        ref = self.reference(value)
        self._values[ref] = value
        return ref

    def learn_all(self, values: Iterable[Any]) -> None:
        """Remember every text among ``values`` (a route's settings)."""
        for value in values:
            if isinstance(value, str) and value:
                self.learn(value)

    def encode(self, channel: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        """``settings`` with each secret value replaced by its reference."""
        encoded: dict[str, Any] = {}
        for key, value in settings.items():
            if isinstance(value, str) and (
                self._is_secret(channel, key) or MASKER.mask(value) != value
            ):
                encoded[key] = {"$secret": self.learn(value)}
            else:
                encoded[key] = value
        return encoded

    def decode(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """``settings`` with each reference replaced by its secret; UnreadableEntryError
        naming the key when the secret is unknown here (the configuration changed).
        """
        decoded: dict[str, Any] = {}
        for key, value in settings.items():
            if isinstance(value, Mapping) and set(value) == {"$secret"}:
                secret = self._values.get(str(value["$secret"]))
                if secret is None:
                    raise UnreadableEntryError(
                        f"the secret setting {key!r} of this destination is not configured "
                        "in this process"
                    )
                decoded[key] = secret
            else:
                decoded[key] = value
        return decoded


@attrs.frozen(kw_only=True)
class OutboxEntry:
    """One alert for one destination, waiting in the outbox."""

    id: str
    alert: Alert
    destination: Destination
    created_at: float
    """Clock time the entry was written: ``delivery.max_total`` counts from here."""
    attempts: int = 0
    """Sends made so far, by every process that held it."""
    last: Outcome | None = None
    """The last attempt's outcome (its detail free of secrets)."""

    def to_json(self, secrets: SecretBook) -> str:
        """The entry as stored."""
        destination = self.destination
        record: dict[str, Any] = {
            "alert": self.alert.to_dict(),
            "destination": {
                "channel": destination.channel,
                "route": destination.route,
                "settings": secrets.encode(destination.channel, destination.settings),
                "runbook_url": destination.runbook_url,
                "fallback_of": destination.fallback_of,
            },
            "created_at": self.created_at,
            "attempts": self.attempts,
        }
        if self.last is not None:
            record["last"] = {
                "kind": self.last.kind.value,
                "detail": MASKER.mask(self.last.detail),
                "retry_after": self.last.retry_after,
                "status_code": self.last.status_code,
            }
        return _sanitize.dumps(record)

    @classmethod
    def from_json(cls, entry_id: str, text: str, secrets: SecretBook) -> OutboxEntry:
        """Read a stored entry; UnreadableEntryError when it cannot be."""
        try:
            record = json.loads(text)
            where = record["destination"]
            destination = Destination(
                channel=str(where["channel"]),
                route=str(where.get("route") or "default"),
                settings=secrets.decode(where.get("settings") or {}),
                runbook_url=where.get("runbook_url"),
                fallback_of=where.get("fallback_of"),
            )
            last = record.get("last")
            return cls(
                id=entry_id,
                alert=Alert.from_dict(record["alert"]),
                destination=destination,
                created_at=float(record["created_at"]),
                attempts=int(record.get("attempts", 0)),
                last=None
                if last is None
                else Outcome(
                    kind=OutcomeKind(last["kind"]),
                    detail=str(last.get("detail", "")),
                    retry_after=last.get("retry_after"),
                    status_code=last.get("status_code"),
                ),
            )
        except UnreadableEntryError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UnreadableEntryError(f"{type(exc).__name__}: {exc}") from None


@attrs.define(kw_only=True)
class Claim:
    """An entry this process holds the lease of, for as long as ``lease_until``."""

    entry: OutboxEntry
    lease_until: float
    """Clock time at which the lease runs out unless renewed."""
    durable: bool = True
    """False when the store refused the entry: it is delivered from memory only."""


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Outbox:
    """The outbox of one store: entries, claimed with a lease, acknowledged or
    rescheduled. Safe across threads and processes sharing the store.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        secrets: SecretBook | None = None,
        owner: str | None = None,
    ) -> None:
        """``owner``: what this process writes into its leases (host, pid and a random
        part by default).
        """
        self.store = store
        self.clock = clock
        self.secrets = secrets or SecretBook()
        self.owner = owner or _owner()

    # -- writing -------------------------------------------------------------------------

    def enqueue(self, alert: Alert, destination: Destination, *, lease: float) -> Claim:
        """Write a new entry, held by this process for ``lease`` seconds. Raises what the
        store raises.

        The lease comes first and the entry last: a process killed in between leaves at
        worst an index member with no entry, which the next drain drops.
        """
        now = self.clock.timestamp()
        entry = OutboxEntry(
            id=uuid.uuid4().hex, alert=alert, destination=destination, created_at=now
        )
        until = now + lease
        if not self.store.set_if_absent(LEASE_PREFIX + entry.id, self.owner, lease):
            raise RuntimeError("a fresh outbox id was already leased")  # pragma: no cover
        self.store.schedule(DUE_INDEX, entry.id, until)
        self.store.set(ENTRY_PREFIX + entry.id, entry.to_json(self.secrets))
        return Claim(entry=entry, lease_until=until)

    def claim_due(
        self, limit: int, *, lease: float, skip: Container[str] = frozenset()
    ) -> list[Claim]:
        """Take the lease of up to ``limit`` entries that are due and held by nobody, for
        ``lease`` seconds each. An entry another process claims first is skipped, and so
        is one whose id is in ``skip`` (what this process is delivering already, whatever
        its lease says); an unreadable one is dropped, with an error logged.
        """
        now = self.clock.timestamp()
        claims: list[Claim] = []
        for entry_id, _at in self.store.due(DUE_INDEX, now, limit):
            if entry_id in skip:
                continue
            lease_key = LEASE_PREFIX + entry_id
            if not self.store.set_if_absent(lease_key, self.owner, lease):
                continue
            text = self.store.get(ENTRY_PREFIX + entry_id)
            if text is None:
                # Acknowledged meanwhile, or its writer died before writing it.
                self.store.unschedule(DUE_INDEX, entry_id)
                self.store.delete(lease_key)
                continue
            try:
                entry = OutboxEntry.from_json(entry_id, text, self.secrets)
            except UnreadableEntryError as exc:
                _log.error(
                    "dropped an unreadable outbox entry",
                    entry=entry_id,
                    error=MASKER.mask(str(exc)),
                )
                self._forget(entry_id)
                continue
            until = now + lease
            self.store.schedule(DUE_INDEX, entry_id, until)
            claims.append(Claim(entry=entry, lease_until=until))
        return claims

    def renew(self, claim: Claim, lease: float) -> bool:
        """Hold ``claim`` for ``lease`` more seconds from now; False when it is lost (its
        lease ran out and another process took it, or the entry is gone).

        A lease safely unexpired is extended in place; one about to run out or gone is
        taken anew with ``set_if_absent``, and the entry reread, since another holder may
        have tried it meanwhile.
        """
        if not claim.durable:
            return True
        now = self.clock.timestamp()
        lease_key = LEASE_PREFIX + claim.entry.id
        if now < claim.lease_until - RENEW_GUARD:
            self.store.set(lease_key, self.owner, lease)
        else:
            if not self.store.set_if_absent(lease_key, self.owner, lease):
                return False
            text = self.store.get(ENTRY_PREFIX + claim.entry.id)
            if text is None:
                self.store.delete(lease_key)
                return False
            claim.entry = OutboxEntry.from_json(claim.entry.id, text, self.secrets)
        claim.lease_until = now + lease
        self.store.schedule(DUE_INDEX, claim.entry.id, claim.lease_until)
        return True

    def ack(self, claim: Claim) -> None:
        """The entry is done (delivered, or failed for good): delete it, its due time,
        then its lease.
        """
        if not claim.durable:
            return
        entry_id = claim.entry.id
        self.store.delete(ENTRY_PREFIX + entry_id)
        self.store.unschedule(DUE_INDEX, entry_id)
        self._let_go(claim)

    def reschedule(self, claim: Claim, entry: OutboxEntry, at: float) -> None:
        """Store ``entry`` (its attempts and last outcome) and make it due at ``at``, then
        let its lease go, so whichever process drains first after ``at`` tries it.
        """
        claim.entry = entry
        self.store.set(ENTRY_PREFIX + entry.id, entry.to_json(self.secrets))
        self.store.schedule(DUE_INDEX, entry.id, at)
        claim.durable = True
        self._let_go(claim)

    # -- reading -------------------------------------------------------------------------

    def entries(self, limit: int = 1000) -> list[tuple[OutboxEntry, float]]:
        """Up to ``limit`` entries with their due times, earliest first (unreadable ones
        left out).
        """
        found: list[tuple[OutboxEntry, float]] = []
        members = self.store.due(DUE_INDEX, float("inf"), limit)
        texts = self.store.get_many([ENTRY_PREFIX + member for member, _ in members])
        for member, at in members:
            text = texts.get(ENTRY_PREFIX + member)
            if text is None:
                continue
            try:
                found.append((OutboxEntry.from_json(member, text, self.secrets), at))
            except UnreadableEntryError:
                continue
        return found

    def next_due(self) -> float | None:
        """When the earliest entry comes due (None for an empty outbox)."""
        first = self.store.due(DUE_INDEX, float("inf"), 1)
        return first[0][1] if first else None

    # -- inside --------------------------------------------------------------------------

    def _let_go(self, claim: Claim) -> None:
        # Only a lease still surely ours is deleted: past its end, it may be another's.
        if self.clock.timestamp() < claim.lease_until - RENEW_GUARD:
            self.store.delete(LEASE_PREFIX + claim.entry.id)
        claim.lease_until = 0.0

    def _forget(self, entry_id: str) -> None:
        self.store.delete(ENTRY_PREFIX + entry_id)
        self.store.unschedule(DUE_INDEX, entry_id)
        self.store.delete(LEASE_PREFIX + entry_id)

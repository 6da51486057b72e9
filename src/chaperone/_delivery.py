"""Deliver routed alerts through the outbox: each destination's entry is written before
any network call, delivered at once (concurrently with the others), retried when the
failure is transient, paced to the destination's rate and holds, handed to the channel's
fallback after a final failure, and reported through the delivered / delivery-failed
hooks exactly once, when its outcome is final.

Each entry's delivery is a task of the delivery loop, tracked in
``ctx.in_flight``: a caller waits for it as long as it asked (``wait``), and the task
goes on without it. Sends take a slot of the gates first (per destination and
in total, :mod:`chaperone._gates`), so a destination that hangs holds only its own
slots; an entry waiting for a slot keeps its lease, so no drain takes it meanwhile.

Waits: exponential backoff with jitter between attempts (tenacity's, at most
``max_backoff``) is waited inline on the clock, and so is a destination's hold
or rate slot up to :data:`INLINE_WAIT`; a longer hold (a ``Retry-After`` of minutes, or
the next minute's slot of a busy PagerDuty key) puts the entry back in the outbox for
that time instead, so that nothing else waits behind it. The monitor's next drain after
that time delivers it (``Monitor.tick``).

Nothing here raises: a channel that raises, hangs or is misconfigured becomes a failed
delivery with a secret-free reason, and the other destinations go on. A store that is
away costs durability (the entry is delivered from memory, logged), never the delivery.
A delivery cancelled as its process ends (:func:`settle`) calls no hook: its entry goes
back to the outbox, due at once, for ``chaperone monitor``.
"""

from __future__ import annotations

import asyncio
import enum
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Final, Protocol

import attrs
import httpx
import structlog
from tenacity import RetryCallState, Retrying, wait_exponential_jitter

from chaperone import _pacing
from chaperone._alerts import Alert
from chaperone._clock import Clock
from chaperone._degraded import part_of
from chaperone._gates import DeliveryGates
from chaperone._inflight import Delivery, InFlight
from chaperone._outbox import LEASE_MARGIN, RENEW_GUARD, Claim, Outbox, OutboxEntry
from chaperone._policy import DeliveryPolicy
from chaperone._secrets import MASKER, describe
from chaperone._verdicts import Destination, Outcome, OutcomeKind
from chaperone.channels._base import Channel, SendContext
from chaperone.channels._registry import ChannelRegistry
from chaperone.config import Settings
from chaperone.store import Store

__all__ = [
    "DRAIN_BATCH",
    "FAILING_AFTER",
    "INLINE_WAIT",
    "MAX_IN_FLIGHT",
    "DeliveryContext",
    "DeliveryHooks",
    "DeliveryResult",
    "DeliveryStatus",
    "PartWatch",
    "deliver",
    "deliver_claims",
    "drain",
    "enqueue",
    "memory_claim",
    "settle",
]

_log = structlog.get_logger("chaperone.delivery")

FAILING_AFTER: Final = 2
"""Failed attempts in a row (not a service asking to wait) after which a destination
counts as a degraded part of Chaperone while its delivery is still retried."""
INLINE_WAIT: Final = 2.0
"""Longest hold or rate-slot wait taken inline; a longer one reschedules the entry."""
DRAIN_BATCH: Final = 200
"""Outbox entries one drain claims at most."""
MAX_IN_FLIGHT: Final = 1000
"""A drain claims no more once this many deliveries are in flight here: behind a
destination that hangs, the rest wait in the outbox rather than as tasks of this process."""
_RENEW_BEFORE: Final = 2.0
"""A lease with less than the send timeout plus this left is renewed before a send."""
_LEASE_EXPIRED: Final = 0.01
"""Waited past a lease's end before taking it anew, so that the store sees it expired."""
_KEEP_EVERY: Final = 1.0
"""Seconds between two looks at the lease of an entry waiting for a send slot."""
_RETRYING: Final = Retrying()
"""Only to give tenacity's backoff a retry state to read the attempt number from."""


class DeliveryHooks(Protocol):
    """The hooks a delivery reports its end to (:class:`chaperone._hooks.Hooks`)."""

    def delivered(self, alert: Alert, destination: Destination, outcome: Outcome) -> None:
        """A channel confirmed ``alert``."""

    def delivery_failed(
        self, alert: Alert, destination: Destination, outcome: Outcome, attempts: int
    ) -> None:
        """A delivery failed for good."""


class PartWatch(Protocol):
    """Where a delivery says a part of Chaperone fails or works (the self-watch)."""

    def failing(self, part: str, reason: str) -> None:
        """``part`` fails for ``reason``."""

    def working(self, part: str) -> None:
        """``part`` works."""


@attrs.frozen(kw_only=True)
class DeliveryContext:
    """What delivery needs, handed to it by the dispatcher."""

    settings: Settings
    store: Store
    clock: Clock
    outbox: Outbox
    channels: ChannelRegistry
    in_flight: InFlight
    gates: DeliveryGates
    watch: PartWatch
    hooks: DeliveryHooks


class DeliveryStatus(enum.StrEnum):
    """Where one destination's delivery stands."""

    DELIVERED = "delivered"
    FAILED = "failed"
    """Failed for good: a permanent error, or transient ones past the attempts or time."""
    DEFERRED = "deferred"
    """Back in the outbox for a later attempt (a long Retry-After, a held destination, a
    process that ended first): the monitor delivers it; the hooks are called then."""
    IN_FLIGHT = "in_flight"
    """Still being delivered when the caller stopped waiting (``wait``): the delivery
    goes on, and the hooks are called when it ends."""


def _status_of(result: DeliveryResult) -> DeliveryStatus:
    return DeliveryStatus.DELIVERED if result.outcome.ok else DeliveryStatus.FAILED


@attrs.frozen(kw_only=True)
class DeliveryResult:
    """How one destination's delivery of one alert ended, or where it stands."""

    destination: Destination
    """Where it went; ``destination.fallback_of`` names the channel a fallback stands in for."""
    outcome: Outcome
    """The last attempt's outcome (for a deferred delivery, why it waits)."""
    attempts: int
    """Sends made, by every process that tried this alert for this destination."""
    status: DeliveryStatus = attrs.field(
        default=attrs.Factory(_status_of, takes_self=True), converter=DeliveryStatus
    )
    deferred_until: datetime | None = None
    """For a deferred delivery: when it is next tried, if known."""

    @property
    def ok(self) -> bool:
        """Whether the channel confirmed the alert."""
        return self.outcome.ok

    @property
    def deferred(self) -> bool:
        """Whether the delivery goes on later, from the outbox."""
        return self.status is DeliveryStatus.DEFERRED

    @property
    def in_flight(self) -> bool:
        """Whether the delivery was still going on when its report was made."""
        return self.status is DeliveryStatus.IN_FLIGHT


# -- entry points ----------------------------------------------------------------------


async def deliver(
    ctx: DeliveryContext,
    alert: Alert,
    destinations: Sequence[Destination],
    *,
    wait: float | None = None,
) -> list[DeliveryResult]:
    """Write ``alert`` to the outbox for every destination, then deliver the entries at
    once; return the results in order (a fallback's right after the failure it follows).
    ``wait`` as for :func:`deliver_claims`.
    """
    per_claim = await deliver_claims(ctx, enqueue(ctx, alert, destinations), wait=wait)
    return [result for results in per_claim for result in results]


def enqueue(ctx: DeliveryContext, alert: Alert, destinations: Sequence[Destination]) -> list[Claim]:
    """Write one outbox entry per destination, each held by this process; never raises
    (a store that refuses the entry is logged, and the entry kept in memory only).
    """
    return [_enqueue_one(ctx, alert, destination) for destination in destinations]


async def deliver_claims(
    ctx: DeliveryContext, claims: Sequence[Claim], *, wait: float | None = None
) -> list[list[DeliveryResult]]:
    """Start delivering held entries, each a task of the delivery loop (sends limited by its
    gates), and wait for them at most ``wait`` seconds (None: until all are done; 0: not
    at all). Return each one's results (its own, then its fallback's); a delivery still
    going on is reported in flight. Never raises.
    """
    tasks = [ctx.in_flight.start(claim, partial(_run, ctx)) for claim in claims]
    await ctx.in_flight.wait(tasks, wait)
    return [_results_of(task, claim) for task, claim in zip(tasks, claims, strict=True)]


async def drain(
    ctx: DeliveryContext, limit: int = DRAIN_BATCH, *, wait: float | None = None
) -> list[DeliveryResult]:
    """Deliver up to ``limit`` outbox entries that are due and held by no live process:
    retries put back for later, and what a killed process left; an entry already
    being delivered here is left alone, and so is the outbox while :data:`MAX_IN_FLIGHT`
    deliveries are in flight. ``wait`` as for :func:`deliver_claims`. Never raises.
    """
    lease = ctx.settings.delivery.timeout.total_seconds() + LEASE_MARGIN
    limit = min(limit, MAX_IN_FLIGHT - len(ctx.in_flight))
    if limit <= 0:
        return []
    try:
        claims = ctx.outbox.claim_due(limit, lease=lease, skip=ctx.in_flight.entry_ids())
    except Exception as exc:
        _log.error("could not read the outbox", error=describe(exc))
        return []
    if claims:
        _log.info("delivering from the outbox", entries=len(claims))
    per_claim = await deliver_claims(ctx, claims, wait=wait)
    return [result for results in per_claim for result in results]


async def settle(ctx: DeliveryContext, grace: float) -> None:
    """Wait at most ``grace`` seconds for the deliveries in flight, then cancel the rest:
    their entries go back to the outbox, due at once and let go, for ``chaperone
    monitor``; no hook is called for them. Log how many were left, and at error those held
    only in memory (the store refused them), which are lost. Never raises.
    """
    try:
        left = await ctx.in_flight.settle(grace)
    except Exception as exc:
        _log.error("could not stop the deliveries in flight", error=describe(exc))
        return
    kept = [delivery.claim for delivery in left if delivery.claim.durable]
    lost = [delivery.claim for delivery in left if not delivery.claim.durable]
    if kept:
        _log.warning(
            "deliveries still in flight at exit: left in the outbox for chaperone monitor",
            count=len(kept),
            channels=sorted({claim.entry.destination.channel for claim in kept}),
            grace=grace,
        )
    if lost:
        _log.error(
            "alerts held only in memory were not delivered before exit: lost",
            count=len(lost),
            channels=sorted({claim.entry.destination.channel for claim in lost}),
            alerts=sorted({claim.entry.alert.incident_key for claim in lost}),
        )


def _results_of(task: asyncio.Task[list[DeliveryResult]], claim: Claim) -> list[DeliveryResult]:
    """A delivery task's results; for one still running or cancelled, where it stands."""
    if task.done() and not task.cancelled():
        return task.result()
    destination = claim.entry.destination
    if task.cancelled():
        return [
            DeliveryResult(
                destination=destination,
                outcome=Outcome.transient("the process ended first: left in the outbox"),
                attempts=claim.entry.attempts,
                status=DeliveryStatus.DEFERRED,
            )
        ]
    return [
        DeliveryResult(
            destination=destination,
            outcome=Outcome.transient("still being delivered"),
            attempts=claim.entry.attempts,
            status=DeliveryStatus.IN_FLIGHT,
        )
    ]


# -- one entry -------------------------------------------------------------------------


def _enqueue_one(ctx: DeliveryContext, alert: Alert, destination: Destination) -> Claim:
    try:
        timeout = ctx.channels.policy_for(destination).timeout
    except Exception:
        timeout = ctx.settings.delivery.timeout.total_seconds()
    try:
        claim = ctx.outbox.enqueue(alert, destination, lease=timeout + LEASE_MARGIN)
    except Exception as exc:
        _log.error(
            "outbox unavailable: delivering from memory, not kept across a restart",
            channel=destination.channel,
            alert=alert.incident_key,
            error=describe(exc),
        )
        ctx.watch.failing("outbox", describe(exc))
        return memory_claim(ctx, alert, destination)
    ctx.watch.working("outbox")
    return claim


def memory_claim(ctx: DeliveryContext, alert: Alert, destination: Destination) -> Claim:
    """A claim on an entry kept in memory only, never written to the outbox: for
    Chaperone's own alerts (delivered without the store) and when the outbox refuses.
    """
    entry = OutboxEntry(
        id=uuid.uuid4().hex,
        alert=alert,
        destination=destination,
        created_at=ctx.clock.timestamp(),
    )
    return Claim(entry=entry, lease_until=math.inf, durable=False)


async def _run(ctx: DeliveryContext, delivery: Delivery) -> list[DeliveryResult]:
    """One entry's delivery, as a task: its result, then its fallback's when it failed
    for good. Cancelled, it puts the entry it holds back in the outbox.
    """
    results: list[DeliveryResult] = []
    # The caller that started this task gets its report first: what a delivery does
    # before its first real wait (the store's pacing and lease, building the HTTP client)
    # would otherwise hold up a caller that asked not to wait.
    await asyncio.sleep(0)
    while True:
        try:
            result, standby = await _guarded(ctx, delivery)
        except asyncio.CancelledError:
            _release(ctx, delivery)
            raise
        results.append(result)
        if standby is None:
            return results
        _log.info(
            "delivering to the fallback channel",
            channel=result.destination.channel,
            fallback=standby.entry.destination.channel,
            alert=standby.entry.alert.incident_key,
        )
        delivery.hand_on(standby)


async def _guarded(ctx: DeliveryContext, delivery: Delivery) -> tuple[DeliveryResult, Claim | None]:
    try:
        return await _deliver_claim(ctx, delivery)
    except Exception as exc:
        # A bug of ours: the entry stays in the outbox and is tried again after its lease.
        _log.exception("delivery failed unexpectedly; the entry stays in the outbox")
        interrupted = DeliveryResult(
            destination=delivery.claim.entry.destination,
            outcome=Outcome.transient(f"delivery interrupted: {describe(exc)}"),
            attempts=delivery.attempts,
            status=DeliveryStatus.DEFERRED,
        )
        return interrupted, None


async def _deliver_claim(
    ctx: DeliveryContext, delivery: Delivery
) -> tuple[DeliveryResult, Claim | None]:
    """Deliver the entry ``delivery`` holds, noting its attempts as they are made; return
    how it ended and, after a final failure, the fallback's entry (already written).
    """
    destination = delivery.claim.entry.destination
    try:
        channel = ctx.channels.channel_for(destination)
        policy = ctx.channels.policy_for(destination)
    except Exception as exc:
        unavailable = Outcome.permanent(f"channel unavailable: {MASKER.mask(str(exc))}")
        fallback = ctx.channels.fallback_for(destination)
        return _finish_failed(ctx, delivery.claim, unavailable, delivery.attempts, fallback)
    machine = _EntryDelivery(ctx=ctx, delivery=delivery, channel=channel, policy=policy)
    return machine.end(await machine.run())


# -- one entry's delivery, a state machine ---------------------------------------------
#
#   Ready ──(past max_total)─────────────────────────────────► FailedForGood
#     ├──(lease lost while waiting for a slot or a send)──────► TakenOver
#     ├──(paced, or held by the service)──► Paused
#     │                                       ├──(longer than INLINE_WAIT)──► Deferred
#     │                                       └──(waited inline)────────────► Ready
#     └──(sent)──► Sent
#                    ├──(confirmed)───────────────────────────► Delivered
#                    ├──(permanent; attempts or time used up)─► FailedForGood
#                    ├──(a long Retry-After)──────────────────► Deferred
#                    └──(transient: backed off inline)────────► Ready
#
# Delivered, FailedForGood, Deferred and TakenOver are the ends: each is reported once.


@attrs.frozen
class _Ready:
    """About to take a send slot: first, or after a wait."""


@attrs.frozen(kw_only=True)
class _Paused:
    """A send slot was free but the destination is paced or held for ``seconds``."""

    seconds: float
    why: str


@attrs.frozen(kw_only=True)
class _Sent:
    """A send was made; the channel's outcome."""

    outcome: Outcome


@attrs.frozen(kw_only=True)
class _Delivered:
    """The channel confirmed the alert."""

    outcome: Outcome


@attrs.frozen(kw_only=True)
class _FailedForGood:
    """No more attempts: reported, then handed to ``fallback`` if any."""

    outcome: Outcome
    fallback: str | None


@attrs.frozen(kw_only=True)
class _Deferred:
    """Back in the outbox until ``at``: ``last`` is kept in the entry, ``shown`` reported."""

    at: float
    last: Outcome | None
    shown: Outcome


@attrs.frozen
class _TakenOver:
    """The lease ran out and another process took the entry."""


_Moving = _Ready | _Paused | _Sent
_Ended = _Delivered | _FailedForGood | _Deferred | _TakenOver


@attrs.define(kw_only=True)
class _EntryDelivery:
    """The transitions of one entry's delivery from each state to the next."""

    ctx: DeliveryContext
    delivery: Delivery
    channel: Channel
    policy: DeliveryPolicy

    async def run(self) -> _Ended:
        """Go from Ready to one of the ends."""
        state: _Moving | _Ended = _Ready()
        while True:
            match state:
                case _Ready():
                    state = await self.from_ready()
                case _Paused():
                    state = await self.from_paused(state)
                case _Sent():
                    state = await self.from_sent(state)
                case _:
                    return state

    def end(self, state: _Ended) -> tuple[DeliveryResult, Claim | None]:
        """Carry out an end: acknowledge, defer or let go of the entry, and report."""
        ctx, claim, attempts = self.ctx, self.delivery.claim, self.delivery.attempts
        match state:
            case _Delivered(outcome=outcome):
                return _finish_delivered(ctx, claim, outcome, attempts), None
            case _FailedForGood(outcome=outcome, fallback=fallback):
                return _finish_failed(ctx, claim, outcome, attempts, fallback)
            case _Deferred(at=at, last=last, shown=shown):
                return _defer(ctx, claim, attempts, last, at, shown), None
            case _TakenOver():
                return _taken_over(claim, attempts), None

    @property
    def deadline(self) -> float:
        """When ``delivery.max_total`` runs out for the entry."""
        return self.delivery.claim.entry.created_at + self.policy.max_total

    async def from_ready(self) -> _Paused | _Sent | _FailedForGood | _TakenOver:
        """Past the deadline, fail; else take a send slot (the lease kept meanwhile) and,
        unless the destination is paced or held, send. Pace and lease are settled once
        the slot is free, right before the send.
        """
        if self.ctx.clock.timestamp() >= self.deadline:
            why = f"not delivered within delivery.max_total ({self.policy.max_total:g}s)"
            return _FailedForGood(
                outcome=_gave_up(self.delivery.last, why), fallback=self.policy.fallback
            )
        claim = self.delivery.claim
        if not await _take_slot(self.ctx, claim, self.policy):
            return _TakenOver()
        try:
            pause, why = _pause_before_send(self.ctx, self.policy)
            if pause > 0:
                return _Paused(seconds=pause, why=why)
            if not await _hold_lease(self.ctx, claim, self.policy):
                return _TakenOver()
            self.delivery.attempts += 1
            entry = claim.entry
            outcome = await _attempt(
                self.ctx,
                self.channel,
                entry.alert,
                entry.destination,
                self.policy,
                self.delivery.attempts,
            )
            return _Sent(outcome=outcome)
        finally:
            self.ctx.gates.release(self.policy.destination_id)

    async def from_paused(self, paused: _Paused) -> _Ready | _Deferred | _TakenOver:
        """A long pause puts the entry back in the outbox; a short one is waited here."""
        if paused.seconds > INLINE_WAIT:
            last = self.delivery.last
            shown = last or Outcome.transient(paused.why, retry_after=paused.seconds)
            at = self.ctx.clock.timestamp() + paused.seconds
            return _Deferred(at=at, last=last, shown=shown)
        return await self._wait_inline(paused.seconds)

    async def from_sent(
        self, sent: _Sent
    ) -> _Ready | _Delivered | _FailedForGood | _Deferred | _TakenOver:
        """Honour a Retry-After for the destination, then end on a confirmation or a
        permanent error, or retry a transient one.
        """
        outcome = sent.outcome
        if outcome.retry_after is not None and outcome.retry_after > 0:
            _hold(self.ctx, self.policy, outcome.retry_after)
        if outcome.ok:
            return _Delivered(outcome=outcome)
        if outcome.kind is OutcomeKind.PERMANENT:
            return _FailedForGood(outcome=outcome, fallback=self.policy.fallback)
        self.delivery.last = outcome
        return await self._retry(outcome)

    async def _retry(self, outcome: Outcome) -> _Ready | _FailedForGood | _Deferred | _TakenOver:
        """After a transient failure: give up when the attempts or the time are used up,
        defer behind a long Retry-After, else back off here.
        """
        attempts, policy = self.delivery.attempts, self.policy
        if attempts >= policy.max_attempts:
            return _FailedForGood(outcome=outcome, fallback=policy.fallback)
        wait = max(_backoff(attempts, policy.max_backoff), outcome.retry_after or 0.0)
        now = self.ctx.clock.timestamp()
        if now + wait >= self.deadline:
            why = f"the next attempt would be past delivery.max_total ({policy.max_total:g}s)"
            return _FailedForGood(outcome=_gave_up(outcome, why), fallback=policy.fallback)
        if outcome.retry_after is not None and outcome.retry_after > INLINE_WAIT:
            return _Deferred(at=now + wait, last=outcome, shown=outcome)
        self._note_retry(outcome, wait)
        return await self._wait_inline(wait)

    def _note_retry(self, outcome: Outcome, wait: float) -> None:
        """Log the retry; failing again and again (a hang, a 5xx), the destination is a
        degraded part now, not after every retry.
        """
        entry, attempts = self.delivery.claim.entry, self.delivery.attempts
        _log.warning(
            "delivery attempt failed, will retry",
            channel=entry.destination.channel,
            alert=entry.alert.incident_key,
            attempt=attempts,
            wait=round(wait, 3),
            detail=outcome.detail,
        )
        if attempts >= FAILING_AFTER and outcome.retry_after is None:
            self.ctx.watch.failing(
                part_of(entry.destination),
                f"{attempts} attempts failed, retrying: {outcome.detail}",
            )

    async def _wait_inline(self, seconds: float) -> _Ready | _TakenOver:
        """Keep the lease for the wait and the send after it, then wait."""
        lease = seconds + self.policy.timeout + LEASE_MARGIN
        if not _renew(self.ctx, self.delivery.claim, lease):
            return _TakenOver()
        await self.ctx.clock.sleep(seconds)
        return _Ready()


def _with_runbook(alert: Alert, destination: Destination) -> Alert:
    if destination.runbook_url and not alert.runbook_url:
        return attrs.evolve(alert, runbook_url=destination.runbook_url)
    return alert


async def _attempt(
    ctx: DeliveryContext,
    channel: Channel,
    alert: Alert,
    destination: Destination,
    policy: DeliveryPolicy,
    number: int,
) -> Outcome:
    context = SendContext(
        http=ctx.channels.http_client,
        clock=ctx.clock,
        timeout=policy.timeout,
        attempt=number,
        route=destination.route,
        fallback_of=destination.fallback_of,
    )
    return await _classified_send(channel, _with_runbook(alert, destination), context)


async def _classified_send(channel: Channel, alert: Alert, context: SendContext) -> Outcome:
    """One send, with whatever went wrong turned into an Outcome free of secrets."""
    try:
        async with asyncio.timeout(context.timeout):
            outcome = await channel.send(alert, context)
    except TimeoutError:
        return Outcome.transient(f"timed out after {context.timeout:g}s")
    except (httpx.TransportError, ConnectionError) as exc:
        # A network failure of an HTTP channel, or of any other (SMTP, a socket).
        return Outcome.transient(f"{type(exc).__name__}: connection failed")
    except Exception as exc:
        return Outcome.permanent(f"channel raised {type(exc).__name__}: {MASKER.mask(str(exc))}")
    if not isinstance(outcome, Outcome):
        return Outcome.permanent(f"channel returned {type(outcome).__name__}, not an Outcome")
    return attrs.evolve(outcome, detail=MASKER.mask(outcome.detail))


def _backoff(attempts: int, max_backoff: float) -> float:
    """Tenacity's exponential backoff with jitter after ``attempts`` sends: about 1, 2,
    4 s (plus up to 1 s), at most ``max_backoff``.
    """
    state = RetryCallState(retry_object=_RETRYING, fn=None, args=(), kwargs={})
    state.attempt_number = attempts
    return float(wait_exponential_jitter(initial=1, max=max_backoff)(state))


def _gave_up(last: Outcome | None, why: str) -> Outcome:
    if last is None:
        return Outcome.transient(why)
    return attrs.evolve(last, detail=f"{last.detail}; {why}" if last.detail else why)


# -- pacing ----------------------------------------------------------------------------


def _pause_before_send(ctx: DeliveryContext, policy: DeliveryPolicy) -> tuple[float, str]:
    """Seconds to wait before sending to the destination (its hold, else its rate slot),
    with why; 0 to send now. A store that is away holds nothing back.
    """
    store, clock = ctx.store, ctx.clock
    try:
        until = _pacing.held_until(store, policy.destination_id)
        now = clock.timestamp()
        if until > now:
            return until - now, "the service asked to wait (Retry-After)"
        slot = _pacing.take_slot(store, clock, policy.destination_id, policy.pace)
    except Exception as exc:
        _log.warning("could not read the destination's pace", error=describe(exc))
        return 0.0, ""
    if slot > 0:
        return slot, "the channel's documented rate is used up for now"
    return 0.0, ""


def _hold(ctx: DeliveryContext, policy: DeliveryPolicy, seconds: float) -> None:
    try:
        _pacing.hold(ctx.store, ctx.clock, policy.destination_id, seconds)
    except Exception as exc:
        _log.warning("could not record the destination's hold", error=describe(exc))


# -- slots and leases ------------------------------------------------------------------


async def _take_slot(ctx: DeliveryContext, claim: Claim, policy: DeliveryPolicy) -> bool:
    """Wait for a send slot of the destination (the caller releases it), keeping the
    entry's lease meanwhile, so that no drain, here or in another process, takes it;
    False, with no slot held, when it was lost all the same.
    """
    gates = ctx.gates
    granted = gates.request(policy.destination_id)
    try:
        while not granted.done():
            await asyncio.wait({granted}, timeout=_KEEP_EVERY)
            if not granted.done() and not _keep_lease(ctx, claim, policy):
                gates.withdraw(policy.destination_id, granted)
                return False
    except asyncio.CancelledError:
        gates.withdraw(policy.destination_id, granted)
        raise
    return True


def _keep_lease(ctx: DeliveryContext, claim: Claim, policy: DeliveryPolicy) -> bool:
    """Renew the lease of an entry waiting for a slot once half of it has run out; False
    when it was lost to another process.
    """
    lease = policy.timeout + LEASE_MARGIN
    left = claim.lease_until - ctx.clock.timestamp()
    if left >= lease / 2 or (claim.durable and 0 < left <= RENEW_GUARD):
        # Enough left; or too near its end to extend in place: taken anew at the next look.
        return True
    return _renew(ctx, claim, lease)


async def _hold_lease(ctx: DeliveryContext, claim: Claim, policy: DeliveryPolicy) -> bool:
    """Make sure the lease outlasts one send: renewed when less than the timeout and a
    little is left; False when the entry was lost to another process.
    """
    left = claim.lease_until - ctx.clock.timestamp()
    if left >= policy.timeout + _RENEW_BEFORE:
        return True
    if claim.durable and 0 < left <= RENEW_GUARD:
        # Still ours, but too near its end to extend in place, and taking it anew would
        # find it held (by us): let it run out first. Otherwise every claim of a long
        # batch reaching the gate in that last second would be reported taken over.
        await ctx.clock.sleep(left + _LEASE_EXPIRED)
    return _renew(ctx, claim, policy.timeout + LEASE_MARGIN)


def _renew(ctx: DeliveryContext, claim: Claim, lease: float) -> bool:
    try:
        return ctx.outbox.renew(claim, lease)
    except Exception as exc:
        # Better a possible duplicate than a lost alert: go on without the lease.
        _log.warning("could not renew an outbox lease", error=describe(exc))
        return True


def _release(ctx: DeliveryContext, delivery: Delivery) -> None:
    """Put a cancelled delivery's entry back in the outbox with the attempts it made, due
    now and its lease let go, so the next drain of any process takes it at once. An entry
    another process took over meanwhile is left to it.
    """
    claim = delivery.claim
    entry = attrs.evolve(claim.entry, attempts=delivery.attempts, last=delivery.last)
    try:
        if ctx.outbox.renew(claim, LEASE_MARGIN):
            ctx.outbox.reschedule(claim, entry, ctx.clock.timestamp())
    except Exception as exc:
        _log.warning(
            "could not put a stopped delivery back in the outbox",
            channel=entry.destination.channel,
            alert=entry.alert.incident_key,
            error=describe(exc),
        )


# -- endings ---------------------------------------------------------------------------


def _ack(ctx: DeliveryContext, claim: Claim) -> None:
    try:
        ctx.outbox.ack(claim)
    except Exception as exc:
        _log.error(
            "could not remove a finished entry from the outbox; it may be sent again",
            error=describe(exc),
        )


def _taken_over(claim: Claim, attempts: int) -> DeliveryResult:
    _log.warning(
        "another process took over an outbox entry whose lease ran out",
        channel=claim.entry.destination.channel,
        alert=claim.entry.alert.incident_key,
    )
    return DeliveryResult(
        destination=claim.entry.destination,
        outcome=Outcome.transient("another process took this delivery over"),
        attempts=attempts,
        status=DeliveryStatus.DEFERRED,
    )


def _defer(
    ctx: DeliveryContext,
    claim: Claim,
    attempts: int,
    last: Outcome | None,
    at: float,
    shown: Outcome,
) -> DeliveryResult:
    entry = attrs.evolve(claim.entry, attempts=attempts, last=last)
    destination = entry.destination
    try:
        ctx.outbox.reschedule(claim, entry, at)
    except Exception as exc:
        _log.error("could not put an entry back in the outbox", error=describe(exc))
        if not claim.durable:
            return DeliveryResult(
                destination=destination,
                outcome=_gave_up(shown, "the store is away, so it cannot wait for later"),
                attempts=attempts,
                status=DeliveryStatus.FAILED,
            )
    when = datetime.fromtimestamp(at, UTC)
    _log.info(
        "delivery deferred: back in the outbox",
        channel=destination.channel,
        alert=entry.alert.incident_key,
        attempts=attempts,
        until=when.isoformat(),
        detail=shown.detail,
    )
    return DeliveryResult(
        destination=destination,
        outcome=shown,
        attempts=attempts,
        status=DeliveryStatus.DEFERRED,
        deferred_until=when,
    )


def _finish_delivered(
    ctx: DeliveryContext, claim: Claim, outcome: Outcome, attempts: int
) -> DeliveryResult:
    _ack(ctx, claim)  # first: the smallest window for a duplicate after a crash
    result = DeliveryResult(destination=claim.entry.destination, outcome=outcome, attempts=attempts)
    _report(ctx, _with_runbook(claim.entry.alert, result.destination), result)
    return result


def _finish_failed(
    ctx: DeliveryContext, claim: Claim, outcome: Outcome, attempts: int, fallback: str | None
) -> tuple[DeliveryResult, Claim | None]:
    """Report a final failure; return it with the fallback's entry, when there is one,
    written before the failed entry goes (so a crash in between loses neither).
    """
    entry = claim.entry
    destination = entry.destination
    standby: Claim | None = None
    if (
        fallback
        and fallback not in (destination.channel, destination.fallback_of)
        and _takes(ctx, fallback, entry.alert)
    ):
        standby = _enqueue_one(
            ctx,
            entry.alert,
            Destination(
                channel=fallback,
                route=destination.route,
                settings=ctx.channels.route_settings(destination.route, fallback),
                runbook_url=destination.runbook_url,
                fallback_of=destination.channel,
            ),
        )
    _ack(ctx, claim)
    result = DeliveryResult(destination=destination, outcome=outcome, attempts=attempts)
    _report(ctx, _with_runbook(entry.alert, destination), result)
    return result, standby


def _takes(ctx: DeliveryContext, channel: str, alert: Alert) -> bool:
    """Whether ``channel`` takes alerts of the status of ``alert`` (an acknowledgement
    goes to no fallback that did not opt in to acknowledgements).
    """
    channel_class = ctx.channels.plugins.channel_classes.get(channel)
    return channel_class is None or channel_class.accepts(alert.status)


def _report(ctx: DeliveryContext, alert: Alert, result: DeliveryResult) -> None:
    if result.ok:
        _log.debug(
            "alert delivered",
            channel=result.destination.channel,
            fallback_of=result.destination.fallback_of,
            alert=alert.incident_key,
            attempts=result.attempts,
        )
        ctx.hooks.delivered(alert, result.destination, result.outcome)
        return
    _log.error(
        "alert delivery failed",
        channel=result.destination.channel,
        route=result.destination.route,
        fallback_of=result.destination.fallback_of,
        alert=alert.incident_key,
        attempts=result.attempts,
        detail=result.outcome.detail,
    )
    ctx.hooks.delivery_failed(alert, result.destination, result.outcome, result.attempts)

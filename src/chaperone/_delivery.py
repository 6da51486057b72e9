"""Deliver one alert to its destinations: concurrently, each guarded, retried when the
failure is transient, and reported through the delivered / delivery-failed hooks.

Nothing here raises: a channel that raises, hangs or is misconfigured becomes a failed
delivery with a secret-free reason, and the other destinations go on.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import attrs
import httpx
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    wait_exponential_jitter,
)

from chaperone._alerts import Alert
from chaperone._secrets import MASKER
from chaperone._verdicts import Destination, Outcome, OutcomeKind
from chaperone.channels._base import Channel, SendContext

if TYPE_CHECKING:
    from chaperone._runtime import Runtime

__all__ = ["DeliveryResult", "deliver"]

_log = structlog.get_logger("chaperone.delivery")


@attrs.frozen(kw_only=True)
class DeliveryResult:
    """How one destination's delivery of one alert ended."""

    destination: Destination
    outcome: Outcome
    attempts: int

    @property
    def ok(self) -> bool:
        """Whether the channel confirmed the alert."""
        return self.outcome.ok


async def deliver(
    runtime: Runtime, alert: Alert, destinations: list[Destination]
) -> list[DeliveryResult]:
    """Deliver ``alert`` to every destination at once; return one result for each."""
    return list(
        await asyncio.gather(*(_deliver_one(runtime, alert, dest) for dest in destinations))
    )


async def _deliver_one(runtime: Runtime, alert: Alert, destination: Destination) -> DeliveryResult:
    if destination.runbook_url and not alert.runbook_url:
        alert = attrs.evolve(alert, runbook_url=destination.runbook_url)
    try:
        channel = runtime.channel_for(destination)
    except Exception as exc:
        result = DeliveryResult(
            destination=destination,
            outcome=Outcome.permanent(f"channel unavailable: {MASKER.mask(str(exc))}"),
            attempts=0,
        )
    else:
        result = await _send_with_retries(runtime, channel, alert, destination)
    _report(runtime, alert, result)
    return result


async def _send_with_retries(
    runtime: Runtime, channel: Channel, alert: Alert, destination: Destination
) -> DeliveryResult:
    policy = runtime.settings.delivery
    backoff = wait_exponential_jitter(initial=1, max=policy.max_backoff.total_seconds())

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome.result() if state.outcome else None
        pause = backoff(state)
        if isinstance(outcome, Outcome) and outcome.retry_after is not None:
            pause = max(pause, outcome.retry_after)
        return pause

    attempts = 0
    last = Outcome.permanent("not attempted")
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait,
        retry=retry_if_result(lambda outcome: outcome.kind is OutcomeKind.TRANSIENT),
        sleep=runtime.clock.sleep,
        # Out of attempts: end the loop quietly; ``last`` holds the final outcome.
        retry_error_callback=lambda _state: None,
    )
    async for attempt in retrying:
        with attempt:
            attempts = attempt.retry_state.attempt_number
            last = await _attempt(runtime, channel, alert, destination, attempts)
        attempt.retry_state.set_result(last)
    return DeliveryResult(destination=destination, outcome=last, attempts=attempts)


async def _attempt(
    runtime: Runtime, channel: Channel, alert: Alert, destination: Destination, number: int
) -> Outcome:
    timeout = runtime.settings.delivery.timeout.total_seconds()
    context = SendContext(
        http=runtime.http_client,
        clock=runtime.clock,
        timeout=timeout,
        attempt=number,
        route=destination.route,
    )
    outcome = await _classified_send(channel, alert, context)
    if outcome.kind is OutcomeKind.TRANSIENT:
        _log.warning(
            "delivery attempt failed, will retry if attempts remain",
            channel=destination.channel,
            alert=alert.incident_key,
            attempt=number,
            detail=outcome.detail,
        )
    return outcome


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


def _report(runtime: Runtime, alert: Alert, result: DeliveryResult) -> None:
    hooks = runtime.plugins
    if result.ok:
        _log.debug(
            "alert delivered",
            channel=result.destination.channel,
            alert=alert.incident_key,
            attempts=result.attempts,
        )
        hooks.call_each(
            "chaperone_delivered",
            alert=alert,
            destination=result.destination,
            outcome=result.outcome,
            runtime=runtime,
        )
        return
    _log.error(
        "alert delivery failed",
        channel=result.destination.channel,
        route=result.destination.route,
        alert=alert.incident_key,
        attempts=result.attempts,
        detail=result.outcome.detail,
    )
    hooks.call_each(
        "chaperone_delivery_failed",
        alert=alert,
        destination=result.destination,
        outcome=result.outcome,
        attempts=result.attempts,
        runtime=runtime,
    )
